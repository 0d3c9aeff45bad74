# migrate-online.sh - the tenant keeps writing while it moves: with its
# application writing (tests/bench/mig-writer: inserts, updates, deletes,
# each routed by public.tenant_metadata and retried on error) and another
# tenant writing too, the migration succeeds and no committed write is lost
# (every key written is checked in the tenant's schema) or fails for good;
# the other tenant never sees an error. Then, one at a time: a writer that
# waits at the cut-over and gets 40001 naming the migration after the flip;
# a long transaction of the tenant that makes the cut-over give up within
# its lock budget (the tenant's other writes go on) and try again; a manual
# cut-over that waits for go; throttling; a column added to the shared
# tables that arrives with its values.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env migrate_online
WRITER=$top_builddir/tests/bench/mig-writer

mig_schema
mig_fill acme-corp 3000 6000
mig_fill beta 1000 2000
mig_fill gamma 200 400
mig_fill delta 200 400
mig_fill '' 20 40

write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not start"

# start_writer TENANT PREFIX: the tenant's application, in the background
# until stop_writer (WRITER_PID).
start_writer()
{
	"$WRITER" --conninfo "dbname=$DB" --tenant "$1" --prefix "$2" --connections 4 \
		--rate 200 --state "$T/$2.state" --report "$T/$2.report" >"$T/$2.out" 2>&1 &
	WRITER_PID=$!
	at_exit "kill $WRITER_PID 2>/dev/null"
}

# stop_writer PID: stop it (SIGTERM) and wait for its report.
stop_writer()
{
	kill -TERM "$1" 2>/dev/null
	wait "$1"
}

report_value()
{
	sed -n "s/^$2: //p" "$1"
}

# ---- writers on the moving tenant and on another one
start_writer acme-corp wa
wa=$WRITER_PID
start_writer beta wb
wb=$WRITER_PID
wait_until "SELECT count(*) > 20 FROM public.graph_entities WHERE id LIKE 'wa-%'" 20 ||
	bail_out "the writer did not write: $(cat "$T/wa.out")"
id=$(mig_insert acme-corp '{"batch_cap": "4"}')
if ! ok "with the tenant writing, the migration succeeds" wait_state "$id" succeeded 120; then
	diag_job "$id"
fi
sleep 1	# the application writes on, in the tenant's schema now
stop_writer "$wa"
stop_writer "$wb"
ra=$(cat "$T/wa.report")
rb=$(cat "$T/wb.report")
diag "acme-corp writer: $(echo "$ra" | tr '\n' ' ')"
diag "beta writer: $(echo "$rb" | tr '\n' ' ')"
ok "the tenant's application wrote during the move" \
	test "$(echo "$ra" | sed -n 's/^writes ok: //p')" -gt 200
is "$(echo "$ra" | sed -n 's/^failed for good: //p')" 0 "no write of the tenant failed for good"
out=$("$WRITER" --check --conninfo "dbname=$DB" --tenant acme-corp --state "$T/wa.state" 2>&1)
diag "$(echo "$out" | head -3 | tr '\n' ' ')"
like "$out" "lost writes: 0" "no committed write of the tenant is lost (every key it wrote, in its schema)"
ok "the check can fail: a key written by the application, removed behind its back, is found lost" \
	sh -c "psql -X -q -d '$DB' -c \"DELETE FROM tenant_acme_corp.graph_entities WHERE id = (SELECT min(id) FROM tenant_acme_corp.graph_entities WHERE id LIKE 'wa-%')\" &&
	       ! '$WRITER' --check --conninfo 'dbname=$DB' --tenant acme-corp --state '$T/wa.state' >/dev/null 2>&1"
is "$(echo "$rb" | sed -n 's/^failed for good: //p')/$(echo "$rb" | sed -n 's/^errors: //p')" "0/none" \
	"the other tenant's writes never failed nor had to be retried"
like "$("$WRITER" --check --conninfo "dbname=$DB" --tenant beta --state "$T/wb.state" 2>&1)" "lost writes: 0" \
	"no write of the other tenant is lost"
is "$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id = 'acme-corp'")" 0 \
	"no shared row of the moved tenant is left"

# ---- a writer waits at the cut-over, then gets 40001 naming the migration
gate_hold || bail_out "could not take the test gate"
id=$(mig_insert gamma "{\"test_gate\": \"$MIG_GATE\"}")
ok "gamma's migration holds inside its cut-over (flipped, not committed)" gate_to "$id" cutover 0
(sql "DO \$\$ BEGIN
	UPDATE public.graph_entities SET entity_type = 'late' WHERE tenant_id = 'gamma' AND id = 'e000010';
	RAISE NOTICE 'no error';
      EXCEPTION WHEN serialization_failure THEN
	RAISE NOTICE 'SQLSTATE % %', SQLSTATE, SQLERRM;
      END \$\$" >"$T/late.out" 2>&1) &
late=$!
ok "a write of the tenant waits on the cut-over's lock" \
	wait_until "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgt-test'
				  AND wait_event_type = 'Lock' AND wait_event = 'advisory')" ||
	diag "$(sql "SELECT application_name, state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity WHERE datname = current_database()"; sql "SELECT * FROM pgtenantd.migration_status WHERE job_id = $id"; sql "SELECT locktype, mode, granted, pid FROM pg_locks WHERE locktype = 'advisory'")"
ok "other tenants' writes do not wait" \
	sql "SET lock_timeout = '5s'; UPDATE public.graph_entities SET entity_type = 'now' WHERE tenant_id = 'delta' AND id = 'e000010'"
gate_release
wait "$late"
diag "the waiting write: $(cat "$T/late.out")"
like "$(cat "$T/late.out")" 'SQLSTATE 40001 pgtenantd: tenant "gamma" was moved to schema "tenant_gamma" by migration job '"$id" \
	"after the flip, the waiting write fails with 40001 naming the migration (the application retries)"
if ! ok "gamma's migration succeeds" wait_state "$id" succeeded 60; then
	diag_job "$id"
fi
is "$(sql "SELECT entity_type FROM tenant_gamma.graph_entities WHERE id = 'e000010'")" org \
	"the refused write did not land anywhere"

# ---- a long transaction of the tenant: the cut-over gives up within its
# budget and tries again; the tenant's other writes go on meanwhile
sql "ALTER TABLE public.graph_entities ADD COLUMN extra text DEFAULT 'x';
     ALTER TABLE public.graph_relations ADD COLUMN extra2 int;
     UPDATE public.graph_entities SET extra = 'v' || id WHERE tenant_id = 'delta';
     UPDATE public.graph_relations SET extra2 = length(id) WHERE tenant_id = 'delta'" >/dev/null
want_e=$(mig_md5 "SELECT $MIG_E_COLS, extra FROM public.graph_entities WHERE tenant_id = 'delta' ORDER BY id")
want_r=$(mig_md5 "SELECT $MIG_R_COLS, extra2 FROM public.graph_relations WHERE tenant_id = 'delta' ORDER BY id")
gate_hold
id=$(mig_insert delta "{\"test_gate\": \"$MIG_GATE\", \"lock_budget\": \"200ms\"}")
ok "delta's migration comes to its verify" gate_to "$id" verify
# the long transaction is the test's own session's, open until the checks
# below have seen the cut-over give up
exec {long}> >(PGAPPNAME=pgt-long psql -X -q -d "$DB" >/dev/null 2>&1)
echo "BEGIN; UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'delta' AND id = 'e000020';" >&$long
ok "a long transaction of the tenant holds the lock its writers share" \
	wait_until "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
				  WHERE a.datname = current_database() AND a.application_name = 'pgt-long' AND l.locktype = 'advisory'
				    AND l.mode = 'ShareLock' AND l.granted)"
gate_release
ok "the cut-over gives up and tries again while the transaction is open" \
	wait_until "SELECT cutover_attempts >= 2 AND phase = 'cutover' FROM pgtenantd.migrations WHERE job_id = $id" 10
like "$(sql "SELECT last_cutover_error FROM pgtenantd.migrations WHERE job_id = $id")" "lock timeout" \
	"the attempt's error says why"
ok "meanwhile the tenant's other writes go through" \
	sql "UPDATE public.graph_entities SET updated_at = updated_at WHERE tenant_id = 'delta' AND id = 'e000030'"
echo "COMMIT;" >&$long
exec {long}>&-
if ! ok "once the transaction ends, the cut-over succeeds" wait_state "$id" succeeded 60; then
	diag_job "$id"
fi
is "$(mig_md5 "SELECT $MIG_E_COLS, extra FROM tenant_delta.graph_entities ORDER BY id")" "$want_e" \
	"a column added to the shared entities arrives with its values, no file edited"
is "$(mig_md5 "SELECT $MIG_R_COLS, extra2 FROM tenant_delta.graph_relations ORDER BY id")" "$want_r" \
	"... and one added to the shared relations"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
