-- pgtenantd schema, version 7, part 2: moving many tenants in waves (fleets).
--
-- A fleet is a set of shared tenants moved by migrate_to_separate_schema
-- jobs, smallest first, at most max_parallel at once, only inside a time
-- window, pausing on the first failure unless on_failure is continue
-- (doc/migration.md, "Fleets").
--
-- Who may do what. pgtenantd.start_fleet runs with the caller's rights
-- (SECURITY INVOKER): it INSERTs every member's migration job itself, as
-- the caller, through the jobs table's own checks (the kind's enqueue role,
-- args, twin ids), held back with run_at = pgtenantd.fleet_hold(); so a
-- fleet can start nothing its starter could not enqueue by hand, and every
-- member job is enqueued_by the starter (who sees and cancels it). A query
-- filter runs as the caller too, read only. The daemon then only releases
-- held jobs (run_at := now) from pgtenantd.fleet_advance, at most
-- max_parallel at a time, holding the fleet's row lock so that two daemons
-- never release more. The one job the daemon writes for a fleet is the
-- retry of a failed member on request: a copy of the starter's own row
-- (kind, tenant, args), made only while the starter still may enqueue the
-- kind, and recorded as enqueued_by the starter.

-- The run_at of a member job the fleet holds back (finite: pre-17
-- PostgreSQL cannot subtract infinity, and next_due_in does).
CREATE FUNCTION pgtenantd.fleet_hold() RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
	SELECT timestamptz '9999-12-31 00:00:00+00'
$$;

CREATE TABLE pgtenantd.fleets (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE
		CONSTRAINT fleets_name_valid CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
	state text NOT NULL DEFAULT 'running'
		CONSTRAINT fleets_state_valid CHECK (state IN
			('running', 'paused', 'finished', 'cancelled')),
	started_by text NOT NULL,
	kind text NOT NULL,
	args jsonb NOT NULL,
	max_attempts integer NOT NULL,
	max_parallel integer NOT NULL
		CONSTRAINT fleets_max_parallel_range CHECK (max_parallel BETWEEN 1 AND 1000),
	window_start time,
	window_end time,
	time_zone text NOT NULL,
	on_failure text NOT NULL
		CONSTRAINT fleets_on_failure_valid CHECK (on_failure IN ('pause', 'continue')),
	filter jsonb NOT NULL DEFAULT '{}',
	request text
		CONSTRAINT fleets_request_valid CHECK (request IN
			('pause', 'retry', 'skip', 'cancel')),
	paused_reason text,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	first_started_at timestamptz,
	finished_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	CONSTRAINT fleets_window_whole CHECK ((window_start IS NULL AND window_end IS NULL)
					      OR window_start <> window_end)
);
COMMENT ON TABLE pgtenantd.fleets IS
	'pgtenantd fleets: tenants moved in waves; start with pgtenantd.start_fleet, watch pgtenantd.fleet_status';
COMMENT ON COLUMN pgtenantd.fleets.request IS
	'set by pgtenantd.fleet_pause/fleet_resume/fleet_cancel; the daemon acts on it and clears it';

CREATE TABLE pgtenantd.fleet_members (
	fleet_id bigint NOT NULL REFERENCES pgtenantd.fleets ON DELETE CASCADE,
	position integer NOT NULL,
	tenant_id text NOT NULL,
	job_id bigint NOT NULL,
	rows bigint NOT NULL,
	bytes bigint NOT NULL,
	state text NOT NULL DEFAULT 'waiting'
		CONSTRAINT fleet_members_state_valid CHECK (state IN
			('waiting', 'running', 'done', 'failed', 'cancelled', 'skipped')),
	jobs_run integer NOT NULL DEFAULT 1,
	started_at timestamptz,
	finished_at timestamptz,
	last_error text,
	PRIMARY KEY (fleet_id, position),
	UNIQUE (fleet_id, tenant_id)
);
CREATE INDEX fleet_members_job_idx ON pgtenantd.fleet_members (job_id);
COMMENT ON TABLE pgtenantd.fleet_members IS
	'pgtenantd fleets: one row per tenant of a fleet, in the order they move (smallest first)';

-- Starters see their own fleets, pgtenantd_read and pgtenantd_admin every
-- fleet; only the starter or pgtenantd_admin may set a fleet's request.
ALTER TABLE pgtenantd.fleets ENABLE ROW LEVEL SECURITY;
ALTER TABLE pgtenantd.fleet_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY fleets_see ON pgtenantd.fleets FOR SELECT
	USING (started_by = current_user
	       OR (SELECT pgtenantd.member_of('pgtenantd_read'))
	       OR (SELECT pgtenantd.member_of('pgtenantd_admin')));
CREATE POLICY fleets_request ON pgtenantd.fleets FOR UPDATE
	USING (started_by = current_user
	       OR (SELECT pgtenantd.member_of('pgtenantd_admin')))
	WITH CHECK (started_by = current_user
		    OR (SELECT pgtenantd.member_of('pgtenantd_admin')));
CREATE POLICY fleet_members_see ON pgtenantd.fleet_members FOR SELECT
	USING (EXISTS (SELECT FROM pgtenantd.fleets f WHERE f.id = fleet_id));

-- Whether p_at falls inside the daily window [p_start, p_end) of time zone
-- p_tz; a window whose start is after its end spans midnight. No window
-- (NULL start) is always open.
CREATE FUNCTION pgtenantd.fleet_in_window(p_start time, p_end time,
	p_tz text, p_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT CASE
	       WHEN p_start IS NULL THEN true
	       WHEN p_start < p_end THEN local >= p_start AND local < p_end
	       ELSE local >= p_start OR local < p_end END
	  FROM (SELECT (p_at AT TIME ZONE p_tz)::time AS local) l
$$;

-- The shared tenants among p_tenants (every shared tenant if NULL) with
-- their rows and bytes in public.graph_entities and public.graph_relations,
-- within the bounds (NULL: none), smallest first. SECURITY DEFINER: a role
-- that may migrate tenants need not read the shared tables; it learns only
-- the sizes, which tenant_stats jobs report to it anyway.
CREATE FUNCTION pgtenantd.fleet_candidates(p_tenants text[],
	p_min_rows bigint, p_max_rows bigint, p_min_bytes bigint, p_max_bytes bigint)
RETURNS TABLE (tenant_id text, rows bigint, bytes bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
BEGIN
	IF pg_catalog.to_regclass('public.graph_entities') IS NULL THEN
		RETURN;
	END IF;
	IF pg_catalog.to_regclass('public.graph_relations') IS NULL THEN
		RETURN QUERY
		SELECT e.tenant_id::text, count(*)::bigint,
		       sum(pg_catalog.pg_column_size(e.*))::bigint
		  FROM public.graph_entities e
		 WHERE e.tenant_id <> '' AND (p_tenants IS NULL OR e.tenant_id::text = ANY (p_tenants))
		 GROUP BY 1
		HAVING count(*) BETWEEN coalesce(p_min_rows, 0) AND coalesce(p_max_rows, 9223372036854775807)
		   AND sum(pg_catalog.pg_column_size(e.*)) BETWEEN coalesce(p_min_bytes, 0) AND coalesce(p_max_bytes, 9223372036854775807)
		 ORDER BY 2, 3, 1;
		RETURN;
	END IF;
	RETURN QUERY
	SELECT s.t, sum(s.n)::bigint, sum(s.b)::bigint
	  FROM (SELECT e.tenant_id::text AS t, count(*) AS n,
		       sum(pg_catalog.pg_column_size(e.*)) AS b
		  FROM public.graph_entities e
		 WHERE e.tenant_id <> '' AND (p_tenants IS NULL OR e.tenant_id::text = ANY (p_tenants))
		 GROUP BY 1
		UNION ALL
		SELECT r.tenant_id::text, count(*), sum(pg_catalog.pg_column_size(r.*))
		  FROM public.graph_relations r
		 WHERE r.tenant_id <> '' AND (p_tenants IS NULL OR r.tenant_id::text = ANY (p_tenants))
		 GROUP BY 1) s
	 GROUP BY s.t
	HAVING sum(s.n) BETWEEN coalesce(p_min_rows, 0) AND coalesce(p_max_rows, 9223372036854775807)
	   AND sum(s.b) BETWEEN coalesce(p_min_bytes, 0) AND coalesce(p_max_bytes, 9223372036854775807)
	 ORDER BY 2, 3, 1;
END $$;

-- Record a fleet whose member jobs the caller has just inserted, held, in
-- this same transaction (p_members: [{job_id, rows, bytes}] in the order
-- they are to move). SECURITY DEFINER to write the fleet tables; it trusts
-- no one: the jobs must carry the xmin of the fleet row it inserts (so only
-- jobs this transaction inserted qualify, never another role's), be held,
-- queued migrations of one enqueuer with the same args, and that enqueuer
-- becomes the fleet's started_by. The sizes only order the caller's own
-- jobs. p_spec: name, max_parallel, window ("HH:MM-HH:MM"), time_zone,
-- on_failure, filter. Returns the fleet's id.
CREATE FUNCTION pgtenantd.fleet_record(p_spec jsonb, p_members jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
	v_name text := p_spec->>'name';
	v_parallel integer;
	v_window text[];
	v_tz text := coalesce(p_spec->>'time_zone', 'UTC');
	v_on_failure text := coalesce(p_spec->>'on_failure', 'pause');
	v_id bigint;
	v_bad text;
	v_by text[];
	v_args jsonb[];
	v_attempts integer[];
BEGIN
	IF v_name IS NULL OR v_name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
		RAISE EXCEPTION 'pgtenantd: invalid fleet name "%"', left(v_name, 80)
		USING ERRCODE = 'check_violation',
		      HINT = 'a fleet name is 1-63 characters of A-Z, a-z, 0-9, _, . and -';
	END IF;
	IF EXISTS (SELECT FROM pgtenantd.fleets f WHERE f.name = v_name) THEN
		RAISE EXCEPTION 'pgtenantd: there is already a fleet named "%"', v_name
		USING ERRCODE = 'unique_violation',
		      HINT = 'fleet names are kept with their history; choose another name';
	END IF;
	IF coalesce(p_spec->>'max_parallel', '1') !~ '^[0-9]{1,4}$'
	   OR (coalesce(p_spec->>'max_parallel', '1'))::integer NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'pgtenantd: max_parallel % is out of range 1 to 1000', left(p_spec->>'max_parallel', 40)
		USING ERRCODE = 'check_violation';
	END IF;
	v_parallel := coalesce(p_spec->>'max_parallel', '1')::integer;
	IF p_spec->>'window' IS NOT NULL THEN
		v_window := regexp_match(p_spec->>'window',
			'^\s*([01]?[0-9]|2[0-3]):([0-5][0-9])\s*-\s*([01]?[0-9]|2[0-3]):([0-5][0-9])\s*$');
		IF v_window IS NULL OR v_window[1]::int * 60 + v_window[2]::int
				       = v_window[3]::int * 60 + v_window[4]::int THEN
			RAISE EXCEPTION 'pgtenantd: window "%" is not HH:MM-HH:MM with two different times', left(p_spec->>'window', 40)
			USING ERRCODE = 'check_violation',
			      HINT = 'for example "22:00-06:00" (spans midnight) or "01:30-05:00"';
		END IF;
	END IF;
	BEGIN
		PERFORM clock_timestamp() AT TIME ZONE v_tz;
	EXCEPTION WHEN invalid_parameter_value OR feature_not_supported THEN
		RAISE EXCEPTION 'pgtenantd: time zone "%" is not known', left(v_tz, 80)
		USING ERRCODE = 'check_violation',
		      HINT = 'a name of pg_timezone_names, for example "Europe/Berlin" or "UTC"';
	END;
	IF v_on_failure NOT IN ('pause', 'continue') THEN
		RAISE EXCEPTION 'pgtenantd: on_failure "%" must be pause or continue', left(v_on_failure, 40)
		USING ERRCODE = 'check_violation';
	END IF;
	IF octet_length(coalesce(p_spec->'filter', '{}')::text) > 65536 THEN
		RAISE EXCEPTION 'pgtenantd: fleet "%": the filter of % bytes is over the limit of 65536 bytes', v_name, octet_length((p_spec->'filter')::text)
		USING ERRCODE = 'program_limit_exceeded';
	END IF;
	IF jsonb_typeof(p_members) IS DISTINCT FROM 'array' OR jsonb_array_length(p_members) = 0 THEN
		RAISE EXCEPTION 'pgtenantd: fleet "%" has no member: no shared tenant matches its filter', v_name
		USING ERRCODE = 'no_data_found';
	END IF;

	INSERT INTO pgtenantd.fleets (name, started_by, kind, args, max_attempts,
				      max_parallel, window_start, window_end,
				      time_zone, on_failure, filter)
	VALUES (v_name, '', 'migrate_to_separate_schema', '{}', 1, v_parallel,
		(v_window[1] || ':' || v_window[2])::time,
		(v_window[3] || ':' || v_window[4])::time,
		v_tz, v_on_failure, coalesce(p_spec->'filter', '{}'))
	RETURNING id INTO v_id;

	-- every job must be one this transaction inserted (the xmin of the
	-- fleet row just inserted), held, and a queued migration
	SELECT string_agg(coalesce(m.e->>'job_id', '(none)'), ', ') INTO v_bad
	  FROM jsonb_array_elements(p_members) AS m(e)
	  CROSS JOIN (SELECT f.xmin AS x FROM pgtenantd.fleets f WHERE f.id = v_id) f_xmin
	  LEFT JOIN pgtenantd.jobs j
	    ON j.id = CASE WHEN m.e->>'job_id' ~ '^[0-9]{1,18}$' THEN (m.e->>'job_id')::bigint END
	 WHERE j.id IS NULL OR j.xmin <> f_xmin.x OR j.state <> 'queued'
	    OR j.run_at <> pgtenantd.fleet_hold()
	    OR j.kind <> 'migrate_to_separate_schema' OR j.cancel_requested;
	IF v_bad IS NOT NULL THEN
		RAISE EXCEPTION 'pgtenantd: fleet "%": jobs % are not held migrations inserted by this transaction', v_name, left(v_bad, 200)
		USING ERRCODE = 'insufficient_privilege',
		      HINT = 'start a fleet with pgtenantd.start_fleet';
	END IF;
	INSERT INTO pgtenantd.fleet_members (fleet_id, position, tenant_id, job_id, rows, bytes)
	SELECT v_id, m.n, j.tenant_id, j.id,
	       greatest(coalesce((m.e->>'rows')::bigint, 0), 0),
	       greatest(coalesce((m.e->>'bytes')::bigint, 0), 0)
	  FROM jsonb_array_elements(p_members) WITH ORDINALITY AS m(e, n)
	  JOIN pgtenantd.jobs j ON j.id = (m.e->>'job_id')::bigint;
	SELECT array_agg(DISTINCT j.enqueued_by), array_agg(DISTINCT j.args),
	       array_agg(DISTINCT j.max_attempts)
	  INTO v_by, v_args, v_attempts
	  FROM pgtenantd.fleet_members m JOIN pgtenantd.jobs j ON j.id = m.job_id
	 WHERE m.fleet_id = v_id;
	IF cardinality(v_by) <> 1 OR cardinality(v_args) <> 1 OR cardinality(v_attempts) <> 1 THEN
		RAISE EXCEPTION 'pgtenantd: the member jobs of fleet "%" differ in enqueued_by, args or max_attempts', v_name
		USING ERRCODE = 'check_violation';
	END IF;
	UPDATE pgtenantd.fleets
	   SET started_by = v_by[1], args = v_args[1], max_attempts = v_attempts[1]
	 WHERE id = v_id;
	PERFORM pg_catalog.pg_notify('pgtenantd', 'fleet');
	RETURN v_id;
END $$;

-- Start a fleet named p_name: the shared tenants in p_tenants (NULL: every
-- shared tenant), and, if p_query is given, among the tenant ids its first
-- column returns (run as the caller, read only, with search_path pg_catalog,
-- pg_temp: it names its tables with their schema), within the size bounds;
-- moved smallest first by migrate_to_separate_schema jobs with args p_args,
-- at most p_max_parallel at once, only inside p_window ("22:00-06:00", in
-- p_time_zone, default the session's TimeZone), pausing on the first
-- failure unless p_on_failure is 'continue'. The jobs are the caller's own
-- (see the top of this file). Returns the fleet's id.
CREATE FUNCTION pgtenantd.start_fleet(p_name text,
	p_tenants text[] DEFAULT NULL, p_query text DEFAULT NULL,
	p_min_rows bigint DEFAULT NULL, p_max_rows bigint DEFAULT NULL,
	p_min_bytes bigint DEFAULT NULL, p_max_bytes bigint DEFAULT NULL,
	p_max_parallel integer DEFAULT 1, p_window text DEFAULT NULL,
	p_time_zone text DEFAULT NULL, p_on_failure text DEFAULT 'pause',
	p_args jsonb DEFAULT '{}', p_max_attempts integer DEFAULT 3)
RETURNS bigint
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
	v_wanted text[] := p_tenants;
	v_from_query text[];
	v_missing text;
	v_members jsonb;
	v_found text[];
BEGIN
	IF p_query IS NOT NULL THEN
		-- read only, as the caller: the block ends in an error of its
		-- own so that its subtransaction (and with it the read-only
		-- setting) rolls back; plpgsql variables keep their values
		BEGIN
			PERFORM pg_catalog.set_config('transaction_read_only', 'on', true);
			EXECUTE pg_catalog.format('SELECT array_agg(DISTINCT q.t::text) FROM (%s) AS q(t)', p_query)
			   INTO v_from_query;
			RAISE EXCEPTION 'query done' USING ERRCODE = 'P7F01';
		EXCEPTION WHEN SQLSTATE 'P7F01' THEN
			NULL;
		END;
		v_wanted := CASE WHEN v_wanted IS NULL THEN coalesce(v_from_query, '{}')
				 ELSE ARRAY(SELECT unnest(v_wanted)
					    INTERSECT SELECT unnest(v_from_query)) END;
	ELSIF p_tenants IS NOT NULL THEN
		v_found := ARRAY(SELECT fc.tenant_id FROM pgtenantd.fleet_candidates(p_tenants,
					NULL, NULL, NULL, NULL) fc);
		SELECT string_agg(format('"%s"', left(t, 80)), ', ') INTO v_missing
		  FROM unnest(p_tenants) t WHERE t <> ALL (v_found);
		IF v_missing IS NOT NULL THEN
			RAISE EXCEPTION 'pgtenantd: fleet "%": tenants % have no rows in the shared tables', left(p_name, 80), v_missing
			USING ERRCODE = 'no_data_found';
		END IF;
	END IF;
	-- one INSERT for all (through the jobs table's checks, row by row)
	WITH cand AS MATERIALIZED (
		SELECT * FROM pgtenantd.fleet_candidates(v_wanted, p_min_rows,
				p_max_rows, p_min_bytes, p_max_bytes)),
	held AS (
		INSERT INTO pgtenantd.jobs (kind, tenant_id, args, run_at, max_attempts)
		SELECT 'migrate_to_separate_schema', cand.tenant_id, p_args,
		       pgtenantd.fleet_hold(), p_max_attempts
		  FROM cand ORDER BY cand.rows, cand.bytes, cand.tenant_id
		RETURNING id, tenant_id)
	SELECT coalesce(jsonb_agg(jsonb_build_object('job_id', held.id, 'rows', cand.rows,
			'bytes', cand.bytes) ORDER BY cand.rows, cand.bytes, cand.tenant_id), '[]')
	  INTO v_members
	  FROM held JOIN cand ON cand.tenant_id = held.tenant_id;
	RETURN pgtenantd.fleet_record(
		jsonb_build_object('name', p_name, 'max_parallel', p_max_parallel,
			'window', p_window,
			'time_zone', coalesce(p_time_zone, current_setting('TimeZone')),
			'on_failure', p_on_failure,
			'filter', jsonb_strip_nulls(jsonb_build_object(
				'tenants', p_tenants, 'query', p_query,
				'min_rows', p_min_rows, 'max_rows', p_max_rows,
				'min_bytes', p_min_bytes, 'max_bytes', p_max_bytes))),
		v_members);
END $$;

-- Ask the daemon to act on fleet p_name (pause, retry: resume and run its
-- failed members again, skip: resume leaving them failed, cancel: cancel
-- its waiting members, let running ones finish). Runs with the caller's
-- rights: only the fleet's starter or pgtenantd_admin may. Returns the
-- fleet's state now.
CREATE FUNCTION pgtenantd.fleet_request(p_name text, p_request text)
RETURNS text
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
	v_state text;
BEGIN
	IF p_request IS NULL OR p_request NOT IN ('pause', 'retry', 'skip', 'cancel') THEN
		RAISE EXCEPTION 'pgtenantd: unknown fleet request "%"', left(p_request, 40)
		USING ERRCODE = 'check_violation',
		      HINT = 'pause, retry, skip or cancel';
	END IF;
	UPDATE pgtenantd.fleets SET request = p_request, updated_at = clock_timestamp()
	 WHERE name = p_name AND state IN ('running', 'paused')
	RETURNING state INTO v_state;
	IF NOT FOUND THEN
		SELECT state INTO v_state FROM pgtenantd.fleets WHERE name = p_name;
		IF FOUND THEN
			RAISE EXCEPTION 'pgtenantd: fleet "%" is %', left(p_name, 80), v_state
			USING ERRCODE = 'check_violation';
		END IF;
		RAISE EXCEPTION 'pgtenantd: no fleet "%" that role % may change', left(p_name, 80), current_user
		USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM pg_catalog.pg_notify('pgtenantd', 'fleet');
	RETURN v_state;
END $$;

CREATE FUNCTION pgtenantd.fleet_pause(p_name text) RETURNS text
LANGUAGE sql AS $$ SELECT pgtenantd.fleet_request(p_name, 'pause') $$;
CREATE FUNCTION pgtenantd.fleet_resume(p_name text, p_retry_failed boolean DEFAULT true)
RETURNS text
LANGUAGE sql AS $$
	SELECT pgtenantd.fleet_request(p_name, CASE WHEN p_retry_failed THEN 'retry' ELSE 'skip' END)
$$;
CREATE FUNCTION pgtenantd.fleet_cancel(p_name text) RETURNS text
LANGUAGE sql AS $$ SELECT pgtenantd.fleet_request(p_name, 'cancel') $$;

-- A member's state from its job's: held is waiting, released and not
-- ended is running.
CREATE FUNCTION pgtenantd.fleet_member_state(p_member_state text,
	p_job_state text, p_run_at timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE
	       WHEN p_member_state NOT IN ('waiting', 'running') THEN p_member_state
	       WHEN p_job_state IS NULL THEN 'failed'
	       WHEN p_job_state = 'queued' AND p_run_at = pgtenantd.fleet_hold() THEN 'waiting'
	       WHEN p_job_state IN ('queued', 'running') THEN 'running'
	       WHEN p_job_state = 'succeeded' THEN 'done'
	       ELSE p_job_state END
$$;

-- One fleet's turn of fleet_advance, its row locked: bring the members'
-- states up to date, act on a request, pause on a failure, release held
-- jobs while fewer than max_parallel run inside the window, finish.
-- Returns the number of jobs released.
CREATE FUNCTION pgtenantd.fleet_advance_one(f pgtenantd.fleets)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	v_now timestamptz := clock_timestamp();
	v_running integer;
	v_released integer := 0;
	v_failed record;
	v_role text;
	v_member record;
	v_job bigint;
BEGIN
	UPDATE pgtenantd.fleet_members m
	   SET state = s.new_state,
	       started_at = coalesce(m.started_at, s.started_at),
	       finished_at = CASE WHEN s.new_state IN ('done', 'failed', 'cancelled')
				  THEN coalesce(s.finished_at, v_now) END,
	       last_error = CASE WHEN s.job_missing THEN 'its job ' || m.job_id || ' is gone'
				 ELSE s.last_error END
	  FROM (SELECT m2.position, j.started_at, j.finished_at, j.last_error,
		       j.id IS NULL AS job_missing,
		       pgtenantd.fleet_member_state(m2.state, j.state, j.run_at) AS new_state
		  FROM pgtenantd.fleet_members m2
		  LEFT JOIN pgtenantd.jobs j ON j.id = m2.job_id
		 WHERE m2.fleet_id = f.id AND m2.state IN ('waiting', 'running')) s
	 WHERE m.fleet_id = f.id AND m.position = s.position
	   AND m.state IS DISTINCT FROM s.new_state;

	IF f.request = 'cancel' THEN
		UPDATE pgtenantd.jobs j SET cancel_requested = true
		  FROM pgtenantd.fleet_members m
		 WHERE m.fleet_id = f.id AND m.state = 'waiting' AND j.id = m.job_id
		   AND j.state = 'queued' AND NOT j.cancel_requested;
		UPDATE pgtenantd.fleet_members SET state = 'cancelled', finished_at = v_now
		 WHERE fleet_id = f.id AND state = 'waiting';
		f.state := 'cancelled';
	ELSIF f.request = 'pause' THEN
		f.state := 'paused';
		f.paused_reason := 'paused on request';
	ELSIF f.request = 'skip' THEN
		UPDATE pgtenantd.fleet_members SET state = 'skipped'
		 WHERE fleet_id = f.id AND state IN ('failed', 'cancelled');
		f.state := 'running';
		f.paused_reason := NULL;
	ELSIF f.request = 'retry' THEN
		-- a copy of the starter's row, only while the starter may still
		-- enqueue the kind (or is trusted: the table's owner or a superuser)
		SELECT k.enqueue_role INTO v_role FROM pgtenantd.job_kinds k WHERE k.kind = f.kind;
		IF to_regrole(f.started_by) IS NULL
		   OR NOT (pg_has_role(f.started_by, (SELECT c.relowner FROM pg_class c
							WHERE c.oid = 'pgtenantd.jobs'::regclass), 'MEMBER')
			   OR (to_regrole(v_role) IS NOT NULL
			       AND pg_has_role(f.started_by, to_regrole(v_role), 'MEMBER'))) THEN
			f.state := 'paused';
			f.paused_reason := format('cannot retry: role "%s", who started the fleet, may no longer enqueue %s jobs', f.started_by, f.kind);
		ELSE
			FOR v_member IN SELECT * FROM pgtenantd.fleet_members
					 WHERE fleet_id = f.id AND state IN ('failed', 'cancelled')
					 ORDER BY position LOOP
				INSERT INTO pgtenantd.jobs (kind, tenant_id, args, run_at, max_attempts)
				VALUES (f.kind, v_member.tenant_id, f.args, pgtenantd.fleet_hold(), f.max_attempts)
				RETURNING id INTO v_job;
				UPDATE pgtenantd.jobs SET enqueued_by = f.started_by WHERE id = v_job;
				UPDATE pgtenantd.fleet_members
				   SET job_id = v_job, state = 'waiting', jobs_run = jobs_run + 1,
				       started_at = NULL, finished_at = NULL, last_error = NULL
				 WHERE fleet_id = f.id AND position = v_member.position;
			END LOOP;
			f.state := 'running';
			f.paused_reason := NULL;
		END IF;
	END IF;

	IF f.state = 'running' AND f.on_failure = 'pause' THEN
		SELECT m.tenant_id, m.job_id, m.state, m.last_error INTO v_failed
		  FROM pgtenantd.fleet_members m
		 WHERE m.fleet_id = f.id AND m.state IN ('failed', 'cancelled')
		 ORDER BY m.finished_at, m.position LIMIT 1;
		IF FOUND THEN
			f.state := 'paused';
			f.paused_reason := format('tenant "%s" (job %s) %s: %s', v_failed.tenant_id,
				v_failed.job_id, v_failed.state, coalesce(v_failed.last_error, '(no error)'));
		END IF;
	END IF;

	IF f.state = 'running'
	   AND pgtenantd.fleet_in_window(f.window_start, f.window_end, f.time_zone, v_now) THEN
		SELECT count(*) INTO v_running FROM pgtenantd.fleet_members m
		 WHERE m.fleet_id = f.id AND m.state = 'running';
		WITH next AS (
			SELECT m.position, m.job_id FROM pgtenantd.fleet_members m
			 WHERE m.fleet_id = f.id AND m.state = 'waiting'
			 ORDER BY m.position
			 LIMIT greatest(f.max_parallel - v_running, 0)),
		released AS (
			UPDATE pgtenantd.jobs j SET run_at = v_now, updated_at = v_now
			  FROM next
			 WHERE j.id = next.job_id AND j.state = 'queued'
			   AND j.run_at = pgtenantd.fleet_hold()
			RETURNING j.id)
		UPDATE pgtenantd.fleet_members m SET state = 'running', started_at = v_now
		  FROM released WHERE m.fleet_id = f.id AND m.job_id = released.id;
		GET DIAGNOSTICS v_released = ROW_COUNT;
		IF v_released > 0 AND f.first_started_at IS NULL THEN
			f.first_started_at := v_now;
		END IF;
	END IF;

	IF f.state IN ('running', 'cancelled')
	   AND NOT EXISTS (SELECT FROM pgtenantd.fleet_members m
			    WHERE m.fleet_id = f.id AND m.state IN ('waiting', 'running')) THEN
		IF f.state = 'running' THEN
			f.state := 'finished';
		END IF;
		f.finished_at := coalesce(f.finished_at, v_now);
	END IF;

	UPDATE pgtenantd.fleets
	   SET state = f.state, paused_reason = f.paused_reason, request = NULL,
	       first_started_at = f.first_started_at, finished_at = f.finished_at,
	       updated_at = CASE WHEN (state, paused_reason, request, first_started_at, finished_at)
				      IS DISTINCT FROM (f.state, f.paused_reason, NULL::text,
							f.first_started_at, f.finished_at)
				 THEN v_now ELSE updated_at END
	 WHERE id = f.id;
	RETURN v_released;
END $$;

-- Advance every fleet that is not over and not locked by another daemon's
-- fleet_advance (its row lock keeps two daemons from releasing more than
-- max_parallel). Returns the fleets still active afterwards and the jobs
-- released; a release NOTIFYs the daemons. The daemon calls it on a timer,
-- when a job ends (while a fleet is active) and on NOTIFY "fleet".
CREATE FUNCTION pgtenantd.fleet_advance(OUT active integer, OUT released integer)
LANGUAGE plpgsql AS $$
DECLARE
	f pgtenantd.fleets;
BEGIN
	released := 0;
	FOR f IN SELECT * FROM pgtenantd.fleets
		  WHERE state IN ('running', 'paused')
		     OR (state = 'cancelled' AND finished_at IS NULL)
		  ORDER BY id FOR UPDATE SKIP LOCKED LOOP
		released := released + pgtenantd.fleet_advance_one(f);
	END LOOP;
	IF released > 0 THEN
		PERFORM pg_catalog.pg_notify('pgtenantd', 'fleet');
	END IF;
	SELECT count(*) INTO active FROM pgtenantd.fleets
	 WHERE state IN ('running', 'paused')
	    OR (state = 'cancelled' AND finished_at IS NULL);
END $$;

-- Per fleet: its members by state, rows moved of the total, and an ETA
-- from the rate so far (rows of the members done over the time since the
-- first one started). Members' states are read live from their jobs.
-- security_invoker: each role sees the fleets (and jobs) it may see.
CREATE VIEW pgtenantd.fleet_status WITH (security_invoker = true) AS
SELECT f.name, f.state, f.started_by, f.max_parallel,
       CASE WHEN f.window_start IS NOT NULL
	    THEN to_char(f.window_start, 'HH24:MI') || '-' || to_char(f.window_end, 'HH24:MI') END AS "window",
       f.time_zone, f.on_failure,
       pgtenantd.fleet_in_window(f.window_start, f.window_end, f.time_zone, clock_timestamp()) AS in_window,
       s.members, s.done, s.running, s.waiting, s.failed, s.cancelled, s.skipped,
       s.rows_total, s.rows_moved,
       CASE WHEN f.state IN ('running', 'paused') AND s.rows_moved > 0 THEN
	    (coalesce(f.finished_at, clock_timestamp()) - f.first_started_at)
	    * ((s.rows_total - s.rows_moved - s.rows_failed)::double precision / s.rows_moved)
	    END AS eta,
       f.paused_reason, f.created_at, f.first_started_at, f.finished_at, f.id AS fleet_id
  FROM pgtenantd.fleets f,
       LATERAL (SELECT count(*) AS members,
		       count(*) FILTER (WHERE ms = 'done') AS done,
		       count(*) FILTER (WHERE ms = 'running') AS running,
		       count(*) FILTER (WHERE ms = 'waiting') AS waiting,
		       count(*) FILTER (WHERE ms = 'failed') AS failed,
		       count(*) FILTER (WHERE ms = 'cancelled') AS cancelled,
		       count(*) FILTER (WHERE ms = 'skipped') AS skipped,
		       coalesce(sum(x.rows), 0)::bigint AS rows_total,
		       coalesce(sum(x.rows) FILTER (WHERE ms = 'done'), 0)::bigint AS rows_moved,
		       coalesce(sum(x.rows) FILTER (WHERE ms IN ('failed', 'cancelled', 'skipped')), 0)::bigint AS rows_failed
		  FROM (SELECT m.rows, pgtenantd.fleet_member_state(m.state, j.state, j.run_at) AS ms
			  FROM pgtenantd.fleet_members m
			  LEFT JOIN pgtenantd.jobs j ON j.id = m.job_id
			 WHERE m.fleet_id = f.id) x) s;
COMMENT ON VIEW pgtenantd.fleet_status IS
	'pgtenantd fleets: members done, running, waiting, failed; rows moved; ETA';

-- Delete up to p_batch fleets that finished or were cancelled more than
-- p_older_than ago (keep_fleets), oldest first, with their members (ON
-- DELETE CASCADE); their jobs are pruned as jobs. Returns how many. A fleet
-- still running or paused is never deleted (a schedule's fleet slots look
-- only for those).
CREATE FUNCTION pgtenantd.prune_fleets(p_older_than interval, p_batch integer)
RETURNS integer
LANGUAGE sql AS $$
	WITH gone AS (
		DELETE FROM pgtenantd.fleets f
		 WHERE f.id IN (SELECT o.id FROM pgtenantd.fleets o
				 WHERE o.state IN ('finished', 'cancelled')
				   AND o.finished_at < clock_timestamp() - p_older_than
				 ORDER BY o.finished_at
				 LIMIT p_batch
				 FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*)::integer FROM gone
$$;
REVOKE EXECUTE ON FUNCTION pgtenantd.prune_fleets(interval, integer) FROM PUBLIC;

-- Grants: the daemon's functions to no one; reading to the readers and
-- enqueuers (row-level security narrows it); asking a fleet to change to
-- the enqueuers (only their own fleets); the size lookup and recording a
-- fleet to pgtenantd_operate, whose members may enqueue migrations.
REVOKE EXECUTE ON FUNCTION pgtenantd.fleet_advance(), pgtenantd.fleet_advance_one(pgtenantd.fleets),
	pgtenantd.fleet_candidates(text[], bigint, bigint, bigint, bigint),
	pgtenantd.fleet_record(jsonb, jsonb) FROM PUBLIC;

-- apply_grants (every daemon start) grants these again: see
-- src/sql/v7-grants.sql.
