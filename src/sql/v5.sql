-- pgtenantd schema, version 5: an enqueue that costs little.
--
-- Version 3's INSERT checks ran as one plpgsql trigger on every row: about
-- 10 ms on a fresh connection (plpgsql is loaded and the trigger compiled
-- per backend) and 1.4 ms per row of a bulk INSERT. Now:
--   * The trigger's WHEN decides whether the row passes every check
--     unchanged, with pgtenantd.job_insert_is_plain (SQL) for the lookups. It is
--     sound, never complete: true only when jobs_validate would accept the
--     row as it is. Only a row it cannot vouch for runs jobs_validate,
--     which refuses it with a message that names what is wrong, or fixes
--     it up (run_at in the past) and accepts it.
--   * enqueued_by defaults to current_user, so a plain row needs no fix-up.
--   * The wake-up NOTIFY comes from contrib's tcn trigger (C) where the
--     extension can be installed, else from the plpgsql trigger as before.
--   * job_kinds keeps each kind's arg names and required args as arrays,
--     written by publish_kinds, so the args check is two jsonb operators.

-- ------------------------------------------------------------ job kinds
ALTER TABLE pgtenantd.job_kinds
	ADD COLUMN arg_names text[] NOT NULL DEFAULT '{}',
	ADD COLUMN required_args text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN pgtenantd.job_kinds.arg_names IS
	'the names in args, kept by publish_kinds for the INSERT check';
COMMENT ON COLUMN pgtenantd.job_kinds.required_args IS
	'the names in args that are required, kept by publish_kinds for the INSERT check';
UPDATE pgtenantd.job_kinds
   SET arg_names = ARRAY(SELECT a->>'name' FROM jsonb_array_elements(args) a),
       required_args = ARRAY(SELECT a->>'name' FROM jsonb_array_elements(args) a
			      WHERE (a->>'required')::boolean);

CREATE OR REPLACE FUNCTION pgtenantd.publish_kinds(p_owner text, p_kinds jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	INSERT INTO pgtenantd.job_kinds AS k (kind, description, args, steps, file,
					      loaded_by, updated_at, enqueue_role,
					      arg_names, required_args)
	SELECT e->>'kind', coalesce(e->>'description', ''), coalesce(e->'args', '[]'),
	       coalesce(ARRAY(SELECT jsonb_array_elements_text(e->'steps')), '{}'),
	       e->>'file', p_owner, clock_timestamp(),
	       coalesce(e->>'enqueue_role', 'pgtenantd_operate'),
	       ARRAY(SELECT a->>'name' FROM jsonb_array_elements(coalesce(e->'args', '[]')) a),
	       ARRAY(SELECT a->>'name' FROM jsonb_array_elements(coalesce(e->'args', '[]')) a
		      WHERE (a->>'required')::boolean)
	  FROM jsonb_array_elements(p_kinds) e
	ON CONFLICT (kind) DO UPDATE
	   SET description = EXCLUDED.description, args = EXCLUDED.args,
	       steps = EXCLUDED.steps, file = EXCLUDED.file,
	       loaded_by = EXCLUDED.loaded_by, updated_at = EXCLUDED.updated_at,
	       enqueue_role = EXCLUDED.enqueue_role,
	       arg_names = EXCLUDED.arg_names, required_args = EXCLUDED.required_args;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- ------------------------------------------------------ the INSERT checks
ALTER TABLE pgtenantd.jobs ALTER COLUMN enqueued_by SET DEFAULT current_user;

-- Whether a tenant's public.tenant_metadata row names p_tenant_id itself.
-- Called only while the table exists with a tenant_id column (its body is
-- read at the call, not here).
SET LOCAL check_function_bodies = off;
CREATE FUNCTION pgtenantd.tenant_metadata_has(p_tenant_id text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER AS $$
	SELECT EXISTS (SELECT FROM public.tenant_metadata m
			WHERE m.tenant_id::text = p_tenant_id)
$$;
RESET check_function_bodies;

-- The lookups of the plain-row test (see the trigger below), for a row of
-- id, kind, tenant_id and args inserted by p_role (the trigger's
-- current_user): the kind is known and p_role may enqueue it, the args
-- are the kind's and within the size limit, the id is the one this session
-- just drew, and no other known tenant id names the same schema (see
-- insert_facts). SECURITY DEFINER for what an enqueuer may not read. No
-- SQL function is called inside but for tenant_metadata's lookup: a nested
-- one is parsed again on each call.
CREATE FUNCTION pgtenantd.job_insert_is_plain(p_id bigint, p_kind text,
	p_tenant_id text, p_args jsonb, p_role text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER AS $$
	SELECT coalesce(
	       CASE WHEN s.is_called AND s.last_value = p_id
		    -- only when some session drew this id is currval asked
		    -- (it raises if this session drew none)
		    THEN p_id = currval('pgtenantd.jobs_id_seq'::regclass)
		    ELSE false END
	   AND EXISTS (
		SELECT FROM pgtenantd.job_kinds k
		 WHERE k.kind = p_kind
		   AND p_args ?& k.required_args
		   AND p_args - k.arg_names = '{}'
		   AND (o.trusted OR pg_has_role(p_role, to_regrole(k.enqueue_role), 'MEMBER')))
	   AND (o.trusted
		OR octet_length(p_args::text) <= coalesce(
			(SELECT CASE WHEN st.value ~ '^[0-9]{1,18}$' THEN st.value::bigint END
			   FROM pgtenantd.settings st WHERE st.key = 'max_args_bytes'),
			65536))
	   -- twins: the first row on each side of p_tenant_id in
	   -- jobs_tenant_schema_idx (the ORDER BY keeps the plan, made
	   -- without the values, on the index however few rows it expects;
	   -- the COLLATE, whatever collation the call gives the parameters:
	   -- the trigger's current_user is a name, of collation "C")
	   AND (SELECT t.tenant_id FROM pgtenantd.jobs t
		 WHERE 'tenant_' || lower(replace(t.tenant_id, '-', '_'))
		       = 'tenant_' || lower(replace(p_tenant_id COLLATE "default", '-', '_'))
		   AND t.tenant_id < p_tenant_id COLLATE "default"
		 ORDER BY 'tenant_' || lower(replace(t.tenant_id, '-', '_')), t.tenant_id
		 LIMIT 1) IS NULL
	   AND (SELECT t.tenant_id FROM pgtenantd.jobs t
		 WHERE 'tenant_' || lower(replace(t.tenant_id, '-', '_'))
		       = 'tenant_' || lower(replace(p_tenant_id COLLATE "default", '-', '_'))
		   AND t.tenant_id > p_tenant_id COLLATE "default"
		 ORDER BY 'tenant_' || lower(replace(t.tenant_id, '-', '_')), t.tenant_id
		 LIMIT 1) IS NULL
	   AND CASE WHEN NOT EXISTS (SELECT FROM pg_attribute a
				      WHERE a.attrelid = to_regclass('public.tenant_metadata')
					AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		    THEN true
		    ELSE pgtenantd.tenant_metadata_has(p_tenant_id) END,
	       false)
	  FROM pgtenantd.jobs_id_seq s,
	       LATERAL (SELECT pg_has_role(p_role, c.relowner, 'MEMBER') AS trusted
			  FROM pg_class c WHERE c.oid = 'pgtenantd.jobs'::regclass) o
$$;

-- jobs_validate as in version 3, but for enqueued_by, which now defaults to
-- the inserting role: an INSERT may leave it so, not set another.
-- Refuse bad input at INSERT (and UPDATE) with messages that say what is
-- wrong. An INSERT sets only kind, tenant_id, args, priority (-100..100),
-- run_at (raised to now if in the past), max_attempts (1..100) and
-- dedupe_key; every other column is the daemon's (or the database's:
-- id, enqueued_by, created_at, updated_at). The kind's enqueue_role, and
-- the args size limit, bind every role but the table owner and superusers.
CREATE OR REPLACE FUNCTION pgtenantd.jobs_validate() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	k pgtenantd.job_kinds;
	schema_name text;
	bad text;
	trusted boolean;
	facts record;
	args_bytes bigint;
	now_ts timestamptz := clock_timestamp();
BEGIN
	IF TG_OP = 'INSERT' THEN
		bad := concat_ws(', ',
			CASE WHEN NEW.state IS DISTINCT FROM 'queued' THEN '"state"' END,
			CASE WHEN NEW.step IS NOT NULL THEN '"step"' END,
			CASE WHEN NEW.step_index IS DISTINCT FROM 0 THEN '"step_index"' END,
			CASE WHEN NEW.progress IS DISTINCT FROM '{}' THEN '"progress"' END,
			CASE WHEN NEW.result IS NOT NULL THEN '"result"' END,
			CASE WHEN NEW.last_error IS NOT NULL THEN '"last_error"' END,
			CASE WHEN NEW.owner IS NOT NULL THEN '"owner"' END,
			CASE WHEN NEW.lease_until IS NOT NULL THEN '"lease_until"' END,
			CASE WHEN NEW.attempts IS DISTINCT FROM 0 THEN '"attempts"' END,
			CASE WHEN NEW.started_at IS NOT NULL THEN '"started_at"' END,
			CASE WHEN NEW.finished_at IS NOT NULL THEN '"finished_at"' END,
			CASE WHEN NEW.cancel_requested IS DISTINCT FROM false THEN '"cancel_requested"' END,
			CASE WHEN NEW.enqueued_by IS DISTINCT FROM current_user THEN '"enqueued_by"' END);
		IF bad <> '' THEN
			RAISE EXCEPTION 'pgtenantd: an INSERT may not set %: the daemon writes it', bad
			USING ERRCODE = 'check_violation',
			      HINT = 'an INSERT sets only kind, tenant_id, args, priority, run_at, max_attempts and dedupe_key';
		END IF;
		IF NEW.priority NOT BETWEEN -100 AND 100 THEN
			RAISE EXCEPTION 'pgtenantd: priority % is out of range -100 to 100', NEW.priority
			USING ERRCODE = 'check_violation';
		END IF;
		IF NEW.max_attempts NOT BETWEEN 1 AND 100 THEN
			RAISE EXCEPTION 'pgtenantd: max_attempts % is out of range 1 to 100', NEW.max_attempts
			USING ERRCODE = 'check_violation';
		END IF;
		NEW.enqueued_by := current_user;
		NEW.created_at := now_ts;
		NEW.updated_at := now_ts;
		IF NEW.run_at IS NULL OR NEW.run_at < now_ts THEN
			NEW.run_at := now_ts;
		END IF;
	END IF;
	SELECT * INTO k FROM pgtenantd.job_kinds WHERE kind = NEW.kind;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pgtenantd: unknown job kind "%"', NEW.kind
		USING ERRCODE = 'check_violation',
		      HINT = 'known kinds: ' || coalesce((SELECT string_agg(kind, ', ' ORDER BY kind)
			FROM pgtenantd.job_kinds), '(none yet: start pgtenantd once to publish them)');
	END IF;
	-- the table owner (the daemon) and superusers are trusted
	trusted := pg_has_role(current_user,
			       (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID),
			       'MEMBER');
	IF NOT trusted AND (TG_OP = 'INSERT' OR NEW.kind IS DISTINCT FROM OLD.kind) THEN
		IF to_regrole(k.enqueue_role) IS NULL THEN
			RAISE EXCEPTION 'pgtenantd: job kind "%" may be enqueued by members of role "%", which does not exist', NEW.kind, k.enqueue_role
			USING ERRCODE = 'insufficient_privilege',
			      HINT = 'a superuser creates the pgtenantd group roles with etc/pgtenantd-setup.sql';
		END IF;
		IF NOT pg_has_role(current_user, to_regrole(k.enqueue_role), 'MEMBER') THEN
			RAISE EXCEPTION 'pgtenantd: role "%" may not enqueue job kind "%"', current_user, NEW.kind
			USING ERRCODE = 'insufficient_privilege',
			      HINT = format('members of role "%s" may', k.enqueue_role);
		END IF;
	END IF;
	IF NEW.tenant_id IS NULL OR NEW.tenant_id !~ '^[A-Za-z0-9_-]{1,255}$' THEN
		RAISE EXCEPTION 'pgtenantd: invalid tenant id "%"', left(NEW.tenant_id, 80)
		USING ERRCODE = 'check_violation',
		      HINT = 'a tenant id is 1-255 characters of A-Z, a-z, 0-9, _ and -';
	END IF;
	schema_name := 'tenant_' || lower(replace(NEW.tenant_id, '-', '_'));	-- tenant_schema()
	IF octet_length(schema_name) > 63 THEN
		RAISE EXCEPTION 'pgtenantd: tenant id "%" makes the schema name "%" of % bytes, over PostgreSQL''s 63-byte identifier limit',
			left(NEW.tenant_id, 80), left(schema_name, 80), octet_length(schema_name)
		USING ERRCODE = 'check_violation',
		      HINT = 'tenant ids that get their own schema may have at most 56 characters';
	END IF;
	IF NEW.args IS NULL OR jsonb_typeof(NEW.args) <> 'object' THEN
		RAISE EXCEPTION 'pgtenantd: args must be a JSON object, not %',
			coalesce(jsonb_typeof(NEW.args), 'NULL')
		USING ERRCODE = 'check_violation',
		      HINT = 'for example ''{}'' or ''{"batch_size": "500"}''';
	END IF;
	SELECT * INTO facts
	  FROM pgtenantd.insert_facts(NEW.id, NEW.tenant_id, TG_OP = 'INSERT');
	IF NOT facts.id_fresh THEN
		RAISE EXCEPTION 'pgtenantd: an INSERT may not set "id": the database numbers jobs'
		USING ERRCODE = 'check_violation',
		      HINT = 'leave id out and use INSERT ... RETURNING id';
	END IF;
	IF facts.twin IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id) THEN
		RAISE EXCEPTION 'pgtenantd: tenant id "%" names the schema "%" of the known tenant "%"',
			NEW.tenant_id, schema_name, left(facts.twin, 255)
		USING ERRCODE = 'check_violation',
		      HINT = format('tenant ids that differ only in case or in - and _ share a schema; use "%s"', left(facts.twin, 255));
	END IF;
	IF NOT trusted THEN
		args_bytes := octet_length(NEW.args::text);
		IF args_bytes > facts.max_args_bytes THEN
			RAISE EXCEPTION 'pgtenantd: args of % bytes are over the limit of % bytes', args_bytes, facts.max_args_bytes
			USING ERRCODE = 'program_limit_exceeded',
			      HINT = 'the daemon''s limits: args_bytes setting (pgtenantd.settings max_args_bytes)';
		END IF;
	END IF;
	SELECT string_agg(format('"%s"', left(key, 64)), ', ' ORDER BY key)
		   FILTER (WHERE n <= 10)
	       || CASE WHEN count(*) > 10 THEN format(' and %s more', count(*) - 10)
		       ELSE '' END
	  INTO bad
	  FROM (SELECT key, row_number() OVER (ORDER BY key) AS n
		  FROM jsonb_object_keys(NEW.args) AS key
		 WHERE key NOT IN (SELECT a->>'name'
				     FROM jsonb_array_elements(k.args) a)) unknown;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: job kind "%" has no arg %', NEW.kind, bad
		USING ERRCODE = 'check_violation',
		      HINT = 'its args: ' || coalesce((SELECT string_agg(a->>'name', ', ')
			FROM jsonb_array_elements(k.args) a), '(none)');
	END IF;
	SELECT string_agg(format('"%s"', a->>'name'), ', ') INTO bad
	  FROM jsonb_array_elements(k.args) a
	 WHERE (a->>'required')::boolean AND NOT NEW.args ? (a->>'name');
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: job kind "%" needs arg %', NEW.kind, bad
		USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END $$;

-- The INSERT trigger runs only for a row job_insert_is_plain cannot vouch
-- for; an UPDATE of kind, tenant_id or args always runs it.
-- The WHEN is sound, never complete: true (the trigger is skipped) only
-- for a row jobs_validate would accept as it is; coalesce makes a NULL
-- anywhere run the trigger. Its own tests are compiled once per statement;
-- only the lookups cost a function call per row.
DROP TRIGGER jobs_validate ON pgtenantd.jobs;
CREATE TRIGGER jobs_validate BEFORE INSERT ON pgtenantd.jobs FOR EACH ROW
	WHEN (NOT coalesce(
		NEW.state = 'queued' AND NEW.step IS NULL AND NEW.step_index = 0
		AND NEW.progress = '{}' AND NEW.result IS NULL
		AND NEW.last_error IS NULL AND NEW.owner IS NULL
		AND NEW.lease_until IS NULL AND NEW.attempts = 0
		AND NEW.started_at IS NULL AND NEW.finished_at IS NULL
		AND NOT NEW.cancel_requested AND NEW.enqueued_by = current_user
		-- the defaults (clock_timestamp()) of this statement
		AND NEW.created_at BETWEEN statement_timestamp() AND clock_timestamp()
		AND NEW.updated_at BETWEEN statement_timestamp() AND clock_timestamp()
		AND NEW.run_at >= statement_timestamp()
		AND NEW.priority BETWEEN -100 AND 100
		AND NEW.max_attempts BETWEEN 1 AND 100
		AND NEW.tenant_id ~ '^[A-Za-z0-9_-]{1,255}$'
		AND octet_length('tenant_' || lower(replace(NEW.tenant_id, '-', '_'))) <= 63
		AND jsonb_typeof(NEW.args) = 'object'
		AND pgtenantd.job_insert_is_plain(NEW.id, NEW.kind, NEW.tenant_id,
						  NEW.args, current_user),
		false))
	EXECUTE FUNCTION pgtenantd.jobs_validate();
CREATE TRIGGER jobs_validate_update BEFORE UPDATE OF kind, tenant_id, args
	ON pgtenantd.jobs FOR EACH ROW EXECUTE FUNCTION pgtenantd.jobs_validate();

-- ------------------------------------------------------------ the wake-up
-- contrib's tcn (a trusted extension: the database's CREATE privilege
-- suffices) sends NOTIFY pgtenantd with a payload naming the new row's id,
-- from C. Where it cannot be installed, the plpgsql trigger stays.
DO $$
DECLARE
	ns text;
BEGIN
	BEGIN
		CREATE EXTENSION IF NOT EXISTS tcn SCHEMA pgtenantd;
	EXCEPTION WHEN OTHERS THEN
		RAISE NOTICE 'pgtenantd: contrib extension tcn not installed (%); the NOTIFY trigger stays in plpgsql', SQLERRM;
	END;
	SELECT e.extnamespace::regnamespace::text INTO ns
	  FROM pg_catalog.pg_extension e WHERE e.extname = 'tcn';
	IF ns IS NOT NULL THEN
		DROP TRIGGER jobs_notify_queued ON pgtenantd.jobs;
		EXECUTE pg_catalog.format('CREATE TRIGGER jobs_notify_queued AFTER INSERT ON pgtenantd.jobs FOR EACH ROW EXECUTE FUNCTION %s.triggered_change_notification(%L)',
			ns, 'pgtenantd');
	END IF;
END $$;

-- search_path pinned on every function, the new ones too (see version 3)
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
		  WHERE p.pronamespace = 'pgtenantd'::regnamespace
		    AND p.prokind = 'f'
		    -- tcn's trigger function is C that resolves no names (and
		    -- belongs to the extension's owner)
		    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
				     WHERE d.classid = 'pg_catalog.pg_proc'::regclass
				       AND d.objid = p.oid AND d.deptype = 'e') LOOP
		EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
	END LOOP;
END $$;
