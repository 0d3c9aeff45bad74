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
is "$steps" "preflight capture_on create copy purge index analyze catch_up verify cutover delete left_over finish" \
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

# After a crash the engine's checkpoint may be behind the database: a copy
# batch run again goes on from the position the database keeps
# (pgtenantd.migration_copy, written with each batch), copying no page
# twice. (Run in a transaction rolled back, while the daemon is down.)
redo_check()
{
	local pos out
	pos=$(sql "SELECT table_name || ':' || position FROM pgtenantd.migration_copy
		    WHERE job_id = $id AND position NOT IN ('done', '') ORDER BY table_name LIMIT 1")
	out=$(sql "BEGIN;
		   SELECT last_key FROM pgtenantd.migration_copy_batch($id, 1);
		   SELECT count(*) - count(DISTINCT id) FROM tenant_acme_corp.graph_entities;
		   ROLLBACK;" | tr '\n' ' ')
	is "$out" "${pos%:*}:$((${pos##*:} + 1)) 0 " \
		"a copy batch run again goes on from the database's position ($pos), copying no row twice"
}

# A kill leaves no lock behind: the tenant's rows can be written within
# the lock budget (1 s) right after it, even one inside the cut-over
# (whose transaction held the lock the tenant's writers share).
writable()
{
	ok "the tenant is writable within the lock budget after a kill in $(sql "SELECT step FROM pgtenantd.jobs WHERE id = $id")" \
		sql "SET lock_timeout = '1s';
		     UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'acme-corp' AND id = 'e000100'"
}

# While the daemon is down, the tenant writes: each kill leaves changes
# for catch-up, some on rows the copy has passed, some on rows ahead.
writes=0
write_some()
{
	writes=$((writes + 1))
	sql "UPDATE public.graph_entities SET properties = jsonb_build_object('w', $writes)
	      WHERE tenant_id = 'acme-corp' AND id IN ('e000002', 'e0001$((writes % 5))0');
	     INSERT INTO public.graph_relations (id, tenant_id, relation_type, source_id, target_id)
	     VALUES ('w$writes', 'acme-corp', 'knows', 'e000001', 'e000002');
	     DELETE FROM public.graph_relations WHERE tenant_id = 'acme-corp' AND id = 'r0000$((writes + 10))'" >/dev/null ||
		diag "the writes while the daemon was down failed"
}

kill_in preflight
kill_in capture_on
kill_in create
hook=write_some
kill_in copy 0
hook=redo_check
kill_in copy 3
# Take the job over from its row: another state_dir, after the lease.
conf=$T/b.yaml
hook=write_some
kill_in copy 5
hook=write_some
kill_in copy 9
hook=write_some
kill_in purge
hook=write_some
kill_in index 0
kill_in index 3
hook=write_some
kill_in analyze
hook=write_some
kill_in catch_up 0
hook=writable
kill_in verify
mig_snapshot acme-corp	# the last write was before this kill's restart
hook=writable
kill_in cutover 0
kill_in delete 0
kill_in delete 4
kill_in delete 8
kill_in left_over
kill_in finish
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
