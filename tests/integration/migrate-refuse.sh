# migrate-refuse.sh - migrate_to_separate_schema refuses, without executing
# anything, what must not run: hostile tenant ids (at INSERT), the global
# namespace, unknown tenants, a tenant id whose schema name another tenant id
# also maps to (mixed case or '-'/'_': in the shared tables, in
# tenant_metadata, or owning an existing schema), a schema holding data the
# job did not write, and a tenant already migrated.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env migrate_refuse

mig_schema
mig_fill beta 30 30
mig_fill gamma_1 10 10
mig_fill gamma-1 10 10
mig_fill delta 10 10
mig_fill '' 5 5

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not start"

# The state nothing may change: every shared row, the schemas, the
# migrations with their triggers, and the config rows.
world()
{
	local fences meta="no metadata"
	fences=$(sql "SELECT (SELECT count(*) FROM pgtenantd.migrations) || ' migrations, '
			     || (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtenantd%') || ' triggers'")
	[ "$(sql "SELECT to_regclass('public.tenant_metadata') IS NOT NULL")" = t ] &&
		meta=$(sql "SELECT string_agg(tenant_id || '=' || isolation_mode, ',' ORDER BY tenant_id)
			      FROM public.tenant_metadata")
	echo "$(mig_shared_all)" \
		"$(sql "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 'tenant%'")" \
		"$fences" "$meta"
}

# twin_refused TENANT REGEX WHAT: the INSERT of a job for TENANT is refused
# (a twin of a known tenant id) with an error matching REGEX.
twin_refused()
{
	like "$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('$MIG_KIND', :'t')" -v t="$1")" \
		"$2" "$3: refused at INSERT"
}

# refused TENANT REGEX WHAT [ARGS] [forced]: the job for TENANT fails at
# preflight, in one attempt, with an error matching REGEX, and nothing
# changed. forced: the row goes in with the INSERT trigger off (as the
# table owner could), to show that preflight refuses what the trigger would.
refused()
{
	local before id
	before=$(world)
	if [ "${5:-}" = forced ]; then
		local args=${4:-}
		[ -n "$args" ] || args='{}'
		id=$(sql "BEGIN; SET LOCAL session_replication_role = replica;
			  INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
			  VALUES ('$MIG_KIND', :'t', :'a', 100) RETURNING id; COMMIT" \
			-v t="$1" -v a="$args" | grep -E '^[0-9]+$')
	else
		id=$(mig_insert "$1" "${4:-}")
	fi
	if ! ok "$3: the job fails" wait_state "$id" failed 20; then
		diag_job "$id"
		return
	fi
	like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "$2" "$3: refused with a clear error"
	is "$(sql "SELECT attempts || ' ' || step_index FROM pgtenantd.jobs WHERE id = $id")" "1 0" \
		"$3: in one attempt, at the first step"
	is "$(world)" "$before" "$3: nothing was executed"
	# A forced twin row would make every later job of the real tenant a
	# twin of it.
	[ "${5:-}" != forced ] || sql "DELETE FROM pgtenantd.jobs WHERE id = $id" >/dev/null
}

# ---- hostile ids: refused at INSERT
n_jobs=$(sql "SELECT count(*) FROM pgtenantd.jobs")
long=$(printf 'a%.0s' $(seq 300))
for bad in "it's" "x'; DROP TABLE public.graph_entities; --" "a;b" "ünïcødé" "$long" "" \
	"acme corp" "x\"y" 'back\slash' "$(printf 'a%.0s' $(seq 57))"; do
	err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('$MIG_KIND', :'t')" -v t="$bad")
	like "$err" 'pgtenantd: (invalid tenant id|tenant id .* makes the schema name)' \
		"tenant id '$(printf '%s' "$bad" | cut -c1-40)' is refused at INSERT"
done
is "$(sql "SELECT count(*) FROM pgtenantd.jobs")" "$n_jobs" "no job row was made for them"
is "$(sql "SELECT to_regclass('public.graph_entities') IS NOT NULL")" t "the shared tables are still there"

# ---- refused by preflight
refused nobody 'tenant "nobody" has no rows in the shared tables' "an unknown tenant"
refused gamma-1 'tenant ids "gamma-1" and "gamma_1" both map to schema "tenant_gamma_1"' \
	"a '-'/'_' twin in the shared tables"
twin_refused GAMMA_1 'tenant id "GAMMA_1" names the schema "tenant_gamma_1" of the known tenant' \
	"a mixed-case twin of a tenant with a job"
refused GAMMA_1 'both map to schema "tenant_gamma_1"' "a mixed-case twin in the shared tables" '' forced

sql "CREATE SCHEMA tenant_delta; CREATE TABLE tenant_delta.notes (n int); INSERT INTO tenant_delta.notes VALUES (1)"
refused delta 'schema "tenant_delta" exists and holds data this job did not write \(notes\)' \
	"a schema with data the job did not write"

# beta gets its own schema; then its twins are refused.
id=$(mig_insert beta)
if ! ok "beta migrates" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
mig_check_keys tenant_beta "beta"
mig_fill BETA 3 3
twin_refused BETA 'tenant id "BETA" names the schema "tenant_beta" of the known tenant "beta"' \
	"a mixed-case twin of a tenant that has a schema"
refused BETA 'tenant ids "BETA" and "beta" both map to schema "tenant_beta"' \
	"a mixed-case twin of a tenant that has a schema (tenant_metadata)" '' forced
sql "DELETE FROM public.tenant_metadata WHERE tenant_id = 'beta'"
refused BETA 'schema "tenant_beta" belongs to tenant "beta" \(migrated by job '"$id"'\)' \
	"a mixed-case twin of a tenant that has a schema (its mark)" '' forced
sql "INSERT INTO public.tenant_metadata VALUES ('beta', 'separate_schema')"
sql "DELETE FROM public.graph_entities WHERE tenant_id = 'BETA'; DELETE FROM public.graph_relations WHERE tenant_id = 'BETA'"
refused beta 'tenant "beta" already uses separate_schema' "a tenant already migrated"
refused beta 'already uses separate_schema' "... even with allow_empty" '{"allow_empty": "true"}'

# ---- allow_empty: a tenant without shared rows gets an empty schema
id=$(mig_insert newco '{"allow_empty": "true"}')
if ! ok "allow_empty: a tenant without rows migrates" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
is "$(sql "SELECT (SELECT count(*) FROM tenant_newco.graph_entities) + (SELECT count(*) FROM tenant_newco.graph_relations)")" \
	0 "allow_empty: its tables are empty"
mig_check_keys tenant_newco "allow_empty"
is "$(sql "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = 'newco'")" separate_schema \
	"allow_empty: its config row says separate_schema"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
