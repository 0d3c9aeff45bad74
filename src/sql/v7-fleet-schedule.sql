-- pgtenantd schema, version 7: fleet schedules.
--
-- A schedule of migrate_to_separate_schema with a fleet: mapping starts,
-- at each slot, ONE fleet named "<schedule>-<YYYYMMDDTHHMMZ>" (the slot in
-- UTC) over the schedule's tenants, instead of enqueuing a job for every
-- tenant at once (README "Schedules", doc/migration.md "Fleet
-- schedules"). The daemon fires such a slot with fire_slot_fleet, as it
-- fires other slots with fire_slot: as its own role (the schedule is the
-- operator's configuration), so the fleet's member jobs are the daemon
-- role's, enqueued through pgtenantd.start_fleet and the jobs table's
-- checks like any other.

-- The schedule whose slot started a fleet (NULL: started by hand), so that
-- a slot starts no second fleet while one of its schedule is active.
ALTER TABLE pgtenantd.fleets ADD COLUMN schedule text;
CREATE INDEX fleets_schedule_idx ON pgtenantd.fleets (schedule)
	WHERE schedule IS NOT NULL;
COMMENT ON COLUMN pgtenantd.fleets.schedule IS
	'the schedule (pgtenantd.yaml) whose slot started this fleet; NULL: pgtenantd.start_fleet by hand';

-- The fleet a slot of a fleet schedule started (NULL: none, or not a
-- fleet schedule).
ALTER TABLE pgtenantd.schedule_slots ADD COLUMN fleet text;
COMMENT ON COLUMN pgtenantd.schedule_slots.fleet IS
	'the fleet this slot started (fleet schedules); NULL: none';

-- Fire slot p_slot of fleet schedule p_schedule over p_tenants with the
-- fleet settings p_fleet (max_parallel, window, time_zone, on_failure,
-- min_rows, max_rows, min_bytes, max_bytes; config.c checked them, and
-- start_fleet checks them again) and the jobs' args p_args. Records the
-- slot exactly once (two daemons: the second gets jobs NULL, as from
-- fire_slot). Returns the member jobs enqueued and the fleet started, or
-- 0 and the name of the schedule's fleet that is still active (the slot
-- starts no second one), or 0 and neither when no shared tenant matches.
-- jobs + skipped of the slot's row is every valid tenant it was for;
-- skipped are those with a migration queued or running already, or all
-- of them while an earlier fleet is active.
CREATE FUNCTION pgtenantd.fire_slot_fleet(p_schedule text, p_slot timestamptz,
	p_fleet jsonb, p_args jsonb, p_tenants text[], p_owner text,
	p_catch_up boolean,
	OUT jobs integer, OUT fleet text, OUT active_fleet text)
LANGUAGE plpgsql AS $$
DECLARE
	v_name text := p_schedule || '-' || pg_catalog.to_char(p_slot AT TIME ZONE 'UTC',
					      'YYYYMMDD"T"HH24MI"Z"');
	v_valid text[];
	v_members text[];
	v_id bigint;
BEGIN
	INSERT INTO pgtenantd.schedule_slots (schedule, slot, kind, catch_up, fired_by)
	VALUES (p_schedule, p_slot, 'migrate_to_separate_schema', p_catch_up, p_owner)
	ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN; -- another daemon fired it: jobs is NULL
	END IF;
	-- slots of one schedule fired by two daemons at once (one catching
	-- up) must not both find no active fleet
	PERFORM pg_catalog.pg_advisory_xact_lock(1886680150, pg_catalog.hashtext(p_schedule));

	-- the valid ids without a twin, as fire_slot takes them
	v_valid := ARRAY(
		SELECT x.t FROM (SELECT DISTINCT t FROM unnest(p_tenants) t
				  WHERE t ~ '^[A-Za-z0-9_-]{1,255}$'
				    AND octet_length(pgtenantd.tenant_schema(t)) <= 63) x
		 WHERE (SELECT f.twin FROM pgtenantd.insert_facts(0, x.t, false) f) IS NULL
		 ORDER BY x.t);
	jobs := 0;

	SELECT f.name INTO active_fleet FROM pgtenantd.fleets f
	 WHERE f.schedule = p_schedule
	   AND (f.state IN ('running', 'paused')
		OR (f.state = 'cancelled' AND f.finished_at IS NULL))
	 ORDER BY f.id LIMIT 1;
	IF FOUND THEN
		UPDATE pgtenantd.schedule_slots s SET jobs = 0, skipped = cardinality(v_valid)
		 WHERE s.schedule = p_schedule AND s.slot = p_slot;
		RETURN;
	END IF;

	-- those still in the shared tables, within the size bounds, and with
	-- no migration queued or running (a second one would only fail)
	v_members := ARRAY(
		SELECT c.tenant_id FROM pgtenantd.fleet_candidates(v_valid,
			(p_fleet->>'min_rows')::bigint, (p_fleet->>'max_rows')::bigint,
			(p_fleet->>'min_bytes')::bigint, (p_fleet->>'max_bytes')::bigint) c
		 WHERE NOT EXISTS (SELECT FROM pgtenantd.jobs j
				    WHERE j.tenant_id = c.tenant_id
				      AND j.kind = 'migrate_to_separate_schema'
				      AND j.state IN ('queued', 'running')));
	IF cardinality(v_members) > 0 THEN
		BEGIN
			v_id := pgtenantd.start_fleet(v_name, v_members, NULL,
				(p_fleet->>'min_rows')::bigint, (p_fleet->>'max_rows')::bigint,
				(p_fleet->>'min_bytes')::bigint, (p_fleet->>'max_bytes')::bigint,
				coalesce((p_fleet->>'max_parallel')::integer, 1),
				p_fleet->>'window', p_fleet->>'time_zone',
				coalesce(p_fleet->>'on_failure', 'pause'),
				coalesce(p_args, '{}'));
		EXCEPTION WHEN no_data_found THEN
			-- every member grew out of the bounds or left the shared
			-- tables since v_members was read: nothing to move
			v_id := NULL;
		END;
	END IF;
	IF v_id IS NOT NULL THEN
		UPDATE pgtenantd.fleets f SET schedule = p_schedule WHERE f.id = v_id;
		SELECT count(*) INTO jobs FROM pgtenantd.fleet_members m WHERE m.fleet_id = v_id;
		fleet := v_name;
	END IF;
	UPDATE pgtenantd.schedule_slots s
	   SET jobs = fire_slot_fleet.jobs, skipped = cardinality(v_valid) - fire_slot_fleet.jobs,
	       fleet = fire_slot_fleet.fleet
	 WHERE s.schedule = p_schedule AND s.slot = p_slot;
END $$;

-- The daemon's alone: a role that may insert jobs must not start fleets
-- recorded as a schedule's (and it could not write schedule_slots anyway).
REVOKE EXECUTE ON FUNCTION pgtenantd.fire_slot_fleet(text, timestamptz, jsonb,
	jsonb, text[], text, boolean) FROM PUBLIC;
