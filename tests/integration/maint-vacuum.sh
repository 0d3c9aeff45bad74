#!/bin/bash
# maint-vacuum.sh - the vacuum and reindex kinds on tenant schemas that hold
# extra tables of their own: VACUUM (ANALYZE) reaches every table of the
# tenant's schema and no other schema (pg_stat_user_tables), with a duration
# per table in the result; REINDEX CONCURRENTLY gives every index of the
# schema a new relfilenode, extra tables included, after dropping the
# invalid _ccnew index an interrupted run left behind.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env maint-vacuum

# Two tenant schemas as the application makes them, each with an extra
# table of its own, and dead rows for VACUUM to find.
for t in acme globex; do
	sql "CREATE SCHEMA tenant_$t;
	CREATE TABLE tenant_$t.graph_entities (
		id text PRIMARY KEY, entity_type text, properties jsonb, embedding bytea,
		created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
	CREATE TABLE tenant_$t.graph_relations (
		id text PRIMARY KEY, relation_type text, source_id text, target_id text,
		properties jsonb, weight real,
		created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
	CREATE INDEX idx_tenant_${t}_entities_type ON tenant_$t.graph_entities (entity_type);
	CREATE INDEX idx_tenant_${t}_relations_type ON tenant_$t.graph_relations (relation_type);
	CREATE INDEX idx_tenant_${t}_relations_source ON tenant_$t.graph_relations (source_id);
	CREATE INDEX idx_tenant_${t}_relations_target ON tenant_$t.graph_relations (target_id);
	INSERT INTO tenant_$t.graph_entities (id, entity_type, properties)
	SELECT 'e' || g, 'type' || (g % 7), jsonb_build_object('n', g) FROM generate_series(1, 2000) g;
	INSERT INTO tenant_$t.graph_relations (id, relation_type, source_id, target_id, weight)
	SELECT 'r' || g, 'rel' || (g % 3), 'e' || g, 'e' || (g + 1), g FROM generate_series(1, 1000) g;
	DELETE FROM tenant_$t.graph_entities WHERE id LIKE 'e1%';" ||
		bail_out "could not create tenant_$t"
done
sql "CREATE TABLE tenant_acme.notes (id serial PRIMARY KEY, category text, body text);
     CREATE INDEX notes_category ON tenant_acme.notes (category);
     INSERT INTO tenant_acme.notes (category, body)
     SELECT 'c' || (g % 10), repeat('x', 100) FROM generate_series(1, 500) g;
     DELETE FROM tenant_acme.notes WHERE id % 2 = 0;
     CREATE TABLE tenant_globex.audit_log (at timestamptz, what text);
     INSERT INTO tenant_globex.audit_log SELECT now(), 'x' FROM generate_series(1, 10)" ||
	bail_out "could not create the extra tables"

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

ok "the vacuum and reindex kinds are loaded" \
	sql_true "SELECT count(*) = 2 FROM pgtenantd.job_kinds WHERE kind IN ('vacuum', 'reindex')"
is "$(sql "SELECT count(*) FROM pg_stat_user_tables
	    WHERE schemaname IN ('tenant_acme', 'tenant_globex') AND last_vacuum IS NOT NULL")" 0 \
	"no tenant table was vacuumed before"

# --- vacuum
id=$(insert_job vacuum acme)
ok "a vacuum job of tenant acme succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
ok "every table of tenant_acme was vacuumed and analyzed, the extra table notes included" \
	wait_until "SELECT count(*) = 3 AND bool_and(last_vacuum IS NOT NULL AND last_analyze IS NOT NULL)
		      FROM pg_stat_user_tables WHERE schemaname = 'tenant_acme'" 10
diag "$(sql "SELECT relname, last_vacuum, last_analyze, n_dead_tup FROM pg_stat_user_tables
	      WHERE schemaname = 'tenant_acme' ORDER BY 1")"
is "$(sql "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'tenant_acme' AND n_dead_tup > 0")" 0 \
	"no dead rows are left in tenant_acme"
is "$(sql "SELECT count(*) FROM pg_stat_user_tables
	    WHERE schemaname = 'tenant_globex' AND (last_vacuum IS NOT NULL OR last_analyze IS NOT NULL)")" 0 \
	"tenant globex's schema was not touched"
result=$(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")
diag "result: $result"
is "$(json_eval "$result" "(SELECT string_agg(t->>'table_name', ',' ORDER BY t->>'table_name')
			     FROM jsonb_array_elements((:'j')::jsonb->'tables') t)")" \
	"graph_entities,graph_relations,notes" "the result lists each table"
is "$(json_eval "$result" "(SELECT count(*) FROM jsonb_array_elements((:'j')::jsonb->'tables') t
			     WHERE (t->>'duration_us')::bigint > 0)")" 3 \
	"with the time its VACUUM took (duration_us)"
# Its one step runs outside a transaction: the job's end writes where it
# stands (no write of its own), as the step would have.
is "$(sql "SELECT coalesce(step, '(none)') || ' ' || step_index || ' ' || (progress->>'percent')::numeric
	      || ' ' || (progress->'passed')::text FROM pgtenantd.jobs WHERE id = $id")" \
	'(none) 1 100.0 ["vacuum"]' "its row says it is past its last step, 100% done, the step passed"

id=$(insert_job vacuum globex)
ok "a vacuum job of tenant globex succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
ok "globex's extra table audit_log was vacuumed too" \
	wait_until "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables
		     WHERE schemaname = 'tenant_globex' AND relname = 'audit_log'" 10
id=$(insert_job vacuum nobody)
ok "a vacuum job of a tenant without a schema succeeds with nothing to do" \
	wait_state "$id" succeeded 30 || diag_job "$id"

# --- reindex, after an interrupted REINDEX CONCURRENTLY of notes: the same
# invalid index a cancelled one leaves (made here by a failing build).
sql "INSERT INTO tenant_acme.notes (category, body) VALUES ('dup', 'a'), ('dup', 'b')" >/dev/null
sql "CREATE UNIQUE INDEX CONCURRENTLY notes_category_ccnew ON tenant_acme.notes (category)" \
	>/dev/null 2>&1
is "$(sql "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	    WHERE c.relname = 'notes_category_ccnew' AND NOT i.indisvalid")" 1 \
	"an invalid leftover index notes_category_ccnew exists"
before=$(sql "SELECT string_agg(c.relname || '=' || pg_relation_filenode(c.oid), ' ' ORDER BY c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	       WHERE n.nspname = 'tenant_acme' AND c.relkind = 'i' AND c.relname NOT LIKE '%ccnew'")
globex_before=$(sql "SELECT string_agg(pg_relation_filenode(c.oid)::text, ' ' ORDER BY c.relname)
		       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		      WHERE n.nspname = 'tenant_globex' AND c.relkind = 'i'")
id=$(insert_job reindex acme)
ok "a reindex job of tenant acme succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
result=$(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")
diag "result: $result"
is "$(sql "SELECT count(*) FROM pg_class WHERE relname LIKE '%ccnew%' OR relname LIKE '%ccold%'")" 0 \
	"the leftover index was dropped (and no new one left)"
is "$(json_eval "$result" "(:'j')::jsonb->'dropped_invalid'->0->>'index_name'")" notes_category_ccnew \
	"the result names the dropped leftover"
is "$(sql "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	    JOIN pg_namespace n ON n.oid = c.relnamespace
	    WHERE n.nspname = 'tenant_acme' AND NOT (i.indisvalid AND i.indisready)")" 0 \
	"every index of tenant_acme is valid"
after=$(sql "SELECT string_agg(c.relname || '=' || pg_relation_filenode(c.oid), ' ' ORDER BY c.relname)
	       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	      WHERE n.nspname = 'tenant_acme' AND c.relkind = 'i'")
diag "before: $before" "after:  $after"
is "$(for pair in $before; do
	name=${pair%%=*}
	[[ " $after " == *" $pair "* ]] && echo "unchanged: $name"
	[[ " $after " == *" $name="* ]] || echo "missing: $name"
done)" "" "every index of tenant_acme has a new relfilenode (notes_category and notes_pkey included)"
is "$(json_eval "$result" "(SELECT string_agg(t->>'table_name', ',' ORDER BY t->>'table_name')
			     FROM jsonb_array_elements((:'j')::jsonb->'tables') t
			    WHERE (t->>'duration_us')::bigint > 0)")" \
	"graph_entities,graph_relations,notes" "the result lists each table with its duration"
is "$(sql "SELECT string_agg(pg_relation_filenode(c.oid)::text, ' ' ORDER BY c.relname)
	     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	    WHERE n.nspname = 'tenant_globex' AND c.relkind = 'i'")" "$globex_before" \
	"tenant globex's indexes were not rebuilt"
is "$(sql "SELECT count(*) FROM tenant_acme.notes")" 252 "the data is all there"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
done_testing
