-- pgtenantd schema, version 6: history kept bounded. The daemon deletes
-- finished jobs and fired schedule slots past the ages its configuration
-- keeps (keep_succeeded_jobs, keep_failed_jobs, keep_schedule_slots), a
-- batch per call: each call is its own short transaction that locks only
-- the rows it deletes, so claims and enqueues go on meanwhile.

-- Finished jobs by age; the claim and the INSERT checks never read them.
CREATE INDEX jobs_finished_idx ON pgtenantd.jobs (finished_at)
	WHERE state IN ('succeeded', 'failed', 'cancelled');

-- Delete up to p_batch jobs in one of p_states (of succeeded, failed,
-- cancelled) that finished more than p_older_than ago, oldest first;
-- returns how many. A row another session holds is left for next time.
CREATE FUNCTION pgtenantd.prune_jobs(p_states text[], p_older_than interval,
	p_batch integer)
RETURNS integer
LANGUAGE sql AS $$
	WITH gone AS (
		DELETE FROM pgtenantd.jobs j
		 WHERE j.id IN (SELECT o.id FROM pgtenantd.jobs o
				 -- the literal list lets jobs_finished_idx serve
				 WHERE o.state IN ('succeeded', 'failed', 'cancelled')
				   AND o.state = ANY (p_states)
				   AND o.finished_at < clock_timestamp() - p_older_than
				 ORDER BY o.finished_at
				 LIMIT p_batch
				 FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*)::integer FROM gone
$$;

-- Delete up to p_batch fired schedule slots older than p_older_than,
-- oldest first, but never the newest slot of a schedule: it tells a
-- starting daemon which slots were missed. Returns how many.
CREATE FUNCTION pgtenantd.prune_slots(p_older_than interval, p_batch integer)
RETURNS integer
LANGUAGE sql AS $$
	WITH gone AS (
		DELETE FROM pgtenantd.schedule_slots s
		 WHERE (s.schedule, s.slot) IN (
			SELECT o.schedule, o.slot FROM pgtenantd.schedule_slots o
			 WHERE o.fired_at < clock_timestamp() - p_older_than
			   AND o.slot < (SELECT max(n.slot) FROM pgtenantd.schedule_slots n
					  WHERE n.schedule = o.schedule)
			 ORDER BY o.fired_at
			 LIMIT p_batch
			 FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT count(*)::integer FROM gone
$$;

ALTER FUNCTION pgtenantd.prune_jobs(text[], interval, integer)
	SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION pgtenantd.prune_slots(interval, integer)
	SET search_path = pg_catalog, pg_temp;
