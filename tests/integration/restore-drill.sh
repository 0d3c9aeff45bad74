#!/bin/bash
# restore-drill.sh - the restore_drill kind: a backup records every table's
# rows and hash in the snapshot pg_dump dumps (rows written while pg_dump
# waits to start are in neither); a drill of a good backup passes while a
# writer keeps writing to the live schema, which it never locks, renames
# for anyone else, or changes; a drill catches a backup damaged on disk
# (sha256) and one whose rows are not what it recorded (a pg_dump that
# ignores the snapshot), naming the table; both show in pgtenantctl
# backups and in metrics; nothing named like the scratch schema is left
# after a pass, a failure, a cancel or a daemon killed mid-drill; a tenant without a
# backup gets a clear message; a backup that recorded nothing is restored
# and reported with nothing to compare with.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env restore-drill

# pg_dump on the daemon's PATH: the real one, which waits 2 s while the
# file "slow" exists (rows are written meanwhile) and drops --snapshot
# while the file "nosnapshot" exists (a dump of other rows than recorded).
real_pg_dump=$(command -v pg_dump) || bail_out "no pg_dump"
mkdir -p "$T/bin"
cat >"$T/bin/pg_dump" <<EOF
#!/bin/bash
args=()
for a in "\$@"; do
	if [ -f "$T/nosnapshot" ] && [[ \$a == --snapshot=* ]]; then continue; fi
	args+=("\$a")
done
if [ -f "$T/slow" ]; then touch "$T/dump-waiting"; sleep 2; fi
exec "$real_pg_dump" "\${args[@]}"
EOF
chmod +x "$T/bin/pg_dump"

# The drill restores as the schema's owner, never as a superuser.
OWNER=pgt_rd_owner_$$
psql -X -q -d "$DB" -c "CREATE ROLE $OWNER" || bail_out "could not create role $OWNER"
at_exit "psql -X -q -d \"\$DB\" -c 'DROP OWNED BY $OWNER'; psql -X -q -d \"\$DB\" -c 'DROP ROLE $OWNER'"
sql "CREATE SCHEMA tenant_acme AUTHORIZATION $OWNER;
CREATE TABLE tenant_acme.graph_entities (
	id text PRIMARY KEY, entity_type text, properties jsonb, embedding bytea,
	created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE tenant_acme.graph_relations (
	id text PRIMARY KEY, relation_type text, source_id text, target_id text,
	properties jsonb, weight real,
	created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE INDEX idx_tenant_acme_entities_type ON tenant_acme.graph_entities (entity_type);
INSERT INTO tenant_acme.graph_entities (id, entity_type, properties, embedding, created_at)
SELECT 'e' || g, 'type' || (g % 7), jsonb_build_object('n', g, 'q', 'it''s'),
       CASE WHEN g % 3 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
       '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 3000) g;
INSERT INTO tenant_acme.graph_relations (id, relation_type, source_id, target_id, weight, properties)
SELECT 'r' || g, 'rel' || (g % 3), 'e' || g, 'e' || (g + 1), g / 7.0, '{}'
  FROM generate_series(1, 2000) g;
-- the tenant's own table, with a sequence, an interval and a float
CREATE TABLE tenant_acme.notes (id serial PRIMARY KEY, body text NOT NULL,
	took interval DEFAULT '1 day 02:03:04', score float8 DEFAULT 0.1);
INSERT INTO tenant_acme.notes (body) SELECT 'note ' || g FROM generate_series(1, 500) g;
CREATE SCHEMA tenant_globex AUTHORIZATION $OWNER;
CREATE TABLE tenant_globex.graph_entities (id text PRIMARY KEY);
INSERT INTO tenant_globex.graph_entities SELECT 'g' || g FROM generate_series(1, 10) g;" ||
	bail_out "could not create the tenant schemas"

# What nobody may ever see: a schema named like a drill's scratch name.
scratch_count()
{
	sql "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgt\\_drill\\_%'"
}
# The live schema's tables: name, rows, hash of every row, and its oid.
live()
{
	sql "SELECT string_agg(c.relname || ':' || (xpath('/row/h/text()', query_to_xml(format(
		'SELECT count(*) || ''/'' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), '''') AS h FROM %I.%I t',
		n.nspname, c.relname), false, true, '')))[1]::text, ' ' ORDER BY c.relname) || ' oid:' || min(n.oid)
	       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	      WHERE n.nspname = '$1' AND c.relkind = 'r' AND c.relname <> 'notes'"
}
# Hold the drill's gate (its shared advisory lock) in a session of its own.
# Advisory locks in this test's database (tests run side by side on one
# server, and other tests' gates are advisory locks too); a waiting drill's
# is the one-key form (objsubid 1) its gate takes.
LOCKS_HERE="FROM pg_locks WHERE locktype = 'advisory'
	      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
DRILL_WAITING="$LOCKS_HERE AND NOT granted AND objsubid = 1"
gate_hold()
{
	PGAPPNAME=pgt-drill-gate psql -X -q -d "$DB" \
		-c "SELECT pg_advisory_lock(hashtext('$1/drill'))" -c "SELECT pg_sleep(600)" \
		>/dev/null 2>&1 &
	wait_until "SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		     WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'pgt-drill-gate'
		       AND a.datname = current_database()" 10
}
gate_release()
{
	sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	      WHERE application_name = 'pgt-drill-gate'" >/dev/null
}
metric_value()
{
	ctl metrics | awk -v m="$1" '$1 == m { print $2 }'
}

write_config "$T/a.yaml"
PATH="$T/bin:$PATH" start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
is "$(sql "SELECT enqueue_role FROM pgtenantd.job_kinds WHERE kind = 'restore_drill'")" pgtenantd_operate \
	"a drill runs a backup's SQL as a restore does: enqueueing it takes pgtenantd_operate"

# --- a backup records the tables of the snapshot pg_dump dumps: rows
# inserted while pg_dump waits to start are in neither the dump nor the
# record (without the snapshot they would be in the dump only).
touch "$T/slow"
id=$(insert_job backup acme)
ok "pg_dump of the backup is about to start" wait_cmd 10 test -f "$T/dump-waiting"
sql "INSERT INTO tenant_acme.notes (body) SELECT 'late ' || g FROM generate_series(1, 7) g" >/dev/null
rm -f "$T/slow" "$T/dump-waiting"
ok "the backup job succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
tables=$(sql "SELECT result->'backup'->'tables' FROM pgtenantd.jobs WHERE id = $id")
diag "recorded: $tables"
is "$(json_eval "$tables" "(:'j')::jsonb->'graph_entities'->>'rows'")" 3000 "the backup recorded graph_entities' 3000 rows"
is "$(json_eval "$tables" "(:'j')::jsonb->'graph_relations'->>'rows'")" 2000 "and graph_relations' 2000"
is "$(json_eval "$tables" "(:'j')::jsonb->'notes'->>'rows'")" 500 \
	"and notes' 500: not the 7 rows written after the snapshot was taken"
is "$(json_eval "$tables" "(:'j')::jsonb->'graph_entities'->>'hash'")" \
	"$(sql "SELECT pgtenantd.table_digests('tenant_acme')->'graph_entities'->>'hash'")" \
	"graph_entities' recorded hash is the hash of its rows now (unchanged since)"
file=$(sql "SELECT result->'backup'->>'file' FROM pgtenantd.jobs WHERE id = $id")
good_id=$(sql "SELECT result->'backup'->>'id' FROM pgtenantd.jobs WHERE id = $id")
is "$(pg_restore -f - --data-only -t notes "$file" | grep -c '^[0-9]*	late ')" 0 \
	"the dump holds none of the late rows either: it is of the same snapshot"
is "$(json_eval "$(ctl --json backups acme)" "(:'j')::jsonb->'backups'->0->>'tables_recorded'")" 3 \
	"pgtenantctl backups says the backup recorded 3 tables"

# --- a drill of the good backup while a writer keeps writing to the live
# schema (a row every 20 ms, each committed, until told to stop; any wait
# over 1 s on a lock is an error); the drill waits at its gate inside its
# transaction.
acme_before=$(live tenant_acme)
notes_before=$(sql "SELECT count(*) FROM tenant_acme.notes")
sql "CREATE TABLE public.writer_stop ()" >/dev/null || bail_out "could not create public.writer_stop"
PGAPPNAME=pgt-drill-writer psql -X -q -d "$DB" -v ON_ERROR_STOP=1 >"$T/writer.out" 2>&1 <<'EOF' &
SET lock_timeout = '1s';
SET search_path = tenant_acme;
DO $$
BEGIN
	FOR i IN 1..6000 LOOP
		EXIT WHEN EXISTS (SELECT FROM public.writer_stop);
		INSERT INTO notes (body) VALUES ('writer ' || i);
		UPDATE graph_entities SET updated_at = updated_at WHERE id = 'e' || (i % 3000 + 1);
		COMMIT;
		PERFORM pg_sleep(0.02);
	END LOOP;
END $$;
EOF
writer=$!
gate_hold g1 || bail_out "could not take the drill's gate"
id=$(insert_job restore_drill acme '{"test_gate": "g1"}')
ok "the drill restored and waits at its gate inside its transaction" \
	wait_until "SELECT count(*) = 1 $DRILL_WAITING" 30 ||
	diag_job "$id"
is "$(scratch_count)" 0 "meanwhile no other session sees the live schema renamed"
drill_pid=$(sql "SELECT pid $DRILL_WAITING")
is "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	    WHERE l.pid = $drill_pid AND c.relnamespace = 'tenant_acme'::regnamespace")" 0 \
	"the drill holds no lock on any table of the live schema"
n0=$(sql "SELECT count(*) FROM tenant_acme.notes")
sleep 1
n1=$(sql "SELECT count(*) FROM tenant_acme.notes")
ok "the writer keeps writing meanwhile ($n0, then $n1 rows)" [ "$n1" -gt "$n0" ]
ok "a new index on a live table is built meanwhile (lock_timeout 2s)" \
	sql "SET lock_timeout = '2s'; CREATE INDEX IF NOT EXISTS notes_body ON tenant_acme.notes (body)"
gate_release
ok "the drill succeeds" wait_state "$id" succeeded 60 || diag_job "$id"
result=$(sql "SELECT result->'restore_drill' FROM pgtenantd.jobs WHERE id = $id")
diag "drill: $result"
is "$(json_eval "$result" "(:'j')::jsonb->>'compared'")" true "it compared every table with the record"
is "$(json_eval "$result" "(:'j')::jsonb->'tables'->'notes'->>'rows'")" 500 "the restored copy has notes' 500 rows"
sql "INSERT INTO public.writer_stop DEFAULT VALUES" >/dev/null
ok "the writer finished without an error" wait "$writer" || diag "$(cat "$T/writer.out")"
writes=$(sql "SELECT max(substr(body, 8)::int) FROM tenant_acme.notes WHERE body LIKE 'writer %'")
ok "it wrote before, during and after the drill ($writes rows)" [ "${writes:-0}" -gt $((n1 - notes_before)) ]
is "$(sql "SELECT count(*) FROM tenant_acme.notes")" $((notes_before + writes)) \
	"none of its writes was lost"
is "$(live tenant_acme)" "$acme_before" "the live schema is the same schema (oid), with the same rows"
is "$(scratch_count)" 0 "nothing named like the scratch schema is left"
backups=$(ctl --json backups acme)
is "$(json_eval "$backups" "(:'j')::jsonb->'backups'->0->>'drill'")" passed "pgtenantctl backups shows the drill passed"
is "$(json_eval "$backups" "(:'j')::jsonb->'backups'->0->>'drill_job_id'")" "$id" "by this job"
like "$(ctl backups acme)" "passed 20[0-9-]+T" "the table has a DRILL column with the outcome and time"
is "$(metric_value 'pgtenantd_restore_drills_total{outcome="passed"}')" 1 "metrics count one passed drill"
ok "and the time of the last success" [ "$(metric_value pgtenantd_restore_drill_last_success_timestamp_seconds | cut -d. -f1)" -gt 1700000000 ]

# --- a backup damaged on disk: the drill fails on its sha256.
cp "$file" "$T/good.dump"
printf 'XXXX' | dd of="$file" bs=1 seek=2000 conv=notrunc 2>/dev/null
id=$(insert_job restore_drill acme)
ok "the drill of a damaged file fails" wait_state "$id" failed 30 || diag_job "$id"
err=$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")
like "$err" "restore drill of backup [0-9]+: .*the file has changed since it was verified: the catalog has sha256 [0-9a-f]{64}, the file now has [0-9a-f]{64}" \
	"the job's error names both hashes"
is "$(json_eval "$(ctl --json backups acme)" "(:'j')::jsonb->'backups'->0->>'drill'")" failed \
	"pgtenantctl backups shows the failed drill"
like "$(ctl backups acme)" "restore drill of backup [0-9]+: .* failed 20[0-9-]+T" "the table shows the failed drill, its message and time"
is "$(metric_value 'pgtenantd_restore_drills_total{outcome="failed"}')" 1 "metrics count the failed drill"
is "$(metric_value pgtenantd_restore_drill_failing_tenants)" 1 "and one tenant whose newest drill failed"
is "$(scratch_count)" 0 "nothing named like the scratch schema is left"
cp "$T/good.dump" "$file"

# --- a backup whose rows are not what it recorded: its pg_dump ignored
# the snapshot while rows were written.
touch "$T/slow" "$T/nosnapshot"
id=$(insert_job backup acme)
ok "pg_dump of the second backup is about to start" wait_cmd 10 test -f "$T/dump-waiting"
sql "DELETE FROM tenant_acme.graph_relations WHERE id IN ('r5', 'r6');
     UPDATE tenant_acme.graph_entities SET properties = '{\"changed\": true}' WHERE id = 'e7'" >/dev/null
rm -f "$T/slow" "$T/dump-waiting"
ok "the second backup succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
rm -f "$T/nosnapshot"
id=$(insert_job restore_drill acme)
ok "its drill fails" wait_state "$id" failed 30 || diag_job "$id"
err=$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")
diag "error: $err"
like "$err" "2 tables differ from what the backup recorded: " "the job's error counts the tables that differ"
like "$err" "table graph_entities: same 3000 rows, but the backup recorded hash [0-9a-f]{32} and the restored rows hash to [0-9a-f]{32}" \
	"it names a table whose rows changed and both hashes"
like "$err" "table graph_relations: the backup recorded 2000 rows, the restored copy has 1998" \
	"and a table with rows missing and both row counts"
is "$(scratch_count)" 0 "nothing named like the scratch schema is left"
is "$(sql "SELECT count(*) FROM tenant_acme.graph_relations")" 1998 "the live schema is untouched"

# --- a daemon killed mid-drill: its psql still rolls everything back.
acme_before=$(live tenant_acme)
gate_hold g2 || bail_out "could not take the drill's gate"
id=$(insert_job restore_drill acme "{\"backup\": \"$good_id\", \"test_gate\": \"g2\"}")
ok "a drill of backup $good_id waits at its gate" \
	wait_until "SELECT count(*) = 1 $DRILL_WAITING" 30 ||
	diag_job "$id"
kill_daemon "$DAEMON_PID"
is "$(scratch_count)" 0 "with the daemon killed, no scratch schema shows"
is "$(live tenant_acme)" "$acme_before" "and the live schema is as it was"
gate_release
ok "the orphaned drill ends" \
	wait_until "SELECT count(*) = 0 $LOCKS_HERE" 30
is "$(scratch_count)" 0 "and leaves nothing named like the scratch schema"
is "$(live tenant_acme)" "$acme_before" "nor any change to the live schema"
PATH="$T/bin:$PATH" start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not restart"
ok "the drill runs again after the lease expired and passes" wait_state "$id" succeeded 60 || diag_job "$id"
is "$(json_eval "$(ctl --json backups acme)" \
	"(SELECT b->>'drill' FROM jsonb_array_elements((:'j')::jsonb->'backups') b WHERE b->>'id' = '$good_id')")" \
	passed "the repaired backup's drill is now recorded as passed"

# --- a drill cancelled inside its transaction: psql is stopped, its
# session rolls back, nothing stays.
gate_hold g3 || bail_out "could not take the drill's gate"
id=$(insert_job restore_drill acme "{\"backup\": \"$good_id\", \"test_gate\": \"g3\"}")
ok "a drill waits at its gate" \
	wait_until "SELECT count(*) = 1 $DRILL_WAITING" 30 ||
	diag_job "$id"
sql "SELECT pgtenantd.cancel_job($id)" >/dev/null
ok "it is cancelled" wait_state "$id" cancelled 30 || diag_job "$id"
gate_release
ok "its session ends" wait_until "SELECT count(*) = 0 $LOCKS_HERE" 30
is "$(scratch_count)" 0 "and leaves nothing named like the scratch schema"
is "$(live tenant_acme)" "$acme_before" "nor any change to the live schema"

# --- a tenant without a backup.
id=$(insert_job restore_drill globex)
ok "a drill of a tenant without a backup fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"restore drill: tenant globex has no verified backup to drill \\(run a backup job first\\)" \
	"saying so"

# --- a backup that recorded no tables (as one made before drills were
# there): restored, reported, nothing compared.
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"
write_config "$T/b.yaml" "backup_digests: false"
PATH="$T/bin:$PATH" start_daemon "$T/b.yaml" "$T/b.log" || bail_out "pgtenantd did not start"
id=$(insert_job backup globex)
ok "a backup without digests succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
is "$(sql "SELECT result->'backup'->'tables' FROM pgtenantd.jobs WHERE id = $id")" null "it recorded no tables"
id=$(insert_job restore_drill globex)
ok "its drill passes" wait_state "$id" succeeded 30 || diag_job "$id"
result=$(sql "SELECT result->'restore_drill' FROM pgtenantd.jobs WHERE id = $id")
is "$(json_eval "$result" "(:'j')::jsonb->>'compared'")" false "it compared nothing"
like "$(json_eval "$result" "(:'j')::jsonb->>'note'")" "nothing to compare" "and says there was nothing to compare with"
like "$(ctl backups globex)" "passed \\(not compared\\) 20" "pgtenantctl backups says it passed without a comparison"
is "$(json_eval "$result" "(:'j')::jsonb->'tables'->'graph_entities'->>'rows'")" 10 "it reports the restored rows"
is "$(scratch_count)" 0 "nothing named like the scratch schema is left"

done_testing
