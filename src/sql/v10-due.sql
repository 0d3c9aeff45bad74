-- pgtenantd schema, version 10: when to look for a job again.
--
-- After a claim that found fewer jobs than it asked for, the daemon asked
-- next_due_in() how long until the next queued job is due and set a timer
-- for it. next_due_in answers 0 for a job that is due already, and the
-- daemon could not tell the two kinds of such a job apart:
--   - one that became due after the claim looked (a retry whose delay ran
--     out meanwhile): it should be claimed now;
--   - one the claim saw and could not take, because its tenant is running
--     another job: claiming again at once would spin.
-- It set no timer for either, so the first kind waited for a NOTIFY, a job
-- end or the poll; and while any job of the second kind was queued, every
-- job due later (a retry, an INSERT with a run_at ahead) waited too.
--
-- next_claimable_in(p_kinds) answers for the jobs a claim could take: of
-- the daemon's kinds, of a tenant that runs no job:
--   due_now:    one is due already;
--   newest_due: the latest run_at among those due (epoch seconds): the
--               daemon claims again at once only for a job that fell due
--               since it last asked (one the claim just missed); one it
--               has seen due before is held back by something this
--               function cannot see (a row lock, its tenant's lock held by
--               another session), and the daemon looks again ever later;
--   next_in:    seconds until the next one falls due, NULL if none is
--               waiting, so that a job held back does not hide one due
--               later.
--
-- It is plpgsql, as claim_jobs is, so that its plan is made once per
-- session: a SQL function that is not inlined (a pinned search_path keeps
-- every function of the schema from being inlined) plans its body on every
-- call, 0.3 ms of the dispatcher's time here, twice per job when the queue
-- is short.
CREATE FUNCTION pgtenantd.next_claimable_in(p_kinds text[],
	OUT due_now boolean, OUT newest_due double precision,
	OUT next_in double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	checked_at timestamptz := clock_timestamp();
BEGIN
	-- 'tenant_' || ...: as in claim_jobs, to use jobs_running_schema_idx
	SELECT coalesce(bool_or(j.run_at <= checked_at), false),
	       extract(epoch FROM max(j.run_at) FILTER (WHERE j.run_at <= checked_at))::double precision,
	       extract(epoch FROM min(j.run_at) FILTER (WHERE j.run_at > checked_at) - checked_at)::double precision
	  INTO due_now, newest_due, next_in
	  FROM pgtenantd.jobs j
	 WHERE j.state = 'queued' AND j.kind = ANY (p_kinds)
	   AND NOT EXISTS (SELECT FROM pgtenantd.jobs o
			    WHERE 'tenant_' || lower(replace(o.tenant_id, '-', '_'))
				  = 'tenant_' || lower(replace(j.tenant_id, '-', '_'))
			      AND o.state = 'running');
END $$;
COMMENT ON FUNCTION pgtenantd.next_claimable_in(text[]) IS
	'of the queued jobs of these kinds that a claim could take: whether one is due now, the latest run_at of those due, and the seconds until the next one falls due (NULL: none)';

SELECT pgtenantd.pin_search_paths();
