#!/bin/bash
# security-runner.sh - issue 10, the runner's side: a job row the daemon
# did not write cannot steer the job (finding 1), a malformed one fails
# that job with a message and never crashes or loops the daemon (finding
# 4), and a variable cannot become an option of an exec step (finding 14).
# The rows are forged as the table owner with the triggers off, which is
# what an INSERT trigger cannot stop.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env security-runner

write_config "$T/a.yaml" "workers: 2" "poll_interval: 100ms"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# Insert a job row with the daemon-owned columns set, as the table owner
# with triggers off (session_replication_role), and print its id:
# forge KIND TENANT STEP STEP_INDEX PROGRESS (STEP may be NULL).
forge()
{
	sql "BEGIN;
	     SET LOCAL session_replication_role = replica;
	     INSERT INTO pgtenantd.jobs (kind, tenant_id, step, step_index, progress)
	     VALUES (:'kind', :'tenant', NULLIF(:'step', 'NULL'), :'idx'::int, (:'progress')::jsonb)
	     RETURNING id;
	     COMMIT;" -v kind="$1" -v tenant="$2" -v step="$3" -v idx="$4" -v progress="$5"
}

# A tenant schema that drop_tenant may find, and a schema that is no
# tenant's at all.
make_tenant()
{
	sql "CREATE SCHEMA \"tenant_$1\"; CREATE TABLE \"tenant_$1\".t (x int);
	     INSERT INTO \"tenant_$1\".t VALUES (1)"
}
sql "CREATE SCHEMA billing; CREATE TABLE billing.invoices (x int);
     INSERT INTO billing.invoices VALUES (42)"

# ---------------------------------------------------------------- finding 1
make_tenant acme
id=$(forge drop_tenant acme drop 2 '{"passed":["backup"],"vars":{"go":true,"schema":"billing"}}')
ok "finding 1: the issue's forged drop_tenant row fails" wait_state "$id" failed 10 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"does not hold what pgtenantd wrote" "finding 1: with a message that the row is not the daemon's"
is "$(sql "SELECT count(*) FROM billing.invoices")" 1 "finding 1: the non-tenant schema billing was not dropped"
is "$(sql "SELECT count(*) FROM \"tenant_acme\".t")" 1 "finding 1: nor the tenant's own schema"

# Consistent in every other respect, but vars name the built-in schema.
id=$(forge drop_tenant acme drop 2 '{"step_index":2,"step":"drop","passed":["plan","backup"],"vars":{"go":true,"schema":"billing","backup_file":"x","backup_id":1,"backup_sha256":"","backup_size":1}}')
ok "finding 1: a forged row whose vars set the built-in schema fails" wait_state "$id" failed 10 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"progress.vars sets 'schema'" "finding 1: the message names the built-in"
is "$(sql "SELECT count(*) FROM billing.invoices")" 1 "finding 1: billing is still there"

# A forged `passed` without the steps that always run before it.
id=$(forge drop_tenant acme drop 2 '{"step_index":2,"step":"drop","passed":["backup"],"vars":{"go":true}}')
ok "finding 1: a forged passed list fails the job" wait_state "$id" failed 10 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"progress.passed lacks step 'plan'" "finding 1: the message names the step that did not pass"
is "$(sql "SELECT count(*) FROM \"tenant_acme\".t")" 1 "finding 1: the tenant's schema was not dropped without a backup"
is "$(find "$T/backups" -type f | wc -l)" 0 "finding 1: no backup was made by any of them"
ok "finding 1: the daemon is still running" daemons_alive

# ---------------------------------------------------------------- finding 4
# Each poison row: the job fails at its claim, the daemon stays up.
poison()
{
	local name=$1 kind=$2 tenant=$3 step=$4 idx=$5 progress=$6 want=$7 id
	[ "$kind" = drop_tenant ] && make_tenant "$tenant"
	id=$(forge "$kind" "$tenant" "$step" "$idx" "$progress")
	if ! ok "finding 4: poison progress $name fails its job" wait_state "$id" failed 10; then
		diag_job "$id"
		return
	fi
	like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "$want" \
		"finding 4: $name: the message says what is wrong"
	is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 \
		"finding 4: $name: in the one attempt spent at claim"
	ok "finding 4: $name: the daemon is still running" daemons_alive
}
poison "'[]'" drop_tenant p1 NULL 0 '[]' "progress is not a JSON object"
poison '{"passed":[1]}' drop_tenant p2 NULL 0 '{"passed":[1]}' "progress.step_index does not match"
poison "passed [1] at the right step" drop_tenant p3 plan 0 '{"step_index":0,"step":"plan","passed":[1]}' \
	"progress.passed\\[0\\] is not a string"
poison "vars an array" drop_tenant p4 plan 0 '{"step_index":0,"step":"plan","vars":[]}' "progress.vars is not an object"
poison "vars a number" drop_tenant p5 backup 1 '{"step_index":1,"step":"backup","passed":["plan"],"vars":5}' \
	"progress.vars is not an object"
poison "step a number" noop n1 one 0 '{"step_index":0,"step":1}' "progress.step is not a string"
poison "step_index a string" noop n2 one 0 '{"step_index":"0","step":"one"}' "progress.step_index does not match"
poison "a step_index past the kind" noop n3 NULL 7 '{}' "step_index '7' is not a step of kind noop"
poison "last_key a number" batch_slow b1 work 0 '{"step_index":0,"step":"work","batches":2,"last_key":5}' \
	"progress.last_key is neither a string nor null"
for t in p1 p2 p3 p4 p5; do
	is "$(sql "SELECT count(*) FROM \"tenant_$t\".t")" 1 "finding 4: tenant $t's schema is untouched"
done
sleep 0.5
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE state IN ('queued', 'running')")" 0 \
	"finding 4: no poison job is claimed again"
id=$(insert_job noop after-poison)
ok "finding 4: a job after the poison rows runs" wait_state "$id" succeeded 10
ok "finding 4: the daemon is still running at the end" daemons_alive
unlike "$(cat "$T/a.log")" "AddressSanitizer|runtime error|Segmentation" "finding 4: no memory error in the log"

# ---------------------------------------------------------------- finding 14
id=$(insert_job exec_echo -x)
ok "finding 14: an exec step whose variable would become an option fails" wait_state "$id" failed 10 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"argument 4 of sh \\('-x' from ':tenant_id'\\) starts with '-' and would be taken as an option" \
	"finding 14: the message names the argument and the value"
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 "finding 14: at once, without retries"
unlike "$(cat "$T/a.log")" "hi from .* for tenant -x" "finding 14: the program did not run"
id=$(insert_job exec_echo plain-tenant)
ok "finding 14: the same step with an ordinary tenant id runs" wait_state "$id" succeeded 10 || diag_job "$id"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
done_testing
