# security-privs.sh - issue 10, findings 6 and 7 and "least privilege by
# default": the daemon's sessions run with search_path = pg_catalog,
# pg_temp, so functions another role plants in public never run in job SQL
# (finding 6); trigger code on the tables the jobs write that a role the
# daemon does not trust wrote is refused before it can run with the
# daemon's rights (finding 7); and every shipped kind runs as a dedicated
# non-superuser role with the privileges README.md lists ("Running with
# least privilege"), while a superuser daemon warns at start.
#
# Roles are cluster-wide: this test makes its own, named after its pid, and
# drops them at exit.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env security-privs

APP=pgt_app_$$        # owns the shared tables and the tenant schemas
DROLE=pgt_daemon_$$   # the daemon's login role: not a superuser
MAL=pgt_mallory_$$    # an unprivileged role that plants code

at_exit "sql \"DROP OWNED BY $MAL, $DROLE, $APP CASCADE; DROP ROLE IF EXISTS $MAL, $DROLE, $APP\""
sql "CREATE ROLE $APP NOLOGIN;
     CREATE ROLE $MAL NOLOGIN;
     CREATE ROLE $DROLE LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE $APP;
     GRANT CONNECT, CREATE ON DATABASE $DB TO $DROLE;
     GRANT CREATE ON SCHEMA public TO $APP;
     -- what PostgreSQL 14 and older allow every role by default
     GRANT CREATE ON SCHEMA public TO $MAL" >/dev/null || bail_out "could not create the roles"
# The group roles of the schema install, if this version has them (a DBA
# runs this file once when the daemon's role may not create roles).
if [ -f "$top_srcdir/etc/pgtenantd-setup.sql" ]; then
	sql "$(cat "$top_srcdir/etc/pgtenantd-setup.sql")" >/dev/null ||
		bail_out "etc/pgtenantd-setup.sql failed"
fi

# The application's data, owned by its role: shared tenants beta, gamma,
# delta, epsilon; tenant umb in its own schema; public.tenant_metadata.
mig_schema >/dev/null || bail_out "could not create the shared tables"
for t in beta gamma delta epsilon; do
	mig_fill "$t" 30 40 >/dev/null || bail_out "could not fill $t"
done
mig_fill '' 5 5 >/dev/null || bail_out "could not fill the global rows"
sql "CREATE TABLE public.tenant_metadata (
	tenant_id text PRIMARY KEY,
	isolation_mode text NOT NULL DEFAULT 'shared_schema',
	archived_at timestamptz);
     CREATE SCHEMA tenant_umb;
     CREATE TABLE tenant_umb.graph_entities (id text PRIMARY KEY, entity_type text);
     CREATE TABLE tenant_umb.graph_relations (id text PRIMARY KEY, source_id text);
     CREATE INDEX ON tenant_umb.graph_relations (source_id);
     INSERT INTO tenant_umb.graph_entities SELECT 'e' || g, 'x' FROM generate_series(1, 50) g;
     INSERT INTO tenant_umb.graph_relations SELECT 'r' || g, 'e1' FROM generate_series(1, 20) g;
     ALTER TABLE public.graph_entities OWNER TO $APP;
     ALTER TABLE public.graph_relations OWNER TO $APP;
     ALTER TABLE public.tenant_metadata OWNER TO $APP;
     ALTER TABLE tenant_umb.graph_entities OWNER TO $APP;
     ALTER TABLE tenant_umb.graph_relations OWNER TO $APP;
     ALTER SCHEMA tenant_umb OWNER TO $APP" >/dev/null || bail_out "could not create the application's data"

# ---- the planted code: public functions that shadow what job SQL calls
# (format with name arguments, as tenant_stats and the migration call it)
# and trigger code; each counts its runs in a sequence, which no rollback
# undoes.
sql "SET ROLE $MAL;
     CREATE SEQUENCE public.pwned;
     GRANT USAGE ON SEQUENCE public.pwned TO PUBLIC;
     CREATE FUNCTION public.format(text, name, name) RETURNS text
     LANGUAGE plpgsql AS \$\$
     BEGIN
	PERFORM pg_catalog.nextval('public.pwned');
	RETURN pg_catalog.format(\$1, \$2, \$3);
     END \$\$;
     CREATE FUNCTION public.format(text, text) RETURNS text
     LANGUAGE plpgsql AS \$\$
     BEGIN
	PERFORM pg_catalog.nextval('public.pwned');
	RETURN pg_catalog.format(\$1, \$2);
     END \$\$;
     CREATE FUNCTION public.mallory_trigger() RETURNS trigger
     LANGUAGE plpgsql AS \$\$
     BEGIN
	PERFORM pg_catalog.nextval('public.pwned');
	RETURN coalesce(NEW, OLD);
     END \$\$" >/dev/null || bail_out "could not plant the functions"

# Runs of planted code so far.
pwned()
{
	sql "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.pwned"
}

# Insert a job with max_attempts 1 and print its id: job1 KIND TENANT [ARGS].
job1()
{
	sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
	     VALUES (:'k', :'t', (:'a')::jsonb, 1) RETURNING id" -v k="$1" -v t="$2" -v a="${3:-{\}}"
}

# Run a job and pass if it succeeds: ok_job NAME KIND TENANT [ARGS].
ok_job()
{
	local id
	id=$(job1 "$2" "$3" "${4:-}")
	ok "$1" wait_state "$id" succeeded 60 || diag_job "$id"
	JOB_ID=$id
}

# Print a job's last_error.
last_error()
{
	sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $1"
}

shared_before=$(mig_shared_all)

# ================================================== the least-privileged daemon

write_config "$T/lp.yaml" "database: \"dbname=$DB user=$DROLE\""
start_daemon "$T/lp.yaml" "$T/lp.log" || bail_out "the daemon did not start as $DROLE"
unlike "$(cat "$T/lp.log")" "as superuser" \
	"least privilege: no superuser warning for a role that is not a superuser"

ok_job "finding 6: a job's SQL runs with search_path pg_catalog, pg_temp" session_settings umb
is "$(sql "SELECT result->>'search_path' || ' / ' || (result->>'role') || ' / ' || (result->>'superuser')
	     FROM pgtenantd.jobs WHERE id = $JOB_ID")" "pg_catalog, pg_temp / $DROLE / off" \
	"finding 6: search_path pg_catalog, pg_temp, as the daemon's role, not a superuser"

# After the daemon's connections are broken, the new sessions are pinned too.
connects=$(grep -c "connected to the database (backend pid" "$T/lp.log")
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE usename = '$DROLE' AND pid <> pg_backend_pid()" >/dev/null
reconnected()
{
	[ "$(grep -c "connected to the database (backend pid" "$T/lp.log")" -gt "$connects" ]
}
ok "finding 6: the daemon reconnects" wait_cmd 20 reconnected
ok_job "finding 6: a job after the reconnect" session_settings umb
is "$(sql "SELECT result->>'search_path' FROM pgtenantd.jobs WHERE id = $JOB_ID")" \
	"pg_catalog, pg_temp" "finding 6: search_path still pinned after a reconnect"

ok_job "least privilege: tenant_stats of a tenant with its own schema" tenant_stats umb
is "$(sql "SELECT result->'tables'->>'graph_entities' FROM pgtenantd.jobs WHERE id = $JOB_ID")" 50 \
	"least privilege: tenant_stats counted the tenant's rows"
ok_job "least privilege: tenant_stats of a tenant in the shared tables" tenant_stats beta
is "$(pwned)" 0 "finding 6: tenant_stats did not run the planted public.format(text, name, name)"

ok_job "least privilege: vacuum" vacuum umb
ok_job "least privilege: reindex" reindex umb
ok_job "least privilege: backup" backup umb
ok_job "least privilege: restore" restore umb
is "$(sql "SELECT count(*) FROM tenant_umb.graph_entities")" 50 "least privilege: the restored schema has its rows"

ok_job "least privilege: migrate_to_separate_schema" migrate_to_separate_schema beta
is "$(sql "SELECT count(*) FROM tenant_beta.graph_entities")/$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id = 'beta'")" \
	"30/0" "least privilege: beta's rows moved into tenant_beta"
is "$(sql "SELECT string_agg(DISTINCT r::text, ',') FROM (
	     SELECT nspowner::regrole AS r FROM pg_namespace WHERE nspname = 'tenant_beta'
	     UNION ALL SELECT relowner::regrole FROM pg_class
	      WHERE relnamespace = 'tenant_beta'::regnamespace AND relkind = 'r') x")" "$APP" \
	"least privilege: the application's role owns the migrated schema and its tables"
is "$(pwned)" 0 "finding 6: the migration did not run the planted public.format(text, text)"

ok_job "least privilege: drop_tenant" drop_tenant beta
is "$(sql "SELECT to_regnamespace('tenant_beta') IS NULL AND isolation_mode = 'archived'
	     FROM public.tenant_metadata WHERE tenant_id = 'beta'")" t \
	"least privilege: tenant_beta dropped and archived"

# ---- issue 9, row-level security: the application isolates tenants with
# a policy on current_setting('app.current_tenant_id'), forced on the
# owner's role too (the daemon's role is a member of it): the migration
# would see none of epsilon's rows. It refuses before changing anything,
# naming row-level security; without FORCE the owner's members bypass the
# policy and every row moves.
sql "SET ROLE $APP;
     ALTER TABLE public.graph_entities ENABLE ROW LEVEL SECURITY;
     ALTER TABLE public.graph_entities FORCE ROW LEVEL SECURITY;
     CREATE POLICY tenant_isolation ON public.graph_entities
	USING (tenant_id = current_setting('app.current_tenant_id', true))" >/dev/null ||
	bail_out "could not set up row-level security"
shared_before=$(mig_shared_all)
id=$(job1 migrate_to_separate_schema epsilon)
ok "row-level security: a migration the policy would hide rows from fails" wait_state "$id" failed 30 ||
	diag_job "$id"
like "$(last_error "$id")" "row-level security on public.graph_entities applies to role $DROLE: the migration could see only part of tenant \"epsilon\"'s rows; refusing to move it" \
	"row-level security: refused at preflight, naming row-level security and the role"
like "$(last_error "$id")" "HINT: let the daemon's role bypass row-level security \\(ALTER ROLE $DROLE BYPASSRLS\\)" \
	"row-level security: ... and saying what to do"
is "$(mig_shared_all)/$(sql "SELECT to_regnamespace('tenant_epsilon') IS NULL")/$(sql "SELECT count(*) FROM pgtenantd.migrations WHERE tenant_id = 'epsilon'")" \
	"$shared_before/t/0" "row-level security: nothing written (shared rows, no schema, no migration)"
sql "SET ROLE $APP; ALTER TABLE public.graph_entities NO FORCE ROW LEVEL SECURITY" >/dev/null
ok_job "row-level security: without FORCE the owner's member sees every row and the migration succeeds" \
	migrate_to_separate_schema epsilon
is "$(sql "SELECT count(*) FROM tenant_epsilon.graph_entities")/$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id = 'epsilon'")" \
	"30/0" "row-level security: all 30 of epsilon's entities moved"
sql "SET ROLE $APP; DROP POLICY tenant_isolation ON public.graph_entities;
     ALTER TABLE public.graph_entities DISABLE ROW LEVEL SECURITY" >/dev/null

# ---- finding 7: trigger code of a role the daemon does not trust

sql "GRANT TRIGGER ON public.graph_entities TO $MAL;
     SET ROLE $MAL;
     CREATE TRIGGER mallory_was_here BEFORE DELETE ON public.graph_entities
	FOR EACH ROW EXECUTE FUNCTION public.mallory_trigger()" >/dev/null ||
	bail_out "could not plant the trigger"
shared_before=$(mig_shared_all)
id=$(job1 migrate_to_separate_schema gamma)
ok "finding 7: a migration with $MAL's trigger on public.graph_entities fails" wait_state "$id" failed 30 ||
	diag_job "$id"
like "$(last_error "$id")" "refusing to migrate tenant \"gamma\": trigger mallory_was_here on public.graph_entities runs public.mallory_trigger\(\), owned by role $MAL" \
	"finding 7: refused at preflight, naming the trigger, its function and its owner"
is "$(sql "SELECT attempts || ' ' || step_index FROM pgtenantd.jobs WHERE id = $id")" "1 0" \
	"finding 7: at the first step, in one attempt"
is "$(mig_shared_all)/$(sql "SELECT to_regnamespace('tenant_gamma') IS NULL")/$(sql "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtenantd%'")/$(pwned)" \
	"$shared_before/t/0/0" "finding 7: nothing written: shared rows, no schema, no capture trigger, the trigger never ran"

# Trigger code of the application's role, which the daemon is a member of,
# is trusted: it runs.
sql "DROP TRIGGER mallory_was_here ON public.graph_entities;
     SET ROLE $APP;
     CREATE TABLE public.metadata_audit (tenant_id text, mode text);
     CREATE FUNCTION public.audit_metadata() RETURNS trigger
     LANGUAGE plpgsql AS \$\$
     BEGIN
	INSERT INTO public.metadata_audit VALUES (NEW.tenant_id, NEW.isolation_mode);
	RETURN NEW;
     END \$\$;
     CREATE TRIGGER audit_metadata AFTER INSERT OR UPDATE ON public.tenant_metadata
	FOR EACH ROW EXECUTE FUNCTION public.audit_metadata()" >/dev/null ||
	bail_out "could not create the application's trigger"
ok_job "finding 7: the application's own trigger on public.tenant_metadata does not stop a least-privileged daemon" \
	migrate_to_separate_schema gamma
is "$(sql "SELECT string_agg(tenant_id || ':' || mode, ',') FROM public.metadata_audit")" \
	"gamma:separate_schema" "finding 7: ... and it ran"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

# ================================================== a superuser daemon

write_config "$T/su.yaml"
start_daemon "$T/su.yaml" "$T/su.log" || bail_out "the daemon did not start as superuser"
like "$(cat "$T/su.log")" "connected to the database as superuser '[^']+'.*Running with least privilege" \
	"least privilege: a superuser daemon warns at start, naming the README section"

# The attack of finding 6 as reported: tenant_stats on a separate tenant
# calls format('%I.%I', name, name).
ok_job "finding 6: tenant_stats as superuser" tenant_stats umb
is "$(pwned)" 0 "finding 6: a superuser daemon did not run the planted public.format(text, name, name)"

# The application's trigger would now run as superuser: refused.
shared_before=$(mig_shared_all)
id=$(job1 migrate_to_separate_schema delta)
ok "finding 7: a superuser daemon refuses the migration" wait_state "$id" failed 30 || diag_job "$id"
like "$(last_error "$id")" "trigger audit_metadata on public.tenant_metadata runs public.audit_metadata\(\), owned by role $APP" \
	"finding 7: ... naming the application's trigger, whose code would run as superuser"
is "$(mig_shared_all)/$(sql "SELECT to_regnamespace('tenant_delta') IS NULL")/$(sql "SELECT count(*) FROM public.metadata_audit")" \
	"$shared_before/t/1" "finding 7: nothing written"
id=$(job1 drop_tenant gamma)
ok "finding 7: drop_tenant refuses too" wait_state "$id" failed 30 || diag_job "$id"
like "$(last_error "$id")" "refusing to write public.tenant_metadata .*trigger audit_metadata" \
	"finding 7: drop_tenant names the trigger"
is "$(sql "SELECT to_regnamespace('tenant_gamma') IS NOT NULL")" t \
	"finding 7: drop_tenant refused before the drop"
sql "DROP TRIGGER audit_metadata ON public.tenant_metadata" >/dev/null

# A trigger that appears after preflight: the batch that would fire it
# refuses, under its lock on the table, before any row is deleted.
gate_hold || bail_out "could not take the test gate"
id=$(mig_insert delta "{\"test_gate\": \"$MIG_GATE\"}")
ok "finding 7: the migration of delta gets to the copy" gate_to "$id" copy 1 ||
	bail_out "the migration did not reach the copy"
sql "GRANT TRIGGER ON public.graph_relations TO $MAL;
     SET ROLE $MAL;
     CREATE TRIGGER mallory_late BEFORE DELETE ON public.graph_relations
	FOR EACH ROW EXECUTE FUNCTION public.mallory_trigger()" >/dev/null ||
	bail_out "could not plant the late trigger"
gate_release
ok "finding 7: the delete batch refuses the trigger that came after preflight" \
	wait_until "SELECT last_error LIKE '%refusing to write public.graph_relations as role%mallory_late%'
		      FROM pgtenantd.jobs WHERE id = $id" 60 || diag_job "$id"
is "$(sql "SELECT count(*) FROM public.graph_relations WHERE tenant_id = 'delta'")/$(pwned)" "40/0" \
	"finding 7: no relation of delta deleted, the trigger never ran"
sql "SELECT pgtenantd.cancel_job($id)" >/dev/null
ok "the migration is cancelled" wait_cmd 30 sql_true \
	"SELECT state IN ('cancelled', 'failed') FROM pgtenantd.jobs WHERE id = $id"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
