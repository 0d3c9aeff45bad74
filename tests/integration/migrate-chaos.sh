#!/bin/bash
# migrate-chaos.sh - a tenant migration under 20 kill -9 of the daemon at
# seeded random moments and 3 PostgreSQL restarts (fast, immediate, fast),
# ending with a full comparison of every row: the tenant's schema holds
# exactly its former rows, the shared tables exactly the others'. Uses its
# own PostgreSQL, since it restarts it. CHAOS_SEED repeats a run.
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
mig_snapshot acme-corp

# A lease that outlasts a PostgreSQL restart; a short one would only make
# the takeover path (tested in migrate-kill.sh) slower here.
write_config "$T/a.yaml" "lease: 4s" "heartbeat_interval: 500ms"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not start"

# One page per batch and a pause before each commit: the job lasts long
# enough for the kills to land in every part of it.
id=$(mig_insert acme-corp '{"batch_cap": "1", "test_sleep": "50"}')

kills=0 restarts=0 where=()
restart_modes=(fast immediate fast)
for round in $(seq 1 23); do
	[ "$(job_state "$id")" = succeeded ] && break
	sleep "0.$((RANDOM % 9 + 1))"
	where+=("$(sql "SELECT coalesce(step, 'start') || coalesce(':' || (progress->>'batches'), '')
			 FROM pgtenantd.jobs WHERE id = $id" 2>/dev/null)")
	if [ $((round % 8)) -eq 4 ] && [ "$restarts" -lt 3 ]; then
		mode=${restart_modes[$restarts]}
		if [ "$mode" = immediate ]; then
			pg_tmp restart --immediate "$T/pg" >/dev/null 2>&1
		else
			pg_tmp restart "$T/pg" >/dev/null 2>&1
		fi || bail_out "PostgreSQL did not restart ($mode)"
		restarts=$((restarts + 1))
		where[-1]="${where[-1]} (PostgreSQL restart, $mode)"
	else
		kill_daemon "$DAEMON_PID"
		kills=$((kills + 1))
		start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not restart"
	fi
done
diag "interrupted at: $(printf '%s; ' "${where[@]}")"
diag "$kills kills and $restarts PostgreSQL restarts before the job ended"

if ! ok "the migration succeeds in the end" wait_state "$id" succeeded 120; then
	diag_job "$id"
fi
is "$kills" 20 "20 kill -9 of the daemon happened while the job ran"
is "$restarts" 3 "3 PostgreSQL restarts (fast, immediate, fast) happened"
mig_check_done acme-corp tenant_acme_corp "after the chaos"
is "$(sql "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	    WHERE c.relnamespace = 'tenant_acme_corp'::regnamespace AND NOT i.indisvalid")" 0 \
	"after the chaos: no invalid index"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
