-- pgtenantd schema, version 4: online migration. Applied once by the daemon
-- inside a transaction that holds pg_advisory_xact_lock(1886680148, 0).
--
-- migrate_to_separate_schema moves a tenant while its application keeps
-- writing (doc/migration.md):
--   preflight    refuse what must not run; record the migration
--   capture_on   row triggers on the shared tables record the keys of the
--                tenant's inserted, updated and deleted rows in
--                pgtenantd.migration_changes (installed under a short
--                lock_timeout, retried); TRUNCATE is refused meanwhile
--   create       the schema and its tables, from the catalog
--   copy         page-range batches, exactly once (the position is kept in
--                pgtenantd.migration_copy, written with each batch)
--   purge        rows of keys that changed during the copy go (the copy may
--                have read a key twice); catch-up puts them back
--   index        the primary key and the shared tables' indexes
--   catch_up     re-sync changed keys from the shared rows' current state,
--                by key, until the backlog is small
--   verify       count and hash sum of every row, shared against separate,
--                leaving out the keys still waiting, while capture goes on
--   cutover      writers of the tenant wait on a lock their trigger takes;
--                the last keys are applied, the keys changed since verify
--                compared, public.tenant_metadata flipped; past the lock
--                budget the attempt rolls back and is tried again
--   delete       the shared rows in batches
--   left_over    no shared row of the tenant is left, else fail for good
--   finish       capture off
-- Everything is keyed by the job id; the job file only calls these
-- functions in order. A function that finds its work done returns at once,
-- so every step may run again after a crash.

-- ------------------------------------------------------------- tables
CREATE TABLE pgtenantd.migrations (
	job_id bigint PRIMARY KEY,
	tenant_id text NOT NULL,
	schema_name text NOT NULL,
	tables text[] NOT NULL,
	phase text NOT NULL DEFAULT 'preflight'
		CHECK (phase IN ('preflight', 'capture', 'create', 'copy', 'catch_up',
				 'verify', 'cutover', 'moved', 'done')),
	cutover_mode text NOT NULL DEFAULT 'auto'
		CHECK (cutover_mode IN ('auto', 'manual')),
	cutover_go boolean NOT NULL DEFAULT false,
	lock_budget interval NOT NULL DEFAULT '1s',
	-- NULL: as the engine sizes them; 0: paused; N: at most N pages (copy,
	-- delete) or keys (catch-up) per batch
	batch_limit integer CHECK (batch_limit >= 0),
	rows_total bigint NOT NULL DEFAULT 0,
	replayed_keys bigint NOT NULL DEFAULT 0,	-- change rows applied
	cutover_attempts integer NOT NULL DEFAULT 0,
	last_cutover_at timestamptz,
	last_cutover_error text,
	cutover_ms integer,
	-- the xmax of a snapshot the cut-over took under its lock: shared rows
	-- of older transactions are the ones moved
	moved_xid xid8,
	started_at timestamptz NOT NULL DEFAULT now(),
	phase_at timestamptz NOT NULL DEFAULT now(),
	moved_at timestamptz
);
COMMENT ON TABLE pgtenantd.migrations IS
	'online tenant migrations: one row per migrate_to_separate_schema job';

-- The fence row of each migration: what the tenant's writers read in the
-- capture trigger (and lock FOR SHARE in a REPEATABLE READ or SERIALIZABLE
-- transaction). Written at preflight and once more by the cut-over, never
-- else, so that the job's own bookkeeping in pgtenantd.migrations never
-- holds a writer up nor makes it fail.
CREATE TABLE pgtenantd.migration_fence (
	job_id bigint PRIMARY KEY,
	tenant_id text NOT NULL,
	schema_name text NOT NULL,
	moved boolean NOT NULL DEFAULT false
);

-- Where the copy of each table stands ('<filenode>:<next page>', 'done'),
-- written in each copy batch's transaction.
CREATE TABLE pgtenantd.migration_copy (
	job_id bigint NOT NULL,
	table_name text NOT NULL,
	position text NOT NULL,
	rows_copied bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (job_id, table_name)
);

-- Keys of the migrating tenant's rows that changed, one row per write
-- (never merged: a write's row commits with it, so a batch that applies
-- the rows it sees has also seen the writes). Kept until the migration
-- ends; applied_txid marks what catch-up has applied, checked what verify
-- or the cut-over has compared.
CREATE TABLE pgtenantd.migration_changes (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job_id bigint NOT NULL,
	table_name text NOT NULL,
	key jsonb NOT NULL,
	txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
	applied_txid xid8,
	applied_at timestamptz,
	checked boolean NOT NULL DEFAULT false
);
CREATE INDEX migration_changes_pending_idx ON pgtenantd.migration_changes (job_id, id)
	WHERE applied_txid IS NULL;
CREATE INDEX migration_changes_unchecked_idx ON pgtenantd.migration_changes (job_id, table_name)
	WHERE NOT checked;
CREATE INDEX migration_changes_applied_idx ON pgtenantd.migration_changes (job_id, applied_at)
	WHERE applied_at IS NOT NULL;

-- ------------------------------------------------------------- helpers
-- The lock the tenant's writers share and the cut-over takes alone.
CREATE FUNCTION pgtenantd.migration_lock_key(p_job bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
	SELECT pg_catalog.hashtextextended('pgtenantd cutover ' || p_job::text, 0)
$$;

-- The columns a tenant table gets: the shared table's, minus tenant_id,
-- in their order, quoted and prefixed with p_alias ('' for none).
CREATE FUNCTION pgtenantd.migration_columns(p_table regclass, p_alias text)
RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT string_agg(CASE WHEN p_alias = '' THEN '' ELSE p_alias || '.' END
			  || quote_ident(a.attname), ', ' ORDER BY a.attnum)
	  FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
	   AND a.attname <> 'tenant_id'
$$;

-- The key of a shared table without tenant_id: its primary key's other
-- columns, in key order, with their types.
CREATE FUNCTION pgtenantd.migration_key(p_table regclass,
	OUT names text[], OUT types text[])
LANGUAGE sql STABLE AS $$
	SELECT array_agg(a.attname::text ORDER BY k.n),
	       array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.n)
	  FROM pg_catalog.pg_index i
	 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, n)
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
	 WHERE i.indrelid = p_table AND i.indisprimary AND a.attname <> 'tenant_id'
$$;

-- SQL fragments for one table's keys: 'jsonb_build_array(s.id)' (the key
-- of a row of alias s, as capture records it) and
-- '(k ->> 0)::text AS k0' (a key column back from the jsonb k), and the
-- join 's.id = x.k0'.
CREATE FUNCTION pgtenantd.migration_key_sql(p_table regclass, p_alias text,
	OUT as_jsonb text, OUT from_jsonb text, OUT join_on text)
LANGUAGE sql STABLE AS $$
	SELECT 'jsonb_build_array(' || string_agg(p_alias || '.' || quote_ident(n), ', ' ORDER BY i) || ')',
	       string_agg(format('(k ->> %s)::%s AS k%s', i - 1, t, i - 1), ', ' ORDER BY i),
	       string_agg(format('%s.%I = x.k%s', p_alias, n, i - 1), ' AND ' ORDER BY i)
	  FROM pgtenantd.migration_key(p_table) AS mk,
	       unnest(mk.names, mk.types) WITH ORDINALITY AS c (n, t, i)
$$;

CREATE FUNCTION pgtenantd.migration_row(p_job bigint) RETURNS pgtenantd.migrations
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m pgtenantd.migrations;
BEGIN
	SELECT * INTO m FROM pgtenantd.migrations WHERE job_id = p_job;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pgtenantd: job % has no migration row (preflight did not run?)', p_job;
	END IF;
	RETURN m;
END $$;

CREATE FUNCTION pgtenantd.migration_set_phase(p_job bigint, p_phase text)
RETURNS void
LANGUAGE sql AS $$
	UPDATE pgtenantd.migrations SET phase = p_phase, phase_at = now()
	 WHERE job_id = p_job AND phase IS DISTINCT FROM p_phase
$$;

-- Before a step writes p_table: take the write's lock, then refuse
-- trigger code on it that the daemon's role does not trust (v3's
-- require_trusted_triggers); holding the lock first, no trigger can
-- appear between the check and the write.
CREATE FUNCTION pgtenantd.migration_lock_trusted(p_table regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', p_table);
	PERFORM pgtenantd.require_trusted_triggers(ARRAY[p_table]);
END $$;

-- Run DDL on the shared tables under a short lock_timeout, all statements
-- in one attempt, retried with backoff: a long transaction elsewhere makes
-- this wait, never the other tenants' writers queue behind us for long (a
-- failed attempt lets go of every lock it took).
CREATE FUNCTION pgtenantd.migration_ddl(p_sql text[], p_what text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	wait_ms integer := 50;
	q text;
BEGIN
	IF coalesce(cardinality(p_sql), 0) = 0 THEN
		RETURN;
	END IF;
	FOR attempt IN 1 .. 12 LOOP
		BEGIN
			PERFORM set_config('lock_timeout', '100ms', true);
			FOREACH q IN ARRAY p_sql LOOP
				EXECUTE q;
			END LOOP;
			PERFORM set_config('lock_timeout', '0', true);
			RETURN;
		EXCEPTION WHEN lock_not_available THEN
			IF attempt = 12 THEN
				RAISE EXCEPTION 'pgtenantd: could not % (12 tries of 100 ms each: a long transaction holds a lock on a shared table)', p_what
					USING ERRCODE = 'lock_not_available',
					      HINT = 'the job retries later; see pg_locks for the transaction';
			END IF;
		END;
		PERFORM pg_sleep(wait_ms / 1000.0);
		wait_ms := least(wait_ms * 2, 2000);
	END LOOP;
END $$;

-- ------------------------------------------------------------- capture
-- Row trigger of the shared tables, one set per migration, fired only for
-- the migrating tenant's rows (the WHEN clause holds its id). It runs as the
-- daemon's role (SECURITY DEFINER): the application may not write
-- pgtenantd's tables. TG_ARGV: the job id, then the key columns.
CREATE FUNCTION pgtenantd.migration_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
	job bigint := TG_ARGV[0]::bigint;
	moved boolean;
	tid text;
	sch text;
	live boolean;
	keys jsonb[];
	r jsonb;
	k jsonb;
BEGIN
	-- The cut-over holds this lock alone while it drains and flips: writers
	-- wait here, then see the flip below.
	PERFORM pg_advisory_xact_lock_shared(pgtenantd.migration_lock_key(job));
	SELECT f.moved, f.tenant_id, f.schema_name,
	       f.moved OR EXISTS (SELECT FROM pgtenantd.jobs j
				   WHERE j.id = f.job_id AND j.state IN ('queued', 'running'))
	  INTO moved, tid, sch, live FROM pgtenantd.migration_fence f WHERE f.job_id = job;
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		-- A snapshot older than the flip does not show it; locking the row
		-- fails with 40001 when the cut-over changed it since.
		PERFORM FROM pgtenantd.migration_fence f WHERE f.job_id = job FOR SHARE;
	END IF;
	IF moved IS NULL OR NOT live THEN
		RETURN NULL;	-- the migration is over: the next one removes the trigger
	END IF;
	IF moved THEN
		RAISE EXCEPTION 'pgtenantd: tenant "%" was moved to schema "%" by migration job %; its rows in %.% are no longer its data',
			tid, sch, job, TG_TABLE_SCHEMA, TG_TABLE_NAME
			USING ERRCODE = 'serialization_failure',
			      HINT = 'retry the transaction: public.tenant_metadata now says separate_schema';
	END IF;
	IF TG_OP <> 'INSERT' THEN
		r := to_jsonb(OLD);
		SELECT jsonb_agg(r -> c ORDER BY i) INTO k
		  FROM unnest(TG_ARGV[1:]) WITH ORDINALITY AS x (c, i);
		keys := keys || k;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		r := to_jsonb(NEW);
		SELECT jsonb_agg(r -> c ORDER BY i) INTO k
		  FROM unnest(TG_ARGV[1:]) WITH ORDINALITY AS x (c, i);
		IF keys IS NULL OR keys[1] <> k THEN
			keys := keys || k;
		END IF;
	END IF;
	INSERT INTO pgtenantd.migration_changes (job_id, table_name, key)
	SELECT job, TG_TABLE_NAME, u FROM unnest(keys) AS u;
	RETURN NULL;
END $$;

CREATE FUNCTION pgtenantd.migration_guard_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
	job bigint := TG_ARGV[0]::bigint;
	t text;
BEGIN
	SELECT f.tenant_id INTO t FROM pgtenantd.migration_fence f
	 WHERE f.job_id = job
	   AND (f.moved
		OR EXISTS (SELECT FROM pgtenantd.jobs j
			    WHERE j.id = f.job_id AND j.state IN ('queued', 'running')));
	IF t IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: %.% cannot be truncated while tenant "%" moves to its own schema (migration job %)',
			TG_TABLE_SCHEMA, TG_TABLE_NAME, t, job
			USING ERRCODE = 'object_in_use',
			      HINT = format('wait for job %s to finish, or cancel it: SELECT pgtenantd.cancel_job(%s)', job, job);
	END IF;
	RETURN NULL;
END $$;

CREATE FUNCTION pgtenantd.migration_trigger_name(p_job bigint, p_op text)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT format('pgtenantd_migration_%s_%s', p_job, p_op)
$$;

-- The DROP TRIGGER statements of migration job p_job's capture.
CREATE FUNCTION pgtenantd.migration_drop_capture_sql(p_job bigint) RETURNS text[]
LANGUAGE sql STABLE AS $$
	SELECT coalesce(array_agg(format('DROP TRIGGER IF EXISTS %I ON %s', t.tgname, t.tgrelid::regclass)
				  ORDER BY t.tgrelid::regclass::text, t.tgname), '{}')
	  FROM pg_catalog.pg_trigger t
	 WHERE t.tgname LIKE format('pgtenantd\_migration\_%s\_%%', p_job)
$$;

-- Capture off for migration job p_job: its triggers and change rows go.
CREATE FUNCTION pgtenantd.migration_remove_capture(p_job bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pgtenantd.migration_ddl(pgtenantd.migration_drop_capture_sql(p_job),
		format('remove the capture triggers of migration job %s', p_job));
	DELETE FROM pgtenantd.migration_changes WHERE job_id = p_job;
END $$;

-- Migrations whose capture is left over: their job ended before the flip
-- (failed, cancelled, deleted) and their triggers or change rows are
-- still there.
CREATE FUNCTION pgtenantd.migration_stale() RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
	SELECT m.job_id FROM pgtenantd.migrations m
	 WHERE m.phase NOT IN ('moved', 'done')
	   AND NOT EXISTS (SELECT FROM pgtenantd.jobs j
			    WHERE j.id = m.job_id AND j.state IN ('queued', 'running'))
	   AND (EXISTS (SELECT FROM pg_catalog.pg_trigger t
			 WHERE t.tgname LIKE format('pgtenantd\_migration\_%s\_%%', m.job_id))
		OR EXISTS (SELECT FROM pgtenantd.migration_changes c WHERE c.job_id = m.job_id))
$$;

-- ------------------------------------------------------------- steps
-- Refuse (the job fails for good) what must not run, before anything is
-- changed; record the migration. Returns the tenant's shared row count.
CREATE FUNCTION pgtenantd.migration_preflight(p_job bigint, p_tenant text,
	p_tables text[], p_allow_empty boolean, p_cutover text, p_lock_budget interval)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	s text := pgtenantd.tenant_schema(p_tenant);
	tbl text;
	rel regclass;
	twin text;
	mode text;
	ns oid;
	mark text;
	mark_job bigint;
	mark_tenant text;
	mark_state text;
	rels text;
	other bigint;
	foreign_code text;
	total bigint := 0;
	n bigint;
	checked regclass[] := '{}';
	enqueuer text := (SELECT j.enqueued_by FROM pgtenantd.jobs j WHERE j.id = p_job);
BEGIN
	IF EXISTS (SELECT FROM pgtenantd.migrations WHERE job_id = p_job) THEN
		RETURN (SELECT m.rows_total FROM pgtenantd.migrations m WHERE m.job_id = p_job);
	END IF;
	IF p_tenant = '' THEN
		RAISE EXCEPTION 'pgtenantd: tenant id '''' is the global namespace; it has no schema of its own';
	END IF;
	IF p_tenant !~ '^[A-Za-z0-9_-]{1,255}$' THEN
		RAISE EXCEPTION 'pgtenantd: invalid tenant id "%"', left(p_tenant, 80);
	END IF;
	IF octet_length(s) > 63 THEN
		RAISE EXCEPTION 'pgtenantd: the schema name "%" of tenant "%" has % bytes, over PostgreSQL''s 63-byte limit',
			left(s, 80), left(p_tenant, 80), octet_length(s);
	END IF;
	IF p_cutover NOT IN ('auto', 'manual') THEN
		RAISE EXCEPTION 'pgtenantd: arg cutover is "%"; it must be auto or manual', left(p_cutover, 40);
	END IF;
	IF p_lock_budget < interval '10ms' OR p_lock_budget > interval '60s' THEN
		RAISE EXCEPTION 'pgtenantd: arg lock_budget is %; it must be between 10ms and 60s', p_lock_budget;
	END IF;
	IF coalesce(cardinality(p_tables), 0) = 0 THEN
		RAISE EXCEPTION 'pgtenantd: arg tables names no table';
	END IF;

	-- The shared tables: in public, with tenant_id, a primary key that holds
	-- tenant_id and more, no generated column, no row-level security that
	-- would hide rows from this role.
	FOREACH tbl IN ARRAY p_tables LOOP
		rel := to_regclass(format('public.%I', tbl));
		IF rel IS NULL OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) NOT IN ('r', 'p') THEN
			RAISE EXCEPTION 'pgtenantd: there is no table public.% to migrate tenant "%" from', tbl, p_tenant;
		END IF;
		IF rel = ANY (checked) THEN
			RAISE EXCEPTION 'pgtenantd: arg tables names public.% twice', tbl;
		END IF;
		checked := checked || rel;
		-- The kind moves the graph tables (pgtenantd_operate may enqueue
		-- it); any other table an enqueuer names is read and deleted from
		-- with the daemon's rights, so the enqueuer must be allowed both.
		IF tbl NOT IN ('graph_entities', 'graph_relations')
		   AND NOT (enqueuer IS NOT NULL AND to_regrole(enqueuer) IS NOT NULL
			    AND has_table_privilege(enqueuer, rel, 'SELECT')
			    AND has_table_privilege(enqueuer, rel, 'DELETE')) THEN
			RAISE EXCEPTION 'pgtenantd: arg tables names public.%, which role % (who enqueued job %) may not read and delete from; refusing to move rows of it with the daemon''s rights',
				tbl, coalesce(enqueuer, '(unknown)'), p_job
				USING HINT = 'public.graph_entities and public.graph_relations need no such right; grant SELECT and DELETE on the table to the enqueuer, or have a role that has them enqueue the job';
		END IF;
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
				WHERE a.attrelid = rel AND a.attname = 'tenant_id' AND NOT a.attisdropped) THEN
			RAISE EXCEPTION 'pgtenantd: public.% has no column tenant_id', tbl;
		END IF;
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_index i
				 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
				WHERE i.indrelid = rel AND i.indisprimary AND a.attname = 'tenant_id')
		   OR (SELECT m.names FROM pgtenantd.migration_key(rel) m) IS NULL THEN
			RAISE EXCEPTION 'pgtenantd: public.% has no primary key made of tenant_id and other columns; the migration finds changed rows by that key', tbl;
		END IF;
		IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
			    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
			      AND (a.attgenerated <> '' OR a.attidentity <> '')) THEN
			RAISE EXCEPTION 'pgtenantd: public.% has generated or identity columns (%), which this job cannot copy',
				tbl, (SELECT string_agg(a.attname, ', ') FROM pg_catalog.pg_attribute a
				       WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
					 AND (a.attgenerated <> '' OR a.attidentity <> ''));
		END IF;
		IF row_security_active(rel) THEN
			RAISE EXCEPTION 'pgtenantd: row-level security on public.% applies to role %: the migration could see only part of tenant "%"''s rows; refusing to move it',
				tbl, current_user, p_tenant
				USING HINT = format('let the daemon''s role bypass row-level security (ALTER ROLE %I BYPASSRLS) or own the table, then enqueue the migration again', current_user);
		END IF;
		-- Another tenant id with the same schema name: the distinct tenant
		-- ids walked down an index that starts with tenant_id (a few reads
		-- per tenant, not every row) if the table has one.
		IF twin IS NULL AND EXISTS (
			SELECT FROM pg_catalog.pg_index i
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
				SELECT tid FROM d
				 WHERE tid <> $1 AND pgtenantd.tenant_schema(tid) = $2 LIMIT 1$q$, rel)
				INTO twin USING p_tenant, s;
		ELSIF twin IS NULL THEN
			EXECUTE format('SELECT tenant_id FROM %s
					 WHERE tenant_id <> $1 AND pgtenantd.tenant_schema(tenant_id) = $2
					 LIMIT 1', rel)
				INTO twin USING p_tenant, s;
		END IF;
		EXECUTE format('SELECT count(*) FROM public.%I WHERE tenant_id = $1', tbl) INTO n USING p_tenant;
		total := total + n;
	END LOOP;

	-- ... or in public.tenant_metadata (a twin among the jobs the INSERT
	-- trigger refused; one that was put in past it meets the schema's mark
	-- below)
	IF twin IS NULL AND to_regclass('public.tenant_metadata') IS NOT NULL THEN
		EXECUTE 'SELECT m.tenant_id FROM public.tenant_metadata m
			  WHERE m.tenant_id <> $1 AND pgtenantd.tenant_schema(m.tenant_id) = $2 LIMIT 1'
			INTO twin USING p_tenant, s;
	END IF;
	IF twin IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: tenant ids "%" and "%" both map to schema "%"; refusing to migrate "%"',
			p_tenant, twin, s, p_tenant
			USING HINT = 'schema names fold case and turn ''-'' into ''_''; rename one of the tenants first';
	END IF;
	IF to_regclass('public.tenant_metadata') IS NOT NULL THEN
		EXECUTE 'SELECT m.isolation_mode FROM public.tenant_metadata m WHERE m.tenant_id = $1'
			INTO mode USING p_tenant;
		IF mode = 'separate_schema' THEN
			RAISE EXCEPTION 'pgtenantd: tenant "%" already uses separate_schema (public.tenant_metadata)', p_tenant
				USING HINT = 'if an earlier migration of it failed while deleting the shared rows, requeue that job';
		END IF;
	END IF;

	SELECT m.job_id INTO other FROM pgtenantd.migrations m
	  JOIN pgtenantd.jobs j ON j.id = m.job_id
	 WHERE m.schema_name = s AND m.job_id <> p_job
	   AND (m.phase = 'moved' OR j.state IN ('queued', 'running'));
	IF other IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: tenant "%" is already being moved by migration job %', p_tenant, other;
	END IF;

	-- The schema: absent, empty, or left by an unfinished migration of this tenant.
	SELECT n.oid, obj_description(n.oid, 'pg_namespace') INTO ns, mark
	  FROM pg_catalog.pg_namespace n WHERE n.nspname = s;
	IF ns IS NOT NULL THEN
		IF mark ~ '^pgtenantd: migrate_to_separate_schema job [0-9]+, tenant ' THEN
			mark_job := substring(mark FROM 'job ([0-9]+),')::bigint;
			mark_tenant := substring(mark FROM ', tenant (.*)$');
			SELECT j.state INTO mark_state FROM pgtenantd.jobs j WHERE j.id = mark_job;
		END IF;
		IF mark_tenant IS NOT NULL AND mark_tenant <> p_tenant THEN
			RAISE EXCEPTION 'pgtenantd: schema "%" belongs to tenant "%" (migrated by job %); tenant "%" maps to the same schema',
				s, mark_tenant, mark_job, p_tenant;
		ELSIF mark_tenant IS NOT NULL AND mark_job <> p_job
		      AND coalesce(mark_state, 'gone') NOT IN ('failed', 'cancelled') THEN
			RAISE EXCEPTION 'pgtenantd: schema "%" was written by migration job % of tenant "%", which is %',
				s, mark_job, p_tenant, coalesce(mark_state, 'no longer in pgtenantd.jobs');
		ELSIF mark_tenant IS NULL THEN
			SELECT string_agg(c.relname, ', ' ORDER BY c.relname) INTO rels
			  FROM pg_catalog.pg_class c WHERE c.relnamespace = ns;
			IF rels IS NOT NULL THEN
				RAISE EXCEPTION 'pgtenantd: schema "%" exists and holds data this job did not write (%)',
					s, left(rels, 200)
					USING HINT = 'move or drop it first; this job only fills a schema that is new, empty or its own';
			END IF;
		END IF;
	END IF;

	-- Trigger code on the tables this job writes runs with this session's
	-- rights (see pgtenantd.untrusted_trigger_code).
	foreign_code := pgtenantd.untrusted_trigger_code(checked || to_regclass('public.tenant_metadata'));
	IF foreign_code IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: refusing to migrate tenant "%": % (code of a role that is neither the daemon''s role %, a role it is a member of, nor a superuser would run with the daemon''s rights)',
			p_tenant, foreign_code, current_user
			USING HINT = 'drop or disable the trigger, make its function SECURITY DEFINER, or have a trusted role own it; see "Running with least privilege" in README.md';
	END IF;

	IF total = 0 AND NOT p_allow_empty THEN
		RAISE EXCEPTION 'pgtenantd: tenant "%" has no rows in the shared tables', p_tenant
			USING HINT = 'check the tenant id, or set the arg allow_empty to "true" to create its empty schema';
	END IF;

	INSERT INTO pgtenantd.migrations (job_id, tenant_id, schema_name, tables,
					  cutover_mode, lock_budget, rows_total)
	VALUES (p_job, p_tenant, s, p_tables, p_cutover, p_lock_budget, total);
	INSERT INTO pgtenantd.migration_fence (job_id, tenant_id, schema_name)
	VALUES (p_job, p_tenant, s);
	RETURN total;
END $$;

-- Capture on: per shared table an INSERT, an UPDATE and a DELETE row
-- trigger for the tenant's rows, and a TRUNCATE guard. Each CREATE TRIGGER
-- waits for the writers in flight on its table (under a short lock_timeout,
-- retried): once this commits, every write of the tenant's rows is
-- recorded, and every write before it is committed.
CREATE FUNCTION pgtenantd.migration_capture_on(p_job bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	rel regclass;
	args text;
	mine text;
	spec record;
	stale bigint[] := ARRAY(SELECT pgtenantd.migration_stale());
	ddl text[];
BEGIN
	IF m.phase NOT IN ('preflight', 'capture') THEN
		RETURN;
	END IF;
	-- the triggers that migrations which ended before their flip left go
	-- in the same attempt as this one's: one short lock on each table
	ddl := ARRAY(SELECT unnest(pgtenantd.migration_drop_capture_sql(g)) FROM unnest(stale) AS g);
	-- this job's own delete batches pass (a guard against lost writes, not
	-- a security boundary: a session that sets it on purpose can write)
	mine := format('current_setting(''pgtenantd.migration_job'', true) IS DISTINCT FROM %L', p_job::text);
	FOREACH tbl IN ARRAY m.tables LOOP
		rel := format('public.%I', tbl)::regclass;
		SELECT string_agg(quote_literal(x), ', ') INTO args
		  FROM unnest(p_job::text || (SELECT k.names FROM pgtenantd.migration_key(rel) k)) AS x;
		FOR spec IN SELECT * FROM (VALUES
			('insert', 'AFTER INSERT', format('NEW.tenant_id = %L', m.tenant_id)),
			('update', 'AFTER UPDATE', format('(OLD.tenant_id = %L OR NEW.tenant_id = %L)', m.tenant_id, m.tenant_id)),
			('delete', 'AFTER DELETE', format('OLD.tenant_id = %L', m.tenant_id))) AS v (op, event, cond) LOOP
			CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_trigger t
					       WHERE t.tgrelid = rel AND t.tgname = pgtenantd.migration_trigger_name(p_job, spec.op));
			ddl := ddl || format('CREATE TRIGGER %I %s ON %s FOR EACH ROW WHEN (%s AND %s) EXECUTE FUNCTION pgtenantd.migration_capture(%s)',
					     pgtenantd.migration_trigger_name(p_job, spec.op), spec.event, rel,
					     spec.cond, mine, args);
		END LOOP;
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
				WHERE t.tgrelid = rel AND t.tgname = pgtenantd.migration_trigger_name(p_job, 'truncate')) THEN
			ddl := ddl || format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION pgtenantd.migration_guard_truncate(%L)',
					     pgtenantd.migration_trigger_name(p_job, 'truncate'), rel, p_job::text);
		END IF;
	END LOOP;
	PERFORM pgtenantd.migration_ddl(ddl, format('add the capture triggers of migration job %s', p_job));
	DELETE FROM pgtenantd.migration_changes WHERE job_id = ANY (stale);
	PERFORM pgtenantd.migration_set_phase(p_job, 'capture');
END $$;

-- The schema and its tables: the shared columns minus tenant_id, with
-- their types, collations, defaults and NOT NULL; no index yet. Owned by
-- the shared tables' owner when this role may act as it; REVOKE ALL FROM
-- PUBLIC; whoever has rights on a shared table (and the roles of arg
-- grant_to) gets the same on the tenant's.
CREATE FUNCTION pgtenantd.migration_create(p_job bigint, p_grant_to text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	s text := m.schema_name;
	mine text := format('pgtenantd: migrate_to_separate_schema job %s, tenant %s', p_job, m.tenant_id);
	ns oid;
	mark text;
	tbl text;
	rel regclass;
	cols text;
	g record;
	r text;
	app regrole;
	as_app boolean;
BEGIN
	IF m.phase NOT IN ('capture', 'create') THEN
		RETURN;
	END IF;
	-- A role of grant_to gets on the tenant's tables what it may do with
	-- the shared ones (directly or through a role it belongs to), never
	-- more: an enqueuer cannot lend itself the daemon's rights this way.
	FOREACH r IN ARRAY coalesce(p_grant_to, '{}') LOOP
		IF to_regrole(r) IS NULL THEN
			RAISE EXCEPTION 'pgtenantd: arg grant_to names role "%", which does not exist', left(r, 64);
		END IF;
		FOREACH tbl IN ARRAY m.tables LOOP
			IF NOT has_table_privilege(r, format('public.%I', tbl), 'SELECT') THEN
				RAISE EXCEPTION 'pgtenantd: arg grant_to names role "%", which may not read public.%; a role gets on the tenant''s tables only the rights it has on the shared ones',
					r, tbl;
			END IF;
		END LOOP;
	END LOOP;
	rel := format('public.%I', m.tables[1])::regclass;
	SELECT c.relowner::regrole INTO app FROM pg_catalog.pg_class c WHERE c.oid = rel;
	as_app := pg_has_role(current_user, app, 'MEMBER');
	SELECT n.oid, obj_description(n.oid, 'pg_namespace') INTO ns, mark
	  FROM pg_catalog.pg_namespace n WHERE n.nspname = s;
	IF ns IS NULL AND as_app THEN
		EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %s', s, app);
	ELSIF ns IS NULL THEN
		EXECUTE format('CREATE SCHEMA %I', s);
		EXECUTE format('GRANT ALL ON SCHEMA %I TO %s', s, app);
	ELSIF mark IS DISTINCT FROM mine THEN
		-- preflight let through only an empty schema or the copy of a failed
		-- migration of this tenant: start that copy over
		IF mark IS NULL OR mark NOT LIKE 'pgtenantd: migrate_to_separate_schema job %, tenant ' || m.tenant_id
		   OR EXISTS (SELECT FROM pgtenantd.jobs j
			       WHERE j.id = substring(mark FROM 'job ([0-9]+),')::bigint
				 AND j.state NOT IN ('failed', 'cancelled')) THEN
			IF mark IS NOT NULL OR EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.relnamespace = ns) THEN
				RAISE EXCEPTION 'pgtenantd: schema "%" holds data this job did not write', s;
			END IF;
		END IF;
		FOR tbl IN SELECT c.relname FROM pg_catalog.pg_class c
			    WHERE c.relnamespace = ns AND c.relkind = 'r' AND c.relname = ANY (m.tables) LOOP
			EXECUTE format('DROP TABLE %I.%I', s, tbl);
		END LOOP;
	END IF;
	EXECUTE format('COMMENT ON SCHEMA %I IS %L', s, mine);
	EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', s);

	FOREACH tbl IN ARRAY m.tables LOOP
		rel := format('public.%I', tbl)::regclass;
		-- a table left by this job's own earlier attempt starts over
		EXECUTE format('DROP TABLE IF EXISTS %I.%I', s, tbl);
		SELECT string_agg(format('%I %s%s%s%s', a.attname,
			 format_type(a.atttypid, a.atttypmod),
			 CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
			      THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END,
			 CASE WHEN d.adbin IS NOT NULL
			      THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END,
			 CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END),
			 ', ' ORDER BY a.attnum)
		  INTO cols
		  FROM pg_catalog.pg_attribute a
		  JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
		  LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
		  LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
		  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		 WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'tenant_id';
		EXECUTE format('CREATE TABLE %I.%I (%s)', s, tbl, cols);
		IF as_app THEN
			EXECUTE format('ALTER TABLE %I.%I OWNER TO %s', s, tbl, app);
		ELSE
			EXECUTE format('GRANT ALL ON %I.%I TO %s', s, tbl, app);
		END IF;
		FOR g IN SELECT DISTINCT x.grantee::regrole::text AS grantee, x.privilege_type AS priv
			   FROM pg_catalog.pg_class c, aclexplode(c.relacl) x
			  WHERE c.oid = rel AND x.grantee <> c.relowner AND x.grantee <> 0 LOOP
			EXECUTE format('GRANT USAGE ON SCHEMA %I TO %s', s, g.grantee);
			EXECUTE format('GRANT %s ON %I.%I TO %s', g.priv, s, tbl, g.grantee);
		END LOOP;
		FOR g IN SELECT gr.role_name, gp.priv
			   FROM unnest(coalesce(p_grant_to, '{}')) AS gr (role_name),
				unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS gp (priv)
			  WHERE has_table_privilege(gr.role_name, rel, gp.priv) LOOP
			EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, g.role_name);
			EXECUTE format('GRANT %s ON %I.%I TO %I', g.priv, s, tbl, g.role_name);
		END LOOP;
	END LOOP;
	DELETE FROM pgtenantd.migration_copy WHERE job_id = p_job;
	INSERT INTO pgtenantd.migration_copy (job_id, table_name, position)
	SELECT p_job, x, '' FROM unnest(m.tables) AS x;
	PERFORM pgtenantd.migration_set_phase(p_job, 'copy');
END $$;

-- One copy batch: the tenant's rows of up to p_pages pages of the first
-- shared table not done yet (a TID range scan: every page once, in order,
-- as one sequential scan would), from the position in
-- pgtenantd.migration_copy, which moves in the same transaction: each page
-- is copied exactly once. Returns the engine's (last_key, rows): rows is at
-- least 1 until the last table's end (the loop goes on over pages without
-- the tenant's rows), then 0.
CREATE FUNCTION pgtenantd.migration_copy_batch(p_job bigint, p_pages bigint,
	OUT last_key text, OUT rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	c pgtenantd.migration_copy;
	rel regclass;
	node text;
	nblocks bigint;
	lo bigint := 0;
	n bigint := greatest(p_pages, 1);
BEGIN
	IF m.phase <> 'copy' THEN
		last_key := NULL; rows := 0;	-- done before
		RETURN;
	END IF;
	SELECT * INTO c FROM pgtenantd.migration_copy x
	 WHERE x.job_id = p_job AND x.position <> 'done'
	 ORDER BY array_position(m.tables, x.table_name) LIMIT 1
	   FOR UPDATE;
	IF NOT FOUND THEN
		last_key := NULL; rows := 0;
		RETURN;
	END IF;
	IF m.batch_limit = 0 THEN
		PERFORM pg_sleep(0.5);	-- paused: hold still
		last_key := c.table_name || ':' || c.position || ' (paused)'; rows := 1;
		RETURN;
	END IF;
	n := least(n, coalesce(m.batch_limit, n));
	rel := format('public.%I', c.table_name)::regclass;
	node := pg_relation_filenode(rel)::text;
	nblocks := pg_relation_size(rel) / current_setting('block_size')::bigint;
	IF c.position <> '' THEN
		IF split_part(c.position, ':', 1) <> node THEN
			RAISE EXCEPTION 'pgtenantd: public.% was rewritten (VACUUM FULL or CLUSTER?) while tenant "%" was being copied; enqueue the migration again',
				c.table_name, m.tenant_id;
		END IF;
		lo := split_part(c.position, ':', 2)::bigint;
	END IF;
	IF lo >= nblocks THEN
		UPDATE pgtenantd.migration_copy SET position = 'done'
		 WHERE job_id = p_job AND table_name = c.table_name;
		last_key := c.table_name || ':done'; rows := 1;
		RETURN;
	END IF;
	PERFORM pgtenantd.migration_lock_trusted(format('%I.%I', m.schema_name, c.table_name)::regclass);
	EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM %s s
			 WHERE s.ctid >= $1 AND s.ctid < $2 AND s.tenant_id = $3',
		       m.schema_name, c.table_name, pgtenantd.migration_columns(rel, ''),
		       pgtenantd.migration_columns(rel, 's'), rel)
		USING format('(%s,0)', lo)::tid, format('(%s,0)', lo + n)::tid, m.tenant_id;
	GET DIAGNOSTICS rows = ROW_COUNT;
	UPDATE pgtenantd.migration_copy
	   SET position = node || ':' || (lo + n), rows_copied = rows_copied + rows
	 WHERE job_id = p_job AND table_name = c.table_name;
	last_key := c.table_name || ':' || node || ':' || (lo + n);
	rows := greatest(rows, 1);
END $$;

-- After the copy: the tenant tables hold every row of the shared tables'
-- tenant once, except keys that changed while the copy ran (a row updated
-- onto a later page is read twice). Those keys go; catch-up puts their
-- current state back. One pass per table, before the primary key exists.
CREATE FUNCTION pgtenantd.migration_purge(p_job bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	rel regclass;
	ks record;
	n bigint;
	total bigint := 0;
BEGIN
	IF m.phase <> 'copy' THEN
		RETURN 0;
	END IF;
	FOREACH tbl IN ARRAY m.tables LOOP
		IF (SELECT c.position FROM pgtenantd.migration_copy c
		     WHERE c.job_id = p_job AND c.table_name = tbl) IS DISTINCT FROM 'done' THEN
			RAISE EXCEPTION 'pgtenantd: the copy of public.% is not complete', tbl;
		END IF;
		rel := format('public.%I', tbl)::regclass;
		ks := pgtenantd.migration_key_sql(rel, 'd');
		PERFORM pgtenantd.migration_lock_trusted(format('%I.%I', m.schema_name, tbl)::regclass);
		-- typed keys, hash-joined: no jsonb built per row of the table
		EXECUTE format('DELETE FROM %I.%I d
				 USING (SELECT DISTINCT %s FROM (SELECT c.key AS k FROM pgtenantd.migration_changes c
								  WHERE c.job_id = $1 AND c.table_name = $2) j) x
				 WHERE %s',
			       m.schema_name, tbl, ks.from_jsonb, ks.join_on)
			USING p_job, tbl;
		GET DIAGNOSTICS n = ROW_COUNT;
		total := total + n;
	END LOOP;
	PERFORM pgtenantd.migration_set_phase(p_job, 'catch_up');
	RETURN total;
END $$;

-- The primary key (the shared key minus tenant_id), then each other index
-- of the shared table without its tenant_id column, named like the
-- application names a tenant's indexes: idx_<schema>_<the shared index's
-- name without idx_, graph_ and tenant>. One index per call (the job
-- calls it until it returns NULL), built with p_workers parallel workers
-- and p_memory of maintenance_work_mem.
CREATE FUNCTION pgtenantd.migration_next_index(p_job bigint, p_workers integer,
	p_memory text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	rel regclass;
	target regclass;
	ix record;
	cols text;
	name text;
BEGIN
	IF m.phase <> 'catch_up' THEN
		RETURN NULL;
	END IF;
	PERFORM set_config('max_parallel_maintenance_workers', p_workers::text, true),
		set_config('maintenance_work_mem', p_memory, true);
	FOREACH tbl IN ARRAY m.tables LOOP
		rel := format('public.%I', tbl)::regclass;
		target := format('%I.%I', m.schema_name, tbl)::regclass;
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = target AND i.indisprimary) THEN
			SELECT string_agg(quote_ident(x), ', ') INTO cols
			  FROM unnest((SELECT k.names FROM pgtenantd.migration_key(rel) k)) AS x;
			EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (%s)', target, cols);
			RETURN format('%s primary key (%s)', target, cols);
		END IF;
	END LOOP;
	FOREACH tbl IN ARRAY m.tables LOOP
		rel := format('public.%I', tbl)::regclass;
		target := format('%I.%I', m.schema_name, tbl)::regclass;
		FOR ix IN SELECT c.relname AS shared_name, i.indkey, i.indisunique, am.amname
			    FROM pg_catalog.pg_index i
			    JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
			    JOIN pg_catalog.pg_am am ON am.oid = c.relam
			   WHERE i.indrelid = rel AND NOT i.indisprimary AND i.indisvalid
			     AND i.indexprs IS NULL AND i.indpred IS NULL
			   ORDER BY c.relname LOOP
			-- its columns without tenant_id
			SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) INTO cols
			  FROM unnest(ix.indkey) WITH ORDINALITY AS k (attnum, n)
			  JOIN pg_catalog.pg_attribute a ON a.attrelid = rel AND a.attnum = k.attnum
			 WHERE a.attname <> 'tenant_id';
			CONTINUE WHEN cols IS NULL;
			name := left(format('idx_%s_%s', m.schema_name,
					    regexp_replace(regexp_replace(ix.shared_name, '^(idx_)?(graph_)?', ''),
							   '_tenant(_id)?(_|$)', '\2')), 63);
			CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_index i
					       JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
					      WHERE i.indrelid = target
						AND (c.relname = name OR c.relname = left(format('%s_%s', tbl, ix.shared_name), 63)));
			IF EXISTS (SELECT FROM pg_catalog.pg_class c
				    WHERE c.relname = name AND c.relnamespace = m.schema_name::regnamespace) THEN
				-- names cut at 63 bytes may collide: the index still comes
				name := left(format('%s_%s', tbl, ix.shared_name), 63);
			END IF;
			EXECUTE format('CREATE %sINDEX %I ON %s USING %I (%s)',
				       CASE WHEN ix.indisunique THEN 'UNIQUE ' ELSE '' END,
				       name, target, ix.amname, cols);
			RETURN format('%s index %s (%s)', target, name, cols);
		END LOOP;
	END LOOP;
	RETURN NULL;
END $$;

-- Apply up to p_keys captured changes (oldest first): for each key, the
-- tenant table's row becomes the shared row's current state, or goes if
-- the shared row is gone or no longer the tenant's. By key, so order does
-- not matter; a change committed after this batch's snapshot stays for
-- the next. Returns how many change rows it applied.
CREATE FUNCTION pgtenantd.migration_apply(p_job bigint, p_keys bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	rel regclass;
	ks record;
	batch jsonb;
	applied bigint;
BEGIN
	WITH picked AS (
		UPDATE pgtenantd.migration_changes c
		   SET applied_txid = pg_current_xact_id(), applied_at = clock_timestamp()
		 WHERE c.id IN (SELECT p.id FROM pgtenantd.migration_changes p
				 WHERE p.job_id = p_job AND p.applied_txid IS NULL
				 ORDER BY p.id LIMIT p_keys)
		RETURNING c.table_name, c.key)
	SELECT jsonb_object_agg(z.table_name, z.keys), sum(z.n)
	  INTO batch, applied
	  FROM (SELECT p.table_name, jsonb_agg(DISTINCT p.key) AS keys, count(*) AS n
		  FROM picked p GROUP BY p.table_name) z;
	IF batch IS NULL THEN
		RETURN 0;
	END IF;
	-- a count kept, so that showing it costs nothing however many keys
	-- a long migration replays
	UPDATE pgtenantd.migrations SET replayed_keys = replayed_keys + applied
	 WHERE job_id = p_job;
	FOREACH tbl IN ARRAY m.tables LOOP
		CONTINUE WHEN batch -> tbl IS NULL;
		rel := format('public.%I', tbl)::regclass;
		PERFORM pgtenantd.migration_lock_trusted(format('%I.%I', m.schema_name, tbl)::regclass);
		ks := pgtenantd.migration_key_sql(rel, 'd');
		EXECUTE format('DELETE FROM %I.%I d
				 USING (SELECT DISTINCT %s FROM jsonb_array_elements($1) AS j (k)) x
				 WHERE %s',
			       m.schema_name, tbl, ks.from_jsonb, ks.join_on)
			USING batch -> tbl;
		ks := pgtenantd.migration_key_sql(rel, 's');
		EXECUTE format('INSERT INTO %I.%I (%s)
				SELECT %s FROM %s s
				  JOIN (SELECT DISTINCT %s FROM jsonb_array_elements($1) AS j (k)) x ON %s
				 WHERE s.tenant_id = $2',
			       m.schema_name, tbl, pgtenantd.migration_columns(rel, ''),
			       pgtenantd.migration_columns(rel, 's'), rel, ks.from_jsonb, ks.join_on)
			USING batch -> tbl, m.tenant_id;
	END LOOP;
	RETURN applied;
END $$;

-- Statistics for the new tables.
CREATE FUNCTION pgtenantd.migration_analyze(p_job bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
BEGIN
	IF m.phase <> 'catch_up' THEN
		RETURN;
	END IF;
	FOREACH tbl IN ARRAY m.tables LOOP
		EXECUTE format('ANALYZE %I.%I', m.schema_name, tbl);
	END LOOP;
END $$;

CREATE FUNCTION pgtenantd.migration_backlog(p_job bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT count(*) FROM pgtenantd.migration_changes c
	 WHERE c.job_id = p_job AND c.applied_txid IS NULL
$$;

-- One catch-up batch: apply up to p_keys changes; the loop ends (NULL
-- last_key) once the backlog left is at most p_small.
CREATE FUNCTION pgtenantd.migration_catch_up_batch(p_job bigint, p_keys bigint,
	p_small bigint, OUT last_key text, OUT rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	left_over bigint;
BEGIN
	IF m.phase NOT IN ('catch_up', 'verify') THEN
		last_key := NULL; rows := 0;
		RETURN;
	END IF;
	IF m.batch_limit = 0 THEN
		PERFORM pg_sleep(0.5);
		last_key := 'throttled'; rows := 1;
		RETURN;
	END IF;
	rows := pgtenantd.migration_apply(p_job, least(greatest(p_keys, 1), coalesce(nullif(m.batch_limit, 0), p_keys)));
	left_over := pgtenantd.migration_backlog(p_job);
	last_key := CASE WHEN left_over > p_small THEN 'backlog ' || left_over END;
	rows := greatest(rows, 1);
END $$;

-- Per-row hash of every column but tenant_id (each type's own hash
-- function: equal values hash alike, so this compares what SQL's =
-- compares).
CREATE FUNCTION pgtenantd.migration_hash_sql(p_table regclass, p_alias text)
RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT format('hash_record_extended(ROW(%s), 0)', pgtenantd.migration_columns(p_table, p_alias))
$$;

-- Verify while capture goes on: per table, in one snapshot, the row count
-- and the sum and xor of the row hashes, shared against separate, leaving
-- out the keys with changes not yet applied. Then the applied changes are
-- marked checked (only this job applies changes, so those are the ones the
-- snapshot saw applied); the cut-over compares the keys changed since one
-- by one. The comparison is read-only, so PostgreSQL may scan in parallel.
-- Fails the job with both results on a mismatch.
CREATE FUNCTION pgtenantd.migration_verify(p_job bigint)
RETURNS TABLE (table_name text, rows bigint, hash_sum numeric)
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	rel regclass;
	ks_s record;
	ks_d record;
	r record;
BEGIN
	IF m.phase NOT IN ('catch_up', 'verify') THEN
		RETURN;
	END IF;
	FOREACH tbl IN ARRAY m.tables LOOP
		rel := format('public.%I', tbl)::regclass;
		ks_s := pgtenantd.migration_key_sql(rel, 's');
		ks_d := pgtenantd.migration_key_sql(rel, 'd');
		-- the keys still waiting, typed, left out by a hash anti-join
		EXECUTE format($q$
			WITH pending AS MATERIALIZED (
				SELECT DISTINCT %s FROM (SELECT c.key AS k FROM pgtenantd.migration_changes c
							  WHERE c.job_id = $1 AND c.table_name = $2
							    AND c.applied_txid IS NULL) j),
			sh AS (SELECT count(*) AS n, coalesce(sum(h), 0) AS hs, coalesce(bit_xor(h), 0) AS hx
				 FROM (SELECT %s AS h FROM %s s
					WHERE s.tenant_id = $3 AND NOT EXISTS (SELECT FROM pending x WHERE %s)) z),
			sp AS (SELECT count(*) AS n, coalesce(sum(h), 0) AS hs, coalesce(bit_xor(h), 0) AS hx
				 FROM (SELECT %s AS h FROM %I.%I d
					WHERE NOT EXISTS (SELECT FROM pending x WHERE %s)) z)
			SELECT sh.n AS sn, sh.hs AS shs, sh.hx AS shx, sp.n AS dn, sp.hs AS dhs, sp.hx AS dhx
			  FROM sh, sp$q$,
			ks_s.from_jsonb,
			pgtenantd.migration_hash_sql(rel, 's'), rel, ks_s.join_on,
			pgtenantd.migration_hash_sql(rel, 'd'), m.schema_name, tbl, ks_d.join_on)
			INTO r USING p_job, tbl, m.tenant_id;
		IF r.sn <> r.dn OR r.shs <> r.dhs OR r.shx <> r.dhx THEN
			RAISE EXCEPTION 'pgtenantd: verify failed for tenant "%": public.% has % rows (hash sum %, xor %), %.% has % rows (hash sum %, xor %), keys with changes not yet applied left out',
				m.tenant_id, tbl, r.sn, r.shs, r.shx, m.schema_name, tbl, r.dn, r.dhs, r.dhx;
		END IF;
		UPDATE pgtenantd.migration_changes c SET checked = true
		 WHERE c.job_id = p_job AND c.table_name = tbl AND NOT c.checked
		   AND c.applied_txid IS NOT NULL;
		table_name := tbl; rows := r.sn; hash_sum := r.shs;
		RETURN NEXT;
	END LOOP;
	-- last: the row pgtenantd_read and the control calls see is locked
	-- only for a moment
	PERFORM pgtenantd.migration_set_phase(p_job, 'verify');
END $$;

-- Compare, key by key, the rows of keys whose changes are not checked yet
-- (changed since verify); marks them checked. Returns a description of
-- the first difference, NULL when there is none.
CREATE FUNCTION pgtenantd.migration_check_delta(p_job bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	rel regclass;
	ks_s record;
	ks_d record;
	bad text;
BEGIN
	FOREACH tbl IN ARRAY m.tables LOOP
		rel := format('public.%I', tbl)::regclass;
		ks_s := pgtenantd.migration_key_sql(rel, 's');
		ks_d := pgtenantd.migration_key_sql(rel, 'd');
		EXECUTE format($q$
			WITH keys AS MATERIALIZED (
				SELECT DISTINCT c.key FROM pgtenantd.migration_changes c
				 WHERE c.job_id = $1 AND c.table_name = $2 AND NOT c.checked),
			sh AS (SELECT %s AS key, %s AS h FROM %s s
				 JOIN (SELECT DISTINCT %s FROM (SELECT key AS k FROM keys) j) x ON %s
				WHERE s.tenant_id = $3),
			sp AS (SELECT %s AS key, %s AS h FROM %I.%I d
				 JOIN (SELECT DISTINCT %s FROM (SELECT key AS k FROM keys) j) x ON %s)
			SELECT coalesce(sh.key, sp.key)::text
			  FROM sh FULL JOIN sp ON sh.key = sp.key
			 WHERE sh.h IS DISTINCT FROM sp.h LIMIT 1$q$,
			ks_s.as_jsonb, pgtenantd.migration_hash_sql(rel, 's'), rel, ks_s.from_jsonb, ks_s.join_on,
			ks_d.as_jsonb, pgtenantd.migration_hash_sql(rel, 'd'), m.schema_name, tbl,
			ks_d.from_jsonb, ks_d.join_on)
			INTO bad USING p_job, tbl, m.tenant_id;
		IF bad IS NOT NULL THEN
			RETURN format('public.%s and %s.%s differ at key %s', tbl, m.schema_name, tbl, bad);
		END IF;
		UPDATE pgtenantd.migration_changes c SET checked = true
		 WHERE c.job_id = p_job AND c.table_name = tbl AND NOT c.checked;
	END LOOP;
	RETURN NULL;
END $$;

-- Record the flip in public.tenant_metadata (created if missing).
CREATE FUNCTION pgtenantd.migration_flip_metadata(p_tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF to_regclass('public.tenant_metadata') IS NULL THEN
		-- (CREATE TABLE IF NOT EXISTS would need CREATE on schema public
		-- even when the table is there)
		CREATE TABLE public.tenant_metadata (
			tenant_id text PRIMARY KEY,
			isolation_mode text NOT NULL DEFAULT 'shared_schema',
			created_at timestamptz NOT NULL DEFAULT now()
		);
	END IF;
	PERFORM pgtenantd.migration_lock_trusted('public.tenant_metadata'::regclass);
	INSERT INTO public.tenant_metadata AS m (tenant_id, isolation_mode)
	VALUES (p_tenant, 'separate_schema')
	ON CONFLICT (tenant_id) DO UPDATE SET isolation_mode = EXCLUDED.isolation_mode;
END $$;

-- One cut-over attempt. The tenant's writers wait on the migration's lock
-- while this holds it: the last changes are applied, the keys changed
-- since verify compared, the migration marked moved (writers that were
-- waiting then get 40001 and retry in the tenant's schema) and
-- public.tenant_metadata flipped, all in this transaction. The lock is
-- waited for at most half the budget, and the work under it given the
-- other half; past either the attempt rolls back (writers go on) and the
-- next call tries again after a backoff. With cutover 'manual' it waits,
-- caught up, until pgtenantd.migration_cutover() says go.
-- Returns (last_key, rows): rows 0 once the tenant moved.
CREATE FUNCTION pgtenantd.migration_cutover_batch(p_job bigint, p_small bigint,
	OUT last_key text, OUT rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	half interval := m.lock_budget / 2;
	started timestamptz;
	wait_ms bigint;
	bad text;
	why text;
BEGIN
	IF m.phase IN ('moved', 'done') THEN
		last_key := NULL; rows := 0;
		RETURN;
	END IF;
	IF m.phase NOT IN ('verify', 'cutover') THEN
		RAISE EXCEPTION 'pgtenantd: migration job % is in phase %, not ready to cut over', p_job, m.phase;
	END IF;
	-- backoff after a failed attempt: 100 ms doubling, at most 5 s
	IF m.last_cutover_error IS NOT NULL THEN
		wait_ms := least(100 * 2 ^ least(m.cutover_attempts, 6), 5000);
		PERFORM pg_sleep(greatest(0, wait_ms / 1000.0
			- extract(epoch FROM clock_timestamp() - m.last_cutover_at)));
	END IF;
	-- catch up outside the lock (touching no row the writers lock)
	PERFORM pgtenantd.migration_apply(p_job, 10000);
	IF m.cutover_mode = 'manual' AND NOT m.cutover_go THEN
		PERFORM pg_sleep(0.2);
		last_key := 'waiting for pgtenantd.migration_cutover(' || p_job || ')'; rows := 1;
		RETURN;
	END IF;
	IF pgtenantd.migration_backlog(p_job) > p_small THEN
		last_key := 'catching up'; rows := 1;
		RETURN;
	END IF;
	BEGIN
		PERFORM set_config('lock_timeout', (extract(epoch FROM half) * 1000)::bigint || 'ms', true);
		started := clock_timestamp();
		PERFORM pg_advisory_xact_lock(pgtenantd.migration_lock_key(p_job));
		PERFORM set_config('lock_timeout', '0', true);
		-- no writer of the tenant is in flight now, and none starts
		LOOP
			EXIT WHEN pgtenantd.migration_apply(p_job, 10000) = 0;
			IF clock_timestamp() - started > m.lock_budget THEN
				RAISE EXCEPTION 'pgtenantd: cut-over over its lock budget while applying changes' USING ERRCODE = 'PT001';
			END IF;
		END LOOP;
		bad := pgtenantd.migration_check_delta(p_job);
		IF bad IS NOT NULL THEN
			RAISE EXCEPTION 'pgtenantd: cut-over of tenant "%" found a difference: %', m.tenant_id, bad;
		END IF;
		IF clock_timestamp() - started > m.lock_budget THEN
			RAISE EXCEPTION 'pgtenantd: cut-over over its lock budget (%) after checking the changed keys', m.lock_budget
				USING ERRCODE = 'PT001';
		END IF;
		PERFORM pgtenantd.migration_flip_metadata(m.tenant_id);
		UPDATE pgtenantd.migration_fence SET moved = true WHERE job_id = p_job;
		-- Every transaction that wrote the tenant's shared rows through
		-- the capture has ended (this holds the lock they share): the
		-- delete takes rows written by transactions older than this
		-- snapshot's xmax, one written past the capture after the flip
		-- stays.
		UPDATE pgtenantd.migrations
		   SET phase = 'moved', phase_at = now(), moved_at = now(),
		       moved_xid = pg_snapshot_xmax(pg_current_snapshot()),
		       cutover_attempts = cutover_attempts + 1, last_cutover_at = clock_timestamp(),
		       cutover_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
		 WHERE job_id = p_job;
		last_key := NULL; rows := 0;
		RETURN;
	EXCEPTION WHEN lock_not_available OR SQLSTATE 'PT001' THEN
		GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
	END;
	-- the attempt rolled back and its lock is gone: writers go on
	UPDATE pgtenantd.migrations
	   SET phase = 'cutover', cutover_attempts = cutover_attempts + 1,
	       last_cutover_at = clock_timestamp(), last_cutover_error = why
	 WHERE job_id = p_job;
	last_key := 'attempt ' || (m.cutover_attempts + 1) || ' failed'; rows := 1;
END $$;

-- One delete batch after the flip: the tenant's shared rows of up to
-- p_pages pages, table by table in the reverse order of the copy, written
-- before the flip (a row written since, by a session that bypassed the
-- triggers, was never moved: it stays, and left_over fails on it). The key is
-- '<table>:<filenode>:<next page>'; a batch finds what is left from any
-- key, so a resumed step may sweep again. Passes the capture triggers as
-- this job.
CREATE FUNCTION pgtenantd.migration_delete_batch(p_job bigint, p_last_key text,
	p_pages bigint, OUT last_key text, OUT rows bigint)
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	order_ text[] := ARRAY(SELECT t FROM unnest(m.tables) WITH ORDINALITY AS x (t, i) ORDER BY i DESC);
	tbl text := split_part(p_last_key, ':', 1);
	k int := coalesce(array_position(order_, tbl), 1);
	rel regclass;
	node text;
	nblocks bigint;
	lo bigint := 0;
	n bigint := greatest(p_pages, 1);
BEGIN
	IF m.phase = 'done' THEN
		last_key := NULL; rows := 0;
		RETURN;
	END IF;
	IF m.phase <> 'moved' OR m.moved_xid IS NULL THEN
		RAISE EXCEPTION 'pgtenantd: tenant "%" has not been cut over (phase %); its shared rows stay', m.tenant_id, m.phase;
	END IF;
	IF m.batch_limit = 0 THEN
		PERFORM pg_sleep(0.5);
		last_key := p_last_key; rows := 1;
		RETURN;
	END IF;
	n := least(n, coalesce(m.batch_limit, n));
	tbl := order_[k];
	rel := format('public.%I', tbl)::regclass;
	node := pg_relation_filenode(rel)::text;
	nblocks := pg_relation_size(rel) / current_setting('block_size')::bigint;
	IF split_part(p_last_key, ':', 1) = tbl AND split_part(p_last_key, ':', 2) = node THEN
		lo := coalesce(nullif(split_part(p_last_key, ':', 3), ''), '0')::bigint;
	END IF;
	IF lo >= nblocks THEN
		IF k = cardinality(order_) THEN
			last_key := NULL; rows := 0;
		ELSE
			last_key := order_[k + 1] || '::0'; rows := 1;
		END IF;
		RETURN;
	END IF;
	PERFORM set_config('pgtenantd.migration_job', p_job::text, true);
	PERFORM pgtenantd.migration_lock_trusted(rel);
	EXECUTE format('DELETE FROM %s s WHERE s.ctid >= $1 AND s.ctid < $2 AND s.tenant_id = $3
			  AND age(s.xmin) > age($4)', rel)
		USING format('(%s,0)', lo)::tid, format('(%s,0)', lo + n)::tid, m.tenant_id,
		      xid(m.moved_xid);
	GET DIAGNOSTICS rows = ROW_COUNT;
	last_key := tbl || ':' || node || ':' || (lo + n);
	rows := greatest(rows, 1);
END $$;

-- After the delete: no shared row of the tenant may be left; one that is
-- was written after the cut-over by a session that bypassed the capture
-- triggers, and trying again cannot fix it (the job fails for good).
CREATE FUNCTION pgtenantd.migration_left_over(p_job bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	n bigint;
	total bigint := 0;
BEGIN
	IF m.phase = 'done' THEN
		RETURN 0;
	END IF;
	IF m.phase <> 'moved' THEN
		RAISE EXCEPTION 'pgtenantd: tenant "%" has not been cut over (phase %)', m.tenant_id, m.phase;
	END IF;
	FOREACH tbl IN ARRAY m.tables LOOP
		EXECUTE format('SELECT count(*) FROM public.%I WHERE tenant_id = $1', tbl) INTO n USING m.tenant_id;
		total := total + n;
	END LOOP;
	IF total > 0 THEN
		RAISE EXCEPTION 'pgtenantd: % shared rows of tenant "%" were written after its cut-over (by a session that bypassed the capture triggers); they are left in public.%: compare them with schema "%"',
			total, m.tenant_id, array_to_string(m.tables, ', public.'), m.schema_name;
	END IF;
	RETURN 0;
END $$;

-- The end: capture off, the change rows gone.
CREATE FUNCTION pgtenantd.migration_finish(p_job bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
BEGIN
	IF m.phase = 'done' THEN
		RETURN;
	END IF;
	IF m.phase <> 'moved' THEN
		RAISE EXCEPTION 'pgtenantd: tenant "%" has not been cut over (phase %)', m.tenant_id, m.phase;
	END IF;
	PERFORM pgtenantd.migration_remove_capture(p_job);
	PERFORM pgtenantd.migration_set_phase(p_job, 'done');
END $$;

-- What the job reports: the schema, the layout and the rows of each table.
CREATE FUNCTION pgtenantd.migration_result(p_job bigint, OUT schema text,
	OUT isolation_mode text, OUT rows jsonb, OUT cutover_ms integer,
	OUT cutover_attempts integer)
LANGUAGE plpgsql AS $$
DECLARE
	m pgtenantd.migrations := pgtenantd.migration_row(p_job);
	tbl text;
	n bigint;
BEGIN
	schema := m.schema_name;
	isolation_mode := 'separate_schema';
	rows := '{}';
	FOREACH tbl IN ARRAY m.tables LOOP
		EXECUTE format('SELECT count(*) FROM %I.%I', m.schema_name, tbl) INTO n;
		rows := rows || jsonb_build_object(tbl, n);
	END LOOP;
	cutover_ms := m.cutover_ms;
	cutover_attempts := m.cutover_attempts;
END $$;

-- ------------------------------------------------------------- control
-- Manual cut-over: say go (pgtenantctl cutover JOB).
CREATE FUNCTION pgtenantd.migration_cutover(p_job bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
	m pgtenantd.migrations;
BEGIN
	SELECT * INTO m FROM pgtenantd.migrations WHERE job_id = p_job;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pgtenantd: job % is not a migration that has started', p_job;
	END IF;
	IF m.phase IN ('moved', 'done') THEN
		RETURN format('job %s: tenant "%s" was already cut over', p_job, m.tenant_id);
	END IF;
	UPDATE pgtenantd.migrations SET cutover_go = true WHERE job_id = p_job;
	RETURN format('job %s: tenant "%s" cuts over once caught up (phase %s)', p_job, m.tenant_id, m.phase);
END $$;

-- Throttle: p_batch_limit 0 pauses the copy, catch-up and delete batches,
-- N caps each batch at N pages (copy, delete) or keys (catch-up), NULL
-- lifts the cap.
CREATE FUNCTION pgtenantd.migration_throttle(p_job bigint, p_batch_limit integer)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
	m pgtenantd.migrations;
BEGIN
	IF p_batch_limit < 0 THEN
		RAISE EXCEPTION 'pgtenantd: batch limit % is negative; 0 pauses, NULL lifts the limit', p_batch_limit;
	END IF;
	UPDATE pgtenantd.migrations SET batch_limit = p_batch_limit
	 WHERE job_id = p_job RETURNING * INTO m;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pgtenantd: job % is not a migration that has started', p_job;
	END IF;
	RETURN format('job %s: %s', p_job, CASE WHEN p_batch_limit IS NULL THEN 'unthrottled'
					       WHEN p_batch_limit = 0 THEN 'paused (batches wait)'
					       ELSE format('at most %s pages or keys per batch', p_batch_limit) END);
END $$;
REVOKE EXECUTE ON FUNCTION pgtenantd.migration_cutover(bigint),
	pgtenantd.migration_throttle(bigint, integer),
	pgtenantd.migration_capture(), pgtenantd.migration_guard_truncate() FROM PUBLIC;

CREATE VIEW pgtenantd.migration_status AS
SELECT m.job_id, m.tenant_id, m.schema_name, m.phase, m.cutover_mode, m.cutover_go,
       m.batch_limit,
       (SELECT coalesce(sum(x.rows_copied), 0) FROM pgtenantd.migration_copy x
	 WHERE x.job_id = m.job_id)::bigint AS rows_copied,
       m.rows_total,
       (SELECT count(*) FROM pgtenantd.migration_changes c
	 WHERE c.job_id = m.job_id AND c.applied_txid IS NULL) AS backlog_keys,
       m.replayed_keys,
       (SELECT count(*) FROM pgtenantd.migration_changes c
	 WHERE c.job_id = m.job_id AND c.applied_at > now() - interval '10 s') / 10.0 AS replay_rate,
       m.cutover_attempts, m.last_cutover_error, m.cutover_ms, m.lock_budget,
       m.started_at, m.phase_at, m.moved_at
  FROM pgtenantd.migrations m;

-- ------------------------------------------------------------- schedules
-- A slot records how many tenants got no job because a job of the same
-- schedule was still queued or running for them (slots that come faster
-- than the jobs end do not pile up jobs): jobs + skipped is every tenant
-- the slot was for.
ALTER TABLE pgtenantd.schedule_slots ADD COLUMN skipped integer NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION pgtenantd.fire_slot(p_schedule text, p_slot timestamptz,
	p_kind text, p_args jsonb, p_tenants text[], p_owner text,
	p_catch_up boolean)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
	n_candidates integer;
	slot_text text := to_char(p_slot AT TIME ZONE 'UTC',
				  'YYYY-MM-DD"T"HH24:MI"Z"');
BEGIN
	INSERT INTO pgtenantd.schedule_slots (schedule, slot, kind, catch_up,
					      fired_by)
	VALUES (p_schedule, p_slot, p_kind, p_catch_up, p_owner)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	WITH candidates AS MATERIALIZED (
		SELECT x.t FROM (SELECT DISTINCT t FROM unnest(p_tenants) t
				  WHERE t ~ '^[A-Za-z0-9_-]{1,255}$'
				    AND octet_length(pgtenantd.tenant_schema(t)) <= 63) x
		 WHERE (SELECT f.twin FROM pgtenantd.insert_facts(0, x.t, false) f) IS NULL),
	enqueued AS (
		INSERT INTO pgtenantd.jobs (kind, tenant_id, args, dedupe_key)
		SELECT p_kind, c.t, coalesce(p_args, '{}'),
		       p_schedule || ':' || slot_text || ':' || c.t
		  FROM candidates c
		 WHERE NOT EXISTS (SELECT FROM pgtenantd.jobs j
				    WHERE j.tenant_id = c.t AND j.kind = p_kind
				      AND j.state IN ('queued', 'running')
				      AND j.dedupe_key LIKE replace(replace(replace(p_schedule,
					  '\', '\\'), '%', '\%'), '_', '\_') || ':%')
		 ORDER BY c.t
		ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL
			AND state IN ('queued', 'running') DO NOTHING
		RETURNING 1)
	SELECT (SELECT count(*) FROM candidates), (SELECT count(*) FROM enqueued)
	  INTO n_candidates, n;
	UPDATE pgtenantd.schedule_slots SET jobs = n, skipped = n_candidates - n
	 WHERE schedule = p_schedule AND slot = p_slot;
	RETURN n;
END $$;

-- Who may see and steer migrations: read sees them, operate steers them.
CREATE OR REPLACE FUNCTION pgtenantd.apply_grants() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	missing text[] := '{}';
BEGIN
	-- two daemons starting together would update the same ACLs
	PERFORM pg_advisory_xact_lock(1886680148, 0);
	IF to_regrole('pgtenantd_read') IS NOT NULL THEN
		GRANT USAGE ON SCHEMA pgtenantd TO pgtenantd_read;
		GRANT SELECT ON pgtenantd.jobs, pgtenantd.job_kinds,
			pgtenantd.schedule_slots, pgtenantd.settings,
			pgtenantd.schema_version, pgtenantd.migrations,
			pgtenantd.migration_copy, pgtenantd.migration_fence,
			pgtenantd.migration_status TO pgtenantd_read;
	ELSE
		missing := missing || 'pgtenantd_read'::text;
	END IF;
	IF to_regrole('pgtenantd_enqueue') IS NOT NULL THEN
		GRANT USAGE ON SCHEMA pgtenantd TO pgtenantd_enqueue;
		GRANT SELECT ON pgtenantd.jobs, pgtenantd.job_kinds,
			pgtenantd.settings TO pgtenantd_enqueue;
		GRANT INSERT ON pgtenantd.jobs TO pgtenantd_enqueue;
		GRANT UPDATE (cancel_requested) ON pgtenantd.jobs TO pgtenantd_enqueue;
	ELSE
		missing := missing || 'pgtenantd_enqueue'::text;
	END IF;
	IF to_regrole('pgtenantd_operate') IS NOT NULL THEN
		GRANT EXECUTE ON FUNCTION pgtenantd.migration_cutover(bigint),
			pgtenantd.migration_throttle(bigint, integer) TO pgtenantd_operate;
		GRANT SELECT ON pgtenantd.migration_status TO pgtenantd_operate;
	ELSE
		missing := missing || 'pgtenantd_operate'::text;
	END IF;
	IF to_regrole('pgtenantd_admin') IS NULL THEN
		missing := missing || 'pgtenantd_admin'::text;
	END IF;
	RETURN array_to_string(missing, ', ');
END $$;

SELECT pgtenantd.apply_grants();

-- search_path pinned on every function, the new ones too (see version 3)
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
		  WHERE p.pronamespace = 'pgtenantd'::regnamespace
		    AND p.prokind = 'f' LOOP
		EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
	END LOOP;
END $$;
