-- pgtenantd schema, version 7, part 3: tenant history and growth (tenant_snapshot).
--
-- Every tenant_snapshot_interval one daemon writes a snapshot of every
-- tenant (layout, rows, bytes) into pgtenantd.tenant_history; the view
-- pgtenantd.tenant_overview (pgtenantctl tenants) puts the newest snapshot
-- next to the growth since the snapshots a day and a week before, the last
-- vacuum and the last job. Rows past keep_tenant_history are pruned in
-- batches (prune.c). pgtenantd.require_database_space() is the free-space
-- check a migration makes first.

CREATE TABLE pgtenantd.tenant_history (
	taken_at timestamptz NOT NULL,	-- one value for a whole snapshot
	tenant_id text NOT NULL,
	schema_name text NOT NULL,
	layout text NOT NULL
		CHECK (layout IN ('shared', 'separate', 'migrating')),
	rows bigint NOT NULL,
	rows_estimated boolean NOT NULL,
	bytes bigint NOT NULL,
	PRIMARY KEY (tenant_id, taken_at)
);
-- the newest snapshot, pruning by age
CREATE INDEX tenant_history_taken_idx ON pgtenantd.tenant_history (taken_at);

COMMENT ON TABLE pgtenantd.tenant_history IS
	'pgtenantd: one row per tenant and snapshot (tenant_snapshot_interval), kept keep_tenant_history';
COMMENT ON COLUMN pgtenantd.tenant_history.layout IS
	'shared: rows only in public.graph_*; separate: its own schema; migrating: both (a migration between flip and delete, or one in progress)';
COMMENT ON COLUMN pgtenantd.tenant_history.rows IS
	'entities plus relations (and the rows of the tenant''s own tables): exact in the shared tables, the planner''s estimate (reltuples, else n_live_tup) in a schema';
COMMENT ON COLUMN pgtenantd.tenant_history.bytes IS
	'shared: each shared table''s pg_total_relation_size times the tenant''s share of its rows; separate: pg_total_relation_size of the schema''s tables (both: indexes and TOAST included)';

-- Take one snapshot of every tenant, unless one was taken less than
-- p_min_gap ago (by this or another daemon: they serialize on an advisory
-- lock). Shared tenants: one pass over each shared table, grouped by
-- tenant_id, exact counts. Tenants with a schema (separate_tenants()):
-- sizes and row estimates from the catalog, no scan of their tables.
-- Returns the number of rows written (0: a recent snapshot exists).
CREATE FUNCTION pgtenantd.snapshot_tenants(p_min_gap interval)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
	shared_ids text[] := '{}';
	shared_rows bigint[] := '{}';
	shared_bytes bigint[] := '{}';
BEGIN
	PERFORM pg_catalog.pg_advisory_xact_lock(1886680148, 7);
	IF EXISTS (SELECT FROM pgtenantd.tenant_history h
		    WHERE h.taken_at > pg_catalog.now() - p_min_gap) THEN
		RETURN 0;
	END IF;
	-- dynamic SQL: the shared tables may not exist
	IF pg_catalog.to_regclass('public.graph_entities') IS NOT NULL
	   AND pg_catalog.to_regclass('public.graph_relations') IS NOT NULL THEN
		-- bytes: each table's size (indexes and TOAST included) by the
		-- tenant's share of its rows, global rows counted too
		EXECUTE $q$
		SELECT coalesce(pg_catalog.array_agg(t.tenant_id), '{}'),
		       coalesce(pg_catalog.array_agg(t.rows), '{}'),
		       coalesce(pg_catalog.array_agg(t.bytes), '{}')
		  FROM (SELECT w.tenant_id, pg_catalog.sum(w.n)::bigint AS rows,
			       pg_catalog.sum(w.bytes)::bigint AS bytes
			  FROM (SELECT u.tenant_id, u.n,
				       pg_catalog.round(u.n * u.table_bytes
					 / pg_catalog.sum(u.n) OVER (PARTITION BY u.tbl)) AS bytes
				  FROM (SELECT 1 AS tbl, e.tenant_id::text AS tenant_id,
				       pg_catalog.count(*)::numeric AS n,
				       pg_catalog.pg_total_relation_size('public.graph_entities')::numeric
					 AS table_bytes
				  FROM public.graph_entities e
				 GROUP BY e.tenant_id
				UNION ALL
				SELECT 2, r.tenant_id::text, pg_catalog.count(*),
				       pg_catalog.pg_total_relation_size('public.graph_relations')
				  FROM public.graph_relations r
				 GROUP BY r.tenant_id) u) w
			 GROUP BY w.tenant_id) t
		 WHERE t.tenant_id <> ''
		$q$ INTO shared_ids, shared_rows, shared_bytes;
	END IF;
	WITH separate AS (
		SELECT s.tenant_id, pgtenantd.tenant_schema(s.tenant_id) AS schema_name
		  FROM pgtenantd.separate_tenants() s(tenant_id)
	), schema_sizes AS (
		SELECT n.nspname AS schema_name,
		       pg_catalog.sum(CASE WHEN c.relkind = 'm' THEN 0
					   WHEN c.reltuples >= 0 THEN c.reltuples::bigint
					   ELSE coalesce(pg_catalog.pg_stat_get_live_tuples(c.oid), 0)
				      END)::bigint AS rows,
		       pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid))::bigint AS bytes
		  FROM pg_catalog.pg_namespace n
		  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
		 WHERE n.nspname IN (SELECT schema_name FROM separate)
		   AND c.relkind IN ('r', 'm')
		 GROUP BY n.nspname
	), tenants AS (
		SELECT coalesce(sep.tenant_id, sh.tenant_id) AS tenant_id,
		       CASE WHEN sep.tenant_id IS NULL THEN 'shared'
			    WHEN sh.tenant_id IS NULL THEN 'separate'
			    ELSE 'migrating' END AS layout,
		       coalesce(sz.rows, 0) + coalesce(sh.rows, 0) AS rows,
		       sep.tenant_id IS NOT NULL AS rows_estimated,
		       coalesce(sz.bytes, 0) + coalesce(sh.bytes, 0) AS bytes
		  FROM separate sep
		  LEFT JOIN schema_sizes sz ON sz.schema_name = sep.schema_name
		  FULL JOIN ROWS FROM (pg_catalog.unnest(shared_ids),
			pg_catalog.unnest(shared_rows), pg_catalog.unnest(shared_bytes))
			AS sh(tenant_id, rows, bytes)
		    ON sh.tenant_id = sep.tenant_id
	)
	INSERT INTO pgtenantd.tenant_history (taken_at, tenant_id, schema_name,
		layout, rows, rows_estimated, bytes)
	SELECT pg_catalog.now(), t.tenant_id, pgtenantd.tenant_schema(t.tenant_id),
	       t.layout, t.rows, t.rows_estimated, t.bytes
	  FROM tenants t;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- Delete up to p_batch history rows older than p_older_than, oldest first,
-- never those of the newest snapshot (what pgtenantctl tenants shows).
-- Returns how many.
CREATE FUNCTION pgtenantd.prune_tenant_history(p_older_than interval,
	p_batch integer)
RETURNS integer
LANGUAGE sql AS $$
	WITH gone AS (
		DELETE FROM pgtenantd.tenant_history h
		 WHERE (h.tenant_id, h.taken_at) IN (
			SELECT o.tenant_id, o.taken_at FROM pgtenantd.tenant_history o
			 WHERE o.taken_at < pg_catalog.clock_timestamp() - p_older_than
			   AND o.taken_at < (SELECT pg_catalog.max(n.taken_at)
					       FROM pgtenantd.tenant_history n)
			 ORDER BY o.taken_at
			 LIMIT p_batch
			 FOR UPDATE SKIP LOCKED)
		RETURNING 1)
	SELECT pg_catalog.count(*)::integer FROM gone
$$;

-- Each tenant of the newest snapshot: its size and rows, growth per day
-- and per week (the difference to the tenant's newest snapshot at least a
-- day or a week older, scaled to a day or a week; NULL while the history
-- is shorter), when every table of it was last vacuumed (the oldest of
-- its tables' last vacuum or autovacuum, from pg_stat, the shared tables'
-- for a shared tenant; NULL if one never was), and its last job. The view
-- reads pgtenantd.jobs with its owner's rights, past row-level security:
-- only pgtenantd_read, which sees every job anyway, may select it.
CREATE VIEW pgtenantd.tenant_overview AS
WITH newest AS (
	SELECT h.*
	  FROM pgtenantd.tenant_history h
	 WHERE h.taken_at = (SELECT pg_catalog.max(n.taken_at)
			       FROM pgtenantd.tenant_history n)
), vacuumed AS (
	-- one pass over the statistics, not one per tenant
	SELECT s.schemaname,
	       CASE WHEN pg_catalog.bool_and(GREATEST(s.last_vacuum,
			s.last_autovacuum) IS NOT NULL)
		    THEN pg_catalog.min(GREATEST(s.last_vacuum,
			s.last_autovacuum)) END AS last_vacuum
	  FROM pg_catalog.pg_stat_all_tables s
	 WHERE s.schemaname IN (SELECT n.schema_name FROM newest n)
	    OR (s.schemaname = 'public'
		AND s.relname IN ('graph_entities', 'graph_relations'))
	 GROUP BY s.schemaname
)
SELECT h.tenant_id, h.schema_name, h.layout, h.rows, h.rows_estimated,
       h.bytes, h.taken_at,
       pg_catalog.round((h.rows - d.rows) * 86400.0 / d.span, 1) AS rows_per_day,
       pg_catalog.round((h.bytes - d.bytes) * 86400.0 / d.span, 1) AS bytes_per_day,
       pg_catalog.round((h.rows - w.rows) * 604800.0 / w.span, 1) AS rows_per_week,
       pg_catalog.round((h.bytes - w.bytes) * 604800.0 / w.span, 1) AS bytes_per_week,
       v.last_vacuum, j.kind AS last_job_kind, j.state AS last_job_state,
       j.at AS last_job_at, j.id AS last_job_id
  FROM newest h
  LEFT JOIN vacuumed v
    ON v.schemaname = CASE WHEN h.layout = 'shared' THEN 'public'
			   ELSE h.schema_name END
  LEFT JOIN LATERAL (
	SELECT o.rows, o.bytes,
	       pg_catalog.date_part('epoch', h.taken_at - o.taken_at)::numeric AS span
	  FROM pgtenantd.tenant_history o
	 WHERE o.tenant_id = h.tenant_id
	   AND o.taken_at <= h.taken_at - interval '1 day'
	 ORDER BY o.taken_at DESC
	 LIMIT 1) d ON true
  LEFT JOIN LATERAL (
	SELECT o.rows, o.bytes,
	       pg_catalog.date_part('epoch', h.taken_at - o.taken_at)::numeric AS span
	  FROM pgtenantd.tenant_history o
	 WHERE o.tenant_id = h.tenant_id
	   AND o.taken_at <= h.taken_at - interval '7 days'
	 ORDER BY o.taken_at DESC
	 LIMIT 1) w ON true
  LEFT JOIN LATERAL (
	-- spelled like jobs_tenant_schema_idx so that the index serves
	SELECT jb.id, jb.kind, jb.state,
	       coalesce(jb.finished_at, jb.started_at, jb.created_at) AS at
	  FROM pgtenantd.jobs jb
	 WHERE ('tenant_' || pg_catalog.lower(pg_catalog.replace(jb.tenant_id, '-', '_')))
		= h.schema_name
	   AND jb.tenant_id = h.tenant_id
	 ORDER BY jb.id DESC
	 LIMIT 1) j ON true;

COMMENT ON VIEW pgtenantd.tenant_overview IS
	'pgtenantd: every tenant of the newest snapshot with growth per day and week (from tenant_history), last vacuum and last job (pgtenantctl tenants)';

-- Refuse a migration when the database would grow past the configured
-- database_max_bytes (pgtenantd.settings; 0 or missing: not checked): the
-- daemon cannot see the server's disk, so the operator states the budget.
-- The estimate is twice the tenant's rows in the shared tables (the copy
-- with its indexes while the shared rows still exist, and the WAL).
CREATE FUNCTION pgtenantd.require_database_space(p_tenant_id text)
RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	budget bigint := pgtenantd.setting_bigint('database_max_bytes', 0);
	used bigint;
	estimate bigint := 0;
BEGIN
	IF budget = 0 THEN
		RETURN NULL;
	END IF;
	IF pg_catalog.to_regclass('public.graph_entities') IS NOT NULL
	   AND pg_catalog.to_regclass('public.graph_relations') IS NOT NULL THEN
		SELECT 2 * ((SELECT coalesce(pg_catalog.sum(pg_catalog.pg_column_size(e.*)), 0)
			       FROM public.graph_entities e WHERE e.tenant_id = p_tenant_id)
			    + (SELECT coalesce(pg_catalog.sum(pg_catalog.pg_column_size(r.*)), 0)
				 FROM public.graph_relations r WHERE r.tenant_id = p_tenant_id))
		  INTO estimate;
	END IF;
	used := pg_catalog.pg_database_size(pg_catalog.current_database());
	IF used + estimate > budget THEN
		RAISE EXCEPTION 'pgtenantd: not enough space to migrate tenant "%": the database uses % bytes, the migration needs an estimated % bytes more, over database_max_bytes % bytes',
			p_tenant_id, used, estimate, budget
		      USING HINT = 'free space or raise database_max_bytes in the daemon''s configuration';
	END IF;
	RETURN estimate;
END $$;

-- What each daemon does at start and reload: write its database_max_bytes
-- to pgtenantd.settings (none when 0) and let pgtenantd_read see the history (the role
-- may be created after the install).
CREATE FUNCTION pgtenantd.tenant_history_setup(p_database_max_bytes bigint)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	-- 0 (not checked) is the key's absence: readers of the settings see
	-- the budget only when there is one
	IF p_database_max_bytes > 0 THEN
		INSERT INTO pgtenantd.settings AS s (key, value)
		VALUES ('database_max_bytes', p_database_max_bytes::text)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
		 WHERE s.value IS DISTINCT FROM EXCLUDED.value;
	ELSE
		DELETE FROM pgtenantd.settings s WHERE s.key = 'database_max_bytes';
	END IF;
	IF pg_catalog.to_regrole('pgtenantd_read') IS NOT NULL THEN
		-- two daemons starting together would update the same ACLs
		PERFORM pg_catalog.pg_advisory_xact_lock(1886680148, 0);
		GRANT SELECT ON pgtenantd.tenant_history, pgtenantd.tenant_overview
			TO pgtenantd_read;
	END IF;
END $$;

-- Only the daemon (the owner) runs these; the history and the overview
-- are for readers (tenant_history_setup grants them).
REVOKE EXECUTE ON FUNCTION pgtenantd.snapshot_tenants(interval),
	pgtenantd.prune_tenant_history(interval, integer),
	pgtenantd.require_database_space(text),
	pgtenantd.tenant_history_setup(bigint) FROM PUBLIC;
