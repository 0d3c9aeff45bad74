-- pgtenantd-setup.sql - the cluster-wide group roles of pgtenantd, for a DBA
-- to run once as a superuser (or a role with CREATEROLE):
--
--   psql -v ON_ERROR_STOP=1 -d knowledge_graph -f pgtenantd-setup.sql
--
-- The daemon creates these roles itself when its own role may create roles;
-- a daemon run as a dedicated role without CREATEROLE (the recommended way)
-- logs a warning naming this file until they exist. Running it again is
-- harmless. The daemon grants the pgtenantd schema's objects to the roles at
-- every start (pgtenantd.apply_grants()); this script does it too when the
-- schema is already installed in the database it runs in.
--
--   pgtenantd_read     reads every job, job kind, schedule slot and setting
--   pgtenantd_enqueue  enqueues the kinds whose enqueue_role is
--                      pgtenantd_enqueue; sees and cancels only its own jobs
--   pgtenantd_operate  member of pgtenantd_enqueue; may also enqueue the
--                      destructive and migration kinds (drop_tenant, restore,
--                      migrate_to_separate_schema)
--   pgtenantd_admin    member of pgtenantd_operate and pgtenantd_read; sees and
--                      cancels every job
--
-- See README.md, "Roles", for what each may do and for the GRANTs.

DO $$
DECLARE
	r text;
	m text[];
BEGIN
	FOREACH r IN ARRAY ARRAY['pgtenantd_read', 'pgtenantd_enqueue',
				 'pgtenantd_operate', 'pgtenantd_admin'] LOOP
		IF pg_catalog.to_regrole(r) IS NULL THEN
			BEGIN
				EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
				RAISE NOTICE 'created role %', r;
			EXCEPTION WHEN duplicate_object OR unique_violation THEN
				NULL;	-- created meanwhile by a daemon's install
			END;
		END IF;
	END LOOP;
	FOREACH m SLICE 1 IN ARRAY ARRAY[['pgtenantd_enqueue', 'pgtenantd_operate'],
					 ['pgtenantd_operate', 'pgtenantd_admin'],
					 ['pgtenantd_read', 'pgtenantd_admin']] LOOP
		CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_auth_members a
				       WHERE a.roleid = pg_catalog.to_regrole(m[1])
					 AND a.member = pg_catalog.to_regrole(m[2]));
		BEGIN
			EXECUTE pg_catalog.format('GRANT %I TO %I', m[1], m[2]);
		EXCEPTION WHEN duplicate_object OR unique_violation THEN
			NULL;
		END;
	END LOOP;
END $$;

-- If the pgtenantd schema is already installed in this database, grant its
-- objects to the roles now (the daemon does this at every start).
DO $$
BEGIN
	IF pg_catalog.to_regprocedure('pgtenantd.apply_grants()') IS NOT NULL THEN
		PERFORM pgtenantd.apply_grants();
		RAISE NOTICE 'granted the pgtenantd schema''s objects to the group roles';
	END IF;
END $$;

-- The daemon's own login role: not a superuser. Creating it, and what it
-- needs on the application's tables, is in README.md ("Running as a
-- dedicated role"); in short:
--
--   CREATE ROLE pgtenantd LOGIN PASSWORD '...';
--   GRANT CREATE ON DATABASE knowledge_graph TO pgtenantd;  -- its schema
--   -- ... and the privileges on public.* listed in the README.
--
-- Give an application, a person or a tool one of the group roles:
--
--   GRANT pgtenantd_enqueue TO app_tenant_a;   -- enqueue maintenance jobs
--   GRANT pgtenantd_operate TO ops_oncall;     -- also drop, restore, migrate
--   GRANT pgtenantd_read TO grafana;           -- dashboards
--   GRANT pgtenantd_admin TO dba_alice;        -- see and cancel everything
