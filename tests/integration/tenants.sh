#!/bin/bash
# tenants.sh - issue 12, tenant history: the daemon's snapshot records
# every tenant's layout, rows and bytes (exact in the shared tables, the
# planner's estimate in a schema) once per tenant_snapshot_interval across
# daemons; pgtenantctl tenants shows growth per day and per week computed
# exactly from the snapshots, the last backup, vacuum and job; the metrics
# give the metrics_max_tenants largest tenants their own series and sum the
# rest; a backup is refused for good when backup_dir has no room for its
# estimate, a migration when the database would outgrow
# database_max_bytes; a snapshot that waits for a lock holds up neither the
# control socket nor claims; keep_tenant_history prunes exactly the rows
# past their age, in batches, never the newest snapshot.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env tenants

# Shared tenants s-small (5 rows) and s-big (70), global rows, a tenant
# with its own schema and an extra table (sep1: 7 + 5 rows), and one with
# rows in both places (mig: 4 in its schema, 2 shared).
sql "CREATE TABLE public.graph_entities (
	id text NOT NULL, tenant_id text NOT NULL DEFAULT '', entity_type text,
	properties jsonb, PRIMARY KEY (id, tenant_id));
CREATE TABLE public.graph_relations (
	id text NOT NULL, tenant_id text NOT NULL DEFAULT '', relation_type text,
	source_id text, target_id text, PRIMARY KEY (id, tenant_id));
INSERT INTO public.graph_entities (id, tenant_id, entity_type, properties)
SELECT 'e' || g, t, 'type', jsonb_build_object('n', g)
  FROM (VALUES ('s-small', 3), ('s-big', 50), ('', 9), ('mig', 2)) v(t, n),
       generate_series(1, v.n) g;
INSERT INTO public.graph_relations (id, tenant_id, relation_type)
SELECT 'r' || g, t, 'rel'
  FROM (VALUES ('s-small', 2), ('s-big', 20), ('', 4)) v(t, n),
       generate_series(1, v.n) g;
CREATE SCHEMA tenant_sep1;
CREATE TABLE tenant_sep1.graph_entities (id text PRIMARY KEY, entity_type text);
INSERT INTO tenant_sep1.graph_entities SELECT 'e' || g, 't' FROM generate_series(1, 7) g;
CREATE TABLE tenant_sep1.notes (id serial PRIMARY KEY, body text);
INSERT INTO tenant_sep1.notes (body) SELECT 'note ' || g FROM generate_series(1, 5) g;
CREATE SCHEMA tenant_mig;
CREATE TABLE tenant_mig.graph_entities (id text PRIMARY KEY);
INSERT INTO tenant_mig.graph_entities SELECT 'e' || g FROM generate_series(1, 4) g;
ANALYZE tenant_sep1.graph_entities, tenant_sep1.notes, tenant_mig.graph_entities" >/dev/null ||
	bail_out "could not create the tenants"

conf=("tenant_snapshot_interval: 1h" "keep_tenant_history: 30d" "metrics_max_tenants: 2")
write_config "$T/a.yaml" "${conf[@]}" "prune_interval: 1h"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# ---- the snapshot
ok "the daemon takes a snapshot soon after it starts" \
	wait_until "SELECT count(*) > 0 FROM pgtenantd.tenant_history"
latest="(SELECT max(taken_at) FROM pgtenantd.tenant_history)"
is "$(sql "SELECT string_agg(tenant_id || ':' || layout || ':' || rows || ':' || rows_estimated, ' '
	    ORDER BY tenant_id) FROM pgtenantd.tenant_history WHERE taken_at = $latest")" \
	"mig:migrating:6:true s-big:shared:70:false s-small:shared:5:false sep1:separate:12:true" \
	"one row per tenant, not the global rows: layout, rows (shared exact, schema estimated, both summed)"
is "$(sql "SELECT bytes = round(3 * pg_total_relation_size('public.graph_entities') / 64.0)
		    + round(2 * pg_total_relation_size('public.graph_relations') / 26.0)
	     FROM pgtenantd.tenant_history WHERE tenant_id = 's-small'")" t \
	"a shared tenant's bytes: each shared table's size by its share of the rows (3 of 64, 2 of 26)"
is "$(sql "SELECT bytes = (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
			    WHERE c.relnamespace = 'tenant_sep1'::regnamespace AND c.relkind = 'r')
	     FROM pgtenantd.tenant_history WHERE tenant_id = 'sep1'")" t \
	"a separate tenant's bytes: its schema's tables with indexes and TOAST, the extra table too"
is "$(sql "SELECT pgtenantd.snapshot_tenants('1 hour')")" 0 \
	"no second snapshot within the interval (another daemon's counts too)"
is "$(sql "SELECT count(DISTINCT taken_at) FROM pgtenantd.tenant_history")" 1 \
	"so the history holds one snapshot"

# ---- who may see it
READER=pgt_th_reader_$$
psql -X -q -d "$DB" -c "CREATE ROLE $READER" || bail_out "could not create role $READER"
at_exit "psql -X -q -d \"\$DB\" -c 'DROP ROLE $READER'"
sql "GRANT pgtenantd_read TO $READER" >/dev/null
is "$(sql "SET ROLE $READER; SELECT count(*) FROM pgtenantd.tenant_overview" 2>&1)" 4 \
	"pgtenantd_read reads the overview"
like "$(sql "SET ROLE $READER; SELECT pgtenantd.snapshot_tenants('1 second')" 2>&1)" \
	"permission denied for function snapshot_tenants" "but may not take snapshots"
like "$(sql "SET ROLE $READER; DELETE FROM pgtenantd.tenant_history" 2>&1)" \
	"permission denied for table tenant_history" "nor change the history"
sql "REVOKE pgtenantd_read FROM $READER" >/dev/null

# ---- metrics: the 2 largest tenants on their own, the rest summed
metrics=$(ctl metrics)
expect_own=$(sql "SELECT string_agg(format('pgtenantd_tenant_bytes{tenant=\"%s\"} %s', tenant_id, bytes), ' '
		    ORDER BY bytes DESC, tenant_id)
		    FROM (SELECT * FROM pgtenantd.tenant_history ORDER BY bytes DESC, tenant_id LIMIT 2) t")
expect_other=$(sql "SELECT sum(bytes) FROM (SELECT bytes FROM pgtenantd.tenant_history
		    ORDER BY bytes DESC, tenant_id OFFSET 2) t")
is "$(grep '^pgtenantd_tenant_bytes{' <<<"$metrics" | tr '\n' ' ')" \
	"$expect_own pgtenantd_tenant_bytes{tenant=\"_other\"} $expect_other " \
	"metrics_max_tenants 2: the two largest have their own series, the other two are summed into _other"
is "$(grep -c '^pgtenantd_tenant_rows{' <<<"$metrics")" 3 "the same for rows"
like "$metrics" 'pgtenantd_tenants\{layout="shared"\} 2' "tenants counted by layout"

# ---- growth from planted snapshots of s-big, relative to the newest one
t0=$(sql "SELECT taken_at FROM pgtenantd.tenant_history WHERE tenant_id = 's-big'")
sql "INSERT INTO pgtenantd.tenant_history (taken_at, tenant_id, schema_name, layout, rows, rows_estimated, bytes)
     SELECT '$t0'::timestamptz - p.age, 's-big', 'tenant_s_big', 'shared', n.rows - p.rows, false, n.bytes - p.bytes
       FROM pgtenantd.tenant_history n,
	    (VALUES (interval '12 hours', 1, 1),     -- too recent for a day
		    (interval '2 days', 100, 10000),   -- the day's baseline
		    (interval '3 days', 999, 99999),   -- older: not the nearest
		    (interval '14 days', 1400, 28000), -- the week's baseline
		    (interval '20 days', 9999, 999999)) p(age, rows, bytes)
      WHERE n.tenant_id = 's-big'" >/dev/null || bail_out "could not plant the history"
out=$(ctl --json tenants)
big="(SELECT t FROM jsonb_array_elements((:'j')::jsonb->'tenants') t WHERE t->>'tenant_id' = 's-big')"
is "$(json_eval "$out" "$big->>'rows_per_day', $big->>'bytes_per_day', $big->>'rows_per_week', $big->>'bytes_per_week'")" \
	"50.0|5000.0|700.0|14000.0" \
	"growth per day from the snapshot 2 days older (100 rows, 10000 bytes, halved), per week from the one 14 days older (halved)"
small="(SELECT t FROM jsonb_array_elements((:'j')::jsonb->'tenants') t WHERE t->>'tenant_id' = 's-small')"
is "$(json_eval "$out" "jsonb_typeof($small->'rows_per_day') || ' ' || jsonb_typeof($small->'bytes_per_week')")" \
	"null null" "no growth without enough history"
is "$(json_eval "$out" "(SELECT string_agg(t->>'tenant_id', ' ') FROM jsonb_array_elements((:'j')::jsonb->'tenants') t)")" \
	"$(sql "SELECT string_agg(tenant_id, ' ' ORDER BY bytes DESC, tenant_id) FROM pgtenantd.tenant_history WHERE taken_at = $latest")" \
	"every tenant of the newest snapshot, largest first"
text=$(ctl tenants)
like "$text" 's-big +shared +[0-9.]+ (B|KiB) +70 +\+4\.9 KiB +\+13\.7 KiB +\+50\.0 +\+700\.0 +- +- +-' \
	"the table shows size, rows and signed growth"
like "$text" 'sep1 +separate +[0-9.]+ KiB +~12 ' "estimated rows are marked"

# ---- last vacuum, backup and job
vac=$(insert_job vacuum sep1)
ok "a vacuum of sep1 succeeds" wait_state "$vac" succeeded 20
bk=$(insert_job backup sep1)
ok "a backup of sep1 succeeds" wait_state "$bk" succeeded 30 || diag_job "$bk"
sep1="(SELECT t FROM jsonb_array_elements((:'j')::jsonb->'tenants') t WHERE t->>'tenant_id' = 'sep1')"
sep1_vacuumed()
{
	[ "$(json_eval "$(ctl --json tenants)" "$sep1->>'last_vacuum' IS NOT NULL")" = t ]
}
ok "sep1's last vacuum shows" wait_cmd 10 sep1_vacuumed
out=$(ctl --json tenants)
is "$(json_eval "$out" "$sep1->>'last_job_kind', $sep1->>'last_job_state', ($sep1->>'last_job_id')::bigint = $bk,
	($sep1->>'last_backup_age_s')::int BETWEEN 0 AND 60, ($sep1->>'last_vacuum_age_s')::int BETWEEN 0 AND 60")" \
	"backup|succeeded|t|t|t" "the last job, the last backup's and the last vacuum's age"
is "$(json_eval "$out" "jsonb_typeof($small->'last_backup_age_s')")" null "no backup: no age"

# ---- free space for a backup: backup_dir must hold the estimate and the reserve
size=$(json_eval "$(ctl --json backups sep1)" "(:'j')::jsonb->'backups'->0->>'size_bytes'")
write_config "$T/a.yaml" "${conf[@]}" "prune_interval: 1h" "backup_min_free_bytes: 9000000000000000000"
ctl reload >/dev/null || bail_out "reload failed"
bk2=$(insert_job backup sep1)
ok "a backup without room fails" wait_state "$bk2" failed 20
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $bk2")" 1 "for good, without retries"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $bk2")" \
	"not enough free space for the backup of tenant 'sep1' in '$T/backups/sep1': [0-9]+ bytes free, it needs an estimated $((size + size / 4)) bytes and backup_min_free_bytes keeps 9000000000000000000 bytes free" \
	"the error names the path, the free bytes, the estimate (the last backup and a quarter) and the reserve"
like "$(ctl backups sep1)" "failed .*not enough free space" "pgtenantctl backups shows the refusal"
is "$(find "$T/backups/sep1" -name '*.dump' | wc -l)" 1 "no file was written"

# ---- free space for a migration: the database must stay within database_max_bytes
write_config "$T/a.yaml" "${conf[@]}" "prune_interval: 1h" "database_max_bytes: 1000000"
ctl reload >/dev/null || bail_out "reload failed"
ok "the budget reaches pgtenantd.settings" \
	wait_until "SELECT value = '1000000' FROM pgtenantd.settings WHERE key = 'database_max_bytes'"
mg=$(insert_job migrate_to_separate_schema s-small)
ok "a migration over the budget fails" wait_state "$mg" failed 20
is "$(sql "SELECT attempts || ' ' || step_index FROM pgtenantd.jobs WHERE id = $mg")" "1 0" \
	"for good, at the first step"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $mg")" \
	'step "preflight".*not enough space to migrate tenant "s-small": the database uses [0-9]+ bytes, the migration needs an estimated [0-9]+ bytes more, over database_max_bytes 1000000 bytes' \
	"the error names the tenant, the size, the estimate and the budget"
is "$(sql "SELECT to_regnamespace('tenant_s_small') IS NULL
	       AND NOT EXISTS (SELECT FROM pgtenantd.migrations WHERE job_id = $mg)
	       AND (SELECT count(*) FROM public.graph_entities WHERE tenant_id = 's-small') = 3")" t \
	"nothing was changed: no schema, no migration recorded, the shared rows in place"

# ---- a snapshot that waits holds up neither the control socket nor the queue
# (held until cancelled below, 60 s at most)
psql -X -q -d "$DB" -c "BEGIN; LOCK TABLE pgtenantd.tenant_history IN ACCESS EXCLUSIVE MODE;
	SELECT pg_sleep(60) /* tenants.sh locker */; COMMIT" >/dev/null 2>&1 &
locker=$!
wait_until "SELECT EXISTS (SELECT FROM pg_locks WHERE relation = 'pgtenantd.tenant_history'::regclass
	    AND mode = 'AccessExclusiveLock' AND granted)" || bail_out "could not lock the history"
write_config "$T/a.yaml" "${conf[@]/tenant_snapshot_interval: 1h/tenant_snapshot_interval: 1s}" "prune_interval: 1h"
ctl reload >/dev/null || bail_out "reload failed"
ok "the next snapshot waits for the lock, on its own connection" \
	wait_until "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
		    AND application_name = 'pgtenantd snapshot' AND wait_event_type = 'Lock')"
t_start=$(now_ms)
ctl_answers
is "$? $(( $(now_ms) - t_start < 3000 ))" "0 1" "meanwhile the control socket answers at once"
nj=$(insert_job noop sep1)
ok "and a job is claimed and runs" wait_state "$nj" succeeded 10
ok "all while the snapshot still waits" sql_true "SELECT EXISTS (SELECT FROM pg_stat_activity
	WHERE datname = current_database() AND application_name = 'pgtenantd snapshot' AND wait_event_type = 'Lock')"
sql "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND query LIKE '%tenants.sh locker%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker"
write_config "$T/a.yaml" "${conf[@]}" "prune_interval: 1h"
ctl reload >/dev/null || bail_out "reload failed"

# ---- retention: exactly the rows past keep_tenant_history, in batches
sql "INSERT INTO pgtenantd.tenant_history (taken_at, tenant_id, schema_name, layout, rows, rows_estimated, bytes)
     SELECT now() - d * interval '1 day', 's-small', 'tenant_s_small', 'shared', 1, false, 1
       FROM unnest('{29, 31, 40, 45}'::int[]) d" >/dev/null || bail_out "could not plant old history"
before=$(sql "SELECT count(*) FROM pgtenantd.tenant_history")
is "$(sql "SELECT pgtenantd.prune_tenant_history('30 days', 2)")" 2 "a batch of 2"
is "$(sql "SELECT pgtenantd.prune_tenant_history('30 days', 2)")" 1 "then the last one"
is "$(sql "SELECT pgtenantd.prune_tenant_history('30 days', 2)")" 0 "then none"
is "$(sql "SELECT count(*) FROM pgtenantd.tenant_history")" $((before - 3)) \
	"exactly the three rows over 30 days old are gone (s-big's 20-day-old row and s-small's 29-day-old one stay)"
is "$(sql "SELECT count(*) FROM pgtenantd.tenant_history WHERE taken_at < now() - interval '30 days'")" 0 \
	"none older is left"

# the daemon prunes by itself, every prune_interval
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"
sql "INSERT INTO pgtenantd.tenant_history (taken_at, tenant_id, schema_name, layout, rows, rows_estimated, bytes)
     SELECT now() - d * interval '1 day', 's-small', 'tenant_s_small', 'shared', 1, false, 1
       FROM unnest('{31, 50}'::int[]) d" >/dev/null || bail_out "could not plant old history"
write_config "$T/b.yaml" "${conf[@]}" "prune_interval: 1s"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "pgtenantd did not restart"
ok "the daemon prunes the old history rows" \
	wait_until "SELECT count(*) = 0 FROM pgtenantd.tenant_history WHERE taken_at < now() - interval '30 days'"
logged() { grep -q "pruned history: .*, 2 tenant history row(s)" "$T/b.log"; }
ok "and logs how many" wait_cmd 5 logged
is "$(sql "SELECT count(*) FROM pgtenantd.tenant_history")" $((before - 3)) "and nothing else"
is "$(sql "SELECT pgtenantd.prune_tenant_history('0 seconds', 1000) > 0")" t "with no age kept"
is "$(sql "SELECT count(*) FROM pgtenantd.tenant_history")" 4 \
	"the newest snapshot stays all the same"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"
done_testing
