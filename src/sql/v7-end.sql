-- pgtenantd schema, version 7, last part: search_path pinned on every
-- function, the new ones too (see versions 3 and 5).
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
		  WHERE p.pronamespace = 'pgtenantd'::regnamespace
		    AND p.prokind = 'f'
		    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
				     WHERE d.classid = 'pg_catalog.pg_proc'::regclass
				       AND d.objid = p.oid AND d.deptype = 'e') LOOP
		EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
	END LOOP;
END $$;
