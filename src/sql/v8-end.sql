-- pgtenantd schema, version 8, last part: search_path pinned on every
-- function of the schema (see versions 3 and 5), by a function later
-- versions call instead of repeating the loop.
CREATE FUNCTION pgtenantd.pin_search_paths() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	f regprocedure;
	n integer := 0;
BEGIN
	FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
		  WHERE p.pronamespace = 'pgtenantd'::regnamespace
		    AND p.prokind = 'f'
		    -- an extension's functions belong to the extension
		    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
				     WHERE d.classid = 'pg_catalog.pg_proc'::regclass
				       AND d.objid = p.oid AND d.deptype = 'e') LOOP
		EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;
SELECT pgtenantd.pin_search_paths();
REVOKE EXECUTE ON FUNCTION pgtenantd.pin_search_paths() FROM PUBLIC;
