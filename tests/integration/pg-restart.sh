#!/bin/bash
# pg-restart.sh - PostgreSQL restarts under a running batch job: the daemon
# reconnects, the job ends succeeded without spending an attempt, and jobs
# inserted afterwards run (re-LISTEN; a poll catches up on notifications
# lost while a connection was down). Uses its own PostgreSQL so that other
# tests are not disturbed.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
PG_TMP=$top_srcdir/scripts/pg-tmp
[ -f "$PG_TMP" ] || skip_all "no scripts/pg-tmp"

# Run scripts/pg-tmp (with sh if it lost its execute bit).
pg_tmp()
{
	if [ -x "$PG_TMP" ]; then "$PG_TMP" "$@"; else sh "$PG_TMP" "$@"; fi
}

make_tmp pg-restart
shared_pg="${PGHOST:-}:${PGPORT:-}"
# A port of its own too (the server listens only on its socket in $T/pg).
pg_env=$(pg_tmp start --fast --port $((20000 + $$ % 20000)) "$T/pg") ||
	bail_out "scripts/pg-tmp start failed"
at_exit "pg_tmp stop '$T/pg'"
eval "$pg_env"
[ "${PGHOST:-}:${PGPORT:-}" != "$shared_pg" ] ||
	bail_out "scripts/pg-tmp start did not point PGHOST/PGPORT at a new server"
diag "own PostgreSQL at PGHOST=$PGHOST PGPORT=${PGPORT:-}"
make_db

make_batch_tables 200

# A long poll interval, so that a job that runs at once after the outage
# shows that the daemon LISTENs again; a lease that outlasts the restart.
write_config "$T/a.yaml" "poll_interval: 20s" "lease: 10s" "heartbeat_interval: 1s" \
	"shutdown_timeout: 30s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

id=$(insert_job batch_slow t1 '{"ms": "150"}')
ok "the batch job gets going (3 batches done)" \
	wait_until "SELECT count(*) >= 3 FROM public.batch_log WHERE job_id = $id" 15
t0=$(now_ms)
out=$(pg_tmp restart "$T/pg" 2>&1)
ok "PostgreSQL restarts (scripts/pg-tmp restart)" [ $? -eq 0 ] || diag "$out"
diag "restart took $(($(now_ms) - t0)) ms, $(sql "SELECT count(*) FROM public.batch_log WHERE job_id = $id") batches done before"

if ! ok "the daemon reconnects and the job ends succeeded" wait_state "$id" succeeded 40; then
	diag_job "$id"
fi
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 \
	"the lost connection did not spend an attempt"
is "$(sql "SELECT count(*) FROM public.batch_src s
	    WHERE NOT EXISTS (SELECT FROM public.batch_log l
			       WHERE l.job_id = $id AND s.k BETWEEN l.from_key AND l.to_key)")" 0 \
	"every key was done"
twice=$(sql "SELECT count(*) FROM (
		SELECT s.k FROM public.batch_src s JOIN public.batch_log l
		    ON l.job_id = $id AND s.k BETWEEN l.from_key AND l.to_key
		 GROUP BY s.k HAVING count(*) > 1) x")
ok "at most one batch (10 keys) was redone ($twice keys done twice)" [ "${twice:-99}" -le 10 ]
ok "the daemon is still running" proc_alive "$DAEMON_PID"
ok "and answers on its control socket" ctl_answers

id=$(insert_job noop t2)
ok "a job inserted after the restart runs well before the poll (LISTEN again; poll is 20 s)" \
	wait_state "$id" succeeded 10

# Cut every connection of the daemon and insert a job before it is back:
# its notification is lost, so only a poll can find the job.
id=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	   WHERE datname = current_database() AND pid <> pg_backend_pid()
	     AND backend_type = 'client backend';
	  INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 't3') RETURNING id" | tail -n 1)
ok "a job inserted while the daemon was cut off runs (poll catch-up)" \
	wait_state "$id" succeeded 30
id=$(insert_job noop t4)
ok "after that outage too a new job runs well before the poll (LISTEN again)" \
	wait_state "$id" succeeded 10

# SIGTERM while the server is down: the running job's connection went, so
# it is handed back, and that end cannot be recorded yet. The daemon waits
# for the database (shutdown_timeout, 30 s here) rather than leave the row
# running in its name, which its next start would requeue with the attempt
# spent (or fail, on the last attempt).
id=$(insert_job batch_slow t5 '{"ms": "500"}')
ok "outage: a slow batch job runs" \
	wait_until "SELECT count(*) >= 1 FROM public.batch_log WHERE job_id = $id" 15
out=$(pg_tmp pause "$T/pg" 2>&1)
ok "outage: PostgreSQL stops (scripts/pg-tmp pause)" [ $? -eq 0 ] || diag "$out"
ok "outage: the daemon hands the job back" \
	wait_cmd 10 grep -q "job $id batch_slow t5\] handed back to the queue" "$T/a.log"
pid=$DAEMON_PID
term_daemon "$pid"
sleep 1
ok "outage: on SIGTERM the daemon waits for the database to record that" kill -0 "$pid"
out=$(pg_tmp resume "$T/pg" 2>&1)
ok "outage: PostgreSQL is back (scripts/pg-tmp resume)" [ $? -eq 0 ] || diag "$out"
wait_exit "$pid" 40
rc=$?
ok "outage: then the daemon exits with status 0 (exit $rc)" [ "$rc" -eq 0 ]
is "$(sql "SELECT state || ' ' || attempts || ' ' || (owner IS NULL) FROM pgtenantd.jobs WHERE id = $id")" \
	"queued 0 true" "outage: the job is queued again, its attempt given back"

done_testing
