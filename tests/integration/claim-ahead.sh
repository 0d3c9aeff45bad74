#!/bin/bash
# claim-ahead.sh - issue 11: a daemon claims as many jobs again as it has
# workers, so a worker goes from one job to the next without waiting for a
# claim. Jobs claimed ahead start in claim order, keep their lease by the
# heartbeat, and go back to the queue without having begun (no attempt
# spent) on pause and on stop; one asked to cancel ends cancelled without
# running.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env claim_ahead

sql "CREATE TABLE public.ahead_log (job_id bigint, at timestamptz DEFAULT clock_timestamp())" >/dev/null ||
	bail_out "could not create the test table"
cat >"$JOBS_DIR/ahead.yaml" <<'EOF'
description: Test kind - logs that it began, then sleeps
args:
  - name: seconds
    default: "0.5"
steps:
  - name: log
    sql: INSERT INTO public.ahead_log (job_id) VALUES (:'job_id'::bigint)
  - name: sleep
    sql: SELECT pg_sleep(:'seconds'::float)
EOF

write_config "$T/a.yaml" "workers: 1" "lease: 2s" "heartbeat_interval: 300ms"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

running="SELECT count(*) FROM pgtenantd.jobs WHERE state = 'running'"

# ---- one worker, four jobs of four tenants, claim order by priority
ctl pause >/dev/null
ids=()
# the first runs 4 s: the checks below happen while the next one waits
for p in 40 30 20 10; do
	secs=0.8
	[ "$p" = 40 ] && secs=4
	ids+=("$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, priority, args)
		      VALUES ('ahead', 'ta-$p', $p, '{\"seconds\": \"$secs\"}') RETURNING id")")
done
ctl resume >/dev/null
ok "one worker: a running job and one claimed ahead, both leased to the daemon" \
	wait_until "SELECT ($running) = 2" 5
ok "... while only one has begun" \
	sql_true "SELECT count(*) = 1 FROM public.ahead_log"
sleep 2.5 # longer than the lease: the heartbeat renews the claimed-ahead job's too
ok "the claimed-ahead jobs keep their lease past its length (heartbeat)" \
	sql_true "SELECT count(*) = 0 FROM pgtenantd.jobs WHERE state = 'running' AND lease_until < now()"
ok "all four succeed" wait_until "SELECT count(*) = 4 FROM pgtenantd.jobs WHERE id IN (${ids[0]}, ${ids[1]}, ${ids[2]}, ${ids[3]})
				  AND state = 'succeeded'" 30
is "$(sql "SELECT string_agg(job_id::text, ' ' ORDER BY at) FROM public.ahead_log")" "${ids[*]}" \
	"they began in claim order (priority)"
is "$(sql "SELECT string_agg(attempts::text, ' ' ORDER BY id) FROM pgtenantd.jobs WHERE id IN (${ids[0]}, ${ids[1]}, ${ids[2]}, ${ids[3]})")" \
	"1 1 1 1" "each in one attempt"

# ---- pause hands the claimed-ahead job back
sql "TRUNCATE public.ahead_log" >/dev/null
a=$(insert_job ahead tb-1 '{"seconds": "5"}')
b=$(insert_job ahead tb-2 '{"seconds": "0.1"}')
ok "pause: a running job and one claimed ahead" wait_until "SELECT ($running) = 2" 5
ctl pause >/dev/null
ok "pause: the claimed-ahead job goes back to the queue at once" \
	wait_until "SELECT state = 'queued' AND attempts = 0 AND owner IS NULL FROM pgtenantd.jobs WHERE id = $b" 4
ok "pause: the running job goes on and succeeds" wait_state "$a" succeeded 20
is "$(sql "SELECT count(*) FROM public.ahead_log WHERE job_id = $b")" 0 "pause: the job handed back never began"
ctl resume >/dev/null
ok "resume: it runs then" wait_state "$b" succeeded 10

# ---- cancel of a claimed-ahead job
a=$(insert_job ahead tc-1 '{"seconds": "5"}')
b=$(insert_job ahead tc-2 '{"seconds": "0.1"}')
ok "cancel: a running job and one claimed ahead" wait_until "SELECT ($running) = 2" 5
is "$(sql "SELECT pgtenantd.cancel_job($b)")" running "cancel: the claimed-ahead job's row says running"
ok "cancel: it ends cancelled" wait_state "$b" cancelled 5
is "$(sql "SELECT count(*) FROM public.ahead_log WHERE job_id = $b")" 0 "cancel: it never began"
ok "cancel: the running job is untouched and succeeds" wait_state "$a" succeeded 20

# ---- stop hands the claimed-ahead job back
a=$(insert_job ahead td-1 '{"seconds": "30"}')
b=$(insert_job ahead td-2 '{"seconds": "0.1"}')
ok "stop: a running job and one claimed ahead" wait_until "SELECT ($running) = 2" 5
ok "stop: SIGTERM, the daemon exits" stop_daemon "$DAEMON_PID" 10
is "$(sql "SELECT state || ' ' || attempts FROM pgtenantd.jobs WHERE id = $b")" "queued 0" \
	"stop: the claimed-ahead job is queued again, its attempt given back"
is "$(sql "SELECT count(*) FROM public.ahead_log WHERE job_id = $b")" 0 "stop: it never began"

done_testing
