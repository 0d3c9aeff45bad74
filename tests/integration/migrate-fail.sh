# migrate-fail.sh - a migration that cannot finish leaves the shared rows
# alone: a verify mismatch (injected into the copy) stops the job before the
# cut-over and the delete; a cancel during the copy leaves the shared data
# untouched; in both cases the tenant writes on, the next migration removes
# the capture of the old one, takes over the half-made schema and succeeds.
# A row written past the capture (triggers off) after the cut-over is not
# deleted and fails the job.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env migrate_fail

mig_schema
mig_fill acme-corp 200 400
mig_fill beta 150 300
mig_fill gamma 100 100
mig_fill '' 10 10

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not start"
gate_hold || bail_out "could not take the test gate"
SLOW="{\"batch_cap\": \"1\", \"test_gate\": \"$MIG_GATE\"}"

# ---- a verify mismatch
all_before=$(mig_shared_all)
mig_snapshot acme-corp
id=$(mig_insert acme-corp "$SLOW")
ok "verify: the job reaches the copy of the relations" gate_to "$id" copy 8
ok "verify: the test alters one copied entity" \
	sql "UPDATE tenant_acme_corp.graph_entities SET properties = '{\"tampered\": true}' WHERE id = 'e000005'"
gate_release
if ! ok "verify: the job fails" wait_state "$id" failed 30; then
	diag_job "$id"
fi
err=$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")
like "$err" 'step "verify".*verify failed for tenant "acme-corp"' "verify: the error names the verify step"
like "$err" 'public\.graph_entities has 200 rows \(hash sum' "verify: ... the table and the values"
is "$(sql "SELECT attempts || ' ' || step FROM pgtenantd.jobs WHERE id = $id")" "1 verify" \
	"verify: no retry, stopped at verify"
unlike "$(sql "SELECT progress->>'passed' FROM pgtenantd.jobs WHERE id = $id")" 'cutover|delete' \
	"verify: neither the cut-over nor a delete ran"
is "$(mig_shared_all)" "$all_before" "verify: the shared rows are intact"
is "$(sql "SELECT to_regclass('public.tenant_metadata') IS NULL")" t "verify: no config row was written"
ok "verify: the tenant writes on after the failed job" \
	sql "UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'acme-corp' AND id = 'e000001'"

id=$(mig_insert acme-corp)
if ! ok "verify: a new migration takes over the schema and succeeds" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
mig_check_done acme-corp tenant_acme_corp "verify, then again"
is "$(sql "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtenantd\\_migration\\_%'")" 0 \
	"verify: the failed job's capture triggers are gone"

# ---- cancel during the copy
all_before=$(mig_shared_all)
mig_snapshot beta
gate_hold
id=$(mig_insert beta "$SLOW")
ok "cancel: the copy gets going" gate_to "$id" copy 2
ok "cancel: the tenant writes during the copy" \
	sql "UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'beta'"
is "$(sql "SELECT pgtenantd.cancel_job($id)")" running "cancel: asked"
if ! ok "cancel: the job is cancelled" wait_state "$id" cancelled 20; then
	diag_job "$id"
fi
gate_release
is "$(mig_shared_all)" "$all_before" "cancel: the shared data is untouched"
ok "cancel: the tenant writes on after the cancel" \
	sql "UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'beta'"
is "$(sql "SELECT count(*) FROM public.tenant_metadata WHERE tenant_id = 'beta'")" 0 "cancel: no config row"

id=$(mig_insert beta)
if ! ok "cancel: a new migration takes over the schema and succeeds" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
mig_check_done beta tenant_beta "cancel, then again"

# ---- a write that bypasses the capture (triggers off) during the delete
gate_hold
id=$(mig_insert gamma "$SLOW")
ok "bypass: the job reaches the delete" gate_to "$id" delete 1
ok "bypass: a session with triggers off inserts a row of the tenant" \
	sql "SET session_replication_role = replica;
	     INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('sneaky', 'gamma', 'org')"
gate_release
if ! ok "bypass: the job fails" wait_state "$id" failed 30; then
	diag_job "$id"
fi
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	'step "left_over".*1 shared rows of tenant "gamma" were written after its cut-over' \
	"bypass: left_over says a row was written past the cut-over"
is "$(sql "SELECT string_agg(id, ',') FROM public.graph_entities WHERE tenant_id = 'gamma'")" sneaky \
	"bypass: that row was not deleted, the tenant's other rows were"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
