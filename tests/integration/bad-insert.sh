#!/bin/bash
# bad-insert.sh - bad INSERTs are refused with clear messages; a failing
# job is retried with backoff up to max_attempts and then failed with the
# error, while other jobs run and the daemon stays up.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env bad-insert

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# Refused at INSERT time: $1 a test name, $2 VALUES (...), $3 the regex the
# error must match.
refused()
{
	local err
	err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id, args) VALUES $2")
	like "$err" "$3" "$1"
}

refused "an unknown kind is refused" \
	"('no_such_kind', 't1', '{}')" 'unknown job kind "no_such_kind"'
refused "the message lists the known kinds" \
	"('no_such_kind', 't1', '{}')" 'known kinds: .*noop'
refused "a tenant id with a space is refused" \
	"('noop', 'a b', '{}')" 'invalid tenant id "a b"'
refused "an empty tenant id is refused" \
	"('noop', '', '{}')" 'invalid tenant id ""'
refused "a NULL tenant id is refused" \
	"('noop', NULL, '{}')" 'invalid tenant id|null value'
refused "a tenant id with a quote is refused" \
	"('noop', 'x''; DROP TABLE y; --', '{}')" 'invalid tenant id'
refused "a 256-character tenant id is refused" \
	"('noop', repeat('a', 256), '{}')" 'invalid tenant id'
refused "a 60-character tenant id (67-byte schema name) is refused" \
	"('noop', repeat('b', 60), '{}')" 'schema name .* 67 bytes.*63-byte identifier limit'
refused "args that are an array are refused" \
	"('noop', 't1', '[1, 2]')" 'args must be a JSON object, not array'
refused "args that are a string are refused" \
	"('noop', 't1', '\"text\"')" 'args must be a JSON object, not string'
refused "args that are JSON null are refused" \
	"('noop', 't1', 'null')" 'args must be a JSON object, not null'
refused "an arg the kind does not declare is refused" \
	"('sleep', 't1', '{\"bogus\": 1}')" 'job kind "sleep" has no arg "bogus"'
is "$(sql "SELECT count(*) FROM pgtenantd.jobs")" 0 "none of them made a row"

# The longest tenant id whose schema name fits (tenant_ + 56 = 63 bytes).
id=$(insert_job noop "$(printf 'c%.0s' {1..56})")
ok "a 56-character tenant id is accepted" [ -n "$id" ]
ok "and its job runs" wait_state "$id" succeeded

# Every state change of every job, with attempts and run_at, as the
# daemon's own UPDATEs make them.
sql "
CREATE TABLE public.job_history (
	id bigint, state text, attempts int, run_at timestamptz,
	last_error text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION public.job_history_log() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO public.job_history (id, state, attempts, run_at, last_error)
	VALUES (NEW.id, NEW.state, NEW.attempts, NEW.run_at, NEW.last_error);
	RETURN NULL;
END \$\$;
CREATE TRIGGER zz_test_job_history AFTER UPDATE ON pgtenantd.jobs FOR EACH ROW
	WHEN (OLD.state IS DISTINCT FROM NEW.state)
	EXECUTE FUNCTION public.job_history_log();
" || bail_out "could not create the history trigger"

row=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts)
	   VALUES ('fail_sql', 'tfail', 3) RETURNING id, run_at")
fid=${row%%|*}
run_at0=${row#*|}
nid=$(insert_job noop tnoop)
ok "a noop job inserted while fail_sql is retried succeeds" wait_state "$nid" succeeded
if ! ok "the fail_sql job with max_attempts 3 ends failed" wait_state "$fid" failed 20; then
	diag_job "$fid"
fi
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $fid")" 3 "after 3 attempts"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $fid")" 'division by zero' \
	"last_error holds the error"
is "$(sql "SELECT finished_at IS NOT NULL FROM pgtenantd.jobs WHERE id = $fid")" t \
	"finished_at is set"
diag "history: $(sql "SELECT state, attempts, run_at, at FROM public.job_history
		       WHERE id = $fid ORDER BY at")"
is "$(sql "SELECT string_agg(state || ':' || attempts, ' ' ORDER BY at)
	     FROM public.job_history WHERE id = $fid")" \
	"running:1 queued:1 running:2 queued:2 running:3 failed:3" \
	"it went running and back to queued twice, then failed"
is "$(sql "SELECT bool_and(run_at > prev)
	     FROM (SELECT run_at, lag(run_at, 1, '$run_at0'::timestamptz) OVER (ORDER BY at) AS prev
		     FROM public.job_history WHERE id = $fid AND state = 'queued') x")" t \
	"run_at moves forward with each retry"
is "$(sql "SELECT bool_and(q.run_at < q.at + interval '1.5 s')
	     FROM public.job_history q WHERE q.id = $fid AND q.state = 'queued'")" t \
	"no retry waits longer than retry_max_delay (1 s)"
is "$(sql "SELECT bool_and(r.at >= q.run_at)
	     FROM public.job_history q JOIN public.job_history r
	       ON r.id = q.id AND r.state = 'running' AND r.attempts = q.attempts + 1
	    WHERE q.id = $fid AND q.state = 'queued'")" t \
	"no retry started before its run_at"
like "$(sql "SELECT string_agg(coalesce(last_error, ''), ' ') FROM public.job_history
	      WHERE id = $fid AND state = 'queued'")" 'division by zero.*division by zero' \
	"each retry keeps the error in last_error"

ok "the daemon is still running" proc_alive "$DAEMON_PID"
ok "and answers on its control socket" ctl_answers
id=$(insert_job noop tnoop)
ok "and still runs jobs" wait_state "$id" succeeded
ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"

done_testing
