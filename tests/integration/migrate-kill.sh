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

# The job stops at the test gate in every batch and step (before it
# commits), so each kill lands inside the step it is meant for.
gate_hold || bail_out "could not take the test gate"
id=$(mig_insert acme-corp "{\"test_gate\": \"$MIG_GATE\", \"batch_cap\": \"1\"}")
steps=$(sql "SELECT array_to_string(steps, ' ') FROM pgtenantd.job_kinds WHERE kind = '$MIG_KIND'")
is "$steps" "preflight fence fence_settle create copy_entities copy_relations index analyze verify_entities verify_relations flip delete_relations delete_entities lift" \
	"the steps are the ones this test kills in"

# Let the job through the gate until it waits inside step S after N
# batches (or for_each rows) of it, kill the daemon there, note where it
# was, and start a daemon again ($conf).
killed=()
hook=
kill_in()
{
	local where
	gate_to "$id" "$1" "${2:-0}" || return 1
	where=$(sql "SELECT coalesce(step, 'preflight') || coalesce(' batch ' || (progress->>'batches'), '')
			    || coalesce(' row ' || (progress->>'for_each_done'), '')
		       FROM pgtenantd.jobs WHERE id = $id")
	kill_daemon "$DAEMON_PID"
	killed+=("$where")
	gate_empty || diag "a killed daemon's backend still waits at the gate"
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
			-v last_key="$node:$((page - 1))" -v batch_size=1 -v batch_cap=1 -f - 2>&1)
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
kill_in index 0
kill_in index 3
kill_in analyze
kill_in verify_entities
kill_in verify_relations
kill_in flip
kill_in delete_relations 0
kill_in delete_relations 4
kill_in delete_entities 0
kill_in delete_entities 3
kill_in lift
gate_release
diag "killed in: $(printf '%s; ' "${killed[@]}")"
got=$(printf '%s\n' "${killed[@]}" | sed 's/ batch.*//; s/ row.*//' | sort -u | tr '\n' ' ')
want=$(printf '%s\n' $steps | sort -u | tr '\n' ' ')
is "$got" "$want" "a kill landed in every step"

if ! ok "after ${#killed[@]} kills the job succeeds" wait_state "$id" succeeded 60; then
	diag_job "$id"
fi
is "$(sql "SELECT attempts > ${#killed[@]} - 2 FROM pgtenantd.jobs WHERE id = $id")" t \
	"the kills cost attempts (the job was really interrupted)"
mig_check_done acme-corp tenant_acme_corp "after the kills"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
