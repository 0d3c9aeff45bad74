#!/bin/bash
# ctl.sh - the control socket and pgtenantctl: status answers fast while a
# job runs, jobs/job/metrics report it, pause/resume stop and restart
# claiming, cancel (socket and SQL) cancels, bad requests get an error and
# the daemon keeps answering, the socket is mode 0600.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"	# the test gate
require_pg
make_env ctl

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
# Job ids from 1001 on, so that an id is not mistaken for a count.
sql "SELECT setval(pg_get_serial_sequence('pgtenantd.jobs', 'id'), 1000)" >/dev/null

is "$(stat -c %a "$CTL_SOCK")" 600 "the control socket has mode 0600"
is "$(stat -c %F "$CTL_SOCK")" socket "and is a socket"

# Milliseconds the fastest of three runs of pgtenantctl ARGS... took;
# only runs that succeed count (999999 if none did). ctl gives up after
# 10 s.
fastest_ms()
{
	local best=999999 i t0 t1
	for i in 1 2 3; do
		t0=$(date +%s%N)
		ctl "$@" >/dev/null 2>&1 || continue
		t1=$(date +%s%N)
		[ $(((t1 - t0) / 1000000)) -lt "$best" ] && best=$(((t1 - t0) / 1000000))
	done
	echo "$best"
}

# True if a JSON answer holds job id N, as a number or a string.
json_has_id()
{
	json_has "$1" "$2" || json_has "$1" "\"$2\""
}

# JSON field of a pgtenantctl --json answer: json_field JSON KEY.
json_field()
{
	json_eval "$1" "(:'j')::jsonb->>'$2'" 2>/dev/null
}

# The job is held at the test gate (engine test hooks) until the test lets
# it go: a status that waited for the job would not come back at all
# (pgtenantctl is killed after 10 s), so 5 s tells the two apart with room
# to spare for a loaded machine.
gate_hold || bail_out "could not take the test gate"
sid=$(insert_job sleep t-sleep "{\"seconds\": \"0\", \"test_gate\": \"$MIG_GATE\"}")
ok "a sleep job is running (held at the test gate)" wait_state "$sid" running 10
ms=$(fastest_ms status)
ok "pgtenantctl status answers while it runs (fastest of a few: ${ms} ms)" [ "$ms" -lt 5000 ]
ms=$(fastest_ms --json status)
ok "pgtenantctl --json status answers while it runs (${ms} ms)" [ "$ms" -lt 5000 ]
is "$(job_state "$sid")" running "(the job was running throughout)"

out=$(ctl --json status)
is "$(json_field "$out" ok)" true "status --json: ok is true"
ok "status --json lists the running job's id" json_has_id "$out" "$sid"
ok "status --json shows the running job's kind or step" json_has "$out" '"sleep"'
diag "status --json: $out"
out=$(ctl status)
ok "pgtenantctl status (text) exits 0" [ $? -eq 0 ]
like "$out" "\\b$sid\\b" "status (text) shows the running job's id"

out=$(ctl --json jobs running)
is "$(json_field "$out" ok)" true "jobs running --json: ok"
ok "jobs running lists the running job" json_has_id "$out" "$sid"
out=$(ctl --json jobs)
ok "jobs lists it" json_has_id "$out" "$sid"
out=$(ctl jobs running)
like "$out" "\\b$sid\\b" "jobs running (text) shows it"
out=$(ctl --json job "$sid")
is "$(json_field "$out" ok)" true "job ID --json: ok"
ok "job ID shows the job's id" json_has_id "$out" "$sid"
ok "job ID shows its kind" json_has "$out" '"sleep"'
ok "job ID shows its state" json_has "$out" '"running"'
ok "job ID shows its tenant" json_has "$out" '"t-sleep"'
out=$(ctl --json job 999999)
is "$(json_field "$out" ok)" false "job with an unknown id: ok is false"
ok "pgtenantctl job with an unknown id exits non-zero" not ctl job 999999

out=$(ctl metrics)
ok "pgtenantctl metrics exits 0" [ $? -eq 0 ]
like "$out" '^pgtenantd_jobs_[a-z_]*(\{[^}]*\})? [0-9.e+-]+$' "metrics: Prometheus samples named pgtenantd_jobs_*"
like "$out" '^# TYPE pgtenantd_[a-z_]+ (counter|gauge|histogram|summary|untyped)$' "metrics: # TYPE lines"
unlike "$out" '^[^#a-z]' "metrics: nothing but comments and samples"

gate_release
ok "the sleep job then succeeds" wait_state "$sid" succeeded 10
out=$(ctl --json jobs running)
is "$(json_field "$out" ok)" true "jobs running --json: ok"
ok "jobs running no longer lists it" not json_has_id "$out" "$sid"
out=$(ctl --json jobs succeeded)
ok "jobs succeeded lists it" json_has_id "$out" "$sid"

# pause / resume
out=$(ctl --json pause)
is "$(json_field "$out" ok)" true "pause: ok"
id=$(insert_job noop t-paused)
sleep 1
is "$(job_state "$id")" queued "a job inserted while paused stays queued for 1 s"
ok "paused: the control socket still answers" ctl_answers
out=$(ctl --json resume)
is "$(json_field "$out" ok)" true "resume: ok"
ok "after resume the job runs" wait_state "$id" succeeded 5

# cancel a running job over the socket
cid=$(insert_job sleep t-cancel '{"seconds": "5"}')
ok "another sleep job (5 s) is running" wait_state "$cid" running 5
t0=$(now_ms)
out=$(ctl --json cancel "$cid")
is "$(json_field "$out" ok)" true "cancel ID: ok"
if ok "the running job ends cancelled" wait_state "$cid" cancelled 12; then
	diag "cancelled $(($(now_ms) - t0)) ms after the request"
else
	diag_job "$cid"
fi
is "$(sql "SELECT finished_at IS NOT NULL FROM pgtenantd.jobs WHERE id = $cid")" t \
	"the cancelled job has finished_at"

# cancel a queued job from SQL
qid=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
	   VALUES ('noop', 't-later', now() + interval '1 hour') RETURNING id")
is "$(sql "SELECT pgtenantd.cancel_job($qid)")" cancelled \
	"pgtenantd.cancel_job() on a queued job returns cancelled"
is "$(job_state "$qid")" cancelled "the job row says cancelled"
sql "UPDATE pgtenantd.jobs SET run_at = now() WHERE id = $qid" >/dev/null
sleep 0.5
is "$(sql "SELECT state || ' ' || attempts FROM pgtenantd.jobs WHERE id = $qid")" "cancelled 0" \
	"the daemon never runs a cancelled job, even once it is due"

# bad requests on the raw socket
out=$(ctl_raw "$CTL_SOCK" '{"command": "status"}')
is "$(json_field "$out" ok)" true 'a raw JSON request {"command": "status"} works'
out=$(ctl_raw "$CTL_SOCK" 'status')
is "$(json_field "$out" ok)" true 'a raw line "status" works'
out=$(ctl_raw "$CTL_SOCK" 'frobnicate')
is "$(json_field "$out" ok)" false 'an unknown command gets {"ok": false}'
isnt "$(json_field "$out" error)" "" "with an error message"
out=$(ctl_raw "$CTL_SOCK" '{"command":')
is "$(json_field "$out" ok)" false 'truncated JSON gets {"ok": false}'
isnt "$(json_field "$out" error)" "" "with an error message"
out=$(ctl_raw "$CTL_SOCK" '{"command": 42}')
is "$(json_field "$out" ok)" false 'a command that is not a string gets {"ok": false}'
out=$(ctl_raw "$CTL_SOCK" '')
is "$(json_field "$out" ok)" false 'an empty line gets {"ok": false}'
out=$(ctl_raw "$CTL_SOCK" "$(head -c 100000 /dev/zero | tr '\0' a)")
is "$(json_field "$out" ok)" false 'a 100 kB line gets {"ok": false}'
ok "pgtenantctl with an unknown command exits non-zero" not ctl frobnicate
ok "the daemon is still running" proc_alive "$DAEMON_PID"
out=$(ctl --json status)
is "$(json_field "$out" ok)" true "and still answers status"
id=$(insert_job noop t-after)
ok "and still runs jobs" wait_state "$id" succeeded

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
ok "and removes its control socket" not test -e "$CTL_SOCK"

done_testing
