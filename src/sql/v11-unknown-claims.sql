-- pgtenantd schema, version 11: claims whose answer never came back.
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
-- connection, so no claim of its own can be among the rows.
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

SELECT pgtenantd.pin_search_paths();
