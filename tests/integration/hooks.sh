#!/bin/bash
# hooks.sh - issue 12, hooks: hook_on_failure runs when a job failed for
# good (not for an attempt that is retried), hook_on_success when one
# succeeded; the program runs without a shell (its arguments reach it as
# written), with PGTENANTD_JOB_* in its environment, after the end is in
# the job's row (and not for an end that came too late to be recorded); a
# hook that fails or hangs is logged and killed, and the daemon goes on.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env hooks

out=$T/hook-out
mkdir -p "$out"
cat >"$T/hook" <<'EOF'
#!/bin/sh
# $1: what the daemon called it for; $2: an argument to pass on verbatim
f="$HOOK_OUT/$PGTENANTD_JOB_ID.$1"
env | grep '^PGTENANTD_' | sort >"$f.tmp"
printf 'arg2=%s\n' "$2" >>"$f.tmp"
# the row as the hook sees it, to show the end was recorded first
psql -X -qAt -d "$HOOK_DB" -c "SELECT 'row=' || state FROM pgtenantd.jobs WHERE id = $PGTENANTD_JOB_ID" >>"$f.tmp"
mv "$f.tmp" "$f"
[ "$PGTENANTD_TENANT_ID" != hook-exit3 ] || exit 3
EOF
chmod 755 "$T/hook"
export HOOK_OUT=$out HOOK_DB=$DB
cat >"$JOBS_DIR/nap.yaml" <<'EOF'
description: Test kind - one statement of 2 s outside a transaction
steps:
  - name: nap
    transaction: false
    sql: SELECT pg_sleep(2)
EOF

# No heartbeat while the daemon runs (its jobs take 2 s at most): after the
# pause below, the late end must reach the database before a heartbeat
# could call the run lost, the other way a taken-over run ends (tested in
# test_queue); with a heartbeat every 500 ms the two raced.
quiet=("lease: 120s" "heartbeat_interval: 60s")
write_config "$T/a.yaml" "${quiet[@]}" \
	"hook_on_failure: [\"$T/hook\", \"failure\", \"\$(touch $T/pwned); \`touch $T/pwned\`\"]" \
	"hook_on_success: [\"$T/hook\", \"success\"]" \
	"hook_timeout: 2s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# ---- a failure, after its retries
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts) VALUES ('fail_sql', 'hook-f', 2) RETURNING id")
ok "failure: the job fails for good" wait_state "$id" failed 15
ok "failure: hook_on_failure ran" wait_cmd 5 test -f "$out/$id.failure"
is "$(grep -c . "$out/$id.failure" 2>/dev/null)" 8 "failure: once, with six PGTENANTD_ variables, its argument and the row"
like "$(cat "$out/$id.failure")" "PGTENANTD_JOB_ATTEMPTS=2" "failure: after the last of its 2 attempts, not after the first"
like "$(cat "$out/$id.failure")" "PGTENANTD_JOB_ERROR=step \"divide\" .*division by zero" "failure: the error the row records"
like "$(cat "$out/$id.failure")" "PGTENANTD_JOB_KIND=fail_sql" "failure: the kind"
like "$(cat "$out/$id.failure")" "PGTENANTD_JOB_STATE=failed" "failure: the state"
like "$(cat "$out/$id.failure")" "PGTENANTD_TENANT_ID=hook-f" "failure: the tenant"
like "$(cat "$out/$id.failure")" "row=failed" "failure: the row says failed when the hook runs"
like "$(cat "$out/$id.failure")" "arg2=\\\$\\(touch $T/pwned\\); \`touch $T/pwned\`" \
	"failure: the argument arrives as written"
ok "no shell: nothing in the argument was run" not test -e "$T/pwned"
ok "failure: hook_on_success did not run for it" not test -e "$out/$id.success"

# ---- a success
id=$(insert_job noop hook-s)
ok "success: the job succeeds" wait_state "$id" succeeded 10
ok "success: hook_on_success ran" wait_cmd 5 test -f "$out/$id.success"
like "$(cat "$out/$id.success")" "PGTENANTD_JOB_ERROR=
PGTENANTD_JOB_ID=$id" "success: an empty error, its id"
like "$(cat "$out/$id.success")" "row=succeeded" "success: the row says succeeded when the hook runs"

# ---- an end that comes too late: the daemon was paused while its job's
# last statement ran, and meanwhile the job was taken over (as another
# daemon does once the lease expired). Its end is not recorded, and no
# hook runs for it: the row never says it succeeded.
NAPPING="SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
	 AND state = 'active' AND query = 'SELECT pg_sleep(2)')"
id=$(insert_job nap hook-late)
ok "late end: the job's statement runs" wait_until "$NAPPING" 10
kill -STOP "$DAEMON_PID"
sql "UPDATE pgtenantd.jobs SET owner = 'another-daemon', lease_until = now() + interval '1 hour'
      WHERE id = $id" >/dev/null
ok "late end: the statement ends while the daemon is paused" wait_until "SELECT NOT ($NAPPING)" 10
kill -CONT "$DAEMON_PID"
ok "late end: the daemon says its end came too late" \
	wait_cmd 10 grep -q "job $id nap hook-late\\] its end (succeeded) came too late to be recorded" "$T/a.log"
is "$(sql "SELECT state, owner FROM pgtenantd.jobs WHERE id = $id")" "running|another-daemon" \
	"late end: the row is the other daemon's, still running"
id2=$(insert_job noop hook-after-late)
ok "late end: the next job's hook runs" wait_cmd 10 test -f "$out/$id2.success"
ok "late end: no hook ran for the late end" not test -e "$out/$id.success"
like "$(ctl metrics)" "pgtenantd_jobs_ended_late_total 1" "late end: counted in pgtenantctl metrics"
sql "UPDATE pgtenantd.jobs SET state = 'failed', owner = NULL, lease_until = NULL,
	 finished_at = now(), last_error = 'test: taken over by hand' WHERE id = $id" >/dev/null

# ---- a hook that fails, one that hangs
id=$(insert_job noop hook-exit3)
ok "a failing hook: the job still succeeds" wait_state "$id" succeeded 10
ok "a failing hook: the log says so, with its exit status" \
	wait_cmd 5 grep -q "hook $T/hook for job $id failed (exit status 3)" "$T/a.log"
write_config "$T/a.yaml" "${quiet[@]}" "hook_on_success: [\"sleep\", \"30\"]" "hook_timeout: 500ms"
ctl reload >/dev/null
id=$(insert_job noop hook-hang)
ok "a hanging hook: the job succeeds" wait_state "$id" succeeded 10
ok "a hanging hook: killed after hook_timeout, and logged" \
	wait_cmd 8 grep -q "hook sleep for job $id timed out (hook_timeout) and was killed" "$T/a.log"
id=$(insert_job noop hook-after)
ok "the daemon goes on" wait_state "$id" succeeded 10
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

# ---- configuration
write_config "$T/bad.yaml" "hook_on_failure: [\"\", \"x\"]"
like "$("$PGTENANTD" --check-config -c "$T/bad.yaml" 2>&1)" "hook_on_failure.*names no program" \
	"a hook without a program is refused, naming the key"

done_testing
