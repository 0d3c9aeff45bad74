-- pgtenantd schema, version 7, part 1: new tenants from a template
-- (create_tenant). Version 7 is the files src/sql/v7-*.sql, in the order
-- Makefile.am lists them (SCHEMA_V7), applied in one transaction.
--
-- jobs/create_tenant.yaml calls create_tenant_check (refuse, for good,
-- what must not run) and then create_tenant_clone, which builds the whole
-- schema in the step's one transaction: the clone either happened with
-- everything in it, or not at all. The schema's comment records the job
-- that made it, so that the same job run again (a crash after the commit,
-- before the daemon recorded the step) finds its work done. See
-- doc/tenants.md.

-- The schema comment that marks a schema made by create_tenant job p_job.
CREATE FUNCTION pgtenantd.create_tenant_mark(p_job bigint, p_tenant text,
	p_template text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT pg_catalog.format('pgtenantd: create_tenant job %s, tenant %s, template %s',
				 p_job, p_tenant, p_template)
$$;

-- A template object's name for the clone: the template schema's name in
-- it becomes the new schema's (idx_tenant_template_entities_type becomes
-- idx_tenant_acme_entities_type, as the application names its indexes).
CREATE FUNCTION pgtenantd.create_tenant_name(p_name text, p_template text,
	p_schema text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT pg_catalog.replace(p_name, p_template, p_schema)
$$;

-- The relations of schema p_ns (tables, sequences, views, ...) and their
-- indexes, found through pg_depend's and pg_index's indexes: pg_class has
-- no index on relnamespace, and a scan of it per query costs more than the
-- clone itself once the database holds thousands of tenant schemas.
CREATE FUNCTION pgtenantd.create_tenant_rels(p_ns oid) RETURNS oid[]
LANGUAGE sql STABLE AS $$
	WITH r AS MATERIALIZED (
		SELECT d.objid AS oid FROM pg_catalog.pg_depend d
		 WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
		   AND d.refobjid = p_ns AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass)
	SELECT coalesce(pg_catalog.array_agg(c.oid ORDER BY c.oid), '{}')
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace = p_ns
	   AND c.oid IN (SELECT r.oid FROM r
			 UNION
			 SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid IN (SELECT r.oid FROM r))
$$;

-- What in template schema p_ns cannot be cloned, one line per object
-- (NULL if nothing): anything but plain tables, their indexes and
-- constraints, sequences and extended statistics. Views, functions,
-- types, triggers, policies, rules, partitioned, inherited and typed
-- tables, and columns of the template's own types would need their SQL
-- rewritten to point at the new schema, which cannot be done safely from
-- the catalog.
CREATE FUNCTION pgtenantd.create_tenant_unclonable(p_ns oid) RETURNS text
LANGUAGE sql STABLE AS $$
	WITH rels AS MATERIALIZED (SELECT pg_catalog.unnest(pgtenantd.create_tenant_rels(p_ns)) AS oid)
	SELECT pg_catalog.string_agg(what, '; ' ORDER BY what)
	  FROM (SELECT pg_catalog.format('%s (%s)', c.oid::pg_catalog.regclass,
				 CASE c.relkind WHEN 'v' THEN 'a view' WHEN 'm' THEN 'a materialized view'
						WHEN 'p' THEN 'a partitioned table' WHEN 'f' THEN 'a foreign table'
						WHEN 'c' THEN 'a composite type' WHEN 'I' THEN 'a partitioned index'
						ELSE 'relkind ' || c.relkind::text END) AS what
		  FROM pg_catalog.pg_class c
		 WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind NOT IN ('r', 'S', 'i', 't')
		UNION ALL
		SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
		  FROM pg_catalog.pg_depend d
		 WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
		   AND d.refobjid = p_ns
		   AND d.classid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass,
					 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass)
		UNION ALL
		SELECT pg_catalog.format('trigger %I on %s', t.tgname, t.tgrelid::pg_catalog.regclass)
		  FROM pg_catalog.pg_trigger t
		  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
		 WHERE c.oid IN (SELECT oid FROM rels) AND NOT t.tgisinternal
		UNION ALL
		SELECT pg_catalog.format('policy %I on %s', p.polname, p.polrelid::pg_catalog.regclass)
		  FROM pg_catalog.pg_policy p
		  JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
		 WHERE c.oid IN (SELECT oid FROM rels)
		UNION ALL
		SELECT pg_catalog.format('rule %I on %s', r.rulename, r.ev_class::pg_catalog.regclass)
		  FROM pg_catalog.pg_rewrite r
		  JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
		 WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind = 'r'
		UNION ALL
		SELECT pg_catalog.format('%s (an inheritance child or parent)', c.oid::pg_catalog.regclass)
		  FROM pg_catalog.pg_class c
		 WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind = 'r'
		   AND EXISTS (SELECT FROM pg_catalog.pg_inherits h
				WHERE h.inhrelid = c.oid OR h.inhparent = c.oid)
		UNION ALL
		SELECT pg_catalog.format('column %I of %s (its type %s is the template''s)', a.attname,
				 c.oid::pg_catalog.regclass, pg_catalog.format_type(a.atttypid, a.atttypmod))
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		  JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
		 WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind = 'r' AND ty.typnamespace = p_ns
		UNION ALL
		SELECT pg_catalog.format('%s (a typed table)', c.oid::pg_catalog.regclass)
		  FROM pg_catalog.pg_class c
		 WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind = 'r' AND c.reloftype <> 0) x
$$;

-- Why tenant p_tenant must not be created from template p_template by job
-- p_job, or NULL if it may (or if this job already made it). Each reason
-- is final: trying again does not change it.
CREATE FUNCTION pgtenantd.create_tenant_refusal(p_job bigint, p_tenant text,
	p_template text, p_roles text[])
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	s text := pgtenantd.tenant_schema(p_tenant);
	enqueuer text := (SELECT j.enqueued_by FROM pgtenantd.jobs j WHERE j.id = p_job);
	tmpl oid;
	ns oid;
	mark text;
	r text;
	rel regclass;
	tbl text;
	found_id text;
	mode text;
	what text;
BEGIN
	IF p_tenant IS NULL OR p_tenant !~ '^[A-Za-z0-9_-]{1,255}$' THEN
		RETURN format('invalid tenant id "%s"', left(p_tenant, 80));
	END IF;
	IF octet_length(s) > 63 THEN
		RETURN format('the schema name "%s" of tenant "%s" has %s bytes, over PostgreSQL''s 63-byte limit',
			      left(s, 80), left(p_tenant, 80), octet_length(s));
	END IF;

	-- the schema: absent, or made by this very job (then nothing is left
	-- to check: the clone is done)
	SELECT n.oid, obj_description(n.oid, 'pg_namespace') INTO ns, mark
	  FROM pg_catalog.pg_namespace n WHERE n.nspname = s;
	IF ns IS NOT NULL AND mark = pgtenantd.create_tenant_mark(p_job, p_tenant, p_template) THEN
		RETURN NULL;
	ELSIF ns IS NOT NULL THEN
		RETURN format('schema "%s" of tenant "%s" already exists%s; create_tenant only makes a new schema',
			      s, p_tenant,
			      CASE WHEN mark LIKE 'pgtenantd: %' THEN ' (' || substr(mark, 12) || ')' ELSE '' END);
	END IF;

	SELECT n.oid INTO tmpl FROM pg_catalog.pg_namespace n WHERE n.nspname = p_template;
	IF tmpl IS NULL THEN
		RETURN format('there is no template schema "%s"', left(p_template, 80));
	END IF;
	IF p_template = s THEN
		RETURN format('the template schema "%s" is the tenant''s own schema', p_template);
	END IF;
	IF p_template IN ('pgtenantd', 'information_schema') OR p_template LIKE 'pg\_%' THEN
		RETURN format('schema "%s" is a system schema, not a template', p_template);
	END IF;
	-- the clone shows the template's tables and copies its grants: the
	-- enqueuer must at least be allowed to look into it
	IF enqueuer IS NULL OR to_regrole(enqueuer) IS NULL
	   OR NOT has_schema_privilege(enqueuer, tmpl, 'USAGE') THEN
		RETURN format('role %s (who enqueued job %s) has no USAGE on the template schema "%s"',
			      coalesce(enqueuer, '(unknown)'), p_job, p_template);
	END IF;
	what := pgtenantd.create_tenant_unclonable(tmpl);
	IF what IS NOT NULL THEN
		RETURN format('template schema "%s" holds what create_tenant cannot clone: %s',
			      p_template, left(what, 1000));
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_class c
			WHERE c.oid = ANY (pgtenantd.create_tenant_rels(tmpl)) AND c.relkind = 'r') THEN
		RETURN format('template schema "%s" has no table', p_template);
	END IF;

	FOREACH r IN ARRAY coalesce(p_roles, '{}') LOOP
		IF to_regrole(quote_ident(r)) IS NULL THEN
			RETURN format('tenant_roles (configuration) names role "%s", which does not exist', left(r, 64));
		END IF;
	END LOOP;

	-- the tenant, or another id with the same schema, in the shared
	-- tables: its rows are to be migrated (migrate_to_separate_schema),
	-- not left behind under an empty new schema
	FOREACH tbl IN ARRAY ARRAY['graph_entities', 'graph_relations'] LOOP
		rel := to_regclass(format('public.%I', tbl));
		CONTINUE WHEN rel IS NULL OR NOT EXISTS (
			SELECT FROM pg_catalog.pg_attribute a
			 WHERE a.attrelid = rel AND a.attname = 'tenant_id' AND NOT a.attisdropped);
		IF row_security_active(rel) THEN
			RETURN format('row-level security on public.%s applies to role %s: it cannot tell whether tenant "%s" has rows there',
				      tbl, current_user, p_tenant);
		END IF;
		EXECUTE format('SELECT tenant_id FROM %s WHERE tenant_id = $1 LIMIT 1', rel)
			INTO found_id USING p_tenant;
		IF found_id IS NULL THEN
			-- (as migration_preflight: the distinct ids walked down an
			-- index on tenant_id when there is one)
			IF EXISTS (SELECT FROM pg_catalog.pg_index i
				     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
				    WHERE i.indrelid = rel AND a.attname = 'tenant_id' AND i.indisvalid
				      AND i.indpred IS NULL) THEN
				EXECUTE format($q$
					WITH RECURSIVE d (tid) AS (
						(SELECT tenant_id FROM %1$s ORDER BY tenant_id LIMIT 1)
						UNION ALL
						SELECT (SELECT tenant_id FROM %1$s WHERE tenant_id > d.tid
							 ORDER BY tenant_id LIMIT 1)
						  FROM d WHERE d.tid IS NOT NULL)
					SELECT tid FROM d WHERE pgtenantd.tenant_schema(tid) = $1 LIMIT 1$q$, rel)
					INTO found_id USING s;
			ELSE
				EXECUTE format('SELECT tenant_id FROM %s WHERE pgtenantd.tenant_schema(tenant_id) = $1 LIMIT 1', rel)
					INTO found_id USING s;
			END IF;
		END IF;
		IF found_id = p_tenant THEN
			RETURN format('tenant "%s" has rows in public.%s: move it with migrate_to_separate_schema instead',
				      p_tenant, tbl);
		ELSIF found_id IS NOT NULL THEN
			RETURN format('tenant ids "%s" and "%s" (rows in public.%s) both map to schema "%s"',
				      p_tenant, found_id, tbl, s);
		END IF;
	END LOOP;

	-- twins among the jobs (through jobs_tenant_schema_idx) ...
	SELECT j.tenant_id INTO found_id FROM pgtenantd.jobs j
	 WHERE 'tenant_' || lower(replace(j.tenant_id, '-', '_')) = s AND j.tenant_id <> p_tenant
	 LIMIT 1;
	IF found_id IS NOT NULL THEN
		RETURN format('tenant ids "%s" and "%s" (a job of it) both map to schema "%s"',
			      p_tenant, found_id, s);
	END IF;
	-- ... and in public.tenant_metadata, where the tenant itself must not
	-- be known as anything but a shared tenant without rows
	IF to_regclass('public.tenant_metadata') IS NOT NULL THEN
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
				WHERE a.attrelid = 'public.tenant_metadata'::regclass
				  AND a.attname = 'isolation_mode' AND NOT a.attisdropped) THEN
			RETURN 'public.tenant_metadata has no column isolation_mode to record the tenant in';
		END IF;
		EXECUTE 'SELECT m.tenant_id::text FROM public.tenant_metadata m
			  WHERE m.tenant_id::text <> $1 AND pgtenantd.tenant_schema(m.tenant_id::text) = $2 LIMIT 1'
			INTO found_id USING p_tenant, s;
		IF found_id IS NOT NULL THEN
			RETURN format('tenant ids "%s" and "%s" (public.tenant_metadata) both map to schema "%s"',
				      p_tenant, found_id, s);
		END IF;
		EXECUTE 'SELECT m.isolation_mode::text FROM public.tenant_metadata m WHERE m.tenant_id::text = $1'
			INTO mode USING p_tenant;
		IF mode = 'archived' THEN
			RETURN format('tenant "%s" is archived (public.tenant_metadata): restore it from its backup instead', p_tenant);
		ELSIF mode IS NOT NULL AND mode <> 'shared_schema' THEN
			RETURN format('tenant "%s" is recorded as %s in public.tenant_metadata, yet has no schema "%s"',
				      p_tenant, mode, s);
		END IF;
	END IF;
	RETURN NULL;
END $$;

-- Refuse (the job fails for good) what must not run; returns the plan:
-- the schema to make, the template and the template's tables.
CREATE FUNCTION pgtenantd.create_tenant_check(p_job bigint, p_tenant text,
	p_template text, p_roles text[])
RETURNS TABLE (schema_name text, template text, tables text[])
LANGUAGE plpgsql AS $$
DECLARE
	why text := pgtenantd.create_tenant_refusal(p_job, p_tenant, p_template, p_roles);
BEGIN
	IF why IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: refusing to create tenant "%": %', left(p_tenant, 80), why
			USING ERRCODE = 'check_violation';
	END IF;
	schema_name := pgtenantd.tenant_schema(p_tenant);
	template := p_template;
	tables := ARRAY(SELECT c.relname::text FROM pg_catalog.pg_class c
			 WHERE c.oid = ANY (pgtenantd.create_tenant_rels(to_regnamespace(quote_ident(p_template))))
			   AND c.relkind = 'r' ORDER BY c.relname);
	RETURN NEXT;
END $$;

-- Give the clone's object p_obj (p_kind TABLE, SEQUENCE or SCHEMA) the
-- grants of its template object, ACL p_acl of kind p_acl_kind (NULL: its
-- owner p_owner's default), except those to PUBLIC (the tenant's schema is
-- closed to PUBLIC); then give it the template object's owner when this
-- role may act as that owner (it inherits its rights) and that owner may
-- create in schema p_schema (NULL for the schema itself), else keep it and
-- grant that owner everything. p_owned false: the owner comes with the
-- table (an identity column's sequence).
CREATE FUNCTION pgtenantd.create_tenant_grants(p_kind text, p_obj text,
	p_owner oid, p_acl aclitem[], p_acl_kind "char", p_owned boolean,
	p_schema oid)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	g record;
BEGIN
	FOR g IN SELECT x.grantee::regrole::text AS grantee, x.privilege_type AS priv, x.is_grantable
		   FROM aclexplode(coalesce(p_acl, acldefault(p_acl_kind, p_owner))) x
		  WHERE x.grantee <> 0 AND x.grantee <> p_owner
		  ORDER BY 1, 2 LOOP
		EXECUTE format('GRANT %s ON %s %s TO %I%s', g.priv, p_kind, p_obj, g.grantee,
			       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;
	IF NOT p_owned THEN
		RETURN;
	ELSIF pg_has_role(current_user, p_owner, 'USAGE')
	      AND (p_schema IS NULL OR has_schema_privilege(p_owner, p_schema, 'CREATE')) THEN
		EXECUTE format('ALTER %s %s OWNER TO %I', p_kind, p_obj, p_owner::regrole::text);
	ELSE
		EXECUTE format('GRANT ALL ON %s %s TO %I', p_kind, p_obj, p_owner::regrole::text);
	END IF;
END $$;

-- The clone: schema tenant_<id> made from template schema p_template, in
-- this one transaction. Sequences (their settings, not their position),
-- tables (columns with types, collations, defaults, NOT NULL, identity and
-- generated columns, storage, compression, statistics, reloptions,
-- row-level security flags), constraints and indexes (named after the new
-- schema where the template's name holds the template schema's), foreign
-- keys (to the clone's table when the template's points inside the
-- template), comments, owners and grants; the schema closed to PUBLIC
-- with USAGE for the roles p_roles; the tenant recorded as
-- separate_schema in public.tenant_metadata. Returns what it made; a job
-- that finds its own schema returns that at once.
CREATE FUNCTION pgtenantd.create_tenant_clone(p_job bigint, p_tenant text,
	p_template text, p_roles text[])
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	s text := pgtenantd.tenant_schema(p_tenant);
	mark text := pgtenantd.create_tenant_mark(p_job, p_tenant, p_template);
	why text := pgtenantd.create_tenant_refusal(p_job, p_tenant, p_template, p_roles);
	tmpl oid;
	ns oid;
	trels oid[];	-- the template's relations and indexes
	nrels oid[];	-- the clone's, so far
	o record;
	def text;
	prefix text;
	newname text;
	r text;
	leak text;
BEGIN
	IF why IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: refusing to create tenant "%": %', left(p_tenant, 80), why
			USING ERRCODE = 'check_violation';
	END IF;
	SELECT n.oid INTO tmpl FROM pg_catalog.pg_namespace n WHERE n.nspname = p_template;
	trels := pgtenantd.create_tenant_rels(tmpl);
	IF EXISTS (SELECT FROM pg_catalog.pg_namespace n
		    WHERE n.nspname = s AND obj_description(n.oid, 'pg_namespace') = mark) THEN
		RETURN pgtenantd.create_tenant_result(s, p_template, p_roles);
	END IF;

	-- A foreign key to a table outside the template locks that table
	-- against writes until this commits: wait for it at most a few
	-- seconds (and try again later) rather than queue the application's
	-- writers behind a long transaction.
	PERFORM set_config('lock_timeout', '5s', true);
	EXECUTE format('CREATE SCHEMA %I', s);
	ns := to_regnamespace(quote_ident(s));
	EXECUTE format('COMMENT ON SCHEMA %I IS %L', s, mark);

	-- sequences of their own (an identity column's comes with its table)
	FOR o IN SELECT c.relname, c.relpersistence, q.*
		   FROM pg_catalog.pg_class c
		   JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid
		  WHERE c.oid = ANY (trels) AND c.relkind = 'S'
		    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
				     WHERE d.classid = 'pg_catalog.pg_class'::regclass
				       AND d.objid = c.oid AND d.deptype = 'i')
		  ORDER BY c.relname LOOP
		EXECUTE format('CREATE %sSEQUENCE %I.%I AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %sCYCLE',
			       CASE WHEN o.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END,
			       s, o.relname, format_type(o.seqtypid, NULL), o.seqincrement, o.seqmin,
			       o.seqmax, o.seqstart, o.seqcache, CASE WHEN o.seqcycle THEN '' ELSE 'NO ' END);
	END LOOP;

	-- tables: LIKE copies columns, defaults, identity, generated columns,
	-- storage, compression, column comments and extended statistics;
	-- constraints and indexes follow below, under the clone's names
	FOR o IN SELECT c.oid, c.relname, c.relpersistence, c.reloptions,
			c.relrowsecurity, c.relforcerowsecurity
		   FROM pg_catalog.pg_class c
		  WHERE c.oid = ANY (trels) AND c.relkind = 'r' ORDER BY c.relname LOOP
		EXECUTE format('CREATE %sTABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING STATISTICS)',
			       CASE WHEN o.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END,
			       s, o.relname, p_template, o.relname);
		IF EXISTS (SELECT FROM unnest(o.reloptions) x WHERE x !~ '^[a-z0-9_.]+=') THEN
			RAISE EXCEPTION 'pgtenantd: cannot clone the storage parameters % of %.%', o.reloptions, p_template, o.relname;
		ELSIF o.reloptions IS NOT NULL THEN
			EXECUTE format('ALTER TABLE %I.%I SET (%s)', s, o.relname,
				       (SELECT string_agg(format('%s = %L', split_part(x, '=', 1),
								 substr(x, strpos(x, '=') + 1)), ', ')
					  FROM unnest(o.reloptions) x));
		END IF;
		IF o.relrowsecurity THEN
			EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', s, o.relname);
		END IF;
		IF o.relforcerowsecurity THEN
			EXECUTE format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY', s, o.relname);
		END IF;
	END LOOP;

	nrels := pgtenantd.create_tenant_rels(ns);
	-- defaults that draw from a template sequence draw from the clone's:
	-- the expression as the catalog prints it (search_path is pinned, so
	-- the sequence is schema-qualified there), with that name swapped
	FOR o IN SELECT a.attrelid, a.attname, c.relname,
			pg_get_expr(ad.adbin, ad.adrelid) AS expr,
			dq.relname AS seq
		   FROM pg_catalog.pg_attrdef ad
		   JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
		   JOIN pg_catalog.pg_class c ON c.oid = ad.adrelid
		   JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass
			AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
		   JOIN pg_catalog.pg_class dq ON dq.oid = d.refobjid AND dq.relkind = 'S'
		  WHERE c.oid = ANY (nrels) AND dq.oid = ANY (trels)
		  ORDER BY c.relname, a.attnum LOOP
		def := replace(o.expr, quote_literal(format('%I.%I', p_template, o.seq)) || '::regclass',
			       quote_literal(format('%I.%I', s, o.seq)) || '::regclass');
		EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I SET DEFAULT %s', s, o.relname, o.attname, def);
	END LOOP;

	-- OWNED BY as in the template (a serial column's sequence)
	FOR o IN SELECT q.relname AS seq, t.relname AS tbl, a.attname
		   FROM pg_catalog.pg_class q
		   JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass
			AND d.objid = q.oid AND d.deptype = 'a'
			AND d.refclassid = 'pg_catalog.pg_class'::regclass
		   JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
		   JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
		  WHERE q.oid = ANY (trels) AND q.relkind = 'S' AND t.oid = ANY (trels)
		  ORDER BY q.relname LOOP
		EXECUTE format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', s, o.seq, s, o.tbl, o.attname);
	END LOOP;

	-- constraints: checks, then primary keys, unique and exclusion
	-- constraints (with their indexes), then foreign keys, once every
	-- table they may point at exists; a foreign key to a template table
	-- points at the clone's
	FOR o IN SELECT con.oid, con.conname, con.contype, c.relname,
			pg_get_constraintdef(con.oid) AS def,
			ft.relname AS ftable, ft.oid = ANY (trels) AS inside
		   FROM pg_catalog.pg_constraint con
		   JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
		   LEFT JOIN pg_catalog.pg_class ft ON ft.oid = con.confrelid
		  WHERE c.oid = ANY (trels) AND c.relkind = 'r' AND con.contype IN ('c', 'p', 'u', 'x', 'f')
		  ORDER BY CASE con.contype WHEN 'c' THEN 0 WHEN 'f' THEN 2 ELSE 1 END, c.relname, con.conname LOOP
		def := o.def;
		IF o.contype = 'f' AND o.inside THEN
			prefix := format(' REFERENCES %I.%I(', p_template, o.ftable);
			IF position(prefix IN def) = 0 THEN
				RAISE EXCEPTION 'pgtenantd: cannot point foreign key % of %.% at the clone: its definition "%" does not name %',
					o.conname, p_template, o.relname, def, prefix;
			END IF;
			def := replace(def, prefix, format(' REFERENCES %I.%I(', s, o.ftable));
		END IF;
		newname := pgtenantd.create_tenant_name(o.conname, p_template, s);
		EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', s, o.relname, newname, def);
		IF obj_description(o.oid, 'pg_constraint') IS NOT NULL THEN
			EXECUTE format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', newname, s, o.relname,
				       obj_description(o.oid, 'pg_constraint'));
		END IF;
	END LOOP;

	-- the other indexes: the catalog's CREATE INDEX with the clone's name
	-- and table in its fixed head ("CREATE [UNIQUE] INDEX name ON
	-- schema.table USING"); the rest (method, keys, INCLUDE, WITH, WHERE)
	-- names no schema
	FOR o IN SELECT ic.oid, ic.relname, c.relname AS tbl, i.indisunique,
			pg_get_indexdef(i.indexrelid) AS def
		   FROM pg_catalog.pg_index i
		   JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		   JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
		  WHERE c.oid = ANY (trels) AND c.relkind = 'r' AND i.indisvalid
		    AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint con WHERE con.conindid = i.indexrelid
				     AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
		  ORDER BY c.relname, ic.relname LOOP
		prefix := format('CREATE %sINDEX %I ON %I.%I USING ',
				 CASE WHEN o.indisunique THEN 'UNIQUE ' ELSE '' END, o.relname, p_template, o.tbl);
		IF left(o.def, length(prefix)) <> prefix THEN
			RAISE EXCEPTION 'pgtenantd: cannot clone index %.%: its definition "%" does not start with "%"',
				p_template, o.relname, o.def, prefix;
		END IF;
		newname := pgtenantd.create_tenant_name(o.relname, p_template, s);
		EXECUTE format('CREATE %sINDEX %I ON %I.%I USING ', CASE WHEN o.indisunique THEN 'UNIQUE ' ELSE '' END,
			       newname, s, o.tbl) || substr(o.def, length(prefix) + 1);
	END LOOP;

	-- comments LIKE did not copy: tables, sequences, indexes
	FOR o IN SELECT c.relkind, c.relname, obj_description(c.oid, 'pg_class') AS comment
		   FROM pg_catalog.pg_class c
		  WHERE c.oid = ANY (trels) AND c.relkind IN ('r', 'S', 'i')
		    AND obj_description(c.oid, 'pg_class') IS NOT NULL LOOP
		newname := CASE WHEN o.relkind = 'i' THEN pgtenantd.create_tenant_name(o.relname, p_template, s)
				ELSE o.relname END;
		CONTINUE WHEN to_regclass(format('%I.%I', s, newname)) IS NULL;
		EXECUTE format('COMMENT ON %s %I.%I IS %L',
			       CASE o.relkind WHEN 'r' THEN 'TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'INDEX' END,
			       s, newname, o.comment);
	END LOOP;

	-- the schema first (its new owner must be able to create in it before
	-- it may own its tables): the template's owner; nothing for PUBLIC;
	-- USAGE for the application's roles and no one else (the template
	-- schema's own grants are not copied: who may look into the template,
	-- an enqueuer for one, is not who may use a tenant)
	PERFORM pgtenantd.create_tenant_grants('SCHEMA', quote_ident(s),
		(SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.oid = tmpl), NULL, 'n', true, NULL);
	EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', s);
	FOREACH r IN ARRAY coalesce(p_roles, '{}') LOOP
		EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, r);
	END LOOP;

	-- owners and grants of tables and sequences; an identity column's
	-- sequence, which LIKE named anew, is found through its column and
	-- follows its table's owner
	FOR o IN SELECT c.relkind, c.relowner, c.relacl, dep.deptype = 'i' AS identity,
			CASE WHEN dep.deptype = 'i'
			     THEN pg_get_serial_sequence(format('%I.%I', s, t.relname), a.attname)
			     ELSE format('%I.%I', s, c.relname) END AS obj
		   FROM pg_catalog.pg_class c
		   LEFT JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_class'::regclass
			AND dep.objid = c.oid AND dep.deptype = 'i'
			AND dep.refclassid = 'pg_catalog.pg_class'::regclass
		   LEFT JOIN pg_catalog.pg_class t ON t.oid = dep.refobjid
		   LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
		  WHERE c.oid = ANY (trels) AND c.relkind IN ('r', 'S')
		  ORDER BY c.relkind DESC, c.relname LOOP
		CONTINUE WHEN o.obj IS NULL OR to_regclass(o.obj) IS NULL;
		PERFORM pgtenantd.create_tenant_grants(CASE WHEN o.relkind = 'r' THEN 'TABLE' ELSE 'SEQUENCE' END,
			o.obj, o.relowner, o.relacl, CASE WHEN o.relkind = 'r' THEN 'r' ELSE 's' END::"char",
			NOT coalesce(o.identity, false), ns);
	END LOOP;
	FOR o IN SELECT c.relname, a.attname, x.grantee::regrole::text AS grantee,
			x.privilege_type AS priv, x.is_grantable
		   FROM pg_catalog.pg_class c
		   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		   CROSS JOIN LATERAL aclexplode(a.attacl) x
		  WHERE c.oid = ANY (trels) AND c.relkind = 'r' AND a.attacl IS NOT NULL AND x.grantee <> 0
		  ORDER BY 1, 2, 3, 4 LOOP
		EXECUTE format('GRANT %s (%I) ON %I.%I TO %I%s', o.priv, o.attname, s, o.relname, o.grantee,
			       CASE WHEN o.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;

	-- nothing of the clone may still lean on the template (a default, a
	-- key or an index that the rewriting above missed): on its relations
	-- or their row types (other types of the template were refused)
	nrels := pgtenantd.create_tenant_rels(ns);
	SELECT string_agg(pg_describe_object(d.classid, d.objid, d.objsubid) || ' uses '
			  || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), '; ')
	  INTO leak
	  FROM pg_catalog.pg_depend d
	 WHERE ((d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY (trels))
		OR (d.refclassid = 'pg_catalog.pg_type'::regclass
		    AND d.refobjid IN (SELECT c.reltype FROM pg_catalog.pg_class c
					WHERE c.oid = ANY (trels) AND c.reltype <> 0
					UNION ALL
					SELECT ty.typarray FROM pg_catalog.pg_class c
					  JOIN pg_catalog.pg_type ty ON ty.oid = c.reltype
					WHERE c.oid = ANY (trels))))
	   AND d.classid IN ('pg_catalog.pg_class'::regclass, 'pg_catalog.pg_attrdef'::regclass,
			     'pg_catalog.pg_constraint'::regclass)
	   AND pgtenantd.create_tenant_owner_rel(d.classid, d.objid) = ANY (nrels);
	IF leak IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: the clone of template "%" still depends on it: %', p_template, left(leak, 1000);
	END IF;

	PERFORM pgtenantd.migration_flip_metadata(p_tenant);
	RETURN pgtenantd.create_tenant_result(s, p_template, p_roles);
END $$;

-- The relation a dependent object belongs to: itself for a relation, its
-- table for a default or a constraint; NULL for anything else.
CREATE FUNCTION pgtenantd.create_tenant_owner_rel(p_classid oid, p_objid oid)
RETURNS oid
LANGUAGE sql STABLE AS $$
	SELECT CASE p_classid
		WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN p_objid
		WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass
		THEN (SELECT ad.adrelid FROM pg_catalog.pg_attrdef ad WHERE ad.oid = p_objid)
		WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass
		THEN (SELECT con.conrelid FROM pg_catalog.pg_constraint con WHERE con.oid = p_objid)
	END
$$;

-- What the tenant's schema holds, as the job's result.
CREATE FUNCTION pgtenantd.create_tenant_result(p_schema text, p_template text,
	p_roles text[])
RETURNS jsonb
LANGUAGE sql STABLE AS $$
	WITH rels AS MATERIALIZED (
		SELECT c.relname, c.relkind FROM pg_catalog.pg_class c
		 WHERE c.oid = ANY (pgtenantd.create_tenant_rels(
					(SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = p_schema))))
	SELECT pg_catalog.jsonb_build_object(
		'schema', p_schema,
		'template', p_template,
		'tables', coalesce((SELECT pg_catalog.jsonb_agg(r.relname ORDER BY r.relname)
				      FROM rels r WHERE r.relkind = 'r'), '[]'),
		'sequences', (SELECT pg_catalog.count(*) FROM rels r WHERE r.relkind = 'S'),
		'indexes', coalesce((SELECT pg_catalog.jsonb_agg(r.relname ORDER BY r.relname)
				       FROM rels r WHERE r.relkind = 'i'), '[]'),
		'usage_granted_to', pg_catalog.to_jsonb(coalesce(p_roles, '{}')))
$$;

-- Only the daemon (the owner) runs these: the job's steps call them.
REVOKE EXECUTE ON FUNCTION pgtenantd.create_tenant_mark(bigint, text, text),
	pgtenantd.create_tenant_name(text, text, text),
	pgtenantd.create_tenant_rels(oid),
	pgtenantd.create_tenant_unclonable(oid),
	pgtenantd.create_tenant_refusal(bigint, text, text, text[]),
	pgtenantd.create_tenant_check(bigint, text, text, text[]),
	pgtenantd.create_tenant_grants(text, text, oid, aclitem[], "char", boolean, oid),
	pgtenantd.create_tenant_clone(bigint, text, text, text[]),
	pgtenantd.create_tenant_owner_rel(oid, oid),
	pgtenantd.create_tenant_result(text, text, text[]) FROM PUBLIC;
