#!/bin/bash
# ctl-migrate.sh - pgtenantctl steers an online migration (issue 9 point 7):
# job ID shows its phase, copy, backlog, throttle and cut-over (--json as
# the object "migration"); status and watch show it in brief; throttle ID
# pauses its copy and throttle ID N / unthrottle ID let it go on; with
# {"cutover": "manual"} the job waits, caught up and running, until
# cutover ID; an unknown job and a job that is no migration get a clear
# error.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env ctl-migrate

mig_schema
mig_fill acme 3000 6000
mig_fill beta 50 50

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
# Job ids from 1001 on, so that an id is not mistaken for a count.
sql "SELECT setval(pg_get_serial_sequence('pgtenantd.jobs', 'id'), 1000)" >/dev/null

# A member of a pgtenantctl --json answer by path: json_at JSON '{a,b}'.
json_at()
{
	json_eval "$1" "(:'j')::jsonb #>> '$2'" 2>/dev/null
}

# True if COMMAND exits with status RC: exits_with RC COMMAND [ARGS...].
exits_with()
{
	local rc=$1
	shift
	"$@" >/dev/null 2>&1
	[ $? -eq "$rc" ]
}

# The copy positions of job ID, one word per table.
copy_position()
{
	sql "SELECT string_agg(table_name || '=' || position, ' ' ORDER BY table_name)
	       FROM pgtenantd.migration_copy WHERE job_id = $1"
}

# ---- throttle: pause the copy
# One page per batch, so that the copy takes many batches; the throttle
# comes as soon as the migration is recorded, long before the copy ends.
id=$(mig_insert acme '{"batch_cap": "1", "cutover": "manual"}')
ok "the migration is recorded" \
	wait_until "SELECT EXISTS (SELECT FROM pgtenantd.migrations WHERE job_id = $id)" 30 ||
	bail_out "the migration did not start"
out=$(ctl throttle "$id")
ok "pgtenantctl throttle ID exits 0" [ $? -eq 0 ]
like "$out" "^ok: job $id: paused" "and says the job's batches are paused"
is "$(sql "SELECT batch_limit FROM pgtenantd.migration_status WHERE job_id = $id")" 0 \
	"throttle without N sets the batch limit to 0 (pause)"
ok "the copy step waits, paused" \
	wait_until "SELECT step = 'copy' AND progress->>'last_key' LIKE '%(paused)'
		      FROM pgtenantd.jobs WHERE id = $id" 30 || diag_job "$id"
unlike "$(copy_position "$id")" "graph_entities=done graph_relations=done" "(the copy has not ended)"
sleep 0.5
p1=$(copy_position "$id")
sleep 1.2
p2=$(copy_position "$id")
is "$p2" "$p1" "paused: the copy position does not move for 1.2 s"
is "$(job_state "$id")" running "the paused job stays running"

# A transaction that holds the migration's row: throttle gives up after a
# quarter of the lease (3 s here) instead of holding the dispatcher.
# The row lock is the test's own session's, held until throttle has answered.
exec {locker}> >(PGAPPNAME=pgt-locker psql -X -q -d "$DB" >/dev/null 2>&1)
echo "BEGIN; SELECT 1 FROM pgtenantd.migrations WHERE job_id = $id FOR UPDATE;" >&$locker
wait_until "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
			    AND application_name = 'pgt-locker' AND state = 'idle in transaction')" 10
t0=$(now_ms)
err=$(ctl throttle "$id" 5 2>&1 >/dev/null)
ms=$(($(now_ms) - t0))
echo "COMMIT;" >&$locker
exec {locker}>&-
like "$err" "row stayed locked for 750 ms .*try again" "throttle while the row is locked: a clear error"
ok "after at most about the lock timeout, not the lock's holder (${ms} ms)" [ "$ms" -lt 5000 ]
is "$(sql "SELECT batch_limit FROM pgtenantd.migration_status WHERE job_id = $id")" 0 \
	"the batch limit stayed 0"
is "$(job_state "$id")" running "the job is still running"

# The tenant writes meanwhile: ten changed keys wait.
sql "UPDATE public.graph_entities SET entity_type = 'changed'
      WHERE tenant_id = 'acme' AND id IN (SELECT id FROM public.graph_entities
					    WHERE tenant_id = 'acme' ORDER BY id LIMIT 10)" >/dev/null

# ---- what job, status and watch show
out=$(ctl job "$id")
ok "pgtenantctl job ID exits 0" [ $? -eq 0 ]
like "$out" "^migration:$" "job ID shows a migration section"
like "$out" "^  phase: +copy \\(since " "with the phase"
like "$out" "^  copied: +[0-9]+/9000 rows" "with the rows copied of the total"
like "$out" "^  backlog: +10 keys$" "with the backlog of changed keys"
like "$out" "^  replayed: +0 keys \\([0-9.]+ keys/s\\)$" "with the keys replayed and the replay rate"
like "$out" "^  cutover: +manual, waiting for go \\(pgtenantctl cutover $id\\)$" \
	"with the cut-over mode and that no go was given"
like "$out" "^  throttle: +paused \\(pgtenantctl unthrottle $id\\)$" "with the throttle"
like "$out" "^  cutover attempts: +0$" "with the cut-over attempts"
like "$out" "^step: +copy$" "and still the job's own columns"
like "$out" "^  eta_s: " "(and the engine's ETA in the progress)"

out=$(ctl --json job "$id")
is "$(json_at "$out" '{job,migration,phase}')" copy "job --json: the object migration has the phase"
is "$(json_at "$out" '{job,migration,backlog_keys}')" 10 "job --json: and the backlog"
is "$(json_at "$out" '{job,migration,batch_limit}')" 0 "job --json: and the batch limit"
is "$(json_at "$out" '{job,migration,cutover_mode}')" manual "job --json: and the cut-over mode"
is "$(json_at "$out" '{job,migration,cutover_go}')" false "job --json: and whether go was given"
is "$(json_at "$out" '{job,migration,rows_total}')" 9000 "job --json: and the rows to copy"
is "$(json_at "$out" '{job,kind}')" migrate_to_separate_schema "job --json: the job's columns stay"

out=$(ctl status)
like "$out" "MIGRATION" "status: a MIGRATION column while a migration runs"
like "$out" "copy, backlog 10, attempts 0, paused" "status: the phase, backlog, attempts and the pause in brief"
out=$(ctl --json status)
is "$(json_at "$out" '{running,0,migration,phase}')" copy "status --json: the running job has its migration object"
out=$(ctl watch 100ms 1)
like "$out" "job $id .* migration copy, backlog 10, attempts 0, paused" "watch: the migration in brief"

# ---- throttle N, then unthrottle: the copy goes on
out=$(ctl throttle "$id" 2)
like "$out" "^ok: job $id: at most 2 pages or keys per batch" "throttle ID 2: at most 2 pages a batch"
is "$(sql "SELECT batch_limit FROM pgtenantd.migration_status WHERE job_id = $id")" 2 \
	"the batch limit is 2"
ok "throttled to 2 pages a batch, the copy moves on" \
	wait_until "SELECT string_agg(table_name || '=' || position, ' ' ORDER BY table_name)
		      <> '$p2' FROM pgtenantd.migration_copy WHERE job_id = $id" 10
like "$(ctl job "$id")" "^  throttle: +at most 2 pages or keys per batch$" "job ID shows the limit"
out=$(ctl unthrottle "$id")
like "$out" "^ok: job $id: unthrottled" "unthrottle ID: ok"
is "$(sql "SELECT coalesce(batch_limit::text, 'none') FROM pgtenantd.migration_status WHERE job_id = $id")" none \
	"the batch limit is lifted"

# ---- manual cut-over: the job waits, caught up, until go
ok "the job gets to the cut-over and waits for go" \
	wait_until "SELECT step = 'cutover' AND progress->>'last_key' LIKE 'waiting for%'
		      FROM pgtenantd.jobs WHERE id = $id" 60 || diag_job "$id"
sleep 1
is "$(job_state "$id")" running "waiting for go, the job stays running"
is "$(sql "SELECT phase || ' ' || (moved_at IS NULL) FROM pgtenantd.migrations WHERE job_id = $id")" "verify true" \
	"and the tenant has not moved"
is "$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id = 'acme'")" 3000 \
	"its shared rows are still there"
like "$(ctl status)" "attempts 0, waiting for go" "status says it waits for go"
out=$(ctl cutover "$id")
ok "pgtenantctl cutover ID exits 0" [ $? -eq 0 ]
like "$out" "^ok: job $id: tenant \"acme\" cuts over once caught up" "and says the tenant cuts over"
if ! ok "after go the migration succeeds" wait_state "$id" succeeded 120; then
	diag_job "$id"
fi
is "$(sql "SELECT phase FROM pgtenantd.migrations WHERE job_id = $id")" done "the migration is done"
is "$(sql "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = 'acme'")" separate_schema \
	"the tenant moved"
is "$(sql "SELECT count(*) FROM tenant_acme.graph_entities WHERE entity_type = 'changed'")" 10 \
	"with the writes made while it was paused"
out=$(ctl job "$id")
like "$out" "^  cutover: +manual, go given$" "job ID: go was given"
like "$out" "^  cutover took: +[0-9.]+m?s \\(moved at " "job ID: how long the cut-over took"
like "$out" "^  cutover attempts: +[1-9]" "job ID: the cut-over attempts"
out=$(ctl cutover "$id")
like "$out" "already cut over" "cutover ID again: the tenant was already cut over"

# ---- errors
err=$(ctl cutover 999999 2>&1 >/dev/null)
ok "cutover of an unknown job exits 1" exits_with 1 ctl cutover 999999
like "$err" "job 999999 is not a migration" "with a clear error"
nid=$(insert_job noop t-noop)
ok "a noop job succeeds" wait_state "$nid" succeeded
err=$(ctl throttle "$nid" 2>&1 >/dev/null)
ok "throttle of a job that is no migration exits 1" exits_with 1 ctl throttle "$nid"
like "$err" "job $nid is not a migration" "with a clear error"
err=$(ctl unthrottle "$nid" 2>&1 >/dev/null)
like "$err" "job $nid is not a migration" "unthrottle of it too"
err=$(ctl cutover "$nid" 2>&1 >/dev/null)
like "$err" "job $nid is not a migration" "cutover of it too"
out=$(ctl --json cutover "$nid" 2>/dev/null)
is "$(json_at "$out" '{ok}')" false "cutover --json of it: ok is false"
out=$(ctl --json job "$nid")
is "$(json_at "$out" '{job,migration}')" "" "job --json of a job that is no migration has no migration object"
unlike "$(ctl job "$nid")" "^migration:" "nor does job ID show one"
err=$(ctl throttle "$id" -1 2>&1 >/dev/null)
like "$err" "bad batch limit" "throttle with a negative limit is refused"
err=$(ctl throttle abc 2>&1 >/dev/null)
like "$err" "usage: throttle ID" "throttle with a bad id gets its usage"
ok "cutover without an id is a usage error" exits_with 2 ctl cutover
ok "throttle with three arguments is a usage error" exits_with 2 ctl throttle 1 2 3
like "$(ctl help throttle)" "^Usage: pgtenantctl .* throttle ID \\[N\\]" "help throttle"
like "$(ctl --help)" "unthrottle ID" "the help lists unthrottle"
ok "the daemon is still running" proc_alive "$DAEMON_PID"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
done_testing
