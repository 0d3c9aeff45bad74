# migrate-sql.sh - the online migration's SQL functions (src/sql/v4.sql),
# called directly, one step at a time, with the writes that make each one
# matter in between: capture records keys, a copy batch runs each page
# once, purge and catch-up repair what the copy read while rows moved,
# verify leaves out keys still waiting and finds a tampered row, the
# cut-over's delta check finds a row changed since verify, a cut-over
# attempt over its lock budget rolls back and lets the writers go, a write
# after the flip fails with 40001, the delete leaves a row written past the
# capture and left_over names it; manual cut-over, throttling, and DDL that
# gives up (all or nothing) when a long transaction holds a shared table.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env migrate_sql

mig_schema
mig_fill acme-corp 300 600
mig_fill beta 200 200
mig_fill '' 10 10

# The daemon installs the schema and publishes the kinds, then goes: the
# test plays the job itself.
write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not start"
stop_daemon "$DAEMON_PID" || bail_out "the daemon did not stop"

# A job row in state running, as a claim leaves it: job TENANT.
job()
{
	sql "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('$MIG_KIND', :'t') RETURNING id;
	     UPDATE pgtenantd.jobs SET state = 'running' WHERE id = currval(pg_get_serial_sequence('pgtenantd.jobs', 'id'))" \
		-v t="$1" | head -1
}
F="pgtenantd.migration"

# ---- preflight, capture
id=$(job acme-corp)
is "$(sql "SELECT ${F}_preflight($id, 'acme-corp', '{graph_entities,graph_relations}', false, 'auto', '1s')")" 900 \
	"preflight records the migration and counts the tenant's shared rows"
is "$(sql "SELECT ${F}_preflight($id, 'acme-corp', '{graph_entities,graph_relations}', false, 'auto', '1s')")" 900 \
	"preflight again: the same, nothing new"
sql "SELECT ${F}_capture_on($id); SELECT ${F}_capture_on($id)" >/dev/null
is "$(sql "SELECT string_agg(tgname, ' ' ORDER BY tgrelid::regclass::text, tgname) FROM pg_trigger WHERE tgname LIKE 'pgtenantd%'")" \
	"pgtenantd_migration_${id}_delete pgtenantd_migration_${id}_insert pgtenantd_migration_${id}_truncate pgtenantd_migration_${id}_update pgtenantd_migration_${id}_delete pgtenantd_migration_${id}_insert pgtenantd_migration_${id}_truncate pgtenantd_migration_${id}_update" \
	"capture_on (twice) puts one set of triggers on each shared table"
sql "SELECT ${F}_create($id, NULL)" >/dev/null

# ---- copy with writes in between
is "$(sql "SELECT last_key ~ '^graph_entities:[0-9]+:2\$' AND rows > 0 FROM ${F}_copy_batch($id, 2)")" t \
	"a copy batch copies its pages and says where it stands"
sql "UPDATE public.graph_entities SET properties = '{\"moved\": 1}', embedding = decode(repeat('ab', 3000), 'hex')
      WHERE tenant_id = 'acme-corp' AND id = 'e000005';
     UPDATE public.graph_relations SET tenant_id = 'beta' WHERE tenant_id = 'acme-corp' AND id = 'r000300';
     INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('new', 'acme-corp', 'org');
     DELETE FROM public.graph_relations WHERE tenant_id = 'acme-corp' AND id = 'r000010';
     UPDATE public.graph_entities SET entity_type = 'beta-only' WHERE tenant_id = 'beta' AND id = 'e000010'" >/dev/null
is "$(sql "SELECT count(*) FROM pgtenantd.migration_changes WHERE job_id = $id")" 4 \
	"capture recorded the tenant's four writes and not the other tenant's"
sql "DO \$\$ DECLARE r record; BEGIN
	LOOP SELECT * INTO r FROM ${F}_copy_batch($id, 1); EXIT WHEN r.rows = 0; END LOOP; END \$\$" >/dev/null
is "$(sql "SELECT count(*) - count(DISTINCT id) FROM tenant_acme_corp.graph_entities")" 1 \
	"the copy read the updated row twice (its new version is on a later page)"
is "$(sql "SELECT rows FROM ${F}_copy_batch($id, 1)")" 0 "a copy batch after the end copies nothing"
is "$(sql "SELECT ${F}_purge($id)")" 3 \
	"purge removes every copied row of the captured keys (the updated row's two versions and the new row)"
sql "SELECT ${F}_next_index($id, 1, '64MB') FROM generate_series(1, 7)" >/dev/null
# Trigger code on a tenant table that the daemon's role does not trust is
# refused before catch-up writes there (as before the copy and the delete).
MAL=pgt_mal_$$
at_exit "sql \"DROP OWNED BY $MAL; DROP ROLE IF EXISTS $MAL\""
sql "CREATE ROLE $MAL NOLOGIN;
     GRANT CREATE ON SCHEMA public TO $MAL;
     GRANT USAGE ON SCHEMA tenant_acme_corp TO $MAL;
     GRANT TRIGGER ON tenant_acme_corp.graph_entities TO $MAL;
     SET ROLE $MAL;
     CREATE FUNCTION public.mal_trigger() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RETURN NEW; END \$\$;
     CREATE TRIGGER mal_late AFTER INSERT ON tenant_acme_corp.graph_entities
	FOR EACH ROW EXECUTE FUNCTION public.mal_trigger()" >/dev/null || bail_out "could not plant the trigger"
like "$(sql_err "SELECT ${F}_apply($id, 100)")" "mal_late on tenant_acme_corp.graph_entities runs public.mal_trigger\\(\\), owned by role $MAL" \
	"catch-up refuses to write a tenant table with trigger code of a role the daemon does not trust"
sql "DROP TRIGGER mal_late ON tenant_acme_corp.graph_entities" >/dev/null
is "$(sql "SELECT ${F}_apply($id, 100); SELECT ${F}_apply($id, 100)" | tr '\n' ' ')" "4 0 " \
	"catch-up applies the four changes once"
mig_snapshot acme-corp
is "$(mig_md5 "SELECT $MIG_E_COLS FROM tenant_acme_corp.graph_entities ORDER BY id")/$(mig_md5 "SELECT $MIG_R_COLS FROM tenant_acme_corp.graph_relations ORDER BY id")" \
	"$MIG_WANT_E/$MIG_WANT_R" "after catch-up the tenant tables hold exactly the shared rows' current state"

# ---- verify
sql "UPDATE public.graph_entities SET entity_type = 'pending' WHERE tenant_id = 'acme-corp' AND id = 'e000020'" >/dev/null
is "$(sql "SELECT string_agg(table_name || '=' || rows, ' ') FROM ${F}_verify($id)")" \
	"graph_entities=300 graph_relations=598" "verify passes, leaving out the key still waiting"
sql "UPDATE tenant_acme_corp.graph_entities SET entity_type = 'tampered' WHERE id = 'e000030'" >/dev/null
like "$(sql_err "SELECT * FROM ${F}_verify($id)")" \
	'verify failed for tenant "acme-corp": public.graph_entities has 300 rows .* tenant_acme_corp.graph_entities has 300 rows' \
	"verify finds a tampered row and names the table"
sql "UPDATE tenant_acme_corp.graph_entities t SET entity_type = s.entity_type FROM public.graph_entities s
      WHERE t.id = 'e000030' AND s.id = t.id AND s.tenant_id = 'acme-corp'" >/dev/null
sql "SELECT * FROM ${F}_verify($id)" >/dev/null
is "$(sql "SELECT ${F}_apply($id, 100); SELECT ${F}_check_delta($id) IS NULL")" "1
t" "the key changed since verify is applied and compares equal"
sql "UPDATE public.graph_entities SET entity_type = 'late' WHERE tenant_id = 'acme-corp' AND id = 'e000040';
     SELECT ${F}_apply($id, 100);
     UPDATE tenant_acme_corp.graph_entities SET entity_type = 'drift' WHERE id = 'e000040'" >/dev/null
is "$(sql "SELECT ${F}_check_delta($id)")" \
	'public.graph_entities and tenant_acme_corp.graph_entities differ at key ["e000040"]' \
	"the cut-over's delta check finds a key that differs"
sql "UPDATE tenant_acme_corp.graph_entities SET entity_type = 'late' WHERE id = 'e000040'" >/dev/null

# ---- cut-over: over the budget, then through
sql "UPDATE pgtenantd.migrations SET lock_budget = '200ms' WHERE job_id = $id" >/dev/null
exec {w}> >(PGAPPNAME=pgt-writer psql -X -q -d "$DB" >"$T/writer.out" 2>&1)
echo "BEGIN; UPDATE public.graph_entities SET properties = '{\"slow\": 1}' WHERE tenant_id = 'acme-corp' AND id = 'e000050';" >&$w
ok "a writer of the tenant holds the lock its writes share" \
	wait_until "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
				  WHERE a.datname = current_database() AND a.application_name = 'pgt-writer' AND l.locktype = 'advisory' AND l.granted)"
is "$(sql "SELECT last_key, rows FROM ${F}_cutover_batch($id, 100)")" "attempt 1 failed|1" \
	"a cut-over attempt that does not get the lock within half its budget gives up"
is "$(sql "SELECT phase || ' ' || cutover_attempts || ' ' || (last_cutover_error LIKE '%lock timeout%')
	     FROM pgtenantd.migrations WHERE job_id = $id")" "cutover 1 true" \
	"... and records the attempt and why"
is "$(sql "SELECT pg_try_advisory_xact_lock_shared(${F}_lock_key($id))")" t \
	"... holding no lock afterwards (a writer may take the lock it shares)"
echo "UPDATE public.graph_entities SET properties = '{\"slow\": 2}' WHERE tenant_id = 'acme-corp' AND id = 'e000060'; COMMIT;" >&$w
exec {w}>&-
ok "the writer went on and committed" \
	wait_until "SELECT properties->>'slow' = '2' FROM public.graph_entities WHERE tenant_id = 'acme-corp' AND id = 'e000060'"
is "$(sql "SELECT rows FROM ${F}_cutover_batch($id, 100)")" 0 "the next attempt cuts over"
is "$(sql "SELECT m.phase || ' ' || m.cutover_attempts || ' ' || t.isolation_mode
	     FROM pgtenantd.migrations m, public.tenant_metadata t
	    WHERE m.job_id = $id AND t.tenant_id = 'acme-corp'")" "moved 2 separate_schema" \
	"the migration is moved and public.tenant_metadata flipped"
is "$(sql "SELECT properties->>'slow' FROM tenant_acme_corp.graph_entities WHERE id IN ('e000050', 'e000060') ORDER BY id" | tr '\n' ' ')" \
	"1 2 " "the writes committed before the cut-over are in the tenant's schema"
err=$(sql_err "\\set VERBOSITY verbose
	UPDATE public.graph_entities SET entity_type = 'x' WHERE tenant_id = 'acme-corp' AND id = 'e000070'")
like "$err" '40001: pgtenantd: tenant "acme-corp" was moved to schema "tenant_acme_corp" by migration job' \
	"a write to the tenant's shared rows after the flip fails with 40001 naming the migration"
like "$(sql_err "TRUNCATE public.graph_relations")" "cannot be truncated while tenant \"acme-corp\" moves" \
	"TRUNCATE stays refused until the migration is done"

# ---- delete, left_over, finish
sql "SET session_replication_role = replica;
     INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('sneaky', 'acme-corp', 'org')" >/dev/null
sql "DO \$\$ DECLARE k text := ''; r record; BEGIN
	LOOP SELECT * INTO r FROM ${F}_delete_batch($id, k, 3); EXIT WHEN r.rows = 0 OR r.last_key IS NULL; k := r.last_key; END LOOP; END \$\$" >/dev/null
is "$(sql "SELECT string_agg(id, ',') FROM public.graph_entities WHERE tenant_id = 'acme-corp'")/$(sql "SELECT count(*) FROM public.graph_relations WHERE tenant_id = 'acme-corp'")" \
	"sneaky/0" "the delete takes every shared row of the tenant but the one written past the capture after the flip"
like "$(sql_err "SELECT ${F}_left_over($id)")" '1 shared rows of tenant "acme-corp" were written after its cut-over' \
	"left_over names it"
sql "SET session_replication_role = replica;
     DELETE FROM public.graph_entities WHERE tenant_id = 'acme-corp' AND id = 'sneaky'" >/dev/null
sql "SELECT ${F}_left_over($id); SELECT ${F}_finish($id); SELECT ${F}_finish($id)" >/dev/null
is "$(sql "SELECT phase FROM pgtenantd.migrations WHERE job_id = $id")/$(sql "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtenantd%'")/$(sql "SELECT count(*) FROM pgtenantd.migration_changes")" \
	"done/0/0" "finish (twice): capture off, change rows gone"

# ---- manual cut-over and throttling (beta)
id=$(job beta)
# The application's role uses the shared tables; an outsider does not.
READER=pgt_reader_$$ OUTSIDER=pgt_outsider_$$
at_exit "sql \"DROP OWNED BY $READER, $OUTSIDER; DROP ROLE IF EXISTS $READER, $OUTSIDER\""
sql "CREATE ROLE $READER NOLOGIN; CREATE ROLE $OUTSIDER NOLOGIN;
     GRANT SELECT, INSERT, UPDATE, DELETE ON public.graph_entities, public.graph_relations TO $READER;
     SELECT ${F}_preflight($id, 'beta', '{graph_entities,graph_relations}', false, 'manual', '1s');
     SELECT ${F}_capture_on($id)" >/dev/null
like "$(sql_err "SELECT ${F}_create($id, ARRAY['no_such_role_$$'])")" "arg grant_to names role \"no_such_role_$$\", which does not exist" \
	"grant_to naming a role that does not exist is refused"
like "$(sql_err "SELECT ${F}_create($id, ARRAY['$OUTSIDER'])")" \
	"arg grant_to names role \"$OUTSIDER\", which may not read public.graph_entities; a role gets on the tenant's tables only the rights it has on the shared ones" \
	"grant_to naming a role without rights on the shared tables is refused (an enqueuer cannot lend itself the daemon's rights)"
sql "SELECT ${F}_create($id, ARRAY['$READER'])" >/dev/null
is "$(sql "SELECT has_schema_privilege('public', 'tenant_beta', 'USAGE'),
		  has_schema_privilege('$READER', 'tenant_beta', 'USAGE'),
		  has_table_privilege('$READER', 'tenant_beta.graph_relations', 'SELECT')
		  AND has_table_privilege('$READER', 'tenant_beta.graph_entities', 'INSERT')
		  AND has_table_privilege('$READER', 'tenant_beta.graph_entities', 'UPDATE')
		  AND has_table_privilege('$READER', 'tenant_beta.graph_relations', 'DELETE'),
		  has_table_privilege('$READER', 'tenant_beta.graph_relations', 'TRUNCATE')")" "f|t|t|f" \
	"the new schema: nothing for PUBLIC; the grant_to role may use its tables (not truncate them)"
like "$(sql "SELECT ${F}_throttle($id, 0)")" "paused" "throttle 0 pauses"
is "$(sql "SELECT last_key ~ 'paused' AND rows = 1 FROM ${F}_copy_batch($id, 5);
	     SELECT count(*) FROM tenant_beta.graph_entities" | tr '\n' ' ')" "t 0 " \
	"a paused copy batch copies nothing and keeps the loop going"
like "$(sql "SELECT ${F}_throttle($id, 1)")" "at most 1 pages or keys per batch" "throttle N caps the batch"
is "$(sql "SELECT last_key FROM ${F}_copy_batch($id, 50)")" \
	"graph_entities:$(sql "SELECT pg_relation_filenode('public.graph_entities')"):1" "a capped copy batch covers one page"
sql "SELECT ${F}_throttle($id, NULL);
     DO \$\$ DECLARE r record; BEGIN
	LOOP SELECT * INTO r FROM ${F}_copy_batch($id, 100); EXIT WHEN r.rows = 0; END LOOP; END \$\$;
     SELECT ${F}_purge($id); SELECT ${F}_next_index($id, 1, '64MB') FROM generate_series(1, 7);
     SELECT * FROM ${F}_verify($id)" >/dev/null
is "$(sql "SELECT last_key, rows FROM ${F}_cutover_batch($id, 100)")" \
	"waiting for pgtenantd.migration_cutover($id)|1" "a manual cut-over waits, caught up"
is "$(sql "SELECT phase, cutover_go FROM pgtenantd.migration_status WHERE job_id = $id")" "verify|f" \
	"... not moved, no go yet"
like "$(sql "SELECT ${F}_cutover($id)")" "cuts over once caught up" "go"
is "$(sql "SELECT rows FROM ${F}_cutover_batch($id, 100)")" 0 "then it cuts over"
like "$(sql_err "SELECT ${F}_throttle(999999, 0)")" "job 999999 is not a migration that has started" \
	"throttling a job that is not a migration names it"

# ---- the tables arg: a table other than the graph tables only if the
# enqueuer may read and delete from it
ENQ=pgt_enqueuer_$$
at_exit "sql \"DROP OWNED BY $ENQ; DROP ROLE IF EXISTS $ENQ\""
sql "CREATE TABLE public.secrets (id text, tenant_id text, secret text, PRIMARY KEY (id, tenant_id));
     INSERT INTO public.secrets VALUES ('s1', 'beta2', 'hunter2');
     INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('b', 'beta2', 'org');
     CREATE ROLE $ENQ NOLOGIN IN ROLE pgtenantd_operate" >/dev/null
id=$(sql "SET ROLE $ENQ; INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	  VALUES ('$MIG_KIND', 'beta2', '{\"tables\": \"graph_entities,secrets\"}') RETURNING id" | tail -1)
like "$(sql_err "SELECT ${F}_preflight($id, 'beta2', '{graph_entities,secrets}', false, 'auto', '1s')")" \
	"arg tables names public.secrets, which role $ENQ \\(who enqueued job $id\\) may not read and delete from" \
	"tables naming a table the enqueuer may not read and delete from is refused"
is "$(sql "SELECT count(*) FROM pgtenantd.migrations WHERE job_id = $id")" 0 "... before anything is recorded"
sql "GRANT SELECT, DELETE ON public.secrets TO $ENQ" >/dev/null
is "$(sql "SELECT ${F}_preflight($id, 'beta2', '{graph_entities,secrets}', false, 'auto', '1s')")" 2 \
	"... and accepted once the enqueuer may"

# ---- DDL that cannot get its lock gives up whole, within its retries
id=$(job Zeta)
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('z', 'Zeta', 'org');
     SELECT ${F}_preflight($id, 'Zeta', '{graph_entities,graph_relations}', false, 'auto', '1s')" >/dev/null
exec {w}> >(PGAPPNAME=pgt-long psql -X -q -d "$DB" >/dev/null 2>&1)
echo "BEGIN; LOCK TABLE public.graph_relations IN ROW EXCLUSIVE MODE; SELECT pg_sleep(60);" >&$w
wait_until "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgt-long' AND query LIKE '%pg_sleep%')" ||
	diag "the long transaction did not start"
like "$(sql_err "SELECT ${F}_capture_on($id)")" "could not add the capture triggers of migration job $id \\(12 tries of 100 ms each" \
	"capture_on gives up when a long transaction holds a shared table"
is "$(sql "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgtenantd\\_migration\\_${id}\\_%'")" 0 \
	"... leaving no trigger on the other table (all or nothing)"
ok "it leaves no lock behind: other writes to the shared tables go on" \
	sql "SET lock_timeout = '2s'; UPDATE public.graph_entities SET entity_type = 'w' WHERE tenant_id = '' AND id = 'e000010'"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgt-long'" >/dev/null
exec {w}>&-

done_testing
