-- pgtenantd schema, version 7: who gets what.
--
-- What the INSERT checks read is no longer open to every role.
-- insert_facts and job_insert_is_plain are SECURITY
-- DEFINER: they read jobs and public.tenant_metadata past the caller's
-- row-level security and privileges. Any role could call them (EXECUTE
-- goes to PUBLIC by default) and learn which tenant ids exist, one guess
-- at a time. Only enqueuers need them (the INSERT trigger calls them as
-- the inserting role), and every enqueuer is a member of
-- pgtenantd_enqueue, the one role INSERT on pgtenantd.jobs is granted to.
-- tenant_metadata_has is called only by job_insert_is_plain, as its owner.
REVOKE EXECUTE ON FUNCTION pgtenantd.insert_facts(bigint, text, boolean),
	pgtenantd.job_insert_is_plain(bigint, text, text, jsonb, text),
	pgtenantd.tenant_metadata_has(text) FROM PUBLIC;

-- apply_grants, which every daemon runs at start (so that group roles a
-- DBA creates later get their privileges): version 4's, the INSERT
-- checks' functions to pgtenantd_enqueue, and the fleets' privileges
-- (v7-fleet.sql): reading to the readers and enqueuers (row-level security
-- narrows it), asking a fleet to change to the enqueuers (only their own
-- fleets), the size lookup and recording a fleet to pgtenantd_operate.
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
			pgtenantd.migration_status, pgtenantd.fleets,
			pgtenantd.fleet_members, pgtenantd.fleet_status TO pgtenantd_read;
	ELSE
		missing := missing || 'pgtenantd_read'::text;
	END IF;
	IF to_regrole('pgtenantd_enqueue') IS NOT NULL THEN
		GRANT USAGE ON SCHEMA pgtenantd TO pgtenantd_enqueue;
		GRANT SELECT ON pgtenantd.jobs, pgtenantd.job_kinds,
			pgtenantd.settings TO pgtenantd_enqueue;
		GRANT INSERT ON pgtenantd.jobs TO pgtenantd_enqueue;
		GRANT UPDATE (cancel_requested) ON pgtenantd.jobs TO pgtenantd_enqueue;
		GRANT EXECUTE ON FUNCTION pgtenantd.insert_facts(bigint, text, boolean),
			pgtenantd.job_insert_is_plain(bigint, text, text, jsonb, text)
			TO pgtenantd_enqueue;
		GRANT SELECT ON pgtenantd.fleets, pgtenantd.fleet_members,
			pgtenantd.fleet_status TO pgtenantd_enqueue;
		GRANT UPDATE (request, updated_at) ON pgtenantd.fleets TO pgtenantd_enqueue;
	ELSE
		missing := missing || 'pgtenantd_enqueue'::text;
	END IF;
	IF to_regrole('pgtenantd_operate') IS NOT NULL THEN
		GRANT EXECUTE ON FUNCTION pgtenantd.migration_cutover(bigint),
			pgtenantd.migration_throttle(bigint, integer) TO pgtenantd_operate;
		GRANT SELECT ON pgtenantd.migration_status TO pgtenantd_operate;
		GRANT EXECUTE ON FUNCTION
			pgtenantd.fleet_candidates(text[], bigint, bigint, bigint, bigint),
			pgtenantd.fleet_record(jsonb, jsonb) TO pgtenantd_operate;
	ELSE
		missing := missing || 'pgtenantd_operate'::text;
	END IF;
	IF to_regrole('pgtenantd_admin') IS NULL THEN
		missing := missing || 'pgtenantd_admin'::text;
	END IF;
	RETURN array_to_string(missing, ', ');
END $$;

SELECT pgtenantd.apply_grants();
