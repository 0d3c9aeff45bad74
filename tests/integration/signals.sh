#!/bin/bash
# signals.sh - SIGTERM hands a running job back without spending an
# attempt and exits; SIGHUP (and "reload") load new job files and keep the
# old kinds when a file is bad; --check-config names file and line.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env signals

# Abandon a running statement 1 s after SIGTERM.
write_config "$T/a.yaml" "shutdown_timeout: 1s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# ---- SIGTERM with a job running
row=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	   VALUES ('sleep', 't1', '{\"seconds\": \"10\"}') RETURNING id, attempts")
id=${row%%|*}
attempts_before=${row#*|}
ok "a sleep job (10 s) is running" wait_state "$id" running 5
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" $((attempts_before + 1)) \
	"the claim counted an attempt"
sleep 0.3
t0=$(now_ms)
term_daemon "$DAEMON_PID"
ok "SIGTERM: the daemon exits within 5 s" wait_cmd 5 proc_dead "$DAEMON_PID"
diag "it exited $(($(now_ms) - t0)) ms after SIGTERM"
wait_exit "$DAEMON_PID" 1
is "$?" 0 "with status 0"
is "$(job_state "$id")" queued "the running job is queued again"
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" "$attempts_before" \
	"without spending an attempt"
is "$(sql "SELECT owner IS NULL AND lease_until IS NULL AND finished_at IS NULL
	     FROM pgtenantd.jobs WHERE id = $id")" t \
	"with no owner, lease or finished_at left"
ok "the control socket file is gone" not test -e "$CTL_SOCK"
is "$(sql "SELECT pgtenantd.cancel_job($id)")" cancelled \
	"(the handed-back job can be cancelled from SQL while queued)"

# ---- SIGHUP with a new job file
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not restart"
sql "CREATE TABLE public.hup_marks (job_id bigint, kind text)" >/dev/null
cat >"$JOBS_DIR/hup_added.yaml" <<'EOF'
description: Test kind added by SIGHUP
steps:
  - name: mark
    sql: INSERT INTO public.hup_marks VALUES (:'job_id'::bigint, :'kind')
EOF
ok "the new kind is not there before SIGHUP" \
	not sql_true "SELECT EXISTS (SELECT FROM pgtenantd.job_kinds WHERE kind = 'hup_added')"
kill -HUP "$DAEMON_PID" 2>/dev/null
ok "after SIGHUP the new kind appears in job_kinds" \
	wait_until "SELECT EXISTS (SELECT FROM pgtenantd.job_kinds WHERE kind = 'hup_added')" 5
id=$(insert_job hup_added t2)
ok "a job of the new kind can be inserted" [ -n "$id" ]
ok "and runs" wait_state "$id" succeeded
is "$(sql "SELECT kind FROM public.hup_marks WHERE job_id = ${id:-0}")" hup_added "and did its work"

# ---- SIGHUP with a broken job file: the old set stays
cat >"$JOBS_DIR/hup_broken.yaml" <<'EOF'
description: Broken on purpose (unknown variable)
steps:
  - name: uses_unknown
    sql: SELECT :'no_such_variable'
EOF
kill -HUP "$DAEMON_PID" 2>/dev/null
ok "after SIGHUP with a broken file the log names the file" \
	wait_cmd 5 grep -q 'hup_broken\.yaml' "$T/a.log"
ok "and the unknown variable" grep -q 'no_such_variable' "$T/a.log"
sleep 0.3
ok "the daemon is still running" proc_alive "$DAEMON_PID"
ok "the broken kind is not published" \
	not sql_true "SELECT EXISTS (SELECT FROM pgtenantd.job_kinds WHERE kind = 'hup_broken')"
id=$(insert_job hup_added t3)
ok "a job of a kind loaded before still runs" wait_state "$id" succeeded
id=$(insert_job noop t3)
ok "and so does one of a shipped-with-the-tests kind" wait_state "$id" succeeded

# ---- reload over the control socket, once the file is fixed
rm -f "$JOBS_DIR/hup_broken.yaml"
cat >"$JOBS_DIR/ctl_added.yaml" <<'EOF'
steps:
  - name: one
    sql: SELECT 1
EOF
out=$(ctl --json reload)
is "$(json_eval "$out" "(:'j')::jsonb->>'ok'" 2>/dev/null)" true "pgtenantctl reload: ok"
ok "reload publishes the new kind" \
	wait_until "SELECT EXISTS (SELECT FROM pgtenantd.job_kinds WHERE kind = 'ctl_added')" 5
id=$(insert_job ctl_added t4)
ok "and a job of it runs" wait_state "$id" succeeded
ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"

# ---- --check-config
# Run pgtenantd --check-config -c FILE; sets check_out and check_status.
check_config()
{
	check_out=$(timeout 20 "$PGTENANTD" --check-config -c "$1" 2>&1)
	check_status=$?
}

check_config "$T/a.yaml"
is "$check_status" 0 "--check-config exits 0 on a good config" || diag "$check_out"

write_config "$T/badkey.yaml" "no_such_key: 1"
line=$(grep -n '^no_such_key:' "$T/badkey.yaml" | cut -d: -f1)
check_config "$T/badkey.yaml"
isnt "$check_status" 0 "--check-config exits non-zero on an unknown key"
like "$check_out" 'badkey\.yaml' "it names the file"
like "$check_out" "(:|line )$line\\b" "and the line ($line)"
like "$check_out" 'no_such_key' "and the key"

write_config "$T/badvalue.yaml" "workers: lots"
line=$(grep -n '^workers:' "$T/badvalue.yaml" | cut -d: -f1)
check_config "$T/badvalue.yaml"
isnt "$check_status" 0 "--check-config exits non-zero on a bad value"
like "$check_out" "badvalue\\.yaml.*(:|line )$line\\b|(:|line )$line\\b.*badvalue\\.yaml" \
	"it names the file and line ($line)"
like "$check_out" 'workers' "and the key"

mkdir -p "$T/badjobs"
cp "$JOBS_DIR/noop.yaml" "$T/badjobs/"
cat >"$T/badjobs/bad_var.yaml" <<'EOF'
description: Broken on purpose
steps:
  - name: fine
    sql: SELECT 1
  - name: uses_unknown
    sql: SELECT :'no_such_variable'
EOF
write_config "$T/badjobs.yaml" "jobs_dir: $T/badjobs"
check_config "$T/badjobs.yaml"
isnt "$check_status" 0 "--check-config exits non-zero on a job file with an unknown variable"
like "$check_out" 'bad_var\.yaml' "it names the job file"
like "$check_out" '(:|line )(5|6)\b' "and the line of the step (5) or statement (6)"
like "$check_out" 'uses_unknown' "and the step"
like "$check_out" 'no_such_variable' "and the variable"


# SIGTERM while a claim is in flight: the daemon waits for it and hands back
# what it claimed, instead of leaving the job 'running' without a daemon
# until its lease expires. The claim is held up by a lock on the jobs table.
write_config "$T/inflight.yaml" "lease: 5m"
start_daemon "$T/inflight.yaml" "$T/inflight.log" || bail_out "the daemon did not start"
ok "paused" eval "ctl pause >/dev/null"
id=$(insert_job noop inflight)
# the lock is the test's own session's, released once SIGTERM is sent
exec {locker}> >(PGAPPNAME=pgt-locker psql -X -q -d "$DB" >/dev/null 2>&1)
echo "BEGIN; LOCK TABLE pgtenantd.jobs IN EXCLUSIVE MODE;" >&$locker
ok "the test holds the jobs table" wait_until "SELECT count(*) > 0 FROM pg_locks
	WHERE relation = 'pgtenantd.jobs'::regclass AND mode = 'ExclusiveLock' AND granted" 10
ctl resume >/dev/null
ok "the daemon's claim waits for the lock" wait_until "SELECT count(*) > 0 FROM pg_locks
	WHERE relation = 'pgtenantd.jobs'::regclass AND NOT granted" 10
term_daemon "$DAEMON_PID"
echo "COMMIT;" >&$locker
exec {locker}>&-
wait_exit "$DAEMON_PID" 20
is "$?" 0 "SIGTERM with a claim in flight: the daemon exits with status 0"
is "$(sql "SELECT state || ' ' || attempts || ' ' || (owner IS NULL) FROM pgtenantd.jobs WHERE id = $id")" \
	"queued 0 true" "the job it claimed meanwhile is handed back, not left running without a daemon"

# A database whose pgtenantd schema is newer than this build: the daemon
# says so and stops with status 1 (the setup on the dispatcher session
# fails; nothing is claimed).
sql "INSERT INTO pgtenantd.schema_version (version) VALUES (99)" >/dev/null
id=$(insert_job noop newer-schema)
write_config "$T/newer.yaml"
"$PGTENANTD" -f -c "$T/newer.yaml" >"$T/newer.log" 2>&1 &
newer_pid=$!
wait_exit "$newer_pid" 20
is "$?" 1 "a schema newer than this build: the daemon exits with status 1"
like "$(cat "$T/newer.log")" 'schema version 99, newer than this pgtenantd' "and says why"
is "$(job_state "$id")" queued "it claimed nothing"

done_testing
