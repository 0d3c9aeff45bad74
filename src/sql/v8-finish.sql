-- pgtenantd schema, version 8: job ends recorded in one statement.
--
-- Version 3's finish_jobs ran two or three statements per ended job in a
-- plpgsql loop (0.13 ms of server time per job, about a fifth of a no-op
-- job's). Now one UPDATE records the whole batch and releases its tenant
-- locks; what it records is unchanged.

-- p_jobs: [{id, state, result?, error?, retry_ms?, refund?, unlock?,
-- lost?, progress?, step_index?}, ...] (queue.c); progress and step_index
-- come with a job that succeeded after a last step outside a transaction,
-- whose progress the daemon did not write by itself. A job asked to cancel while it ran is cancelled
-- instead of queued again (for a retry or a hand-back); a lost job's row is
-- not touched. Returns each id and whether this owner still held it; the
-- tenant lock is released for every entry with unlock, whoever held the row.
CREATE OR REPLACE FUNCTION pgtenantd.finish_jobs(p_owner text, p_jobs jsonb)
RETURNS TABLE (id bigint, mine boolean)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	RETURN QUERY
	WITH ended AS (
		SELECT e.id, e.state, e.result, e.error, e.progress, e.step_index,
		       coalesce(e.retry_ms, 0) AS retry_ms,
		       coalesce(e.refund, false) AS refund,
		       coalesce(e.unlock, false) AS unlock,
		       coalesce(e.lost, false) AS lost
		  FROM jsonb_to_recordset(p_jobs) AS e(id bigint, state text,
			result jsonb, error text, retry_ms double precision,
			refund boolean, unlock boolean, lost boolean,
			progress jsonb, step_index integer)),
	recorded AS (
		UPDATE pgtenantd.jobs j
		   SET state = CASE WHEN e.state = 'queued' AND j.cancel_requested
				    THEN 'cancelled' ELSE e.state END,
		       result = coalesce(e.result, j.result),
		       -- past the last step: no step name (as save_progress)
		       step = CASE WHEN e.step_index IS NULL THEN j.step END,
		       step_index = coalesce(e.step_index, j.step_index),
		       progress = coalesce(e.progress, j.progress),
		       last_error = CASE WHEN e.state = 'succeeded' THEN NULL
					 ELSE coalesce(e.error, j.last_error) END,
		       finished_at = CASE WHEN e.state = 'queued' AND NOT j.cancel_requested
					  THEN NULL ELSE clock_timestamp() END,
		       run_at = CASE WHEN e.state = 'queued' AND NOT j.cancel_requested
				     THEN clock_timestamp() + make_interval(secs => e.retry_ms / 1000)
				     ELSE j.run_at END,
		       attempts = j.attempts - CASE WHEN e.refund THEN 1 ELSE 0 END,
		       owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
		  FROM ended e
		 WHERE j.id = e.id AND NOT e.lost
		   AND j.owner = p_owner AND j.state = 'running'
		RETURNING j.id, j.tenant_id)
	-- the unlock column is not returned, but PostgreSQL never leaves out
	-- a volatile function's call from a subquery's output
	SELECT u.id, u.mine
	  FROM (SELECT e.id, r.id IS NOT NULL AS mine,
		       -- pgtenantd.tenant_schema(), spelled out (a call costs
		       -- more than the rest)
		       CASE WHEN e.unlock AND t.tenant_id IS NOT NULL
			    THEN pg_advisory_unlock(1886680148,
				hashtext('tenant_' || lower(replace(t.tenant_id, '-', '_'))))
		       END AS unlocked
		  FROM ended e
		  LEFT JOIN recorded r ON r.id = e.id
		  CROSS JOIN LATERAL (SELECT coalesce(r.tenant_id,
					(SELECT o.tenant_id FROM pgtenantd.jobs o
					  WHERE o.id = e.id)) AS tenant_id) t) u;
END $$;

-- The dispatcher's one request, as in version 1: record the jobs that ended
-- and claim up to p_limit new ones. An end this owner no longer held (its
-- lease expired and another daemon took the job) is noted, unless the
-- daemon already said it was lost.
CREATE OR REPLACE FUNCTION pgtenantd.finish_and_claim(p_owner text, p_ended jsonb,
	p_limit integer, p_lease interval, p_kinds text[])
RETURNS SETOF pgtenantd.jobs
LANGUAGE plpgsql AS $$
DECLARE
	late bigint;
BEGIN
	IF jsonb_array_length(p_ended) > 0 THEN
		FOR late IN SELECT f.id
			      FROM pgtenantd.finish_jobs(p_owner, p_ended) f
			     WHERE NOT f.mine
			       AND NOT EXISTS (SELECT FROM jsonb_array_elements(p_ended) e
						WHERE (e->>'id')::bigint = f.id
						  AND coalesce((e->>'lost')::boolean, false)) LOOP
			RAISE NOTICE 'pgtenantd: job % was no longer owned by % when it ended',
				late, p_owner;
		END LOOP;
	END IF;
	IF p_limit > 0 THEN
		RETURN QUERY SELECT * FROM pgtenantd.claim_jobs(p_owner, p_limit, p_lease, p_kinds);
	END IF;
END $$;
