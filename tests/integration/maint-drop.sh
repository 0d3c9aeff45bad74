#!/bin/bash
# maint-drop.sh - drop_tenant and the inactive-tenant cleanup: when pg_dump
# fails, or exits 0 but leaves a file pg_restore cannot read, the job fails
# and the schema survives; dry_run reports and drops nothing; a real drop
# leaves a verified backup, drops the schema and marks the tenant archived;
# a schedule with tenants: inactive drops exactly the tenants whose
# last_active_at is older than inactive_days, once.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env maint-drop

# pg_dump on the daemon's PATH: real, failing, or writing garbage with
# exit status 0, as $T/pg_dump.mode says.
real_pg_dump=$(command -v pg_dump) || bail_out "no pg_dump"
mkdir -p "$T/bin"
cat >"$T/bin/pg_dump" <<EOF
#!/bin/sh
mode=\$(cat "$T/pg_dump.mode" 2>/dev/null)
case \$mode in
fail)
	echo "pg_dump: error: simulated failure" >&2
	exit 1;;
corrupt)
	for a; do case \$a in --file=*) f=\${a#--file=};; esac; done
	head -c 20000 /dev/urandom >"\$f"
	exit 0;;
esac
exec "$real_pg_dump" "\$@"
EOF
chmod +x "$T/bin/pg_dump"

# Tenants: old-1 and old-2 inactive for 100 days, fresh active today, and
# their schemas with an extra table each.
sql "CREATE TABLE public.tenant_metadata (
	tenant_id text PRIMARY KEY,
	isolation_mode text NOT NULL DEFAULT 'shared_schema',
	last_active_at timestamptz,
	archived_at timestamptz);
INSERT INTO public.tenant_metadata VALUES
	('old-1', 'separate_schema', now() - interval '100 days', NULL),
	('old-2', 'separate_schema', now() - interval '100 days', NULL),
	('fresh', 'separate_schema', now(), NULL);" || bail_out "no tenant_metadata"
for s in old_1 old_2 fresh; do
	sql "CREATE SCHEMA tenant_$s;
	CREATE TABLE tenant_$s.graph_entities (id text PRIMARY KEY, entity_type text);
	CREATE TABLE tenant_$s.graph_relations (id text PRIMARY KEY, source_id text, target_id text);
	CREATE TABLE tenant_$s.extra (n int);
	INSERT INTO tenant_$s.graph_entities SELECT 'e' || g, 't' FROM generate_series(1, 200) g;
	INSERT INTO tenant_$s.extra SELECT generate_series(1, 50)" || bail_out "no tenant_$s"
done

write_config "$T/a.yaml"
PATH="$T/bin:$PATH" start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

schema_rows()
{
	sql "SELECT count(*) FROM tenant_$1.graph_entities" 2>/dev/null || echo gone
}

# --- pg_dump fails: no drop.
echo fail >"$T/pg_dump.mode"
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts) VALUES ('drop_tenant', 'old-1', 2) RETURNING id")
ok "drop_tenant fails when pg_dump fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "step \"backup\".*pg_dump exited with status 1.*simulated failure" \
	"its error is pg_dump's"
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 2 "after both attempts"
is "$(schema_rows old_1)" 200 "the schema survives with its rows"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE id = $id AND progress->'passed' ? 'drop'")" 0 \
	"the drop step never ran"
is "$(ls -A "$T/backups/old-1" 2>/dev/null | wc -l)" 0 "no dump file is left"

# --- pg_dump exits 0 but leaves a file pg_restore cannot read: no drop.
echo corrupt >"$T/pg_dump.mode"
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts) VALUES ('drop_tenant', 'old-1', 2) RETURNING id")
ok "drop_tenant fails when the dump does not read back" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "not readable.*pg_restore --list" \
	"its error says pg_restore --list could not read the dump"
is "$(schema_rows old_1)" 200 "the schema survives with its rows"
is "$(ls -A "$T/backups/old-1" 2>/dev/null | wc -l)" 0 "the unreadable file was removed"
out=$(ctl --json backups old-1)
is "$(json_eval "$out" "(SELECT string_agg(DISTINCT b->>'status', ',') FROM jsonb_array_elements((:'j')::jsonb->'backups') b)")" \
	failed "the catalog records only failed backups of old-1"
is "$(sql "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = 'old-1'")" separate_schema \
	"the tenant is not marked archived"

# --- dry run: report, drop nothing.
rm -f "$T/pg_dump.mode"
id=$(insert_job drop_tenant old-1 '{"dry_run": "true"}')
ok "a dry run succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
result=$(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")
diag "dry run: $result"
is "$(json_eval "$result" "(:'j')::jsonb->>'schema'")" tenant_old_1 "it names the schema it would drop"
is "$(json_eval "$result" "(:'j')::jsonb->>'tables'")" 3 "with its tables"
ok "and their size" [ "$(json_eval "$result" "(:'j')::jsonb->>'size_bytes'")" -gt 0 ]
is "$(json_eval "$result" "(:'j')::jsonb->>'dropped'")" false "and says it dropped nothing"
is "$(schema_rows old_1)" 200 "the schema is still there"
is "$(ls -A "$T/backups/old-1" 2>/dev/null | wc -l)" 0 "no backup was made"

# --- a real drop.
id=$(insert_job drop_tenant old-1)
ok "drop_tenant succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
result=$(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")
diag "drop: $result"
is "$(schema_rows old_1)" gone "the schema is dropped"
file=$(json_eval "$result" "(:'j')::jsonb->'backup'->>'file'")
ok "after a backup that pg_restore --list reads" eval 'pg_restore --list "$file" | grep -q " SCHEMA - tenant_old_1 "'
is "$(json_eval "$result" "(:'j')::jsonb->>'dropped'")" true "the result says dropped"
is "$(sql "SELECT isolation_mode || ',' || (archived_at IS NOT NULL) FROM public.tenant_metadata WHERE tenant_id = 'old-1'")" \
	"archived,true" "the tenant is marked archived in tenant_metadata"
is "$(sql "SELECT progress->'passed' FROM pgtenantd.jobs WHERE id = $id")" \
	'["plan", "backup", "drop", "archive", "report"]' "every step ran, the backup before the drop"

# --- the inactive-tenant cleanup schedule (fake clock: 5 minutes a second).
ok "daemon stops for the schedule" stop_daemon "$DAEMON_PID"
write_config "$T/b.yaml" "schedules:
  - name: cleanup
    cron: \"*/5 * * * *\"
    job: drop_tenant
    tenants: inactive
    args:
      inactive_days: 90"
PGTENANTD_FAKE_CLOCK="$(date +%s) 300" PATH="$T/bin:$PATH" start_daemon "$T/b.yaml" "$T/b.log" ||
	bail_out "pgtenantd did not start with the schedule"
ok "the schedule drops the other inactive tenant" \
	wait_until "SELECT count(*) = 1 FROM pgtenantd.jobs WHERE kind = 'drop_tenant' AND tenant_id = 'old-2' AND state = 'succeeded'" 20
sleep 3	# a few more slots
is "$(schema_rows old_2)" gone "old-2's schema is dropped"
is "$(schema_rows fresh)" 200 "the active tenant's schema is untouched"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE kind = 'drop_tenant' AND tenant_id = 'fresh'")" 0 \
	"no job was made for the active tenant"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE kind = 'drop_tenant' AND tenant_id = 'old-2'")" 1 \
	"old-2 got one job, not one per slot"
is "$(sql "SELECT args->>'inactive_days' FROM pgtenantd.jobs WHERE tenant_id = 'old-2'")" 90 \
	"with the schedule's inactive_days, which the job checks again"
ok "later slots fired with nothing to drop" \
	sql_true "SELECT count(*) >= 2 AND min(jobs) = 0 FROM pgtenantd.schedule_slots WHERE schedule = 'cleanup'"
is "$(sql "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = 'old-2'")" archived \
	"old-2 is marked archived"

# A tenant that became active again between the schedule and the job: the
# job checks inactive_days once more and drops nothing.
sql "CREATE SCHEMA tenant_again; CREATE TABLE tenant_again.graph_entities (id text);
     INSERT INTO public.tenant_metadata VALUES ('again', 'separate_schema', now(), NULL)" >/dev/null
id=$(insert_job drop_tenant again '{"inactive_days": "90"}')
ok "a drop_tenant job of a tenant active again succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
is "$(sql "SELECT result->>'inactive' || ',' || (result->>'dropped') FROM pgtenantd.jobs WHERE id = $id")" \
	"false,false" "and drops nothing"
is "$(sql "SELECT to_regnamespace('tenant_again') IS NOT NULL")" t "the schema is still there"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
done_testing
