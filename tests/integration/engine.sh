#!/bin/bash
# engine.sh - the step engine's features, each observed in the database:
# set and result, when, for_each with a checkpoint per row, transaction:
# false, verify (pass, and a mismatch that stops a destructive step without
# retrying), retry: false, exec failures and timeouts; and the queue's
# priority, run_at and dedupe_key.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env engine

sql "CREATE TABLE public.engine_log (job_id bigint, step text, item text);
     CREATE TABLE public.test_runs (job_id bigint, tenant_id text,
	started timestamptz, ended timestamptz, app text, attempt int)" >/dev/null ||
	bail_out "could not create the test tables"

# pgtenantctl, its answer left out of the TAP stream.
quiet_ctl()
{
	ctl "$@" >/dev/null
}

write_config "$T/a.yaml" "workers: 1"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# ---- every step type in one job
id=$(insert_job engine_steps t1 '{"rows": "4"}')
if ! ok "a job using set, when, for_each, transaction: false, verify and a destructive step succeeds" \
	wait_state "$id" succeeded 15; then
	diag_job "$id"
fi
is "$(sql "SELECT result->>'n' || '/' || (result->>'status') FROM pgtenantd.jobs WHERE id = $id")" \
	"4/ready" "result: true merges the last statement's first row"
is "$(sql "SELECT string_agg(item, ',' ORDER BY item) FROM public.engine_log
	     WHERE job_id = $id AND step = 'each'")" "2,3,4" \
	"for_each ran once per row with the variable set by 'set' (row 1 then removed by the destructive step)"
is "$(sql "SELECT count(*) FROM public.engine_log WHERE job_id = $id AND step = 'skipped'")" 0 \
	"a step whose 'when' is false does not run"
is "$(sql "SELECT progress->'passed' FROM pgtenantd.jobs WHERE id = $id")" \
	'["prepare", "each", "outside", "counted", "wipe"]' \
	"progress.passed lists the steps that ran, not the skipped one"
is "$(sql "SELECT last_vacuum IS NOT NULL OR last_autovacuum IS NOT NULL
	     FROM pg_stat_user_tables WHERE relname = 'engine_log'")" t \
	"the transaction: false step ran VACUUM (which cannot run in a transaction)"

# ---- a verify mismatch stops the job before its destructive step, at once
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts)
	  VALUES ('engine_verify_fail', 't2', 5) RETURNING id")
ok "a verify mismatch fails the job" wait_state "$id" failed 10
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 \
	"without retrying (1 attempt of 5)"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	'verify failed: expected \[\["1","same"\]\] but actual is \[\["2","same"\]\]' \
	"the error shows both results"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	'step "check" \(.*engine_verify_fail.yaml line [0-9]+\)' \
	"and names the step, its file and line"
is "$(sql "SELECT count(*) FROM public.engine_log WHERE job_id = $id AND step = 'wipe'")" 0 \
	"the destructive step after it never ran"

# ---- retry: false makes a refusal final
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts)
	  VALUES ('engine_refuse', 't3', 5) RETURNING id")
ok "a refusing preflight fails the job" wait_state "$id" failed 10
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 \
	"with retry: false it is not retried"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" 'tenant is not ready: refused' \
	"last_error holds the refusal"
is "$(sql "SELECT count(*) FROM public.engine_log WHERE job_id = $id")" 0 \
	"no later step ran"

# ---- exec failures
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts)
	  VALUES ('engine_exec_fail', 't4', 1) RETURNING id")
ok "a program that exits 3 fails the job" wait_state "$id" failed 10
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	'sh exited with status 3: boom on stderr' "with its exit status and stderr"
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts, args)
	  VALUES ('engine_exec_fail', 't4', 1, '{\"mode\": \"timeout\"}') RETURNING id")
ok "a program that overruns its timeout fails the job" wait_state "$id" failed 10
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	'sleep timed out after [0-9]+ ms' "and says it timed out"
is "$(sql "SELECT extract(epoch FROM finished_at - started_at) < 3 FROM pgtenantd.jobs WHERE id = $id")" t \
	"well before the program would have ended (5 s)"

# ---- priority: with one worker, higher priority first
ok "pause" quiet_ctl pause
sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, priority, args)
     SELECT 'record_run', 'p' || p, p, '{\"ms\": \"1\"}' FROM unnest(ARRAY[1, 5, 3, 9, 7]) AS p" >/dev/null
ok "resume" quiet_ctl resume
ok "five record_run jobs of different priority succeed" \
	wait_until "SELECT count(*) = 5 FROM pgtenantd.jobs WHERE kind = 'record_run' AND state = 'succeeded'" 10
is "$(sql "SELECT string_agg(tenant_id, ' ' ORDER BY started) FROM public.test_runs")" \
	"p9 p7 p5 p3 p1" "they ran in priority order"

# ---- run_at: a job is not started before it is due, and starts on time
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
	  VALUES ('noop', 'later', clock_timestamp() + interval '1.5 s') RETURNING id")
ok "a job due in 1.5 s succeeds" wait_state "$id" succeeded 10
is "$(sql "SELECT started_at >= run_at FROM pgtenantd.jobs WHERE id = $id")" t \
	"it did not start before its run_at"
is "$(sql "SELECT started_at - run_at < interval '1 s' FROM pgtenantd.jobs WHERE id = $id")" t \
	"and started within a second of it (poll_interval is 200 ms)"

# ---- dedupe_key: one queued or running job per key
ok "pause" quiet_ctl pause
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, dedupe_key)
	  VALUES ('noop', 'd1', 'nightly:d1') RETURNING id")
like "$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id, dedupe_key)
		 VALUES ('noop', 'd1', 'nightly:d1')")" 'jobs_dedupe_key_idx' \
	"a second queued job with the same dedupe_key is refused"
is "$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, dedupe_key)
	   VALUES ('noop', 'd1', 'nightly:d1')
	   ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL
	      AND state IN ('queued', 'running') DO NOTHING RETURNING id")" "" \
	"ON CONFLICT ... DO NOTHING skips it quietly"
ok "resume" quiet_ctl resume
ok "the first one runs" wait_state "$id" succeeded 10
ok "once it ended, the key can be used again" \
	sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, dedupe_key)
	     VALUES ('noop', 'd1', 'nightly:d1')"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
done_testing
