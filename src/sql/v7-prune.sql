-- pgtenantd schema, version 7: pruning finished jobs in time linear in
-- their number. Version 6's prune_jobs starts each batch at the oldest
-- entry of the finished jobs' index, so it walks past the entries of every
-- row the batches before it deleted (they stay in the index until a
-- vacuum) and past the rows kept longer (failed jobs while succeeded ones
-- are pruned): a backlog of a million rows took 2,000 statements, each
-- slower than the last (264 s). prune_jobs_from starts each batch where
-- the one before ended, a (finished_at, id) position, so that jobs that
-- finished at the same time (a batch of ends is recorded in one
-- transaction) are neither skipped nor walked again.
CREATE INDEX jobs_finished_id_idx ON pgtenantd.jobs (finished_at, id)
	WHERE state IN ('succeeded', 'failed', 'cancelled');
DROP INDEX pgtenantd.jobs_finished_idx;

-- Delete up to p_batch jobs in one of p_states (of succeeded, failed,
-- cancelled) that finished more than p_older_than ago, after the position
-- (p_after_at, p_after_id), in that order. Returns how many, and the
-- position of the last deleted (NULL if none): where the next batch
-- starts. A row another session holds is left for the next round.
CREATE FUNCTION pgtenantd.prune_jobs_from(p_states text[],
	p_older_than interval, p_batch integer, p_after_at timestamptz,
	p_after_id bigint, OUT deleted integer, OUT reached_at timestamptz,
	OUT reached_id bigint)
LANGUAGE sql AS $$
	WITH gone AS (
		DELETE FROM pgtenantd.jobs j
		 WHERE j.id IN (SELECT o.id FROM pgtenantd.jobs o
				 -- the literal list lets jobs_finished_id_idx serve
				 WHERE o.state IN ('succeeded', 'failed', 'cancelled')
				   AND o.state = ANY (p_states)
				   AND (o.finished_at, o.id) > (p_after_at, p_after_id)
				   AND o.finished_at < clock_timestamp() - p_older_than
				 ORDER BY o.finished_at, o.id
				 LIMIT p_batch
				 FOR UPDATE SKIP LOCKED)
		RETURNING j.finished_at, j.id)
	SELECT (SELECT count(*)::integer FROM gone), l.finished_at, l.id
	  FROM (SELECT) one
	  LEFT JOIN LATERAL (SELECT g.finished_at, g.id FROM gone g
			      ORDER BY g.finished_at DESC, g.id DESC
			      LIMIT 1) l ON true
$$;
REVOKE EXECUTE ON FUNCTION pgtenantd.prune_jobs_from(text[], interval,
	integer, timestamptz, bigint) FROM PUBLIC;
