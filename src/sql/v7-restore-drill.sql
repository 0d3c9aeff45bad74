-- pgtenantd schema, version 7, part 4: restore drills (restore_drill).
--
-- table_digests(schema): every table of the schema with its row count and
-- a hash of all its rows, as jsonb {"<table>": {"rows": N, "hash": "<md5>"}}.
-- The backup step takes it in the snapshot pg_dump dumps (REPEATABLE READ,
-- pg_export_snapshot, pg_dump --snapshot) and records it in the backup
-- catalog; a restore drill takes it again of the restored copy and compares.
-- So it must give the same answer for the same rows in any session: a
-- row's hash is the md5 of its text form under pinned output settings
-- (dates, intervals, time zone, floats, bytea, money), and a table's hash
-- combines the rows' hashes with a sum and an xor, which do not depend on
-- the order of the rows (no sort; a table needs no primary key). Each row
-- is read once: the cost of a digest is one sequential scan of the schema.
-- The row hash is hashtextextended, 64 bits: the function hash partitioning
-- routes rows with, so PostgreSQL keeps it stable across versions (or
-- pg_upgrade would misplace rows). md5 of the row, taken first, made a
-- digest cost twice as much (400,000 entities: 732 ms against 332 ms, and
-- the COPY pg_dump does of them 316 ms): the text form is not the cost.
-- Leaf tables only (relkind r: partitions, not their parents), without
-- members of extensions (pg_dump does not dump their rows). row_security
-- off: a policy would run the tenant's code with the caller's rights, so a
-- table that a policy would filter is an error here, as in pg_dump.
-- Invoker's rights: it reads only what its caller may read.
CREATE FUNCTION pgtenantd.table_digests(p_schema text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET row_security = off
SET "DateStyle" = 'ISO, YMD'
SET "IntervalStyle" = 'postgres'
SET "TimeZone" = 'UTC'
SET extra_float_digits = 1
SET bytea_output = 'hex'
SET lc_monetary = 'C'
AS $$
DECLARE
	t record;
	d record;
	digests jsonb := '{}';
BEGIN
	FOR t IN SELECT c.relname
		   FROM pg_catalog.pg_class c
		   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		  WHERE n.nspname = p_schema AND c.relkind = 'r'
		    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e
				     WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
				       AND e.objid = c.oid AND e.deptype = 'e')
		  ORDER BY c.relname LOOP
		EXECUTE pg_catalog.format(
			'SELECT pg_catalog.count(*) AS n, '
			'       coalesce(pg_catalog.sum(h), 0) AS s, coalesce(pg_catalog.bit_xor(h), 0) AS x '
			'  FROM (SELECT pg_catalog.hashtextextended(r::text, 0) AS h '
			'          FROM %I.%I r) z',
			p_schema, t.relname) INTO d;
		digests := digests || pg_catalog.jsonb_build_object(t.relname,
			pg_catalog.jsonb_build_object('rows', d.n,
				'hash', pg_catalog.md5(d.s::text || '/' || d.x::text)));
	END LOOP;
	RETURN digests;
END $$;

-- The daemon's own: nobody else needs it.
REVOKE EXECUTE ON FUNCTION pgtenantd.table_digests(text) FROM PUBLIC;
