#!/bin/bash
# create-tenant.sh - issue 12, part 1: the create_tenant job kind clones a
# template schema into tenant_<id>: tables with their columns, defaults,
# identity and generated columns, constraints, indexes named after the new
# schema, foreign keys and sequences pointing inside the clone, comments,
# owners and grants; the schema is closed to PUBLIC and open to the roles
# of tenant_roles; the tenant is recorded as separate_schema. It refuses
# for good what must not run, each with its message; a job killed inside
# its clone converges when it resumes, and the clone run again by the
# same job finds its work done.
#
# Roles are cluster-wide: this test makes its own, named after its pid,
# and drops them at exit.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env create-tenant

APP=pgt_ct_app_$$       # the application: tenant_roles, granted in the template
OWNER=pgt_ct_owner_$$   # owns the application's tables and the template
OTHER=pgt_ct_other_$$   # a role the template grants nothing
DROLE=pgt_ct_daemon_$$  # the daemon's login role: not a superuser
TOWN=pgt_ct_town_$$     # owns a template the daemon's role is no member of
ENQ=pgt_ct_enq_$$       # may enqueue create_tenant (pgtenantd_operate)
MAINT=pgt_ct_maint_$$   # may enqueue maintenance only (pgtenantd_enqueue)
ROLES="$APP, $OWNER, $OTHER, $DROLE, $TOWN, $ENQ, $MAINT"
at_exit "sql \"DROP OWNED BY $ROLES CASCADE; DROP ROLE IF EXISTS $ROLES\""
# The daemon runs as README's "Running with least privilege" says: a
# member of the application's owner, with CREATE on the database.
sql "$(cat "$top_srcdir/etc/pgtenantd-setup.sql")" >/dev/null ||
	bail_out "etc/pgtenantd-setup.sql failed"
sql "CREATE ROLE $APP NOLOGIN; CREATE ROLE $OTHER NOLOGIN; CREATE ROLE $OWNER NOLOGIN;
     CREATE ROLE $TOWN NOLOGIN;
     CREATE ROLE $DROLE LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE $OWNER;
     GRANT CONNECT, CREATE ON DATABASE $DB TO $DROLE;
     CREATE ROLE $ENQ NOLOGIN IN ROLE pgtenantd_operate;
     CREATE ROLE $MAINT NOLOGIN IN ROLE pgtenantd_enqueue" >/dev/null ||
	bail_out "could not create the roles"

write_config "$T/a.yaml" "database: \"dbname=$DB user=$DROLE\"" "tenant_roles: [$APP]"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start as $DROLE"

# The application's template: its two graph tables with a custom column,
# the application's index names, a foreign key inside the template, a
# ticket number from a sequence of the template, a serial column, an
# identity column, a generated column, a check, comments, an extra table
# of its own, and grants to the application's role.
sql "CREATE SCHEMA tenant_template AUTHORIZATION $OWNER;
     SET ROLE $OWNER;
     COMMENT ON SCHEMA tenant_template IS 'the template of every tenant';
     CREATE SEQUENCE tenant_template.ticket_seq START 100 INCREMENT 5;
     CREATE TABLE tenant_template.graph_entities (
	id text PRIMARY KEY,
	entity_type text NOT NULL,
	properties jsonb,
	embedding bytea,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	priority integer NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
	ticket bigint DEFAULT nextval('tenant_template.ticket_seq'),
	label text GENERATED ALWAYS AS (entity_type || ':' || id) STORED);
     CREATE TABLE tenant_template.graph_relations (
	id text PRIMARY KEY,
	relation_type text NOT NULL,
	source_id text NOT NULL REFERENCES tenant_template.graph_entities (id) ON DELETE CASCADE,
	target_id text NOT NULL,
	properties jsonb,
	weight real,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT uq_tenant_template_relations UNIQUE (source_id, target_id, relation_type));
     CREATE INDEX idx_tenant_template_entities_type ON tenant_template.graph_entities (entity_type);
     CREATE INDEX idx_tenant_template_relations_type ON tenant_template.graph_relations (relation_type);
     CREATE INDEX idx_tenant_template_relations_source ON tenant_template.graph_relations (source_id);
     CREATE INDEX idx_tenant_template_entities_name ON tenant_template.graph_entities
	((properties ->> 'name') text_pattern_ops, created_at DESC) INCLUDE (priority);
     CREATE INDEX idx_tenant_template_relations_target ON tenant_template.graph_relations (target_id)
	WHERE weight IS NOT NULL;
     CREATE UNLOGGED TABLE tenant_template.audit_log (
	seq serial PRIMARY KEY,
	n bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000),
	what text COLLATE \"C\" NOT NULL) WITH (fillfactor = 80);
     COMMENT ON TABLE tenant_template.audit_log IS 'what happened, per tenant';
     CREATE STATISTICS tenant_template.st_entities (dependencies) ON entity_type, priority
	FROM tenant_template.graph_entities;
     COMMENT ON COLUMN tenant_template.graph_entities.priority IS '1 (high) to 5 (low)';
     COMMENT ON INDEX tenant_template.idx_tenant_template_entities_type IS 'the application''s index';
     COMMENT ON CONSTRAINT uq_tenant_template_relations ON tenant_template.graph_relations IS 'one edge per pair and type';
     GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tenant_template TO $APP;
     GRANT USAGE ON ALL SEQUENCES IN SCHEMA tenant_template TO $APP;
     -- whoever enqueues create_tenant must be allowed to look into it
     GRANT USAGE ON SCHEMA tenant_template TO $ENQ;
     RESET ROLE;
     -- what the template's rows must not become: data of a tenant
     INSERT INTO tenant_template.graph_entities (id, entity_type) VALUES ('template-row', 'x')" >/dev/null ||
	bail_out "could not create the template"

# The shared tables, with a tenant still in them and one whose id maps to
# the schema of another id.
mig_schema >/dev/null || bail_out "could not create the shared tables"
mig_fill shared-one 3 2 >/dev/null || bail_out "could not fill shared-one"
mig_fill Twin-A 2 1 >/dev/null || bail_out "could not fill Twin-A"
sql "CREATE TABLE public.tenant_metadata (
	tenant_id text PRIMARY KEY,
	isolation_mode text NOT NULL DEFAULT 'shared_schema');
     INSERT INTO public.tenant_metadata VALUES ('old-co', 'archived');
     ALTER TABLE public.graph_entities OWNER TO $OWNER;
     ALTER TABLE public.graph_relations OWNER TO $OWNER;
     ALTER TABLE public.tenant_metadata OWNER TO $OWNER" >/dev/null ||
	bail_out "could not create public.tenant_metadata"

# Enqueue create_tenant as role ENQ: enqueue TENANT [ARGS_JSON].
enqueue()
{
	sql "SET ROLE $ENQ;
	     INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	     VALUES ('create_tenant', '$1', '${2:-"{}"}') RETURNING id"
}

# ---- the clone
id=$(enqueue Acme-Corp)
ok "create_tenant Acme-Corp succeeds" wait_state "$id" succeeded 20 || diag_job "$id"
S=tenant_acme_corp
is "$(sql "SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class
	    WHERE relnamespace = '$S'::regnamespace AND relkind = 'r'")" \
	"audit_log graph_entities graph_relations" "the template's tables, the extra one too"
is "$(sql "SELECT count(*) FROM $S.graph_entities")" 0 "no row of the template is copied"
is "$(sql "SELECT string_agg(format('%s %s %s %s', attname, format_type(atttypid, atttypmod),
				    attnotnull, coalesce(pg_get_expr(adbin, adrelid), '-')), ', ' ORDER BY attnum)
	    FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
	    WHERE attrelid = '$S.graph_entities'::regclass AND attnum > 0 AND NOT attisdropped")" \
	"id text t -, entity_type text t -, properties jsonb f -, embedding bytea f -, created_at timestamp with time zone t now(), updated_at timestamp with time zone t now(), priority integer t 3, ticket bigint f nextval('$S.ticket_seq'::regclass), label text f ((entity_type || ':'::text) || id)" \
	"graph_entities: the columns, the custom ones too, with types, NOT NULL and defaults; the ticket default draws from the clone's sequence"
is "$(sql "SELECT attgenerated FROM pg_attribute WHERE attrelid = '$S.graph_entities'::regclass AND attname = 'label'")" \
	s "the generated column stays generated"
is "$(sql "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_index i
	    JOIN pg_class c ON c.oid = i.indexrelid
	    WHERE c.relnamespace = '$S'::regnamespace")" \
	"audit_log_pkey graph_entities_pkey graph_relations_pkey idx_${S}_entities_name idx_${S}_entities_type idx_${S}_relations_source idx_${S}_relations_target idx_${S}_relations_type uq_${S}_relations" \
	"the indexes, named after the new schema where the template's names held the template's"
is "$(sql "SELECT pg_get_indexdef('$S.idx_${S}_relations_target'::regclass)")" \
	"CREATE INDEX idx_${S}_relations_target ON $S.graph_relations USING btree (target_id) WHERE (weight IS NOT NULL)" \
	"an index keeps its columns and predicate, on the clone's table"
is "$(sql "SELECT pg_get_indexdef('$S.idx_${S}_entities_name'::regclass)")" \
	"CREATE INDEX idx_${S}_entities_name ON $S.graph_entities USING btree (((properties ->> 'name'::text)) text_pattern_ops, created_at DESC) INCLUDE (priority)" \
	"an expression index keeps its operator class, order and INCLUDE"
is "$(sql "SELECT string_agg(pg_get_constraintdef(oid), ' | ' ORDER BY conname) FROM pg_constraint
	    WHERE conrelid = '$S.graph_relations'::regclass")" \
	"PRIMARY KEY (id) | FOREIGN KEY (source_id) REFERENCES $S.graph_entities(id) ON DELETE CASCADE | UNIQUE (source_id, target_id, relation_type)" \
	"graph_relations: its key, its unique constraint and a foreign key to the clone's graph_entities"
is "$(sql "SELECT pg_get_constraintdef(oid) FROM pg_constraint
	    WHERE conrelid = '$S.graph_entities'::regclass AND contype = 'c'")" \
	"CHECK (((priority >= 1) AND (priority <= 5)))" "the check constraint"
is "$(sql "SELECT seqstart || ' ' || seqincrement FROM pg_sequence WHERE seqrelid = '$S.ticket_seq'::regclass")" \
	"100 5" "the template's sequence, with its settings"
is "$(sql "SELECT pg_get_serial_sequence('$S.audit_log', 'seq') || ' ' || pg_get_serial_sequence('$S.audit_log', 'n')")" \
	"$S.audit_log_seq_seq $S.audit_log_n_seq" \
	"the serial column's sequence is OWNED BY the clone's column; the identity column has its own"
is "$(sql "SELECT seqstart FROM pg_sequence WHERE seqrelid = '$S.audit_log_n_seq'::regclass")" 1000 \
	"the identity column keeps its START"
is "$(sql "SELECT reloptions::text || ' ' || relpersistence::text FROM pg_class WHERE oid = '$S.audit_log'::regclass")" "{fillfactor=80} u" \
	"storage parameters, UNLOGGED"
is "$(sql "SELECT stxnamespace::regnamespace || ' ' || stxkind::text FROM pg_statistic_ext WHERE stxrelid = '$S.graph_entities'::regclass")" \
	"$S {f}" "extended statistics, in the new schema"
is "$(sql "SELECT obj_description('$S.audit_log'::regclass, 'pg_class') || ' / '
	    || col_description('$S.graph_entities'::regclass, 7) || ' / '
	    || obj_description('$S.idx_${S}_entities_type'::regclass, 'pg_class') || ' / '
	    || (SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint
		 WHERE conrelid = '$S.graph_relations'::regclass AND conname = 'uq_${S}_relations')")" \
	"what happened, per tenant / 1 (high) to 5 (low) / the application's index / one edge per pair and type" \
	"comments on the table, the column, the index and the constraint"
is "$(sql "SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid
	    WHERE d.refclassid = 'pg_class'::regclass AND c.relnamespace = 'tenant_template'::regnamespace
	      AND d.objid IN (SELECT oid FROM pg_class WHERE relnamespace = '$S'::regnamespace
			      UNION ALL SELECT oid FROM pg_attrdef WHERE adrelid IN
				(SELECT oid FROM pg_class WHERE relnamespace = '$S'::regnamespace)
			      UNION ALL SELECT oid FROM pg_constraint WHERE connamespace = '$S'::regnamespace)")" \
	0 "nothing of the clone depends on the template"
is "$(sql "BEGIN; DROP SCHEMA tenant_template CASCADE;
	    SELECT count(*) FROM pg_class WHERE relnamespace = '$S'::regnamespace; ROLLBACK" | tail -n 1)" \
	"$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = '$S'::regnamespace")" \
	"dropping the template would leave every object of the clone in place"
is "$(sql "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = 'Acme-Corp'")" separate_schema \
	"public.tenant_metadata records the tenant as separate_schema"
is "$(sql "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = '$S'::regnamespace")
$(sql "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = '$S'")" "$OWNER
$OWNER" "the schema and all in it belong to the template's owner (the daemon's role is a member)"
res=$(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")
is "$(json_eval "$res" "(:'j')::jsonb->>'schema'") $(json_eval "$res" "(:'j')::jsonb->'tables'")" \
	"$S [\"audit_log\", \"graph_entities\", \"graph_relations\"]" "the result names the schema and its tables"

# The default template's name is the schema tenant id "template" would
# have: separate_tenants() (schedules with tenants: separate) counts it
# until public.tenant_metadata says it is no tenant (doc/tenants.md).
is "$(sql "SELECT 'template' = ANY (ARRAY(SELECT pgtenantd.separate_tenants()))")
$(sql "INSERT INTO public.tenant_metadata VALUES ('template', 'template');
	SELECT 'template' = ANY (ARRAY(SELECT pgtenantd.separate_tenants()))")" "t
f" "the template is left out of separate_tenants() once public.tenant_metadata marks it"

# ---- who may use it
is "$(sql "SET ROLE $APP;
	    INSERT INTO $S.graph_entities (id, entity_type) VALUES ('e1', 'person'), ('e2', 'place');
	    INSERT INTO $S.graph_relations (id, relation_type, source_id, target_id) VALUES ('r1', 'near', 'e1', 'e2');
	    INSERT INTO $S.audit_log (what) VALUES ('made');
	    SELECT string_agg(id || ':' || ticket || ':' || label, ' ' ORDER BY id) FROM $S.graph_entities")" \
	"e1:100:person:e1 e2:105:place:e2" \
	"the application's role writes and reads the new schema (tickets from the clone's sequence)"
is "$(sql "SELECT last_value FROM tenant_template.ticket_seq")" 100 "... and the template's sequence was not used"
like "$(sql_err "SET ROLE $OTHER; SELECT count(*) FROM $S.graph_entities")" \
	"permission denied for schema $S" "a role not granted may not use the schema"
is "$(sql "SELECT has_schema_privilege('$OTHER', '$S', 'USAGE') || ' ' || has_schema_privilege('$APP', '$S', 'USAGE')
	    || ' ' || EXISTS (SELECT FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = '$S' AND a.grantee = 0)")" \
	"false true false" "PUBLIC has nothing on the schema, the application's role USAGE"
is "$(sql "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type)
	    FROM information_schema.role_table_grants
	    WHERE table_schema = '$S' AND table_name = 'graph_entities' AND grantee = '$APP'")" \
	"DELETE,INSERT,SELECT,UPDATE" "the application's role has on the tables what the template grants it"

# ---- run again by the same job: its work is done (a crash after the
# commit, before the daemon recorded the step)
before=$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = '$S'::regnamespace")
is "$(sql "SELECT pgtenantd.create_tenant_clone($id, 'Acme-Corp', 'tenant_template', ARRAY['$APP'])->>'schema'")" \
	"$S" "the clone run again by the same job returns its result"
is "$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = '$S'::regnamespace") $(sql "SELECT count(*) FROM $S.graph_entities")" \
	"$before 2" "... and changes nothing"
like "$(sql_err "SELECT pgtenantd.create_tenant_clone($id + 1000, 'Acme-Corp', 'tenant_template', ARRAY['$APP'])")" \
	"already exists \\(create_tenant job $id, tenant Acme-Corp" "another job id is refused"

# ---- refusals: each fails for good, at its first attempt, saying why
# Enqueue TENANT with ARGS, wait until the job failed and check its error:
# refused NAME TENANT ARGS REGEX.
refused()
{
	local jid
	jid=$(enqueue "$2" "$3")
	if ! wait_state "$jid" failed 15; then
		tap_result 1 "$1"
		diag_job "$jid"
		return 1
	fi
	like "$(sql "SELECT attempts || ' ' || last_error FROM pgtenantd.jobs WHERE id = $jid")" "^1 .*$4" "$1"
}
refused "an existing schema made by create_tenant is refused" Acme-Corp '{}' \
	"refusing to create tenant \"Acme-Corp\": schema \"$S\" of tenant \"Acme-Corp\" already exists \\(create_tenant job $id"
sql "CREATE SCHEMA tenant_squatter; CREATE TABLE tenant_squatter.mine (x int)" >/dev/null
refused "a schema that exists already is refused" squatter '{}' \
	"schema \"tenant_squatter\" of tenant \"squatter\" already exists; create_tenant only makes a new schema"
is "$(sql "SELECT count(*) FROM tenant_squatter.mine")" 0 "... and left alone"
refused "a template that does not exist is refused" new-one '{"template": "no_such_template"}' \
	"there is no template schema \"no_such_template\""
sql "CREATE SCHEMA tmpl_view; CREATE TABLE tmpl_view.t (x int);
     CREATE VIEW tmpl_view.v AS SELECT x FROM tmpl_view.t;
     CREATE FUNCTION tmpl_view.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
     CREATE TABLE tmpl_view.u (t tmpl_view.t);
     GRANT USAGE ON SCHEMA tmpl_view TO $ENQ" >/dev/null
refused "a template holding a view, a function and a column of its own type is refused, naming them" new-one '{"template": "tmpl_view"}' \
	"template schema \"tmpl_view\" holds what create_tenant cannot clone: column t of tmpl_view.u \\(its type tmpl_view.t is the template's\\); function tmpl_view.f\\(\\); tmpl_view.v \\(a view\\)"
sql "CREATE SCHEMA tmpl_trig; CREATE TABLE tmpl_trig.t (x int);
     CREATE FUNCTION public.pgt_ct_trig_$$() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
     CREATE TRIGGER stamp BEFORE INSERT ON tmpl_trig.t FOR EACH ROW EXECUTE FUNCTION public.pgt_ct_trig_$$();
     ALTER TABLE tmpl_trig.t ENABLE ROW LEVEL SECURITY;
     CREATE POLICY mine ON tmpl_trig.t USING (true);
     GRANT USAGE ON SCHEMA tmpl_trig TO $ENQ" >/dev/null
refused "a template with a trigger and a policy is refused, naming them" new-one '{"template": "tmpl_trig"}' \
	"cannot clone: policy mine on tmpl_trig.t; trigger stamp on tmpl_trig.t"
sql "CREATE SCHEMA tmpl_private; CREATE TABLE tmpl_private.t (x int)" >/dev/null
refused "a template the enqueuer may not look into is refused" new-one '{"template": "tmpl_private"}' \
	"role $ENQ \\(who enqueued job [0-9]+\\) has no USAGE on the template schema \"tmpl_private\""
refused "pgtenantd's own schema is no template" new-one '{"template": "pgtenantd"}' \
	"schema \"pgtenantd\" is a system schema, not a template"
refused "a tenant with rows in the shared tables is refused: it is to be migrated" shared-one '{}' \
	"tenant \"shared-one\" has rows in public.graph_entities: move it with migrate_to_separate_schema instead"
refused "an id whose schema is another shared tenant's is refused" twin_a '{}' \
	"tenant ids \"twin_a\" and \"Twin-A\" \\(rows in public.graph_entities\\) both map to schema \"tenant_twin_a\""
sql "INSERT INTO public.tenant_metadata VALUES ('fresh-co', 'shared_schema')" >/dev/null
id=$(enqueue fresh-co)
ok "a tenant known as shared but without shared rows is created" wait_state "$id" succeeded 20 || diag_job "$id"
is "$(sql "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = 'fresh-co'")" separate_schema \
	"... and its row says separate_schema now"
refused "an archived tenant is refused" old-co '{}' \
	"tenant \"old-co\" is archived \\(public.tenant_metadata\\): restore it from its backup instead"
is "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname IN ('tenant_new_one', 'tenant_shared_one', 'tenant_twin_a', 'tenant_old_co')")" \
	0 "no refused job made a schema"
like "$(sql_err "SET ROLE $ENQ; INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('create_tenant', 'acme_corp')")" \
	"tenant id \"acme_corp\" names the schema \"tenant_acme_corp\" of the known tenant \"Acme-Corp\"" \
	"a twin of a known tenant is refused at INSERT"
like "$(sql_err "SET ROLE $ENQ; INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('create_tenant', '$(printf 'a%.0s' {1..57})')")" \
	"makes the schema name .* of 64 bytes, over PostgreSQL's 63-byte identifier limit" \
	"an id whose schema name is over 63 bytes is refused at INSERT"
is "$(sql "SELECT pgtenantd.create_tenant_refusal(0, '$(printf 'a%.0s' {1..57})', 'tenant_template', '{}')")" \
	"the schema name \"tenant_$(printf 'a%.0s' {1..57})\" of tenant \"$(printf 'a%.0s' {1..57})\" has 64 bytes, over PostgreSQL's 63-byte limit" \
	"... and by the function itself"
is "$(sql "INSERT INTO public.tenant_metadata VALUES ('Meta-Twin', 'shared_schema');
	    SELECT pgtenantd.create_tenant_refusal($id, 'meta_twin', 'tenant_template', '{}')")" \
	"tenant ids \"meta_twin\" and \"Meta-Twin\" (public.tenant_metadata) both map to schema \"tenant_meta_twin\"" \
	"a twin in public.tenant_metadata is refused (when it came after the INSERT's check)"
like "$(sql_err "SET ROLE $MAINT; INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('create_tenant', 'maint-co')")" \
	"role \"$MAINT\" may not enqueue job kind \"create_tenant\"" \
	"a role that may enqueue maintenance only may not enqueue create_tenant"
like "$(sql_err "SET ROLE $ENQ; SELECT pgtenantd.create_tenant_clone(1, 'x', 'tenant_template', '{}')")" \
	"permission denied for function create_tenant_clone" "an enqueuer may not call the clone function itself"
is "$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE has_function_privilege('$ENQ', p.oid, 'EXECUTE'))
	    FROM pg_proc p
	    WHERE p.pronamespace = 'pgtenantd'::regnamespace AND p.proname LIKE 'create\_tenant\_%'")" "10 0" \
	"none of the 10 create_tenant functions is executable by others than the daemon's role"

# tenant_roles is reloadable; a role there that does not exist refuses
write_config "$T/a.yaml" "database: \"dbname=$DB user=$DROLE\"" "tenant_roles: [$APP, pgt_ct_nosuch_$$]"
ctl reload >/dev/null || diag "reload failed"
refused "a tenant_roles role that does not exist is refused" new-one '{}' \
	"tenant_roles \\(configuration\\) names role \"pgt_ct_nosuch_$$\", which does not exist"
write_config "$T/a.yaml" "database: \"dbname=$DB user=$DROLE\"" "tenant_roles: [$APP, $OTHER]"
ctl reload >/dev/null || diag "reload failed"
id=$(enqueue second-co)
ok "after a reload, create_tenant uses the new tenant_roles" wait_state "$id" succeeded 20 || diag_job "$id"
is "$(sql "SELECT has_schema_privilege('$OTHER', 'tenant_second_co', 'USAGE')")" t \
	"... and grants USAGE to each of them"

# A template owned by a role the daemon's role is no member of (it may
# read it): the daemon keeps the clone and grants that owner everything.
sql "CREATE SCHEMA tmpl_foreign AUTHORIZATION $TOWN;
     SET ROLE $TOWN;
     CREATE TABLE tmpl_foreign.items (id int PRIMARY KEY, name text);
     GRANT USAGE ON SCHEMA tmpl_foreign TO $DROLE, $ENQ;
     GRANT SELECT ON tmpl_foreign.items TO $DROLE, $APP" >/dev/null ||
	bail_out "could not create tmpl_foreign"
id=$(enqueue foreign-co '{"template": "tmpl_foreign"}')
ok "a template of a role the daemon is no member of is cloned" wait_state "$id" succeeded 20 || diag_job "$id"
is "$(sql "SELECT pg_get_userbyid(nspowner) || ' ' || has_schema_privilege('$TOWN', nspname, 'CREATE')
	    FROM pg_namespace WHERE nspname = 'tenant_foreign_co'")
$(sql "SELECT pg_get_userbyid(relowner) || ' ' || has_table_privilege('$TOWN', oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
	    || ' ' || has_table_privilege('$APP', oid, 'SELECT') || ' ' || has_table_privilege('$APP', oid, 'INSERT')
	    FROM pg_class WHERE oid = 'tenant_foreign_co.items'::regclass")" \
	"$DROLE true
$DROLE true true false" "... owned by the daemon's role, the template's owner granted everything, the template's grants copied"

# A template schema of a role the daemon's role is no member of, with a
# table of the application's owner: the new schema stays the daemon's, so
# that owner (who may not create in it) gets every right on its table
# instead of owning it.
sql "CREATE SCHEMA tmpl_mixed AUTHORIZATION $TOWN;
     GRANT USAGE, CREATE ON SCHEMA tmpl_mixed TO $OWNER;
     GRANT USAGE ON SCHEMA tmpl_mixed TO $ENQ;
     SET ROLE $OWNER;
     CREATE TABLE tmpl_mixed.items (id int PRIMARY KEY)" >/dev/null || bail_out "could not create tmpl_mixed"
id=$(enqueue mixed-co '{"template": "tmpl_mixed"}')
ok "a template schema and its table of different owners is cloned" wait_state "$id" succeeded 20 || diag_job "$id"
is "$(sql "SELECT pg_get_userbyid(relowner) || ' ' || has_table_privilege('$OWNER', oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
	    FROM pg_class WHERE oid = 'tenant_mixed_co.items'::regclass")" "$DROLE true" \
	"... the table the daemon's, with every right for its template owner"

# A foreign key to a table outside the template stays pointing there; a
# long transaction writing that table makes the clone give up its lock
# wait after lock_timeout (5 s) and try again, not block the writers.
sql "CREATE TABLE public.pgt_ct_users (id int PRIMARY KEY);
     ALTER TABLE public.pgt_ct_users OWNER TO $OWNER;
     CREATE SCHEMA tmpl_fk AUTHORIZATION $OWNER;
     GRANT USAGE ON SCHEMA tmpl_fk TO $ENQ;
     SET ROLE $OWNER;
     CREATE TABLE tmpl_fk.notes (id int PRIMARY KEY, user_id int REFERENCES public.pgt_ct_users (id))" >/dev/null ||
	bail_out "could not create tmpl_fk"
# The long transaction is the test's own session: it commits once the first
# attempt has given up, however long the daemon took to get there.
exec {locker}> >(PGAPPNAME=pgt-ct-locker psql -X -q -d "$DB" >"$T/locker.out" 2>&1)
echo "BEGIN; LOCK TABLE public.pgt_ct_users IN ROW EXCLUSIVE MODE;" >&$locker
wait_until "SELECT EXISTS (SELECT FROM pg_locks WHERE relation = 'public.pgt_ct_users'::regclass AND mode = 'RowExclusiveLock' AND granted)" ||
	diag "the long transaction did not take its lock"
id=$(enqueue fk-co '{"template": "tmpl_fk"}')
ok "a clone that meets a long transaction on a table outside the template gives up its lock wait" \
	wait_cmd 60 grep -q "job $id create_tenant fk-co\] attempt 1 of .* failed, .*55P03" "$T/a.log" || diag_job "$id"
echo "COMMIT;" >&$locker
exec {locker}>&-
ok "... and succeeds after the long transaction" \
	wait_state "$id" succeeded 30 || diag_job "$id"
like "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id") $(grep -c "job $id create_tenant fk-co\] attempt 1 of .* failed, .*55P03: canceling statement due to lock timeout" "$T/a.log")" \
	"^[2-9] 1$" "... in a later attempt, the first having given up its lock wait after lock_timeout"
is "$(sql "SET search_path = pg_catalog; SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'tenant_fk_co.notes'::regclass AND contype = 'f'")" \
	"FOREIGN KEY (user_id) REFERENCES public.pgt_ct_users(id)" "a foreign key to a table outside the template keeps pointing there"

# ---- killed inside its clone (done, not committed): nothing is left, and
# the job resumes and converges
gate_hold || bail_out "could not take the test gate"
id=$(enqueue Gated-Co "{\"test_gate\": \"$MIG_GATE\"}")
ok "the gated job waits in its check step" gate_wait
gate_pass || bail_out "the gate did not let the job through"
ok "the gated job waits in its clone step, its work done" gate_wait
is "$(sql "SELECT step FROM pgtenantd.jobs WHERE id = $id")" clone "it is in step clone"
is "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_gated_co'")" 0 \
	"other sessions do not see the uncommitted clone"
kill_daemon "$DAEMON_PID"
ok "the killed daemon's session goes" gate_empty
is "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_gated_co'")" 0 \
	"a kill inside the clone leaves no schema"
gate_release || diag "could not release the gate"
start_daemon "$T/a.yaml" "$T/b.log" || bail_out "the daemon did not restart"
ok "the job resumes and succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
is "$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = 'tenant_gated_co'::regnamespace AND relkind = 'r'")
$(sql "SELECT count(*) FROM public.tenant_metadata WHERE tenant_id = 'Gated-Co' AND isolation_mode = 'separate_schema'")" \
	"3
1" "... with the whole clone and one metadata row"

stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

# ---- a daemon connected as a superuser (it may act as every role): the
# clone belongs to the template's owner all the same
write_config "$T/su.yaml" "tenant_roles: [$APP]"
start_daemon "$T/su.yaml" "$T/su.log" || bail_out "the daemon did not start as a superuser"
id=$(enqueue super-co)
ok "a superuser daemon creates a tenant" wait_state "$id" succeeded 20 || diag_job "$id"
is "$(sql "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ' ') FROM pg_class
	    WHERE relnamespace = 'tenant_super_co'::regnamespace")
$(sql "SELECT pg_get_userbyid(nspowner) || ' ' || array_to_string(nspacl, ' ') FROM pg_namespace WHERE nspname = 'tenant_super_co'")" \
	"$OWNER
$OWNER $OWNER=UC/$OWNER $APP=U/$OWNER" "... owned by the template's owner, USAGE for tenant_roles only"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"
done_testing
