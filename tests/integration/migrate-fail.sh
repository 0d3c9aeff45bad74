# migrate-fail.sh - a migration that cannot finish leaves the shared rows
# alone: a verify mismatch (injected into the copy) stops the job before the
# flip and the delete; a cancel during the copy leaves the shared data
# untouched; in both cases the fence is lifted at once, and a new migration
# of the tenant takes over the half-made schema and succeeds.
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
ok "verify: the job reaches the copy of the relations" gate_to "$id" copy_relations
ok "verify: the test alters one copied entity" \
	sql "UPDATE tenant_acme_corp.graph_entities SET properties = '{\"tampered\": true}' WHERE id = 'e000005'"
gate_release
if ! ok "verify: the job fails" wait_state "$id" failed 30; then
	diag_job "$id"
fi
err=$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")
like "$err" 'step "verify_entities".*verify failed' "verify: the error names the verify step"
like "$err" 'public\.graph_entities.*"200"' "verify: ... the table and the values"
is "$(sql "SELECT attempts || ' ' || step FROM pgtenantd.jobs WHERE id = $id")" "1 verify_entities" \
	"verify: no retry, stopped at verify_entities"
unlike "$(sql "SELECT progress->>'passed' FROM pgtenantd.jobs WHERE id = $id")" 'flip|delete' \
	"verify: neither the flip nor a delete ran"
is "$(mig_shared_all)" "$all_before" "verify: the shared rows are intact"
is "$(sql "SELECT to_regclass('public.tenant_metadata') IS NULL")" t "verify: no config row was written"
ok "verify: the fence of the failed job is lifted" \
	sql "UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'acme-corp' AND id = 'e000001'"

id=$(mig_insert acme-corp)
if ! ok "verify: a new migration takes over the schema and succeeds" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
mig_check_done acme-corp tenant_acme_corp "verify, then again"

# ---- cancel during the copy
all_before=$(mig_shared_all)
mig_snapshot beta
gate_hold
id=$(mig_insert beta "$SLOW")
ok "cancel: the copy gets going" gate_to "$id" copy_entities 2
like "$(sql_err "DELETE FROM public.graph_entities WHERE tenant_id = 'beta'")" "job $id" \
	"cancel: the tenant is fenced during the copy"
is "$(sql "SELECT pgtenantd.cancel_job($id)")" running "cancel: asked"
if ! ok "cancel: the job is cancelled" wait_state "$id" cancelled 20; then
	diag_job "$id"
fi
gate_release
is "$(mig_shared_all)" "$all_before" "cancel: the shared data is untouched"
ok "cancel: the fence is lifted" \
	sql "UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'beta'"
is "$(sql "SELECT count(*) FROM public.tenant_metadata WHERE tenant_id = 'beta'")" 0 "cancel: no config row"

id=$(mig_insert beta)
if ! ok "cancel: a new migration takes over the schema and succeeds" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
mig_check_done beta tenant_beta "cancel, then again"

# ---- a write that bypasses the fence (triggers off) during the delete
gate_hold
id=$(mig_insert gamma "$SLOW")
ok "bypass: the job reaches the delete" gate_to "$id" delete_relations 1
ok "bypass: a session with triggers off inserts a row of the tenant" \
	sql "SET session_replication_role = replica;
	     INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('sneaky', 'gamma', 'org')"
gate_release
if ! ok "bypass: the job fails" wait_state "$id" failed 30; then
	diag_job "$id"
fi
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	'step "lift".*1 shared rows of tenant "gamma" were written after its fence went up' \
	"bypass: lift says a row was written past the fence"
is "$(sql "SELECT string_agg(id, ',') FROM public.graph_entities WHERE tenant_id = 'gamma'")" sneaky \
	"bypass: that row was not deleted, the tenant's other rows were"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
