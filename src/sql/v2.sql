-- pgtenantd schema, version 2: schedules. Applied once by the daemon inside
-- a transaction that holds pg_advisory_xact_lock(1886680148, 0).

-- One row per slot of a schedule that was fired. The primary key makes each
-- slot fire once however many daemons run, also after its jobs ended (the
-- dedupe_key index only covers queued and running jobs); the newest slot of
-- a schedule tells a starting daemon which slots were missed.
CREATE TABLE pgtenantd.schedule_slots (
	schedule text NOT NULL,
	slot timestamptz NOT NULL,
	kind text NOT NULL,
	jobs integer NOT NULL DEFAULT 0,	-- jobs enqueued for the slot
	catch_up boolean NOT NULL DEFAULT false, -- fired late, after downtime
	fired_by text,				-- the daemon (jobs.owner style)
	fired_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (schedule, slot)
);

COMMENT ON TABLE pgtenantd.schedule_slots IS
	'pgtenantd: the schedule slots that were fired, one row each';

-- Tenants with their own schema: every schema named tenant_% that holds a
-- graph_entities table, except tenants that public.tenant_metadata (if it
-- exists) lists with another isolation_mode than separate_schema (a
-- migration in progress). The id is the one tenant_metadata has for the
-- schema, else the schema name without "tenant_".
CREATE FUNCTION pgtenantd.separate_tenants() RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF (SELECT count(*) = 2 FROM pg_attribute a
	     WHERE a.attrelid = to_regclass('public.tenant_metadata')
	       AND a.attname IN ('tenant_id', 'isolation_mode')
	       AND NOT a.attisdropped) THEN
		RETURN QUERY EXECUTE
		'SELECT coalesce(m.tenant_id::text, substr(n.nspname, 8))
		   FROM pg_namespace n
		   LEFT JOIN public.tenant_metadata m
		     ON pgtenantd.tenant_schema(m.tenant_id::text) = n.nspname
		  WHERE n.nspname LIKE ''tenant\_%''
		    AND to_regclass(format(''%I.graph_entities'', n.nspname)) IS NOT NULL
		    AND (m.tenant_id IS NULL
			 OR lower(m.isolation_mode::text) = ''separate_schema'')
		  ORDER BY 1';
		RETURN;
	END IF;
	RETURN QUERY
	SELECT substr(n.nspname, 8)
	  FROM pg_namespace n
	 WHERE n.nspname LIKE 'tenant\_%'
	   AND to_regclass(format('%I.graph_entities', n.nspname)) IS NOT NULL
	 ORDER BY 1;
END $$;

-- Tenants in the shared tables: every tenant_id but the global '' in
-- public.graph_entities (none if there is no such table).
CREATE FUNCTION pgtenantd.shared_tenants() RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF to_regclass('public.graph_entities') IS NULL THEN
		RETURN;
	END IF;
	RETURN QUERY EXECUTE
	'SELECT DISTINCT tenant_id::text FROM public.graph_entities
	  WHERE tenant_id <> '''' ORDER BY 1';
END $$;

-- Tenants with their own schema whose public.tenant_metadata.last_active_at
-- is older than p_days days (none without that table and column), leaving
-- out tenants already archived (isolation_mode 'archived', if that column
-- exists).
CREATE FUNCTION pgtenantd.inactive_tenants(p_days integer) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	rel regclass := to_regclass('public.tenant_metadata');
	has_mode boolean;
BEGIN
	IF rel IS NULL OR NOT EXISTS (SELECT FROM pg_attribute a
		WHERE a.attrelid = rel AND a.attname = 'last_active_at'
		  AND NOT a.attisdropped) THEN
		RETURN;
	END IF;
	has_mode := EXISTS (SELECT FROM pg_attribute a
		WHERE a.attrelid = rel AND a.attname = 'isolation_mode'
		  AND NOT a.attisdropped);
	RETURN QUERY EXECUTE
	'SELECT m.tenant_id::text FROM public.tenant_metadata m
	  WHERE m.last_active_at < now() - make_interval(days => $1)
	    AND to_regnamespace(pgtenantd.tenant_schema(m.tenant_id::text)) IS NOT NULL'
	|| CASE WHEN has_mode
		THEN ' AND m.isolation_mode IS DISTINCT FROM ''archived'''
		ELSE '' END
	|| ' ORDER BY 1'
	USING p_days;
END $$;

-- Fire one slot of a schedule: claim (p_schedule, p_slot) and enqueue one
-- job of p_kind per tenant, with dedupe_key schedule:slot:tenant, in one
-- statement. Returns the number of jobs enqueued, or NULL if the slot was
-- fired already (by this or another daemon). Tenant ids that are not valid
-- are left out (the jobs trigger would refuse them).
CREATE FUNCTION pgtenantd.fire_slot(p_schedule text, p_slot timestamptz,
	p_kind text, p_args jsonb, p_tenants text[], p_owner text,
	p_catch_up boolean)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
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
	INSERT INTO pgtenantd.jobs (kind, tenant_id, args, dedupe_key)
	SELECT p_kind, t, coalesce(p_args, '{}'),
	       p_schedule || ':' || slot_text || ':' || t
	  FROM (SELECT DISTINCT t FROM unnest(p_tenants) t
		 WHERE t ~ '^[A-Za-z0-9_-]{1,255}$'
		   AND octet_length(pgtenantd.tenant_schema(t)) <= 63) x
	 ORDER BY t
	ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL
		AND state IN ('queued', 'running') DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE pgtenantd.schedule_slots SET jobs = n
	 WHERE schedule = p_schedule AND slot = p_slot;
	RETURN n;
END $$;

-- Raise p_message (SQLSTATE check_violation) unless p_ok is true: a
-- preflight check for job files, with a message that says what is wrong.
CREATE FUNCTION pgtenantd.require(p_ok boolean, p_message text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF p_ok IS NOT TRUE THEN
		RAISE EXCEPTION '%', p_message USING ERRCODE = 'check_violation';
	END IF;
	RETURN true;
END $$;

-- Mark a tenant archived in public.tenant_metadata after its schema was
-- dropped: isolation_mode 'archived' and archived_at now(), for whichever
-- of the two columns the table has (a row is added if there is none and
-- the table has isolation_mode). Returns what it did. The drop_tenant job
-- calls it; edit that job file to record the archive elsewhere.
CREATE FUNCTION pgtenantd.archive_tenant(p_tenant_id text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	rel regclass := to_regclass('public.tenant_metadata');
	has_mode boolean;
	has_at boolean;
	n integer;
BEGIN
	IF rel IS NULL THEN
		RETURN 'no public.tenant_metadata: nothing recorded';
	END IF;
	has_mode := EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel
			     AND a.attname = 'isolation_mode' AND NOT a.attisdropped);
	has_at := EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel
			   AND a.attname = 'archived_at' AND NOT a.attisdropped);
	IF NOT has_mode AND NOT has_at THEN
		RETURN 'public.tenant_metadata has neither isolation_mode nor archived_at: nothing recorded';
	END IF;
	EXECUTE 'UPDATE public.tenant_metadata SET '
		|| concat_ws(', ',
			     CASE WHEN has_mode THEN 'isolation_mode = ''archived''' END,
			     CASE WHEN has_at THEN 'archived_at = now()' END)
		|| ' WHERE tenant_id = $1'
	USING p_tenant_id;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n = 0 AND has_mode THEN
		EXECUTE 'INSERT INTO public.tenant_metadata (tenant_id, isolation_mode)
			 VALUES ($1, ''archived'')'
		USING p_tenant_id;
	END IF;
	RETURN 'archived';
END $$;

-- save_progress for an update that commits alone, after work that ran
-- outside a transaction (VACUUM, a program, a for_each row): committed
-- asynchronously. Losing the last such update in a crash only makes the
-- job redo an idempotent step from its SQLite checkpoint, and the WAL
-- flush it saves is most of the cost of a row of small work.
CREATE FUNCTION pgtenantd.save_progress_async(p_id bigint, p_owner text,
	p_step text, p_step_index integer, p_progress jsonb, p_result jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	PERFORM pgtenantd.save_progress(p_id, p_owner, p_step, p_step_index,
					p_progress, p_result);
END $$;
