-- pgtenantd schema, version 3: trust. Applied once by the daemon inside a
-- transaction that holds pg_advisory_xact_lock(1886680148, 0).
--
-- Who may do what (README, "Roles"): four cluster-wide group roles, a
-- record of who enqueued each job, row-level security on the jobs table,
-- an INSERT that may set only what an enqueuer decides, per-kind enqueue
-- roles, size limits, twin tenant ids refused, the tenant lock keyed by
-- schema name, and search_path pinned on every function of the schema.

-- ------------------------------------------------------------ group roles
-- Created here when the installing role may (superuser or CREATEROLE);
-- else etc/pgtenantd-setup.sql, run once by a DBA, creates them. Roles are
-- cluster-wide: installs into other databases of the cluster may run at the
-- same time, so a role or membership that appears meanwhile is no error.
DO $$
DECLARE
	may boolean;
	r text;
	m text[];
BEGIN
	SELECT a.rolsuper OR a.rolcreaterole INTO may
	  FROM pg_catalog.pg_roles a WHERE a.rolname = current_user;
	IF NOT coalesce(may, false) THEN
		RAISE NOTICE 'pgtenantd: role % may not create roles: run etc/pgtenantd-setup.sql as a superuser to create the group roles pgtenantd_read, pgtenantd_enqueue, pgtenantd_operate and pgtenantd_admin', current_user;
		RETURN;
	END IF;
	FOREACH r IN ARRAY ARRAY['pgtenantd_read', 'pgtenantd_enqueue',
				 'pgtenantd_operate', 'pgtenantd_admin'] LOOP
		IF pg_catalog.to_regrole(r) IS NULL THEN
			BEGIN
				EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
			EXCEPTION WHEN duplicate_object OR unique_violation THEN
				NULL;	-- created by a parallel install
			END;
		END IF;
	END LOOP;
	-- operate may enqueue what enqueue may; admin operates and reads
	FOREACH m SLICE 1 IN ARRAY ARRAY[['pgtenantd_enqueue', 'pgtenantd_operate'],
					 ['pgtenantd_operate', 'pgtenantd_admin'],
					 ['pgtenantd_read', 'pgtenantd_admin']] LOOP
		CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_auth_members a
				       WHERE a.roleid = pg_catalog.to_regrole(m[1])
					 AND a.member = pg_catalog.to_regrole(m[2]));
		BEGIN
			EXECUTE pg_catalog.format('GRANT %I TO %I', m[1], m[2]);
		EXCEPTION
			WHEN duplicate_object OR unique_violation THEN
				NULL;	-- granted by a parallel install
			WHEN insufficient_privilege THEN
				RAISE NOTICE 'pgtenantd: role % may not grant % to %: run etc/pgtenantd-setup.sql as a superuser', current_user, m[1], m[2];
		END;
	END LOOP;
END $$;

-- ---------------------------------------------------------------- settings
-- Limits the database enforces, filled by each daemon at start from its
-- configuration (limits: in pgtenantd.yaml).
CREATE TABLE pgtenantd.settings (
	key text PRIMARY KEY,
	value text NOT NULL
);

COMMENT ON TABLE pgtenantd.settings IS
	'pgtenantd: limits the database enforces; each daemon writes them at start from its limits: configuration';

INSERT INTO pgtenantd.settings (key, value) VALUES
	('max_args_bytes', '65536'),
	('max_result_bytes', '1048576'),
	('max_error_bytes', '65536');

-- A setting as a bigint, p_default if it is missing or not a number.
CREATE FUNCTION pgtenantd.setting_bigint(p_key text, p_default bigint)
RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT coalesce((SELECT CASE WHEN s.value ~ '^[0-9]{1,18}$'
				     THEN s.value::bigint END
			   FROM pgtenantd.settings s WHERE s.key = p_key),
			p_default)
$$;

-- ----------------------------------------------------------- jobs columns
ALTER TABLE pgtenantd.jobs ADD COLUMN enqueued_by text;
COMMENT ON COLUMN pgtenantd.jobs.enqueued_by IS
	'the role that inserted the row (current_user), set by the database';

ALTER TABLE pgtenantd.job_kinds
	ADD COLUMN enqueue_role text NOT NULL DEFAULT 'pgtenantd_operate';
COMMENT ON COLUMN pgtenantd.job_kinds.enqueue_role IS
	'a role must be a member of this one to enqueue the kind (the table owner and superusers always may)';

-- Tenants are told apart by schema name: the twin check and the "tenant
-- has a running job" test look rows up by it. The indexes and the queries
-- that use them spell out pgtenantd.tenant_schema's expression: with its
-- pinned search_path the function is not inlined, and calling it per row
-- costs more than the rest of an INSERT.
CREATE INDEX jobs_tenant_schema_idx
	ON pgtenantd.jobs (('tenant_' || lower(replace(tenant_id, '-', '_'))), tenant_id);
CREATE INDEX jobs_running_schema_idx
	ON pgtenantd.jobs (('tenant_' || lower(replace(tenant_id, '-', '_'))))
	WHERE state = 'running';
DROP INDEX pgtenantd.jobs_running_tenant_idx;
-- fire_slot skips a tenant that still has a queued or running job of the
-- schedule's kind.
CREATE INDEX jobs_active_tenant_kind_idx ON pgtenantd.jobs (tenant_id, kind)
	WHERE state IN ('queued', 'running');

-- ------------------------------------------------------ the INSERT checks
-- true if current_user is a member of the role p_role (false if there is
-- no such role). Row-level security policies call it once per statement.
CREATE FUNCTION pgtenantd.member_of(p_role text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT coalesce(pg_catalog.pg_has_role(current_user,
			pg_catalog.to_regrole(p_role), 'MEMBER'), false)
$$;

-- What the INSERT trigger needs but an enqueuer may not read: whether
-- p_id is the value the identity sequence just gave this session (else the
-- INSERT named an id), the args size limit, and a known tenant id other
-- than p_tenant_id with the same schema name (in jobs, or in
-- public.tenant_metadata if that exists), NULL if none. The row p_id
-- itself is left out of the twin search (an UPDATE). p_check_id false
-- skips the id test (id_fresh is then true).
CREATE FUNCTION pgtenantd.insert_facts(p_id bigint, p_tenant_id text,
	p_check_id boolean, OUT id_fresh boolean, OUT max_args_bytes bigint,
	OUT twin text)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
	-- pgtenantd.tenant_schema(p_tenant_id), spelled out as in the indexes
	schema_name text := 'tenant_' || lower(replace(p_tenant_id, '-', '_'));
BEGIN
	id_fresh := true;
	IF p_check_id THEN
		BEGIN
			id_fresh := p_id = pg_catalog.currval('pgtenantd.jobs_id_seq'::regclass);
		EXCEPTION WHEN object_not_in_prerequisite_state THEN
			id_fresh := false;	-- no id drawn in this session
		END;
	END IF;
	SELECT CASE WHEN s.value ~ '^[0-9]{1,18}$' THEN s.value::bigint END
	  INTO max_args_bytes
	  FROM pgtenantd.settings s WHERE s.key = 'max_args_bytes';
	max_args_bytes := coalesce(max_args_bytes, 65536);
	-- two short scans of jobs_tenant_schema_idx: however many jobs the
	-- tenant has, only the first row on each side of p_tenant_id is read
	-- (the ORDER BY keeps a generic plan from trying a sequential scan)
	twin := coalesce(
		(SELECT j.tenant_id FROM pgtenantd.jobs j
		  WHERE 'tenant_' || lower(replace(j.tenant_id, '-', '_')) = schema_name
		    AND j.tenant_id < p_tenant_id AND j.id <> p_id
		  ORDER BY 'tenant_' || lower(replace(j.tenant_id, '-', '_')), j.tenant_id
		  LIMIT 1),
		(SELECT j.tenant_id FROM pgtenantd.jobs j
		  WHERE 'tenant_' || lower(replace(j.tenant_id, '-', '_')) = schema_name
		    AND j.tenant_id > p_tenant_id AND j.id <> p_id
		  ORDER BY 'tenant_' || lower(replace(j.tenant_id, '-', '_')), j.tenant_id
		  LIMIT 1));
	IF twin IS NOT NULL THEN
		RETURN;
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
		    WHERE a.attrelid = pg_catalog.to_regclass('public.tenant_metadata')
		      AND a.attname = 'tenant_id' AND NOT a.attisdropped) THEN
		-- a known id (the common case) is found through its index; only
		-- an id the table does not have is compared with every row
		IF NOT EXISTS (SELECT FROM public.tenant_metadata m
				WHERE m.tenant_id::text = p_tenant_id) THEN
			SELECT m.tenant_id::text INTO twin FROM public.tenant_metadata m
			 WHERE 'tenant_' || lower(replace(m.tenant_id::text, '-', '_')) = schema_name
			 LIMIT 1;
		END IF;
	END IF;
END $$;

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
			CASE WHEN NEW.enqueued_by IS NOT NULL THEN '"enqueued_by"' END);
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

-- Cancel: a queued job is cancelled at once; a running one is flagged and
-- its daemon notified, which re-reads the row and stops the job at the next
-- safe point. A cancel cannot be taken back.
CREATE OR REPLACE FUNCTION pgtenantd.jobs_cancel() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.cancel_requested AND NOT NEW.cancel_requested THEN
		RAISE EXCEPTION 'pgtenantd: job % was asked to cancel; that cannot be taken back', OLD.id
		USING ERRCODE = 'check_violation';
	END IF;
	IF NEW.cancel_requested AND NOT OLD.cancel_requested THEN
		IF OLD.state = 'queued' THEN
			NEW.state := 'cancelled';
			NEW.finished_at := clock_timestamp();
			NEW.updated_at := clock_timestamp();
		ELSIF OLD.state = 'running' THEN
			PERFORM pg_notify('pgtenantd', 'cancel:' || NEW.id);
		END IF;
	END IF;
	RETURN NEW;
END $$;

-- ------------------------------------------------------ row-level security
-- Not forced: the table owner (the daemon) and superusers see every row.
-- pgtenantd_read and pgtenantd_admin see every job; any other role the
-- jobs it enqueued. Only pgtenantd_admin may cancel another role's job.
ALTER TABLE pgtenantd.jobs ENABLE ROW LEVEL SECURITY;

CREATE POLICY jobs_see ON pgtenantd.jobs FOR SELECT
	USING (enqueued_by = current_user
	       OR (SELECT pgtenantd.member_of('pgtenantd_read'))
	       OR (SELECT pgtenantd.member_of('pgtenantd_admin')));
CREATE POLICY jobs_enqueue ON pgtenantd.jobs FOR INSERT
	WITH CHECK (enqueued_by = current_user);
CREATE POLICY jobs_cancel ON pgtenantd.jobs FOR UPDATE
	USING (enqueued_by = current_user
	       OR (SELECT pgtenantd.member_of('pgtenantd_admin')))
	WITH CHECK (enqueued_by = current_user
		    OR (SELECT pgtenantd.member_of('pgtenantd_admin')));

-- ------------------------------------------------------------------ grants
-- (Re)grant the pgtenantd schema's objects to those of the group roles that
-- exist. The daemon calls it at every start, so roles a DBA creates after
-- the install get their privileges then. Returns the group roles that are
-- missing, comma separated ('' if none).
CREATE FUNCTION pgtenantd.apply_grants() RETURNS text
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
			pgtenantd.schema_version TO pgtenantd_read;
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
	-- operate and admin hold their privileges through membership
	IF to_regrole('pgtenantd_operate') IS NULL THEN
		missing := missing || 'pgtenantd_operate'::text;
	END IF;
	IF to_regrole('pgtenantd_admin') IS NULL THEN
		missing := missing || 'pgtenantd_admin'::text;
	END IF;
	RETURN array_to_string(missing, ', ');
END $$;

-- Write the limits of the daemon's configuration to pgtenantd.settings and
-- apply the grants: what each daemon does at start. Returns apply_grants'
-- list of missing group roles.
CREATE FUNCTION pgtenantd.daemon_setup(p_args_bytes bigint,
	p_result_bytes bigint, p_error_bytes bigint)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO pgtenantd.settings AS s (key, value)
	VALUES ('max_args_bytes', p_args_bytes::text),
	       ('max_result_bytes', p_result_bytes::text),
	       ('max_error_bytes', p_error_bytes::text)
	ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
	 WHERE s.value IS DISTINCT FROM EXCLUDED.value;
	RETURN pgtenantd.apply_grants();
END $$;

-- ------------------------------------------------- the daemon's functions
-- Claim as in version 1, with tenants told apart by schema name (the
-- advisory lock is hashtext of the schema name), and a job whose args are
-- over the max_args_bytes limit failed here, never handed to a daemon.
CREATE OR REPLACE FUNCTION pgtenantd.claim_jobs(p_owner text, p_limit integer,
	p_lease interval, p_kinds text[])
RETURNS SETOF pgtenantd.jobs
LANGUAGE plpgsql
SET enable_sort = off
SET enable_bitmapscan = off
AS $$
DECLARE
	r record;
	claimed integer := 0;
	seen text[] := '{}';
	window_rows integer;
	rounds integer := 0;
	args_bytes bigint;
	max_args bigint;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	LOOP
		window_rows := 0;
		-- 'tenant_' || ...: pgtenantd.tenant_schema, spelled out to use
		-- jobs_running_schema_idx
		FOR r IN SELECT j.id, 'tenant_' || lower(replace(j.tenant_id, '-', '_')) AS tschema
			   FROM pgtenantd.jobs j
			  WHERE j.state = 'queued' AND j.run_at <= clock_timestamp()
			    AND j.kind = ANY (p_kinds)
			    AND 'tenant_' || lower(replace(j.tenant_id, '-', '_')) <> ALL (seen)
			    AND NOT EXISTS (SELECT 1 FROM pgtenantd.jobs o
					     WHERE 'tenant_' || lower(replace(o.tenant_id, '-', '_'))
						   = 'tenant_' || lower(replace(j.tenant_id, '-', '_'))
					       AND o.state = 'running')
			  ORDER BY j.priority DESC, j.run_at, j.id
			  LIMIT 32
		LOOP
			window_rows := window_rows + 1;
			CONTINUE WHEN r.tschema = ANY (seen);
			seen := seen || r.tschema;
			SELECT octet_length(j.args::text) INTO args_bytes
			  FROM pgtenantd.jobs j
			 WHERE j.id = r.id AND j.state = 'queued'
			   FOR UPDATE SKIP LOCKED;
			CONTINUE WHEN NOT FOUND;
			-- 256 bytes is the lowest limit the daemon accepts: the
			-- setting is read only for args that might be over it
			IF args_bytes > 256 AND max_args IS NULL THEN
				max_args := pgtenantd.setting_bigint('max_args_bytes', 65536);
			END IF;
			IF args_bytes > 256 AND args_bytes > max_args THEN
				UPDATE pgtenantd.jobs j
				   SET state = 'failed', attempts = j.attempts + 1,
				       last_error = format('args of %s bytes are over the limit of %s bytes (limits: args_bytes): the job was not run',
							   args_bytes, max_args),
				       started_at = coalesce(j.started_at, clock_timestamp()),
				       finished_at = clock_timestamp(),
				       updated_at = clock_timestamp()
				 WHERE j.id = r.id;
				CONTINUE;
			END IF;
			CONTINUE WHEN NOT pg_try_advisory_lock(1886680148, hashtext(r.tschema));
			RETURN QUERY
			UPDATE pgtenantd.jobs j
			   SET state = 'running', owner = p_owner, attempts = j.attempts + 1,
			       lease_until = clock_timestamp() + p_lease,
			       started_at = coalesce(j.started_at, clock_timestamp()),
			       updated_at = clock_timestamp()
			 WHERE j.id = r.id
			RETURNING j.*;
			claimed := claimed + 1;
			EXIT WHEN claimed >= p_limit;
		END LOOP;
		rounds := rounds + 1;
		EXIT WHEN claimed >= p_limit OR window_rows < 32 OR rounds >= 8;
	END LOOP;
END $$;

-- As in version 1, but the tenant lock released is keyed by schema name, and
-- a job asked to cancel is cancelled instead of queued again.
CREATE OR REPLACE FUNCTION pgtenantd.finish_jobs(p_owner text, p_jobs jsonb)
RETURNS TABLE (id bigint, mine boolean)
LANGUAGE plpgsql AS $$
DECLARE
	e jsonb;
	t text;
	job_id bigint;
	job_state text;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	FOR e IN SELECT value FROM jsonb_array_elements(p_jobs) LOOP
		job_id := (e->>'id')::bigint;
		job_state := e->>'state';
		t := NULL;
		IF NOT coalesce((e->>'lost')::boolean, false) THEN
			-- a job asked to cancel while it ran is not queued again
			-- (for a retry or a hand-back): the cancel trigger fired
			-- while it was running, and only a claim after the backoff
			-- would have seen the flag
			IF job_state = 'queued' AND EXISTS (SELECT FROM pgtenantd.jobs j
				WHERE j.id = job_id AND j.cancel_requested) THEN
				job_state := 'cancelled';
			END IF;
			UPDATE pgtenantd.jobs j
			   SET state = job_state,
			       result = coalesce(e->'result', j.result),
			       last_error = CASE WHEN job_state = 'succeeded' THEN NULL
						 ELSE coalesce(e->>'error', j.last_error) END,
			       finished_at = CASE WHEN job_state = 'queued' THEN NULL
						  ELSE clock_timestamp() END,
			       run_at = CASE WHEN job_state = 'queued'
					     THEN clock_timestamp() + make_interval(secs =>
						coalesce((e->>'retry_ms')::double precision, 0) / 1000)
					     ELSE j.run_at END,
			       attempts = j.attempts - CASE WHEN coalesce((e->>'refund')::boolean, false)
							    THEN 1 ELSE 0 END,
			       owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
			 WHERE j.id = job_id AND j.owner = p_owner AND j.state = 'running'
			RETURNING j.tenant_id INTO t;
		END IF;
		mine := t IS NOT NULL;
		IF t IS NULL THEN
			SELECT j.tenant_id INTO t FROM pgtenantd.jobs j WHERE j.id = job_id;
		END IF;
		IF coalesce((e->>'unlock')::boolean, false) AND t IS NOT NULL THEN
			-- pgtenantd.tenant_schema(t), spelled out: a call costs more
			-- than the rest of the loop
			PERFORM pg_advisory_unlock(1886680148,
				hashtext('tenant_' || lower(replace(t, '-', '_'))));
		END IF;
		id := job_id;
		RETURN NEXT;
	END LOOP;
END $$;

-- As in version 1, with a result over the max_result_bytes limit replaced
-- by a note of its size.
CREATE OR REPLACE FUNCTION pgtenantd.save_progress(p_id bigint, p_owner text,
	p_step text, p_step_index integer, p_progress jsonb, p_result jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	result_bytes bigint := octet_length(p_result::text);
	max_result bigint;
BEGIN
	-- 256 bytes is the lowest limit the daemon accepts (and it cuts the
	-- result itself): the setting is read only for a result over it
	IF result_bytes > 256 THEN
		max_result := pgtenantd.setting_bigint('max_result_bytes', 1048576);
		IF result_bytes > max_result THEN
			p_result := jsonb_build_object('truncated', true,
				'bytes', result_bytes, 'limit', max_result);
		END IF;
	END IF;
	UPDATE pgtenantd.jobs
	   SET step = p_step, step_index = p_step_index, progress = p_progress,
	       result = p_result, updated_at = clock_timestamp()
	 WHERE id = p_id AND owner = p_owner AND state = 'running';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pgtenantd: job % is no longer owned by %', p_id, p_owner
		USING ERRCODE = 'PGT01',
		      HINT = 'its lease expired and another daemon took it over';
	END IF;
END $$;

-- Publish the kinds a daemon loaded (p_kinds: array of objects with kind,
-- description, args, steps, file, enqueue_role).
CREATE OR REPLACE FUNCTION pgtenantd.publish_kinds(p_owner text, p_kinds jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	INSERT INTO pgtenantd.job_kinds AS k (kind, description, args, steps, file,
					      loaded_by, updated_at, enqueue_role)
	SELECT e->>'kind', coalesce(e->>'description', ''), coalesce(e->'args', '[]'),
	       coalesce(ARRAY(SELECT jsonb_array_elements_text(e->'steps')), '{}'),
	       e->>'file', p_owner, clock_timestamp(),
	       coalesce(e->>'enqueue_role', 'pgtenantd_operate')
	  FROM jsonb_array_elements(p_kinds) e
	ON CONFLICT (kind) DO UPDATE
	   SET description = EXCLUDED.description, args = EXCLUDED.args,
	       steps = EXCLUDED.steps, file = EXCLUDED.file,
	       loaded_by = EXCLUDED.loaded_by, updated_at = EXCLUDED.updated_at,
	       enqueue_role = EXCLUDED.enqueue_role;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- As in version 2, leaving out tenant ids that are twins of a known
-- tenant (the jobs trigger would refuse them, and with them the slot).
CREATE OR REPLACE FUNCTION pgtenantd.fire_slot(p_schedule text, p_slot timestamptz,
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
	 WHERE (SELECT f.twin FROM pgtenantd.insert_facts(0, t, false) f) IS NULL
	   -- A tenant whose job from an earlier slot of this schedule is
	   -- still queued or running gets none for this slot: slots that
	   -- come faster than the jobs end must not pile up jobs (a second
	   -- drop_tenant of the same tenant, say).
	   AND NOT EXISTS (SELECT FROM pgtenantd.jobs j
			    WHERE j.tenant_id = x.t AND j.kind = p_kind
			      AND j.state IN ('queued', 'running')
			      AND j.dedupe_key LIKE replace(replace(replace(p_schedule,
				  '\', '\\'), '%', '\%'), '_', '\_') || ':%')
	 ORDER BY t
	ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL
		AND state IN ('queued', 'running') DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE pgtenantd.schedule_slots SET jobs = n
	 WHERE schedule = p_schedule AND slot = p_slot;
	RETURN n;
END $$;

-- Requeue the jobs an earlier run of this daemon left running, like v1's,
-- but a job that has spent all its attempts fails instead, as in
-- rescue_expired: a row that made the daemon crash at every claim must not
-- be claimed again after every restart.
CREATE OR REPLACE FUNCTION pgtenantd.release_owner(p_owner text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	UPDATE pgtenantd.jobs j
	   SET state = CASE WHEN j.cancel_requested THEN 'cancelled'
			    WHEN j.attempts >= j.max_attempts THEN 'failed'
			    ELSE 'queued' END,
	       last_error = CASE WHEN NOT j.cancel_requested AND j.attempts >= j.max_attempts
				 THEN format('daemon %s stopped while running the job, its last attempt (%s of %s)',
					     p_owner, j.attempts, j.max_attempts)
				 ELSE j.last_error END,
	       finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts
				  THEN clock_timestamp() END,
	       run_at = clock_timestamp(), owner = NULL, lease_until = NULL,
	       updated_at = clock_timestamp()
	 WHERE j.state = 'running' AND j.owner = p_owner;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- ------------------------------------------------ trigger code on tables
-- Trigger code on a table a job writes runs with the daemon's rights. It
-- is trusted when its function is owned by the daemon's role (current_user),
-- by a superuser, or by a role the daemon's role is a member of (not when
-- the daemon is a superuser: it is a member of every role, so only its own
-- and superusers' code pass), or when the function is SECURITY DEFINER (it
-- runs with its owner's rights). The functions and operators of a trigger's
-- WHEN clause are checked like its function; disabled and internal
-- triggers are not. NULL entries of p_tables (to_regclass of a table that
-- is not there) are skipped. Returns NULL when all is trusted, else one
-- 'trigger T on TABLE runs FUNCTION, owned by role R' per untrusted
-- function, separated by '; '. Call it under a lock on the tables that
-- keeps new triggers out until the write is done.
CREATE FUNCTION pgtenantd.untrusted_trigger_code(p_tables regclass[])
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT string_agg(format('trigger %I on %s runs %s, owned by role %I',
				 tg.tgname, tg.tgrelid::regclass, f.fn::regprocedure,
				 p.proowner::regrole), '; '
			  ORDER BY tg.tgrelid::regclass::text, tg.tgname, f.fn::regprocedure::text)
	  FROM pg_trigger tg
	  CROSS JOIN LATERAL (SELECT tg.tgfoid AS fn
			      UNION
			      SELECT coalesce(o.oprcode::oid, d.refobjid)
				FROM pg_depend d
				LEFT JOIN pg_operator o ON d.refclassid = 'pg_operator'::regclass
						       AND o.oid = d.refobjid
			       WHERE d.classid = 'pg_trigger'::regclass AND d.objid = tg.oid
				 AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)) f
	  JOIN pg_proc p ON p.oid = f.fn
	  JOIN pg_roles fo ON fo.oid = p.proowner
	  JOIN pg_roles me ON me.rolname = current_user
	 WHERE tg.tgrelid = ANY (p_tables)
	   AND NOT tg.tgisinternal AND tg.tgenabled <> 'D'
	   AND NOT p.prosecdef AND NOT fo.rolsuper AND fo.oid <> me.oid
	   AND (me.rolsuper OR NOT pg_has_role(me.oid, fo.oid, 'MEMBER'))
$$;

-- Raises an error naming the tables p_tables (NULLs skipped) and
-- untrusted_trigger_code(p_tables) when that is not NULL; else returns
-- true. Usable from plain SQL (a batch's CTE) as from PL/pgSQL.
CREATE FUNCTION pgtenantd.require_trusted_triggers(p_tables regclass[])
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	code text := pgtenantd.untrusted_trigger_code(p_tables);
BEGIN
	IF code IS NOT NULL THEN
		RAISE EXCEPTION '%', format('pgtenantd: refusing to write %s as role %I: %s (code of a role that is neither that role, a role it is a member of, nor a superuser would run with its rights)',
			(SELECT string_agg(t::text, ', ' ORDER BY t::text) FROM unnest(p_tables) AS t WHERE t IS NOT NULL),
			current_user, code)
			USING HINT = 'drop or disable the trigger, make its function SECURITY DEFINER, or have a trusted role own it; see "Running with least privilege" in README.md';
	END IF;
	RETURN true;
END $$;

SELECT pgtenantd.apply_grants();

-- ------------------------------------------------------------ search_path
-- Every function of the schema runs with search_path pg_catalog, pg_temp:
-- a function planted in public (or any schema a caller puts first) is
-- never called by mistake. Their bodies name pgtenantd.* and public.*
-- objects with the schema. A later version that adds functions does this
-- again.
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
