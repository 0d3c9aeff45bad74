#!/bin/bash
# upgrade-v8.sh - a database at schema version 7, as a daemon of that
# version left it (contrib's tcn sending the wake-up, jobs queued), is
# upgraded to version 8 by the daemon at its start: tcn is gone, the
# NOTIFY comes from the trigger's WHEN, the queued jobs run, and a new
# INSERT wakes the daemon at once.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env upgrade

# Version 7, installed as src/schema.c installs it: each version's SQL and
# its schema_version row, in one transaction, search_path pinned.
{
	echo "BEGIN;"
	echo "SET LOCAL client_min_messages = warning;"
	echo "SET search_path = pg_catalog, pg_temp;"
	echo "CREATE SCHEMA IF NOT EXISTS pgtenantd;"
	echo "CREATE TABLE IF NOT EXISTS pgtenantd.schema_version (version integer PRIMARY KEY, installed_at timestamptz NOT NULL DEFAULT now());"
	for v in 1 2 3 4 5 6; do
		cat "$top_srcdir/src/sql/v$v.sql"
		echo ";"
		echo "INSERT INTO pgtenantd.schema_version (version) VALUES ($v);"
	done
	# version 7's files, in Makefile.am's order
	for f in $(sed -n '/^SCHEMA_V7 =/,/[^\\]$/p' "$top_srcdir/Makefile.am" |
		tr -d '\\' | sed 's/^SCHEMA_V7 =//'); do
		cat "$top_srcdir/$f"
	done
	echo ";"
	echo "INSERT INTO pgtenantd.schema_version (version) VALUES (7);"
	echo "INSERT INTO pgtenantd.job_kinds (kind, description, enqueue_role) VALUES ('noop', 'test', 'pgtenantd_enqueue');"
	echo "COMMIT;"
} | psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >"$T/v7.log" 2>&1 || {
	cat "$T/v7.log" >&2
	bail_out "could not install schema version 7"
}
is "$(sql "SELECT max(version) FROM pgtenantd.schema_version")" 7 "the database is at version 7"
is "$(sql "SELECT t.tgfoid::regproc FROM pg_trigger t WHERE t.tgname = 'jobs_notify_queued'")" \
	"pgtenantd.triggered_change_notification" "version 7 wakes the daemon with contrib's tcn"
sql "INSERT INTO pgtenantd.jobs (kind, tenant_id) SELECT 'noop', 'up-' || g FROM generate_series(1, 5) g" >/dev/null ||
	bail_out "could not queue jobs at version 7"

write_config "$T/a.yaml" "poll_interval: 60s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
# start_daemon returns once the socket answers and job_kinds has a row,
# which it had at version 7 already: wait for the upgrade itself (one
# transaction, so the rest of version 8 is there with its row; later
# versions come in the same transaction)
ok "the daemon upgraded it to version 8 and on" \
	wait_until "SELECT bool_or(version = 8) FROM pgtenantd.schema_version" 15
is "$(sql "SELECT count(*) FROM pg_extension WHERE extname = 'tcn'")" 0 "tcn is gone"
is "$(sql "SELECT t.tgfoid::regproc FROM pg_trigger t WHERE t.tgname = 'jobs_notify_queued'")" \
	"pgtenantd.jobs_wake_unused" "the wake-up trigger is version 8's"
ok "the jobs queued at version 7 all run" \
	wait_until "SELECT count(*) = 5 FROM pgtenantd.jobs WHERE tenant_id LIKE 'up-%' AND state = 'succeeded'" 10
id=$(insert_job noop up-new)
ok "a job inserted after the upgrade runs within 15 s (poll: 60 s)" wait_state "$id" succeeded 15
ok "every function of the schema has its search_path pinned" \
	sql_true "SELECT count(*) = 0 FROM pg_proc p WHERE p.pronamespace = 'pgtenantd'::regnamespace
		    AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)"
ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"

done_testing
