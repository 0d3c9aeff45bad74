#!/bin/bash
# security-sql.sh - issue 10, the database side of trust: who may enqueue
# what (group roles, per-kind enqueue_role), rows an INSERT may not forge,
# row-level security on the jobs, cancel only through the row, twin tenant
# ids, size limits, the tenant lock keyed by schema name, and search_path
# pinned on the pgtenantd functions. Real roles, made per run (roles are
# cluster-wide and tests run in parallel), act through SET ROLE.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"	# the test gate
require_pg
make_env security-sql

R=$$
A=sec_a_$R      # tenant a's application: pgtenantd_enqueue
B=sec_b_$R      # tenant b's application: pgtenantd_enqueue
OP=sec_op_$R    # an operator: pgtenantd_operate
ADM=sec_adm_$R  # pgtenantd_admin
RD=sec_rd_$R    # pgtenantd_read
NOB=sec_nob_$R  # no pgtenantd role at all
ROLES="$A $B $OP $ADM $RD $NOB"
at_exit "for r in $ROLES; do psql -X -q -d postgres -c \"DROP ROLE IF EXISTS \$r\"; done"
for r in $ROLES; do
	sql "CREATE ROLE $r NOLOGIN" >/dev/null || bail_out "cannot create role $r"
done

write_config "$T/a.yaml" "limits:" "  error_bytes: 1024"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

sql "GRANT pgtenantd_enqueue TO $A, $B; GRANT pgtenantd_operate TO $OP;
     GRANT pgtenantd_admin TO $ADM; GRANT pgtenantd_read TO $RD" >/dev/null ||
	bail_out "cannot grant the group roles"

# Run SQL as a role: as ROLE "SQL" [PSQL OPTIONS...] (and as_err).
as() { local r=$1 q=$2; shift 2; sql "SET ROLE $r; $q" "$@"; }
as_err() { local r=$1 q=$2; shift 2; sql_err "SET ROLE $r; $q" "$@"; }

# ------------------------------------------------------- finding 3: roles
is "$(sql "SELECT string_agg(rolname, ' ' ORDER BY rolname) FROM pg_roles
	    WHERE rolname IN ('pgtenantd_read', 'pgtenantd_enqueue',
			      'pgtenantd_operate', 'pgtenantd_admin')")" \
	"pgtenantd_admin pgtenantd_enqueue pgtenantd_operate pgtenantd_read" \
	"finding 3: the install made the four group roles"
is "$(sql "SELECT string_agg(kind || '=' || enqueue_role, ' ' ORDER BY kind)
	     FROM pgtenantd.job_kinds
	    WHERE kind IN ('drop_tenant', 'migrate_to_separate_schema', 'restore',
			   'noop', 'vacuum')")" \
	"drop_tenant=pgtenantd_operate migrate_to_separate_schema=pgtenantd_operate noop=pgtenantd_enqueue restore=pgtenantd_operate vacuum=pgtenantd_enqueue" \
	"finding 3: destructive and migration kinds need pgtenantd_operate, the others pgtenantd_enqueue"

# ------------------------------------- findings 1 and 9: forged INSERTs
forged()
{
	local err
	err=$(as_err "$OP" "INSERT INTO pgtenantd.jobs $2")
	like "$err" "$3" "$1"
}
forged "finding 1: a drop_tenant with step_index and progress is refused, naming them" \
	"(kind, tenant_id, step_index, progress) VALUES ('drop_tenant', 'billing', 2,
	  '{\"passed\": [\"backup\"], \"vars\": {\"go\": true, \"schema\": \"billing\"}}')" \
	'may not set "step_index", "progress"'
forged "finding 9: state running with lease_until infinity is refused" \
	"(kind, tenant_id, state, owner, lease_until) VALUES ('noop', 'ta', 'running', 'x', 'infinity')" \
	'may not set "state", "owner", "lease_until"'
forged "finding 1: result, last_error, attempts, started_at, finished_at, cancel_requested are refused" \
	"(kind, tenant_id, result, last_error, attempts, started_at, finished_at, cancel_requested)
	 VALUES ('noop', 'ta', '{}', 'x', 3, now(), now(), true)" \
	'"result", "last_error", "attempts", "started_at", "finished_at", "cancel_requested"'
forged "finding 1: a forged step is refused" \
	"(kind, tenant_id, step) VALUES ('noop', 'ta', 'x')" 'may not set "step"'
forged "finding 3: a forged enqueued_by is refused" \
	"(kind, tenant_id, enqueued_by) VALUES ('noop', 'ta', 'postgres')" 'may not set "enqueued_by"'
forged "finding 9: an explicit id is refused" \
	"(id, kind, tenant_id) VALUES (424242, 'noop', 'ta')" 'may not set "id"'
like "$(sql_err "INSERT INTO pgtenantd.jobs (id, kind, tenant_id)
		 SELECT last_value + 1, 'noop', 'ta' FROM pgtenantd.jobs_id_seq")" \
	'may not set "id"' "finding 9: an explicit id equal to the sequence's next value is refused"
like "$(sql_err "INSERT INTO pgtenantd.jobs (id, kind, tenant_id) VALUES (424243, 'noop', 'ta')")" \
	'may not set "id"' "finding 9: ... also for a superuser"
forged "finding 9: priority 2147483647 is refused" \
	"(kind, tenant_id, priority) VALUES ('noop', 'ta', 2147483647)" \
	'priority 2147483647 is out of range -100 to 100'
forged "finding 9: priority -101 is refused" \
	"(kind, tenant_id, priority) VALUES ('noop', 'ta', -101)" 'out of range -100 to 100'
forged "finding 9: max_attempts 1000 is refused" \
	"(kind, tenant_id, max_attempts) VALUES ('noop', 'ta', 1000)" \
	'max_attempts 1000 is out of range 1 to 100'
like "$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id, state, lease_until)
		 VALUES ('noop', 'ta', 'running', 'infinity')")" 'may not set "state", "lease_until"' \
	"finding 9: a superuser's forged row is refused too"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs")" 0 "none of the forged INSERTs made a row"

row=$(as "$OP" "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at, created_at, updated_at, priority)
		VALUES ('noop', 'tpast', '2000-01-01', '2000-01-01', '2000-01-01', 100)
		RETURNING id, run_at >= now(), created_at >= now(), updated_at >= now(), enqueued_by")
like "$row" "^[0-9]+\\|t\\|t\\|t\\|$OP\$" \
	"finding 9: run_at in the past is raised to now, created_at and updated_at are the database's; enqueued_by is the inserter"

# ------------------- version 5: the INSERT trigger's WHEN (the plain row)
# The WHEN lets a row through without jobs_validate only when the function
# would accept it unchanged; a NULL anywhere in it must run the function.
forged "version 5: an explicit NULL enqueued_by is refused, not waved through by the WHEN" \
	"(kind, tenant_id, enqueued_by) VALUES ('noop', 'ta', NULL)" 'may not set "enqueued_by"'
forged "version 5: an explicit NULL step_index is refused" \
	"(kind, tenant_id, step_index) VALUES ('noop', 'ta', NULL)" 'may not set "step_index"'
forged "version 5: an explicit NULL state is refused" \
	"(kind, tenant_id, state) VALUES ('noop', 'ta', NULL)" 'may not set "state"'
# Calls of jobs_validate, counted per session (each sql is one) and
# flushed when the session ends.
validate_calls="SELECT coalesce((SELECT calls FROM pg_stat_user_functions
		 WHERE funcid = 'pgtenantd.jobs_validate()'::regprocedure), 0)"
sql "SELECT pg_stat_reset_single_function_counters('pgtenantd.jobs_validate()'::regprocedure)" >/dev/null
sql "SET track_functions = 'all'; SET ROLE $A;
     INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at, args)
     SELECT 'noop', 'plain-' || g, now() + interval '1 hour', '{}' FROM generate_series(1, 20) g" >/dev/null
sql "SET track_functions = 'all'; SET ROLE $A;
     INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at) VALUES ('noop', 'plain-x', '2000-01-01')" >/dev/null
ok "version 5: a row to fix up (run_at in the past) runs jobs_validate" \
	wait_until "SELECT ($validate_calls) >= 1" 10
sleep 1
is "$(sql "$validate_calls")" 1 \
	"version 5: ... and 20 plain rows from an enqueue role never ran it (the WHEN vouched for them)"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE tenant_id LIKE 'plain-%'
	    AND enqueued_by = '$A' AND run_at >= created_at")" 21 \
	"version 5: the plain rows and the fixed-up one all name their enqueuer, none runs before it was made"
sql "DELETE FROM pgtenantd.jobs WHERE tenant_id LIKE 'plain-%'" >/dev/null

# --------------------------------- finding 3: who may enqueue which kind
for k in drop_tenant migrate_to_separate_schema restore; do
	like "$(as_err "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
			    VALUES ('$k', 'tb', now() + interval '1 hour')")" \
		"role \"$A\" may not enqueue job kind \"$k\"" \
		"finding 3: an enqueue role cannot enqueue $k"
done
like "$(as_err "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('drop_tenant', 'tb')")" \
	'HINT: +members of role "pgtenantd_operate" may' "... the hint names the role that may"
like "$(as_err "$NOB" "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'ta')")" \
	'permission denied' "finding 3: a role without a pgtenantd role cannot enqueue at all"
# pgtenantd_read may use the schema but not enqueue: the INSERT checks'
# SECURITY DEFINER lookups (tenant_metadata past its privileges) are not
# its to call.
for f in "insert_facts(1, 'ta', false)" \
	"job_insert_is_plain(1, 'noop', 'ta', '{}', current_user)" \
	"tenant_metadata_has('ta')"; do
	like "$(as_err "$RD" "SELECT pgtenantd.$f")" \
		"permission denied for function ${f%%(*}" \
		"version 7: a role that may not enqueue may not call pgtenantd.${f%%(*}"
done
is "$(as "$OP" "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
		VALUES ('drop_tenant', 'tb', now() + interval '1 hour') RETURNING enqueued_by")" \
	"$OP" "finding 3: an operate role may enqueue drop_tenant"
is "$(as "$OP" "SELECT pgtenantd.cancel_job(id) FROM pgtenantd.jobs WHERE kind = 'drop_tenant'")" \
	cancelled "... and cancel its own queued job"

# ---------------------------------- finding 3: RLS, own jobs only; cancel
# held at the test gate until finding 5 is checked (engine test hooks)
gate_hold || bail_out "could not take the test gate"
aid=$(as "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	       VALUES ('sleep', 'ta', '{\"seconds\": \"0\", \"test_gate\": \"$MIG_GATE\"}') RETURNING id")
ok "the enqueue role of tenant a enqueues a sleep job" [ -n "$aid" ]
is "$(sql "SELECT enqueued_by FROM pgtenantd.jobs WHERE id = $aid")" "$A" \
	"finding 3: enqueued_by records the role"
ok "... which runs" wait_state "$aid" running
is "$(as "$A" "SELECT count(*) FROM pgtenantd.jobs WHERE id = $aid")" 1 \
	"finding 3: tenant a's role sees its job"
is "$(as "$B" "SELECT count(*) FROM pgtenantd.jobs WHERE id = $aid")" 0 \
	"finding 3: tenant b's role does not see tenant a's job"
is "$(as "$B" "SELECT coalesce(pgtenantd.cancel_job($aid), 'no such job')")" "no such job" \
	"finding 3: tenant b's role cannot cancel it through cancel_job"
is "$(as "$B" "UPDATE pgtenantd.jobs SET cancel_requested = true WHERE id = $aid RETURNING id" 2>&1)" "" \
	"finding 3: ... nor through an UPDATE"
like "$(as_err "$A" "UPDATE pgtenantd.jobs SET state = 'failed' WHERE id = $aid")" 'permission denied' \
	"finding 3: tenant a's role may update cancel_requested only"
is "$(as "$RD" "SELECT count(*) FROM pgtenantd.jobs WHERE id = $aid")" 1 \
	"finding 3: pgtenantd_read sees every job"
like "$(as_err "$RD" "UPDATE pgtenantd.jobs SET cancel_requested = true WHERE id = $aid")" 'permission denied' \
	"finding 3: ... and cannot cancel"

# ------------------------------- finding 5: a NOTIFY alone cancels nothing
as "$NOB" "NOTIFY pgtenantd, 'cancel:$aid'; SELECT pg_notify('pgtenantd', 'cancel:$aid')" >/dev/null
sleep 1.5
is "$(sql "SELECT state || ' ' || cancel_requested FROM pgtenantd.jobs WHERE id = $aid")" "running false" \
	"finding 5: NOTIFY cancel payload ignored: the job still runs 1.5 s later"
gate_release
ok "finding 5: ... and succeeds" wait_state "$aid" succeeded 15 || diag_job "$aid"

# the row is what cancels: the owner's own cancel, and an admin's
a2=$(as "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	      VALUES ('sleep', 'ta', '{\"seconds\": \"30\"}') RETURNING id")
ok "another sleep job of tenant a runs" wait_state "$a2" running
is "$(as "$ADM" "SELECT pgtenantd.cancel_job($a2)")" running "finding 3: pgtenantd_admin may cancel another role's job"
t0=$(now_ms)
ok "... and it ends cancelled" wait_state "$a2" cancelled 10 || diag_job "$a2"
diag "cancel took $(($(now_ms) - t0)) ms"
like "$(sql_err "UPDATE pgtenantd.jobs SET cancel_requested = false WHERE id = $a2")" 'cannot be taken back' \
	"a cancel cannot be taken back"
a3=$(as "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
	      VALUES ('noop', 'ta', now() + interval '1 hour') RETURNING id")
is "$(as "$A" "UPDATE pgtenantd.jobs SET cancel_requested = true WHERE id = $a3 RETURNING state")" \
	cancelled "finding 3: a role cancels its own queued job with an UPDATE"

# --------------------------------------------------- finding 10: twins
sql "CREATE TABLE public.tenant_metadata (tenant_id text PRIMARY KEY,
				       isolation_mode text)" >/dev/null
sql "INSERT INTO public.tenant_metadata VALUES ('Beta', 'shared')" >/dev/null
id=$(as "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'Acme-1') RETURNING id")
ok "a job for tenant Acme-1" [ -n "$id" ]
like "$(as_err "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'acme_1')")" \
	'tenant id "acme_1" names the schema "tenant_acme_1" of the known tenant "Acme-1"' \
	"finding 10: a twin of a tenant id in the jobs is refused"
like "$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'ACME-1')")" \
	'known tenant "Acme-1"' "finding 10: ... also for a superuser"
like "$(as_err "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'beta')")" \
	'known tenant "Beta"' "finding 10: a twin of a tenant id in public.tenant_metadata is refused"
ok "the metadata's own id is accepted" \
	[ -n "$(as "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 'Beta') RETURNING id")" ]

# twins from before version 3 (trigger off, as a superuser could): the
# tenant lock is keyed by schema name, so they never run at once
sql "ALTER TABLE pgtenantd.jobs DISABLE TRIGGER jobs_validate;
     INSERT INTO pgtenantd.jobs (kind, tenant_id, args, run_at) VALUES
	('sleep', 'Twin-x', '{\"seconds\": \"1.5\"}', now() + interval '300 ms'),
	('sleep', 'twin_x', '{\"seconds\": \"1.5\"}', now() + interval '300 ms');
     ALTER TABLE pgtenantd.jobs ENABLE TRIGGER jobs_validate" >/dev/null
ok "both twin jobs succeed" wait_until "SELECT count(*) = 2 FROM pgtenantd.jobs
	WHERE tenant_id IN ('Twin-x', 'twin_x') AND state = 'succeeded'" 20
is "$(sql "SELECT (max(started_at) >= min(finished_at))::text FROM pgtenantd.jobs
	    WHERE tenant_id IN ('Twin-x', 'twin_x')")" true \
	"finding 10: jobs of two twin ids never ran at the same time (one tenant lock per schema)"

# ------------------------------------------------ finding 11: size limits
is "$(sql "SELECT string_agg(key || '=' || value, ' ' ORDER BY key) FROM pgtenantd.settings")" \
	"max_args_bytes=65536 max_error_bytes=1024 max_result_bytes=1048576" \
	"finding 11: the daemon wrote its limits to pgtenantd.settings"
slowest=0
as_err "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	     VALUES ('sleep', 'ta', jsonb_build_object('seconds', repeat('9', 100 * 1024 * 1024)))" \
	>"$T/big.err" &
big=$!
samples=0
while proc_alive "$big" && [ "$samples" -lt 40 ]; do
	t0=$(date +%s%N)
	ctl status >/dev/null || diag "status failed"
	t=$((($(date +%s%N) - t0) / 1000000))
	[ "$t" -gt "$slowest" ] && slowest=$t
	samples=$((samples + 1))
	sleep 0.05
done
wait "$big"
like "$(cat "$T/big.err")" 'args of [0-9]{9} bytes are over the limit of 65536 bytes' \
	"finding 11: a 100 MB arg is refused at INSERT"
ok "finding 11: pgtenantctl status answered within 1.5 s each time during that INSERT (slowest of $samples: $slowest ms)" \
	eval '[ "$samples" -ge 3 ] && [ "$slowest" -lt 1500 ]'

# a superuser is not held to the limit at INSERT; the claim fails the job
hid=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
	   VALUES ('sleep', 't-huge', jsonb_build_object('seconds', repeat('9', 1048576)), 3)
	   RETURNING id")
ok "a superuser's job with a 1 MB arg ends failed" wait_state "$hid" failed 10 || diag_job "$hid"
like "$(sql "SELECT last_error || ' attempts ' || attempts FROM pgtenantd.jobs WHERE id = $hid")" \
	'args of 10485[0-9]{2} bytes are over the limit of 65536 bytes .*the job was not run attempts 1$' \
	"finding 11: ... at claim, without running it, after one attempt"

# an error over limits.error_bytes (1024 here) is cut, saying so
eid=$(as "$A" "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
	       VALUES ('sleep', 'ta', jsonb_build_object('seconds', repeat('x', 60000)), 1)
	       RETURNING id")
ok "a job whose error quotes a 60 kB arg ends failed" wait_state "$eid" failed 10 || diag_job "$eid"
like "$(sql "SELECT octet_length(last_error) <= 1024, right(last_error, 40) FROM pgtenantd.jobs WHERE id = $eid")" \
	'^t\|.*\.\.\. \(truncated, [0-9]+ bytes\)$' \
	"finding 11: its last_error is cut to limits.error_bytes, saying so"

# ------------------------------------------ finding 6: search_path pinned
sql "CREATE TABLE public.planted_calls (f text);
     CREATE FUNCTION public.format(text, name) RETURNS text LANGUAGE sql AS
	\$\$ INSERT INTO public.planted_calls VALUES ('format/2') RETURNING \$1 \$\$;
     CREATE FUNCTION public.format(text, name, name) RETURNS text LANGUAGE sql AS
	\$\$ INSERT INTO public.planted_calls VALUES ('format/3') RETURNING \$1 \$\$;
     CREATE SCHEMA tenant_planted; CREATE TABLE tenant_planted.graph_entities (id int);
     GRANT EXECUTE ON FUNCTION public.format(text, name), public.format(text, name, name) TO PUBLIC" >/dev/null
sql "SELECT format('%I', 'x'::name)" >/dev/null
is "$(sql "SELECT count(*) FROM public.planted_calls")" 1 \
	"finding 6: the planted public.format(text, name) wins an unqualified call with the default search_path"
sql "TRUNCATE public.planted_calls" >/dev/null
like "$(sql "SELECT string_agg(t, ' ') FROM pgtenantd.separate_tenants() t")" planted \
	"pgtenantd.separate_tenants() finds the planted tenant (calling format(text, name) for it)"
sql "SELECT count(*) FROM pgtenantd.inactive_tenants(1); SELECT pgtenantd.archive_tenant('zz');
     SELECT pgtenantd.rescue_expired()" >/dev/null
is "$(sql "SELECT count(*) FROM public.planted_calls")" 0 \
	"finding 6: no pgtenantd function called the planted public.format"
is "$(sql "SELECT count(*) FROM pg_proc p WHERE pronamespace = 'pgtenantd'::regnamespace
	    AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (proconfig), false)
	    AND NOT (prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') AND EXISTS (SELECT FROM pg_depend d
		WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'))")" 0 \
	"finding 6: every function of schema pgtenantd has search_path = pg_catalog, pg_temp (but contrib tcn's C trigger)"
sql "DROP FUNCTION public.format(text, name); DROP FUNCTION public.format(text, name, name)" >/dev/null

# ------------- finding 4: a job that crashed its daemon on the last attempt
# release_owner (a daemon's start after a crash) fails a job that spent all
# its attempts instead of queueing it again for another crash.
sql "BEGIN; SET LOCAL session_replication_role = replica;
     INSERT INTO pgtenantd.jobs (kind, tenant_id, state, owner, attempts, max_attempts, lease_until)
     VALUES ('noop', 'crashed-last', 'running', 'gone-daemon', 2, 2, 'infinity'),
	    ('noop', 'crashed-early', 'running', 'gone-daemon', 1, 2, 'infinity'); COMMIT" >/dev/null
is "$(sql "SELECT pgtenantd.release_owner('gone-daemon')")" 2 "release_owner takes back both jobs of a crashed daemon"
# (the running daemon may claim and run crashed-early at once: it must
# only not be failed)
is "$(sql "SELECT string_agg(tenant_id || ':' || (state = 'failed'), ' ' ORDER BY tenant_id)
	   FROM pgtenantd.jobs WHERE tenant_id LIKE 'crashed-%'")" "crashed-early:false crashed-last:true" \
	"finding 4: the one out of attempts fails instead of being claimed again"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE tenant_id = 'crashed-last'")" \
	"stopped while running the job, its last attempt" "and says why"
sql "DELETE FROM pgtenantd.jobs WHERE tenant_id LIKE 'crashed-%'" >/dev/null

# A cancel asked while an attempt runs is not lost when that attempt ends
# in a retry: the job is cancelled, not queued for after the backoff.
cid=$(sql "BEGIN; SET LOCAL session_replication_role = replica;
	   INSERT INTO pgtenantd.jobs (kind, tenant_id, state, owner, attempts, cancel_requested, lease_until)
	   VALUES ('noop', 'cancel-in-retry', 'running', 'busy-daemon', 1, true, 'infinity') RETURNING id; COMMIT" |
	grep -E '^[0-9]+$')
sql "SELECT count(*) FROM pgtenantd.finish_jobs('busy-daemon',
	jsonb_build_array(jsonb_build_object('id', $cid, 'state', 'queued', 'retry_ms', 60000, 'error', 'boom')))" >/dev/null
is "$(sql "SELECT state || ',' || (finished_at IS NOT NULL) || ',' || last_error FROM pgtenantd.jobs WHERE id = $cid")" \
	"cancelled,true,boom" "a job asked to cancel during an attempt that ends in a retry is cancelled, not queued again"

ok "the daemon is still running" proc_alive "$DAEMON_PID"
ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"

done_testing
