-- pgtenantd schema, version 8: an enqueue that costs less, above all on a
-- fresh connection and in the first INSERT of many rows of a session.
--
-- Measured (scripts/bench-queue --peer and the README): the wake-up came
-- from contrib's tcn trigger, whose library a fresh backend loads (about
-- 1.5 ms here), with a payload naming each row, so an INSERT of 5,000 rows
-- sent 5,000 notifications; and job_insert_is_plain opened five index scans
-- per row, whose memory (each btree scan takes about 27 kB) went back to
-- the operating system after every row until malloc's trim threshold grew:
-- the first INSERT of 5,000 rows in a session took 1.1-1.6 s, the next one
-- 0.2 s.

-- ------------------------------------------------------------ the wake-up
-- The NOTIFY is sent by the WHEN of jobs_notify_queued with the built-in
-- pg_notify: nothing to load, and PostgreSQL folds equal notifications of
-- one transaction into one, so the daemon wakes once per INSERT statement
-- however many rows it has. pg_notify returns void, which is not NULL: the
-- WHEN is false and the trigger's function is never called.
CREATE FUNCTION pgtenantd.jobs_wake_unused() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END $$;
COMMENT ON FUNCTION pgtenantd.jobs_wake_unused() IS
	'never called: jobs_notify_queued sends its NOTIFY from its WHEN';

DROP TRIGGER IF EXISTS jobs_notify_queued ON pgtenantd.jobs;
CREATE TRIGGER jobs_notify_queued AFTER INSERT ON pgtenantd.jobs FOR EACH ROW
	WHEN (pg_catalog.pg_notify('pgtenantd', '') IS NULL)
	EXECUTE FUNCTION pgtenantd.jobs_wake_unused();

-- tcn is no longer used; version 5 created it in this schema where it could
-- (a DBA's other uses of it would live elsewhere: then it stays).
DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension e
		    WHERE e.extname = 'tcn'
		      AND e.extnamespace = 'pgtenantd'::regnamespace) THEN
		BEGIN
			DROP EXTENSION tcn;
		EXCEPTION WHEN OTHERS THEN
			RAISE NOTICE 'pgtenantd: contrib extension tcn stays in schema pgtenantd (%)', SQLERRM;
		END;
	END IF;
	DROP FUNCTION IF EXISTS pgtenantd.jobs_notify_queued();
END $$;

-- --------------------------------------------------- the plain-row test
-- As in version 5, with fewer index scans per row:
--   * the role is trusted when it is a member of this function's owner, the
--     role that installed the schema and owns pgtenantd.jobs (version 5
--     read the table's owner from pg_class on every row);
--   * public.tenant_metadata's columns are looked at only when the table
--     exists (to_regclass reads the catalog cache, not pg_attribute);
--   * the max_args_bytes setting is read only for args over 256 bytes, the
--     lowest limit the daemon accepts (as claim_jobs does).
-- What it proves is unchanged: true only when jobs_validate would accept
-- the row as it is.
CREATE OR REPLACE FUNCTION pgtenantd.job_insert_is_plain(p_id bigint, p_kind text,
	p_tenant_id text, p_args jsonb, p_role text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER AS $$
	SELECT coalesce(
	       CASE WHEN s.is_called AND s.last_value = p_id
		    -- only when some session drew this id is currval asked
		    -- (it raises if this session drew none)
		    THEN p_id = currval('pgtenantd.jobs_id_seq'::regclass)
		    ELSE false END
	   AND EXISTS (
		SELECT FROM pgtenantd.job_kinds k
		 WHERE k.kind = p_kind
		   AND p_args ?& k.required_args
		   AND p_args - k.arg_names = '{}'
		   AND (o.trusted OR pg_has_role(p_role, to_regrole(k.enqueue_role), 'MEMBER')))
	   AND (o.trusted
		OR octet_length(p_args::text) <= 256
		OR octet_length(p_args::text) <= coalesce(
			(SELECT CASE WHEN st.value ~ '^[0-9]{1,18}$' THEN st.value::bigint END
			   FROM pgtenantd.settings st WHERE st.key = 'max_args_bytes'),
			65536))
	   -- twins: the first row on each side of p_tenant_id in
	   -- jobs_tenant_schema_idx (see version 5)
	   AND (SELECT t.tenant_id FROM pgtenantd.jobs t
		 WHERE 'tenant_' || lower(replace(t.tenant_id, '-', '_'))
		       = 'tenant_' || lower(replace(p_tenant_id COLLATE "default", '-', '_'))
		   AND t.tenant_id < p_tenant_id COLLATE "default"
		 ORDER BY 'tenant_' || lower(replace(t.tenant_id, '-', '_')), t.tenant_id
		 LIMIT 1) IS NULL
	   AND (SELECT t.tenant_id FROM pgtenantd.jobs t
		 WHERE 'tenant_' || lower(replace(t.tenant_id, '-', '_'))
		       = 'tenant_' || lower(replace(p_tenant_id COLLATE "default", '-', '_'))
		   AND t.tenant_id > p_tenant_id COLLATE "default"
		 ORDER BY 'tenant_' || lower(replace(t.tenant_id, '-', '_')), t.tenant_id
		 LIMIT 1) IS NULL
	   AND CASE WHEN to_regclass('public.tenant_metadata') IS NULL THEN true
		    WHEN NOT EXISTS (SELECT FROM pg_attribute a
				      WHERE a.attrelid = to_regclass('public.tenant_metadata')
					AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		    THEN true
		    ELSE pgtenantd.tenant_metadata_has(p_tenant_id) END,
	       false)
	  FROM pgtenantd.jobs_id_seq s,
	       -- current_user: this SECURITY DEFINER function's owner
	       LATERAL (SELECT pg_has_role(p_role, current_user, 'MEMBER') AS trusted) o
$$;
