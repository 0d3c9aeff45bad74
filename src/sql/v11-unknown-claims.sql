-- pgtenantd schema, version 11: a dispatcher's request whose answer never
-- came back.
--
-- The dispatcher claims jobs with end_and_claim, which commits before its
-- answer is sent. When the connection drops in between (a network fault, a
-- server restart at that instant, a failover), the rows are running and
-- owned by this daemon, but the daemon never learnt of them and never
-- started them. Until this version they waited out their lease (the
-- heartbeat renews only the jobs the daemon knows) and were then rescued
-- with the attempt spent: a job on its last attempt failed without having
-- run.
--
-- After a reconnect the daemon calls release_unknown_claims with the ids
-- it knows of (on a worker, or with an end not yet recorded): every other
-- row it owns was claimed by an answer it never read, so it goes back to
-- the queue with its attempt given back, or is cancelled if a cancel was
-- asked for meanwhile. Its tenant's advisory lock went with the old
-- session. The daemon asks before it claims anything on the new
-- connection, and after it has ended the old session if the server still
-- ran it, so no claim of its own can be among the rows, nor come after.
CREATE FUNCTION pgtenantd.release_unknown_claims(p_owner text,
	p_known bigint[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	UPDATE pgtenantd.jobs j
	   SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'queued' END,
	       attempts = greatest(j.attempts - 1, 0),
	       finished_at = CASE WHEN j.cancel_requested THEN clock_timestamp() END,
	       owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
	 WHERE j.state = 'running' AND j.owner = p_owner
	   AND j.id <> ALL (p_known);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;
COMMENT ON FUNCTION pgtenantd.release_unknown_claims(text, bigint[]) IS
	'after a reconnect: hands back, attempt refunded, the running jobs of this owner other than p_known (claimed by an answer that was lost); returns how many';


-- The same lost answer leaves the daemon unsure whether the job ends it
-- carried were recorded: it sends them again, marked resent, with the
-- attempt each was for. Version 9's end_and_claim called such an end late
-- (the row is no longer running in this daemon's name), so the daemon
-- logged a takeover that never happened, counted it, and ran no hook for
-- an end the row does record. An end sent again is not late when the row
-- already says it: nobody owns it, it is at the same attempt (one less for
-- a hand-back, which gives the attempt back), and in the end's state (or
-- cancelled, for a retry or hand-back of a job whose cancel was asked).
CREATE OR REPLACE FUNCTION pgtenantd.end_and_claim(p_owner text, p_ended jsonb,
	p_limit integer, p_lease interval, p_kinds text[])
RETURNS SETOF pgtenantd.jobs
LANGUAGE plpgsql AS $$
DECLARE
	late pgtenantd.jobs;
	not_mine bigint[];
BEGIN
	IF jsonb_array_length(p_ended) > 0 THEN
		SELECT array_agg(f.id) INTO not_mine
		  FROM pgtenantd.finish_jobs(p_owner, p_ended) f
		 WHERE NOT f.mine;
	END IF;
	IF not_mine IS NOT NULL THEN
		-- a statement of its own, with a snapshot of its own: the row
		-- of an end sent again may have been written by the earlier
		-- request's transaction while finish_jobs waited for its lock
		-- (finish_jobs saw that write; a snapshot taken before the wait
		-- would not)
		FOR late.id IN SELECT e.id
				 FROM jsonb_to_recordset(p_ended) AS e(id bigint,
					state text, attempt integer, refund boolean,
					lost boolean, resent boolean)
				WHERE e.id = ANY (not_mine)
				  -- an end the daemon itself called lost is not
				  -- reported back
				  AND NOT coalesce(e.lost, false)
				  AND NOT (coalesce(e.resent, false)
					   AND EXISTS (
						SELECT FROM pgtenantd.jobs j
						 WHERE j.id = e.id AND j.owner IS NULL
						   AND j.attempts = e.attempt
							- CASE WHEN coalesce(e.refund, false)
							       THEN 1 ELSE 0 END
						   AND (j.state = e.state
							OR (e.state = 'queued'
							    AND j.state = 'cancelled')))) LOOP
			late.state := 'ended_late';
			RETURN NEXT late;
		END LOOP;
	END IF;
	IF p_limit > 0 THEN
		RETURN QUERY SELECT * FROM pgtenantd.claim_jobs(p_owner, p_limit, p_lease, p_kinds);
	END IF;
END $$;

SELECT pgtenantd.pin_search_paths();
