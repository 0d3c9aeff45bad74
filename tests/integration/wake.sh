#!/bin/bash
# wake.sh - schema version 8: the INSERT's NOTIFY wakes an idle daemon at
# once. It comes from the WHEN of trigger jobs_notify_queued (the built-in
# pg_notify; the trigger's function never runs), once per transaction
# however many rows it inserts, on a fresh schema and on one upgraded from
# version 5's plpgsql trigger (where contrib's tcn could not be installed).
# The poll is a minute apart, so only the notification can start the jobs
# within the seconds allowed.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env wake

notify_fn="SELECT t.tgfoid::regproc::text FROM pg_trigger t
	    WHERE t.tgrelid = 'pgtenantd.jobs'::regclass AND t.tgname = 'jobs_notify_queued'"
notify_when="SELECT pg_get_triggerdef(t.oid) LIKE '%WHEN ((pg_notify(''pgtenantd''::text, ''''::text) IS NULL))%'
	       FROM pg_trigger t
	      WHERE t.tgrelid = 'pgtenantd.jobs'::regclass AND t.tgname = 'jobs_notify_queued'"

# notifications psql receives on channel pgtenantd for one statement (its
# own included), in database $1
notifications()
{
	psql -X -q -d "$1" -v ON_ERROR_STOP=1 -c "LISTEN pgtenantd" -c "$2" -c "SELECT 1" 2>&1 |
		grep -c 'Asynchronous notification "pgtenantd"'
}

# ---- a fresh schema
write_config "$T/a.yaml" "poll_interval: 60s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
ok "fresh: the NOTIFY is sent by the trigger's WHEN" sql_true "$notify_when"
is "$(sql "$notify_fn")" "pgtenantd.jobs_wake_unused" "fresh: its function is the one that never runs"
is "$(sql "SELECT count(*) FROM pg_extension WHERE extname = 'tcn'")" 0 \
	"fresh: contrib's tcn, which version 5 installed, is gone"
ok "fresh: every function of the schema has its search_path pinned" \
	sql_true "SELECT count(*) = 0 FROM pg_proc p WHERE p.pronamespace = 'pgtenantd'::regnamespace
		    AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)"
id=$(insert_job noop wake-1)
ok "fresh: a job inserted into an idle daemon's queue runs within 15 s (poll: 60 s)" wait_state "$id" succeeded 15
is "$(notifications "$DB" "INSERT INTO pgtenantd.jobs (kind, tenant_id)
	SELECT 'noop', 'wake-m' || g FROM generate_series(1, 30) g")" 1 \
	"fresh: an INSERT of 30 jobs sends one notification"
ok "fresh: the 30 jobs all run within 20 s (poll: 60 s)" \
	wait_until "SELECT count(*) = 30 FROM pgtenantd.jobs WHERE tenant_id LIKE 'wake-m%' AND state = 'succeeded'" 20
is "$(notifications "$DB" "INSERT INTO pgtenantd.jobs (kind, tenant_id)
	SELECT 'noop', 'wake-none' FROM generate_series(1, 0)")" 0 \
	"fresh: an INSERT of no row sends none"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

# ---- upgraded: where tcn could not be installed, version 5 kept the
# plpgsql trigger; version 8 replaces it. A function of tcn's name already
# in schema pgtenantd makes CREATE EXTENSION fail, as a server without
# contrib would.
DB2=${DB}_b
at_exit "dropdb --if-exists $DB2"
createdb "$DB2" || bail_out "createdb $DB2 failed"
psql -X -q -d "$DB2" -v ON_ERROR_STOP=1 -c "CREATE SCHEMA pgtenantd;
	CREATE FUNCTION pgtenantd.triggered_change_notification() RETURNS trigger
	LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'" >/dev/null ||
	bail_out "could not set up $DB2"
write_config "$T/b.yaml" "database: \"dbname=$DB2\"" "poll_interval: 60s" \
	"state_dir: $T/state-b" "control_socket: $T/ctl-b.sock"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "pgtenantd did not start on $DB2"
# start_daemon waits for the kinds in $DB: wait for $DB2's schema and kinds
wait_cmd 15 eval '[ "$(psql -X -qAt -d "$DB2" -c "SELECT count(*) > 0 FROM pgtenantd.job_kinds" 2>/dev/null)" = t ]' ||
	bail_out "the daemon did not install its schema in $DB2"
is "$(psql -X -qAt -d "$DB2" -c "SELECT count(*) FROM pg_extension WHERE extname = 'tcn'")" 0 \
	"upgraded: tcn could not be installed"
is "$(psql -X -qAt -d "$DB2" -c "$notify_when")" t "upgraded: the NOTIFY is sent by the trigger's WHEN"
is "$(psql -X -qAt -d "$DB2" -c "SELECT to_regprocedure('pgtenantd.jobs_notify_queued()') IS NULL")" t \
	"upgraded: version 5's plpgsql trigger function is gone"
id=$(psql -X -qAt -d "$DB2" -c "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'wake-2') RETURNING id")
ok "upgraded: a job inserted into an idle daemon's queue runs within 15 s (poll: 60 s)" \
	wait_cmd 15 eval '[ "$(psql -X -qAt -d "$DB2" -c "SELECT state FROM pgtenantd.jobs WHERE id = $id")" = succeeded ]'
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

done_testing
