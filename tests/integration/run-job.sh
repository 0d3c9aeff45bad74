#!/bin/bash
# run-job.sh - a job inserted with psql runs to the end: tenant_stats counts
# a shared tenant's and a separate-schema tenant's rows; test kinds with a
# result and with an exec step succeed; with "listen: false" the poll path
# alone still runs jobs.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env run-job

# The application's layouts (DESIGN.md): shared tables keyed by tenant_id,
# and a schema per tenant. Counts differ per tenant so a leak shows.
#   globex (shared): 3 entities, 2 relations
#   initech (shared): 5 entities, 4 relations
#   '' (global):      7 entities, 6 relations
#   acme (tenant_acme schema): 11 entities, 9 relations
sql "
CREATE TABLE public.graph_entities (
	id text NOT NULL, tenant_id text NOT NULL DEFAULT '', entity_type text,
	properties jsonb, embedding bytea,
	created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
	PRIMARY KEY (id, tenant_id));
CREATE TABLE public.graph_relations (
	id text NOT NULL, tenant_id text NOT NULL DEFAULT '', relation_type text,
	source_id text, target_id text, properties jsonb, weight real,
	created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
	PRIMARY KEY (id, tenant_id));
INSERT INTO public.graph_entities (id, tenant_id, entity_type, properties)
SELECT 'e' || g, t, 'person', jsonb_build_object('n', g)
  FROM (VALUES ('globex', 3), ('initech', 5), ('', 7)) v(t, n), generate_series(1, n) g;
INSERT INTO public.graph_relations (id, tenant_id, relation_type, source_id, target_id, weight)
SELECT 'r' || g, t, 'knows', 'e1', 'e2', 1.0
  FROM (VALUES ('globex', 2), ('initech', 4), ('', 6)) v(t, n), generate_series(1, n) g;

CREATE SCHEMA tenant_acme;
CREATE TABLE tenant_acme.graph_entities (
	id text PRIMARY KEY, entity_type text, properties jsonb, embedding bytea,
	created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE tenant_acme.graph_relations (
	id text PRIMARY KEY, relation_type text, source_id text, target_id text,
	properties jsonb, weight real,
	created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE INDEX idx_tenant_acme_entities_type ON tenant_acme.graph_entities (entity_type);
CREATE INDEX idx_tenant_acme_relations_type ON tenant_acme.graph_relations (relation_type);
CREATE INDEX idx_tenant_acme_relations_source ON tenant_acme.graph_relations (source_id);
CREATE INDEX idx_tenant_acme_relations_target ON tenant_acme.graph_relations (target_id);
INSERT INTO tenant_acme.graph_entities (id, entity_type)
SELECT 'e' || g, 'thing' FROM generate_series(1, 11) g;
INSERT INTO tenant_acme.graph_relations (id, relation_type, source_id, target_id)
SELECT 'r' || g, 'has', 'e1', 'e2' FROM generate_series(1, 9) g;
" || bail_out "could not create the sample tables"

# True if job ID's result has, at any depth, a member whose key matches
# KEY_REGEX (case-insensitive) and whose value is or holds the number N
# (as a JSON number or a string).
result_has()
{
	[ "$(sql "
	SELECT EXISTS (
		SELECT 1 FROM pgtenantd.jobs j,
		       jsonb_path_query(j.result,
			'strict \$.** ? (@.type() == \"object\").keyvalue()') kv
		 WHERE j.id = $1 AND kv->>'key' ~* '$2'
		   AND jsonb_path_exists(kv->'value',
			'strict \$.** ? (@ == \$n || @ == \$s)',
			jsonb_build_object('n', $3, 's', '$3')))")" = t ]
}

# True if result_has holds for any of the numbers N...: result_has_any ID KEY_REGEX N...
result_has_any()
{
	local id=$1 key=$2 n
	shift 2
	for n in "$@"; do
		result_has "$id" "$key" "$n" && return 0
	done
	return 1
}

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

ok "the daemon publishes the kinds it loaded, tenant_stats among them" \
	sql_true "SELECT EXISTS (SELECT FROM pgtenantd.job_kinds WHERE kind = 'tenant_stats')"
ok "job_kinds lists the test kinds too" \
	sql_true "SELECT count(*) = 6 FROM pgtenantd.job_kinds
		   WHERE kind IN ('noop', 'sleep', 'fail_sql', 'record_run', 'batch_slow', 'exec_echo')"

# A shared tenant.
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	  VALUES ('tenant_stats', 'globex', '{}') RETURNING id")
ok "a tenant_stats job inserted with psql gets an id" [ -n "$id" ]
if ok "the tenant_stats job of a shared tenant succeeds" wait_state "$id" succeeded 20; then
	diag "result: $(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")"
	is "$(sql "SELECT result->>'layout' FROM pgtenantd.jobs WHERE id = $id")" shared \
		"its result says layout shared"
	ok "its result counts the tenant's 3 shared entities" result_has "$id" 'entit' 3
	ok "its result counts the tenant's 2 shared relations" result_has "$id" 'relat' 2
	ok "no entity count of another tenant (5), the global namespace (7) or a sum (10, 15)" \
		not result_has_any "$id" 'entit' 5 7 10 15
else
	diag_job "$id"
fi
is "$(sql "SELECT attempts = 1 AND started_at IS NOT NULL AND finished_at >= started_at
		  AND last_error IS NULL FROM pgtenantd.jobs WHERE id = $id")" t \
	"it ran in one attempt with started_at <= finished_at and no error"

# A tenant with its own schema.
id=$(insert_job tenant_stats acme)
if ok "the tenant_stats job of a separate-schema tenant succeeds" wait_state "$id" succeeded 20; then
	diag "result: $(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")"
	is "$(sql "SELECT result->>'layout' FROM pgtenantd.jobs WHERE id = $id")" separate \
		"its result says layout separate"
	ok "its result counts the 11 entities in tenant_acme" result_has "$id" 'entit' 11
	ok "its result counts the 9 relations in tenant_acme" result_has "$id" 'relat' 9
else
	diag_job "$id"
fi

# Test kinds: a result merged from a row, a program run as a child.
id=$(insert_job noop t-noop)
ok "a noop job succeeds" wait_state "$id" succeeded
is "$(sql "SELECT result FROM pgtenantd.jobs WHERE id = $id")" '{"one": 1}' \
	"result: true merges the row, numbers as numbers"
id=$(insert_job exec_echo t-exec)
ok "an exec job (sh checking PGDATABASE) succeeds" wait_state "$id" succeeded || diag_job "$id"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"

# The poll path alone: no LISTEN.
write_config "$T/b.yaml" "listen: false" "state_dir: $T/state-b"
mkdir -p "$T/state-b"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "pgtenantd (listen: false) did not start"
sleep 0.5
id=$(insert_job noop t-poll)
ok "with listen: false a job inserted later runs (poll every 200 ms)" wait_state "$id" succeeded 5
id=$(insert_job tenant_stats initech)
if ok "with listen: false tenant_stats of another shared tenant succeeds" wait_state "$id" succeeded 20; then
	ok "its result counts that tenant's 5 entities" result_has "$id" 'entit' 5
	ok "and its 4 relations" result_has "$id" 'relat' 4
else
	diag_job "$id"
fi
ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"

done_testing
