#!/bin/bash
# wake.sh - schema version 5: the INSERT trigger's NOTIFY wakes an idle
# daemon at once, whether it comes from contrib's tcn (a trusted
# extension, installed with the schema) or from the plpgsql trigger that
# stays where tcn cannot be installed. The poll is a minute apart, so only
# the notification can start the jobs within the seconds allowed.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env wake

notify_fn="SELECT t.tgfoid::regproc::text FROM pg_trigger t
	    WHERE t.tgrelid = 'pgtenantd.jobs'::regclass AND t.tgname = 'jobs_notify_queued'"

# ---- tcn: a superuser daemon may install it
write_config "$T/a.yaml" "poll_interval: 60s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
is "$(sql "$notify_fn")" "pgtenantd.triggered_change_notification" \
	"tcn: the NOTIFY trigger is contrib's C function"
ok "tcn: the extension's function is not pinned, every other function of the schema is" \
	sql_true "SELECT count(*) = 0 FROM pg_proc p WHERE p.pronamespace = 'pgtenantd'::regnamespace
		    AND p.proname <> 'triggered_change_notification'
		    AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)"
id=$(insert_job noop wake-1)
ok "tcn: a job inserted into an idle daemon's queue runs within 3 s (poll: 60 s)" wait_state "$id" succeeded 3
ids=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id) SELECT 'noop', 'wake-m' || g
	   FROM generate_series(1, 30) g RETURNING id" | tr '\n' ',')
ok "tcn: 30 jobs of one INSERT (30 notifications) all run within 5 s" \
	wait_until "SELECT count(*) = 30 FROM pgtenantd.jobs WHERE id IN (${ids%,}) AND state = 'succeeded'" 5
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

# ---- plpgsql: where tcn cannot be installed, the plpgsql trigger stays.
# A function of tcn's name already in schema pgtenantd makes CREATE
# EXTENSION fail, as a server without contrib would.
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
is "$(psql -X -qAt -d "$DB2" -c "SELECT count(*) FROM pg_extension WHERE extname = 'tcn'")" 0 \
	"plpgsql: tcn could not be installed"
is "$(psql -X -qAt -d "$DB2" -c "$notify_fn")" "pgtenantd.jobs_notify_queued" \
	"plpgsql: the NOTIFY trigger is the plpgsql one"
id=$(psql -X -qAt -d "$DB2" -c "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'wake-2') RETURNING id")
ok "plpgsql: a job inserted into an idle daemon's queue runs within 3 s (poll: 60 s)" \
	wait_cmd 3 eval '[ "$(psql -X -qAt -d "$DB2" -c "SELECT state FROM pgtenantd.jobs WHERE id = $id")" = succeeded ]'
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

done_testing
