#!/bin/bash
# engine-pause.sh - the engine's test pause point: the reserved args
# test_gate and test_sleep of every kind. With test_hooks: false a job that
# carries either fails when claimed, with a message naming the arg and the
# configuration key; with test_hooks: true (after a reload) a job stops
# inside each step, its work done and not committed, while a test holds the
# gate, at exactly the places doc/job-files.md names, and goes on when
# the gate is released; test_sleep makes every pause last.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env engine_pause

sql "CREATE TABLE public.pause_log (job_id bigint, step text, item int)" >/dev/null ||
	bail_out "could not create the test table"

write_config "$T/a.yaml" "test_hooks: false"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# ---- test_hooks: false
ok "the reserved args are published for every kind (the INSERT trigger lets them through)" \
	sql_true "SELECT bool_and(args @> '[{\"name\": \"test_gate\", \"reserved\": true},
					   {\"name\": \"test_sleep\", \"reserved\": true}]')
		    FROM pgtenantd.job_kinds"
for args in '{"test_gate": "g"}' '{"test_gate": ""}' '{"test_sleep": "0"}'; do
	arg=${args#*\"} arg=${arg%%\"*}
	id=$(insert_job pause_steps t1 "$args")
	if ! ok "test_hooks off: a job with $args fails" wait_state "$id" failed 10; then
		diag_job "$id"
	fi
	like "$(sql "SELECT attempts || ' ' || last_error FROM pgtenantd.jobs WHERE id = $id")" \
		"^1 job $id: arg \"$arg\" is a test hook of the engine, refused because this daemon's configuration does not set test_hooks: true\$" \
		"test_hooks off: at once, the error names the arg $arg and test_hooks"
done
is "$(sql "SELECT count(*) FROM public.pause_log")" 0 "test_hooks off: no step of those jobs ran"
id=$(insert_job noop t1)
ok "test_hooks off: a job without them runs" wait_state "$id" succeeded 10

# ---- test_hooks: true, by reload
write_config "$T/a.yaml"
out=$(ctl --json reload)
is "$(json_eval "$out" "(:'j')::jsonb->>'ok'")" true "reload with test_hooks: true"

id=$(insert_job noop t1 '{"test_sleep": "soon"}')
ok "a test_sleep that is no number of milliseconds fails the job" wait_state "$id" failed 10
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"arg \"test_sleep\" must be milliseconds from 0 to 3600000, not 'soon'" "... and says so"

id=$(insert_job noop t1 '{"test_sleep": 1200, "test_gate": ""}')
ok "test_sleep: the job succeeds" wait_state "$id" succeeded 15
ok "test_sleep: its one step took at least the 1.2 s" \
	sql_true "SELECT finished_at - started_at >= interval '1.2 s' FROM pgtenantd.jobs WHERE id = $id"

# The job's position as its row says (step_index/batches or for_each rows:
# what has committed), and whether its backend, waiting at the gate, holds
# the lock of its uncommitted INSERT into public.pause_log.
position()
{
	sql "SELECT step_index || '/' || coalesce(progress->>'batches', progress->>'for_each_done', '0')
	       FROM pgtenantd.jobs WHERE id = $1"
}
WORK_OPEN="SELECT EXISTS (SELECT FROM pg_locks w JOIN pg_locks l ON l.pid = w.pid
			  WHERE w.locktype = 'advisory' AND NOT w.granted
			    AND l.relation = 'public.pause_log'::regclass
			    AND l.mode = 'RowExclusiveLock' AND l.granted)"
logged()
{
	sql "SELECT count(*) FROM public.pause_log WHERE job_id = $1 AND step = '$2'"
}

MIG_KIND=pause_steps
gate_hold || bail_out "could not take the test gate"
id=$(insert_job pause_steps t2 "{\"test_gate\": \"$MIG_GATE\"}")

# a transactional sql step (statements and progress in one round trip)
ok "sql step: the job waits at the gate inside its first step" gate_to "$id" fast 0
ok "sql step: its INSERT is done in the open transaction" sql_true "$WORK_OPEN"
sleep 1
is "$(job_state "$id")/$(position "$id")/$(logged "$id" fast)" "running/0/0/0" \
	"sql step: while the gate is held the job stays there, nothing committed"

# a batch step
ok "batch step: the job waits at the gate inside the second batch" gate_to "$id" batch 1
ok "batch step: the batch's INSERT is done in the open transaction" sql_true "$WORK_OPEN"
sleep 1
is "$(position "$id")/$(logged "$id" batch)" "3/1/1" \
	"batch step: while the gate is held the job stays there, one batch committed"
ok "batch step: let through one pause" gate_pass
ok "batch step: ... the job waits in the third batch" gate_wait
is "$(position "$id")/$(logged "$id" batch)" "3/2/2" "batch step: ... the second batch committed"

# Let job $id through every pause until it is done, noting in pauses
# where each one was (at most 20).
pass_all_pauses()
{
	pauses=()
	while wait_until "SELECT ($MIG_GATE_LOCKS) > 0 OR state <> 'running' FROM pgtenantd.jobs WHERE id = $id" 20 &&
		[ "$(job_state "$id")" = running ] && [ ${#pauses[@]} -lt 20 ]; do
		pauses+=("$(position "$id")")
		gate_pass || break
	done
}

# every other pause, in order, until the job is done
pass_all_pauses
is "${pauses[*]}" "3/2 3/3 4/0 4/0 5/0 6/0" \
	"the rest of the batches (the last one finds no row), each statement of a transaction: false step, verify, exec"
gate_release
if ! ok "released, the job succeeds" wait_state "$id" succeeded 15; then
	diag_job "$id"
fi
is "$(sql "SELECT string_agg(step || coalesce(item::text, ''), ' ' ORDER BY step, item)
	     FROM public.pause_log WHERE job_id = $id")" \
	"batch1 batch2 batch3 each1 each2 fast outside1 outside2 sets" "every step did its work once"

# the gate_* helpers start over: all of the first steps' pauses, counted
gate_hold || bail_out "could not take the test gate again"
id=$(insert_job pause_steps t3 "{\"test_gate\": \"$MIG_GATE\", \"test_sleep\": \"10\"}")
pass_all_pauses
is "${pauses[*]}" "0/0 1/0 2/0 2/1 3/0 3/1 3/2 3/3 4/0 4/0 5/0 6/0" \
	"with test_sleep too: one pause per sql step, for_each row, batch, statement outside a transaction, verify and exec"
gate_release
ok "that job succeeds too" wait_state "$id" succeeded 15

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
