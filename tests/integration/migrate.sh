# migrate.sh - migrate_to_separate_schema moves one tenant out of the shared
# tables: its schema then holds exactly its former rows, the shared tables
# the other tenants' and the global rows, the config row says
# separate_schema; while it runs, the tenant's writes to its shared rows go
# through and arrive in its schema, TRUNCATE is refused with a message
# naming the job, other tenants write freely; progress shows in the job
# row, pgtenantd.migration_status and pgtenantctl status.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env migrate

mig_schema
mig_fill acme-corp 300 600
mig_fill beta 100 200
mig_fill Zeta_9 40 30
mig_fill '' 20 40
mig_snapshot acme-corp

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not start"
is "$(sql "SELECT 'migrate_to_separate_schema' = ANY (SELECT kind FROM pgtenantd.job_kinds)")" t \
	"the kind is published"

# The job stops at the test gate inside the third batch of the copy (one
# page a batch) while the test writes to the tenant and looks at the
# progress.
gate_hold || bail_out "could not take the test gate"
id=$(mig_insert acme-corp "{\"batch_cap\": \"1\", \"test_gate\": \"$MIG_GATE\"}")
ok "the copy gets going" gate_to "$id" copy 2 ||
	bail_out "the job did not reach the copy"

# ---- the tenant keeps writing while it moves
ok "an UPDATE of the tenant's shared rows goes through during the copy" \
	sql "UPDATE public.graph_entities SET entity_type = 'x' WHERE tenant_id = 'acme-corp' AND id = 'e000010'"
ok "an INSERT of a row of the tenant goes through" \
	sql "INSERT INTO public.graph_relations (id, tenant_id, relation_type, source_id, target_id)
	     VALUES ('new', 'acme-corp', 'knows', 'e000001', 'e000002')"
ok "a DELETE of the tenant's rows goes through" \
	sql "DELETE FROM public.graph_entities WHERE tenant_id = 'acme-corp' AND id = 'e000011'"
ok "moving a row out of the tenant goes through" \
	sql "UPDATE public.graph_relations SET tenant_id = 'beta' WHERE tenant_id = 'acme-corp' AND id = 'r000500'"
ok "an UPDATE of a row the copy has not reached goes through" \
	sql "UPDATE public.graph_entities SET properties = '{\"late\": true}' WHERE tenant_id = 'acme-corp' AND id = 'e000290'"
is "$(sql "SELECT count(*) FROM pgtenantd.migration_changes WHERE job_id = $id")" 5 \
	"the keys of the five rows written are captured (the moved row once)"
err=$(sql_err "TRUNCATE public.graph_relations")
like "$err" "cannot be truncated while tenant \"acme-corp\" moves to its own schema \\(migration job $id\\)" \
	"TRUNCATE of a shared table is refused with a message naming the job"
like "$err" "cancel_job\\($id\\)" "the message says how to cancel the job"
ok "other tenants write freely: UPDATE" \
	sql "UPDATE public.graph_entities SET entity_type = 'changed' WHERE tenant_id = 'beta' AND id = 'e000010'"
ok "other tenants write freely: INSERT" \
	sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('during', 'beta', 'org')"
ok "other tenants write freely: DELETE" \
	sql "DELETE FROM public.graph_relations WHERE tenant_id = 'Zeta_9' AND id = 'r000007'"
ok "the global namespace is written freely" \
	sql "UPDATE public.graph_entities SET properties = '{\"g\": 1}' WHERE tenant_id = '' AND id = 'e000005'"
is "$(sql "SELECT count(*) FROM pgtenantd.migration_changes WHERE job_id = $id")" 5 \
	"other tenants' writes are not captured"
mig_snapshot acme-corp	# what the tenant and the others hold now

# ---- progress
p=$(sql "SELECT progress FROM pgtenantd.jobs WHERE id = $id")
is "$(json_eval "$p" "concat_ws(' ', (:'j')::jsonb->>'step', (:'j')::jsonb->>'batches',
			      (:'j')::jsonb->>'total_rows')")" "copy 2 900" \
	"progress: step, batches done and the total (the tenant's rows) in the job row"
is "$(json_eval "$p" "(:'j')::jsonb ?& ARRAY['rows_done', 'rows_per_s', 'eta_s', 'steps_total', 'percent']")" t \
	"progress: rows done, rate, ETA, step count and percent in the job row"
is "$(sql "SELECT phase, rows_total, backlog_keys FROM pgtenantd.migration_status WHERE job_id = $id")" \
	"copy|900|5" "pgtenantd.migration_status: phase, rows to copy, keys waiting"
st=$(ctl --json status)
like "$st" '"copy"' "pgtenantctl status shows the step"
like "$st" '"eta_s"' "pgtenantctl status shows the ETA"
like "$(ctl status)" "migrate_to_separate_schema +acme-corp +copy" "pgtenantctl status renders the job"
gate_release

if ! ok "the migration succeeds" wait_state "$id" succeeded 60; then
	diag_job "$id"
fi
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 "in one attempt"
mig_check_done acme-corp tenant_acme_corp "after the migration"
is "$(sql "SELECT result->'rows'->>'graph_entities', result->'rows'->>'graph_relations', result->>'schema',
		   result->>'isolation_mode', result->>'cutover_attempts' FROM pgtenantd.jobs WHERE id = $id")" \
	"299|600|tenant_acme_corp|separate_schema|1" "the result has the counts, the schema and the cut-over attempts"
like "$(sql "SELECT obj_description('tenant_acme_corp'::regnamespace, 'pg_namespace')")" \
	"migrate_to_separate_schema job $id, tenant acme-corp" "the schema is marked as the job's"

# ---- after: capture is off
ok "after the job, the shared tables can be written for the tenant's id again" \
	sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('after', 'acme-corp', 'org');
	     DELETE FROM public.graph_entities WHERE id = 'after' AND tenant_id = 'acme-corp'"

# A second tenant, at full speed.
mig_snapshot Zeta_9
id2=$(mig_insert Zeta_9)
if ! ok "a second tenant migrates at full speed" wait_state "$id2" succeeded 30; then
	diag_job "$id2"
fi
mig_check_done Zeta_9 tenant_zeta_9 "Zeta_9"
is "$(sql "SELECT count(*) FROM public.tenant_metadata")" 2 "two config rows"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
