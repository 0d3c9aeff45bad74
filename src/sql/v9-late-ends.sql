-- pgtenantd schema, version 9: the dispatcher learns which job ends came
-- too late to be recorded.
--
-- finish_and_claim only raised a NOTICE for an end this owner no longer
-- held (its lease had expired, say while its host was paused, and another
-- daemon had taken the job over). The daemon took the end as recorded: it
-- ran hook_on_success or hook_on_failure, whose contract is "once the row
-- says so", for an end the row never said.
--
-- end_and_claim does what finish_and_claim does and returns such an end
-- too: as a row with state 'ended_late' and only its id set, before the
-- jobs claimed. finish_and_claim stays as it is, for daemons of version 8
-- that share this database until they are upgraded.
CREATE FUNCTION pgtenantd.end_and_claim(p_owner text, p_ended jsonb,
	p_limit integer, p_lease interval, p_kinds text[])
RETURNS SETOF pgtenantd.jobs
LANGUAGE plpgsql AS $$
DECLARE
	late pgtenantd.jobs;
BEGIN
	IF jsonb_array_length(p_ended) > 0 THEN
		-- an end the daemon itself called lost is not reported back
		FOR late.id IN SELECT f.id
				 FROM pgtenantd.finish_jobs(p_owner, p_ended) f
				WHERE NOT f.mine
				  AND NOT EXISTS (SELECT FROM jsonb_array_elements(p_ended) e
						   WHERE (e->>'id')::bigint = f.id
						     AND coalesce((e->>'lost')::boolean, false)) LOOP
			late.state := 'ended_late';
			RETURN NEXT late;
		END LOOP;
	END IF;
	IF p_limit > 0 THEN
		RETURN QUERY SELECT * FROM pgtenantd.claim_jobs(p_owner, p_limit, p_lease, p_kinds);
	END IF;
END $$;

SELECT pgtenantd.pin_search_paths();
