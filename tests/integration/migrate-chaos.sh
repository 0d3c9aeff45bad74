#!/bin/bash
# migrate-chaos.sh - a tenant migration under 20 kill -9 of the daemon and 3
# PostgreSQL restarts (fast, immediate, fast) at seeded random points of
# the job while the tenant's application writes, ending with a full
# comparison of every row: no write of the application is lost, the
# tenant's schema holds exactly its former rows, the shared tables exactly
# the others', the tenant's tables have their keys and indexes. Uses its own PostgreSQL,
# since it restarts it. CHAOS_SEED repeats a run.
#
# The job runs with the test gate (migrate-lib.sh) and cannot end while the
# test holds it: each round lets the job through a seeded random number of
# batches, waits a random few milliseconds (so the interrupt lands in a
# batch, in its pause, at the gate or between a commit and the next batch)
# and interrupts it. An interrupt counts only when the job shows it landed:
# the daemon's log says it was claimed again afterwards (a kill costs an
# attempt; a lost connection hands the job back without one).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
PG_TMP=$top_srcdir/scripts/pg-tmp

pg_tmp()
{
	if [ -x "$PG_TMP" ]; then "$PG_TMP" "$@"; else sh "$PG_TMP" "$@"; fi
}

make_tmp migrate_chaos
pg_env=$(pg_tmp start --fast --port $((20000 + ($$ + 7) % 20000)) "$T/pg") ||
	bail_out "scripts/pg-tmp start failed"
at_exit "pg_tmp stop '$T/pg'"
eval "$pg_env"
make_db

seed=${CHAOS_SEED:-$(( $(date +%s) % 100000 ))}
diag "CHAOS_SEED=$seed (set it to repeat this run)"
RANDOM=$seed

mig_schema
mig_fill acme-corp 2500 5000
mig_fill beta 60 120
mig_fill '' 15 30
# The tenant's application writes through the whole chaos (4 connections,
# 200 writes/s, each retried); it inserts and deletes rows of its own (ids
# mw-...) and updates properties and updated_at of others. The row-by-row
# comparison leaves those out; the writer checks every key it wrote.
MIG_E_COLS="id, entity_type, embedding, created_at"
MIG_R_COLS="id, relation_type, source_id, target_id, weight, created_at"
MIG_ROWS="id NOT LIKE 'mw-%'"
mig_snapshot acme-corp

# A lease that outlasts a PostgreSQL restart; a short one would only make
# the takeover path (tested in migrate-kill.sh) slower here. Each daemon
# incarnation names its sessions chaos-NN, so that the test can wait until
# a killed one's sessions are gone.
incarnation=0
start_incarnation()
{
	incarnation=$((incarnation + 1))
	write_config "$T/a.yaml" "lease: 4s" "heartbeat_interval: 500ms" \
		"application_name: $(printf 'chaos-%02d' "$incarnation")"
	start_daemon "$T/a.yaml" "$T/a.log"
}
start_incarnation || bail_out "the daemon did not start"

# One page per batch, a short pause in each batch and step before it
# commits, and the gate there: the job waits at the gate in every batch.
# Its sessions commit synchronously: this server runs with
# synchronous_commit off (scripts/pg-tmp --fast), and an immediate restart
# would lose the last acknowledged commits of an asynchronous session,
# which is PostgreSQL's doing, not the migration's.
"$top_builddir/tests/bench/mig-writer" --conninfo "dbname=$DB options='-c synchronous_commit=on'" \
	--tenant acme-corp --prefix mw \
	--connections 4 --rate 200 --state "$T/writer.state" --report "$T/writer.report" --log "$T/writer.log" \
	>"$T/writer.out" 2>&1 &
writer=$!
at_exit "kill $writer 2>/dev/null"
wait_until "SELECT count(*) > 20 FROM public.graph_entities WHERE id LIKE 'mw-%'" 20 ||
	bail_out "the writer did not write: $(cat "$T/writer.out")"
gate_hold || bail_out "could not take the test gate"
id=$(mig_insert acme-corp "{\"batch_cap\": \"1\", \"test_sleep\": \"20\", \"test_gate\": \"$MIG_GATE\"}")
lift=$(sql "SELECT array_position(steps, 'finish') - 1 FROM pgtenantd.job_kinds WHERE kind = '$MIG_KIND'")

# About how many times the job pauses at the gate: a copy and a delete
# batch per page of the shared tables and one per step. Each round passes
# 0 to twice its share of them, so the interrupts spread over the whole job.
# The writer makes the tables grow while the chaos goes on, the more the
# slower the machine, so the share is counted again each round from the
# pauses left (else a slow run spends every round in the copy step).
PAUSES_SQL="SELECT 2 * ((pg_relation_size('public.graph_entities')
			   + pg_relation_size('public.graph_relations')) / 8192) + 14"
pauses=$(sql "$PAUSES_SQL")
rounds=23
share=$((pauses / rounds))
diag "about $pauses pauses at the start, up to $((2 * share)) a round"
passed=0

job_pos()
{
	sql "SELECT coalesce(step, 'preflight') || coalesce(':' || (progress->>'batches'), '')
		    || coalesce(':row ' || (progress->>'for_each_done'), '')
	       FROM pgtenantd.jobs WHERE id = $id"
}

# How many times the daemons' log says the job was claimed.
job_claims()
{
	grep -c "\[job $id [^]]*\] claimed" "$T/a.log"
}

# True if the job was claimed again since it had been claimed N times and
# is running.
claimed_since()
{
	[ "$(job_claims)" -gt "$1" ] && [ "$(job_state "$id")" = running ]
}

# True if the killed incarnation N has no session left.
sessions_gone()
{
	sql_true "SELECT count(*) = 0 FROM pg_stat_activity
		   WHERE application_name LIKE '$(printf 'chaos-%02d' "$1")%'"
}

t0=$(now_ms)
restart_modes=(fast immediate fast)
restarts=0 landed=0 landed_restarts=0 where=() missed=()
for round in $(seq 1 "$rounds"); do
	# The job waits at the gate under the current incarnation.
	if ! gate_wait 60; then
		diag "round $round: the job did not get back to the gate"
		diag_job "$id"
		break
	fi
	# Never through the pause in finish, the last step, which ends the job.
	share=$((($(sql "$PAUSES_SQL") - passed) / (rounds - round + 1)))
	[ "$share" -ge 1 ] || share=1
	n=$((RANDOM % (2 * share + 1)))
	passed=$((passed + n))
	gate_pass_n "$n" "(SELECT step_index >= $lift FROM pgtenantd.jobs WHERE id = $id)" >/dev/null ||
		{ diag "round $round: the gate did not let the job through: $MIG_GATE_LINE"; break; }
	sleep "0.0$((RANDOM % 8))"
	pos=$(job_pos)
	before=$(job_claims)
	if [ $((round % 8)) -eq 4 ] && [ "$restarts" -lt 3 ]; then
		# The daemon is stopped while PostgreSQL restarts, so that it
		# cannot run the job past the gate before a new session takes
		# the gate again; it finds its connections gone when it goes on.
		mode=${restart_modes[$restarts]}
		restarts=$((restarts + 1))
		started=$(sql "SELECT pg_postmaster_start_time()")
		kill -STOP "$DAEMON_PID"
		if [ "$mode" = immediate ]; then
			pg_tmp restart --immediate "$T/pg" >/dev/null 2>&1
		else
			pg_tmp restart "$T/pg" >/dev/null 2>&1
		fi || bail_out "PostgreSQL did not restart ($mode)"
		gate_reopen || bail_out "could not take the test gate again"
		kill -CONT "$DAEMON_PID"
		what="PostgreSQL restart, $mode"
		[ "$(sql "SELECT pg_postmaster_start_time()")" != "$started" ] ||
			what="$what, which did not happen"
	else
		old=$incarnation
		kill_daemon "$DAEMON_PID"
		wait_cmd 30 sessions_gone "$old" || diag "round $round: the killed daemon's sessions stayed"
		start_incarnation || bail_out "the daemon did not restart"
		what="kill -9"
	fi
	# Landed: the job was claimed again (the interrupted claim was lost).
	if wait_cmd 60 claimed_since "$before"; then
		landed=$((landed + 1))
		[ "$what" = "kill -9" ] || landed_restarts=$((landed_restarts + 1))
		where+=("$pos ($what, $(($(now_ms) - t0)) ms)")
	else
		missed+=("$pos ($what)")
	fi
done
diag "interrupted at: $(printf '%s; ' "${where[@]}")"
[ ${#missed[@]} -eq 0 ] || diag "not seen to land: $(printf '%s; ' "${missed[@]}")"

is "$(job_state "$id")" running "the job is still running when the chaos ends (the gate held it)"
is "$landed" "$rounds" "each of the $rounds interrupts landed: the job was claimed again after it"
is "$landed_restarts" 3 "3 of them were PostgreSQL restarts (fast, immediate, fast)"
steps=$(printf '%s\n' "${where[@]}" | sed 's/:.*//; s/ (.*//' | sort -u | wc -l)
ok "the interrupts landed in several steps ($steps)" [ "$steps" -ge 3 ]

gate_release
if ! ok "the migration succeeds in the end" wait_state "$id" succeeded 120; then
	diag_job "$id"
fi
is "$(sql "SELECT attempts > $((landed - landed_restarts)) FROM pgtenantd.jobs WHERE id = $id")" t \
	"the job row counts an attempt for each kill and the last run"
sleep 1	# the application writes on, in the tenant's schema
kill -TERM "$writer"
wait "$writer"
diag "the writer: $(tr '\n' ' ' <"$T/writer.report")"
is "$(sed -n 's/^failed for good: //p' "$T/writer.report")" 0 "no write of the tenant failed for good"
out=$("$top_builddir/tests/bench/mig-writer" --check --conninfo "dbname=$DB" --tenant acme-corp \
	--state "$T/writer.state" 2>&1)
diag "$(echo "$out" | head -2 | tr '\n' ' ')"
like "$out" "lost writes: 0" "no committed write of the tenant is lost through the chaos"
mig_check_done acme-corp tenant_acme_corp "after the chaos"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
