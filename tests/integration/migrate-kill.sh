# migrate-kill.sh - kill -9 of the daemon inside every step of
# migrate_to_separate_schema (inside several batches of each batch step),
# restarting after each kill (once on another state_dir, taking the job over
# from its row): the final state equals an uninterrupted run's.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env migrate_kill

mig_schema
mig_fill acme-corp 150 300
mig_fill beta 50 100
mig_fill '' 10 20
mig_snapshot acme-corp

mkdir -p "$T/state-a" "$T/state-b"
write_config "$T/a.yaml" "state_dir: $T/state-a" "control_socket: $T/a.sock"
write_config "$T/b.yaml" "state_dir: $T/state-b" "control_socket: $T/b.sock"
conf=$T/a.yaml
start_daemon "$conf" "$T/a.log" || bail_out "the daemon did not start"

# Every batch and step pauses 300 ms before it commits, a batch covers one
# page: a kill shortly after a step (or batch) begins lands inside it.
id=$(mig_insert acme-corp '{"batch_cap": "1", "test_sleep": "300"}')
steps=$(sql "SELECT array_to_string(steps, ' ') FROM pgtenantd.job_kinds WHERE kind = '$MIG_KIND'")
is "$steps" "preflight fence fence_settle create copy_entities copy_relations index analyze verify_entities verify_relations flip delete_relations delete_entities lift" \
	"the steps are the ones this test kills in"

# Kill the daemon once the job is inside step S (after B batches of it),
# note where it was just before, and start a daemon again ($conf). (A step
# whose statements were all sent may still commit after the kill.)
killed=()
hook=
kill_in()
{
	local step=$1 batches=${2:-0} idx where
	idx=$(sql "SELECT array_position(steps, '$step') - 1 FROM pgtenantd.job_kinds WHERE kind = '$MIG_KIND'")
	# Wait until the job is there or past it (a busy machine may let it
	# slip by; the check of every step below says so then).
	if ! wait_until "SELECT state NOT IN ('queued', 'running')
			    OR (state = 'running'
				AND (step_index > $idx
				     OR (step_index = $idx
					 AND coalesce((progress->>'batches')::int, 0) >= $batches)))
			   FROM pgtenantd.jobs WHERE id = $id" 30 ||
		[ "$(job_state "$id")" != running ]; then
		diag "the job did not get into $step (after $batches batches)"
		diag_job "$id"
		return 1
	fi
	sleep 0.05
	where=$(sql "SELECT coalesce(step, 'preflight') || coalesce(' batch ' || (progress->>'batches'), '')
		       FROM pgtenantd.jobs WHERE id = $id")
	kill_daemon "$DAEMON_PID"
	killed+=("$where")
	[ -n "$hook" ] && $hook
	hook=
	start_daemon "$conf" "$T/${conf##*/}.log" || bail_out "the daemon did not restart"
}

# The batch SQL of a step of the job file, to run with psql (whose
# variables have the job file's syntax).
batch_sql()
{
	sed -n "/^  - name: $1\$/,/^    batch_size:/p" "$JOBS_DIR/$MIG_KIND.yaml" |
		sed -n '/^    batch: |$/,/^    batch_size:/p' | sed '1d;$d'
}

# After a crash the engine's checkpoint may be one batch behind the job row
# (SQLite is written after the commit): a copy batch given the older key
# must go on after the job row's position, not copy that page again.
redo_check()
{
	local key node page out
	key=$(sql "SELECT progress->>'last_key' FROM pgtenantd.jobs WHERE id = $id")
	node=${key%%:*} page=${key##*:}
	out=$( { echo "BEGIN;"; batch_sql copy_entities; echo ";"
		 echo "SELECT count(*) - count(DISTINCT id) FROM tenant_acme_corp.graph_entities;"
		 echo "ROLLBACK;"; } |
		PGAPPNAME=pgt-test psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" \
			-v tenant_id=acme-corp -v schema=tenant_acme_corp -v job_id="$id" \
			-v last_key="$node:$((page - 1))" -v batch_size=1 -v batch_cap=1 -v test_sleep=0 -f - 2>&1)
	is "$(echo "$out" | sed -n '1s/|.*//p;2p' | tr '\n' ' ')" "$node:$((page + 1)) 0 " \
		"a copy batch one key behind the job row goes on from the row's position ($key), copying no row twice"
}

kill_in preflight
kill_in fence
kill_in fence_settle
kill_in create
kill_in copy_entities 0
hook=redo_check
kill_in copy_entities 3
# Take the job over from its row: another state_dir, after the lease.
conf=$T/b.yaml
kill_in copy_entities 5
kill_in copy_relations 0
kill_in copy_relations 4
kill_in index
kill_in index
kill_in analyze
kill_in verify_entities
kill_in verify_relations
kill_in flip
kill_in delete_relations 0
kill_in delete_relations 4
kill_in delete_entities 0
kill_in delete_entities 3
kill_in lift
diag "killed in: $(printf '%s; ' "${killed[@]}")"
got=$(printf '%s\n' "${killed[@]}" | sed 's/ batch.*//' | sort -u | tr '\n' ' ')
want=$(printf '%s\n' $steps | sort -u | tr '\n' ' ')
is "$got" "$want" "a kill landed in every step"

if ! ok "after ${#killed[@]} kills the job succeeds" wait_state "$id" succeeded 60; then
	diag_job "$id"
fi
is "$(sql "SELECT attempts > ${#killed[@]} - 2 FROM pgtenantd.jobs WHERE id = $id")" t \
	"the kills cost attempts (the job was really interrupted)"
mig_check_done acme-corp tenant_acme_corp "after the kills"
is "$(sql "SELECT count(*) FROM pg_constraint WHERE connamespace = 'tenant_acme_corp'::regnamespace AND contype = 'p'")" 2 \
	"after the kills: both primary keys"
is "$(sql "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	    WHERE c.relnamespace = 'tenant_acme_corp'::regnamespace AND NOT i.indisvalid")" 0 \
	"after the kills: no invalid index"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
