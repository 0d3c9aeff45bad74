#!/bin/bash
# maint-backup.sh - backup, damage, restore: the backup job writes a custom
# format dump under backup_dir/<tenant>/ that pg_restore --list reads, with
# size, sha256 and timings in the catalog (pgtenantctl backups); the control
# socket answers while pg_dump runs; after rows are deleted and changed, a
# table dropped and another added, the restore job brings back every row
# of every table exactly; a backup changed on disk or not in the catalog is
# refused and the schema left alone; retention keeps backup_keep backups.
# The restore runs as the schema's owner, a role that is not a superuser
# (security-restore.sh has the refusals of finding 2).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env maint-backup

# pg_dump on the daemon's PATH: the real one, held on demand.
real_pg_dump=$(command -v pg_dump) || bail_out "no pg_dump"
mkdir -p "$T/bin"
cat >"$T/bin/pg_dump" <<EOF
#!/bin/sh
# held while the test's file "slow" exists (at most 60 s), at least 3 s
if [ -f "$T/slow" ]; then
	sleep 3
	for _ in \$(seq 600); do [ -f "$T/slow" ] || break; sleep 0.1; done
fi
exec "$real_pg_dump" "\$@"
EOF
chmod +x "$T/bin/pg_dump"

# The restore runs as the schema's owner, never as a superuser: the
# tenant's schema belongs to a role of its own.
OWNER=pgt_mb_owner_$$
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
CREATE INDEX idx_tenant_acme_relations_source ON tenant_acme.graph_relations (source_id);
INSERT INTO tenant_acme.graph_entities (id, entity_type, properties, embedding, created_at)
SELECT 'e' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'type' || (g % 7) END,
       jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g::text), 'quote', 'it''s \"x\"'),
       CASE WHEN g % 3 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
       '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 3000) g;
INSERT INTO tenant_acme.graph_relations (id, relation_type, source_id, target_id, weight, properties)
SELECT 'r' || g, 'rel' || (g % 3), 'e' || g, 'e' || (g + 1), g / 7.0, '{}'
  FROM generate_series(1, 2000) g;
-- the tenant's own extra table, with a sequence, a default and a comment
CREATE TABLE tenant_acme.notes (id serial PRIMARY KEY, body text NOT NULL, at date DEFAULT '2024-05-01');
COMMENT ON TABLE tenant_acme.notes IS 'acme''s notes';
INSERT INTO tenant_acme.notes (body) SELECT 'note ' || g || E'\\ttab' FROM generate_series(1, 500) g;
CREATE SCHEMA tenant_globex;
CREATE TABLE tenant_globex.graph_entities (id text PRIMARY KEY);
INSERT INTO tenant_globex.graph_entities SELECT 'g' || g FROM generate_series(1, 10) g;" ||
	bail_out "could not create the tenant schemas"

# Every table of a schema with a hash of all its rows, and its sequences.
snapshot()
{
	sql "SELECT c.relname || ':' ||
		    (xpath('/row/h/text()', query_to_xml(format(
			'SELECT count(*) || ''/'' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), '''') AS h FROM %I.%I t',
			n.nspname, c.relname), false, true, '')))[1]::text
	       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	      WHERE n.nspname = '$1' AND c.relkind = 'r'
	      ORDER BY c.relname" | tr '\n' ' '
	sql "SELECT 'seq:' || last_value FROM tenant_acme.notes_id_seq" 2>/dev/null
	sql "SELECT 'comment:' || obj_description('tenant_acme.notes'::regclass)" 2>/dev/null
}

write_config "$T/a.yaml" "backup_keep: 2"
PATH="$T/bin:$PATH" start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

before=$(snapshot tenant_acme)
globex_before=$(snapshot tenant_globex)
diag "before: $before"

# --- a backup, with pg_dump slowed down: the socket keeps answering.
touch "$T/slow"
id=$(insert_job backup acme)
ok "the backup job reaches its backup step" \
	wait_until "SELECT state = 'running' AND step = 'backup' FROM pgtenantd.jobs WHERE id = $id" 10
worst=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	t0=$(now_ms)
	ctl --json status >/dev/null || worst=99999
	t1=$(now_ms)
	[ $((t1 - t0)) -gt "$worst" ] && worst=$((t1 - t0))
	sleep 0.1
done
is "$(sql "SELECT state || '/' || step FROM pgtenantd.jobs WHERE id = $id")" running/backup \
	"pg_dump was still running after the ten requests"
# (a loop blocked on pg_dump would not answer until the test lets pg_dump
# go, up to 60 s; a loaded machine under the sanitizers took 2 s)
ok "the control socket answered status while pg_dump ran (slowest ${worst} ms)" [ "$worst" -lt 10000 ]
like "$(ctl --json status)" '"step": ?"backup"' "status shows the job in its backup step"
rm -f "$T/slow"
ok "the backup job succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
result=$(sql "SELECT result->'backup' FROM pgtenantd.jobs WHERE id = $id")
diag "result: $result"
file=$(json_eval "$result" "(:'j')::jsonb->>'file'")
like "$file" "^$T/backups/acme/tenant_acme-[0-9TZ]+-j$id\\.dump\$" \
	"the dump is under backup_dir/<tenant>/, named by schema, time and job"
ok "pg_restore --list reads it" eval 'pg_restore --list "$file" >/dev/null'
is "$(pg_restore --list "$file" | grep -c ' SCHEMA - tenant_acme ')" 1 "it holds the schema tenant_acme"
is "$(pg_restore --list "$file" | grep -c 'tenant_globex')" 0 "and nothing of tenant_globex"
is "$(json_eval "$result" "(:'j')::jsonb->>'sha256'")" "$(sha256sum "$file" | cut -c1-64)" \
	"the result has the file's sha256"
is "$(json_eval "$result" "(:'j')::jsonb->>'size_bytes'")" "$(stat -c %s "$file")" "and its size"
is "$(json_eval "$result" "(:'j')::jsonb->>'verified'")" true "and says it was verified"
ok "and how long the dump took (over the 3 s pause)" \
	[ "$(json_eval "$result" "(:'j')::jsonb->>'dump_ms'")" -ge 3000 ]
is "$(ls -A "$T/backups/acme" | grep -c partial)" 0 "no temporary file is left"
out=$(ctl --json backups acme)
is "$(json_eval "$out" "(:'j')::jsonb->'backups'->0->>'status'")" verified \
	"pgtenantctl backups acme lists it as verified"
is "$(json_eval "$out" "(:'j')::jsonb->'backups'->0->>'sha256'")" "$(sha256sum "$file" | cut -c1-64)" \
	"with its sha256"
like "$(ctl backups)" "acme +.*verified" "pgtenantctl backups renders a table"
like "$(ctl backups 'no such' 2>&1)" "tenant id" "a bad tenant id is refused"

# --- damage the schema, then restore the newest verified backup.
sql "DELETE FROM tenant_acme.graph_entities WHERE id LIKE 'e1%';
     UPDATE tenant_acme.graph_relations SET weight = -1, properties = '{\"x\": 1}' WHERE id LIKE 'r2%';
     DROP TABLE tenant_acme.notes;
     CREATE TABLE tenant_acme.intruder (x int);
     INSERT INTO tenant_globex.graph_entities VALUES ('after-backup')" ||
	bail_out "could not damage the schema"
isnt "$(snapshot tenant_acme)" "$before" "the damage shows"
id=$(insert_job restore acme)
ok "the restore job succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
after=$(snapshot tenant_acme)
is "$after" "$before" "every row of every table is as before the damage (sequence and comment too)"
is "$(sql "SELECT to_regclass('tenant_acme.intruder') IS NULL")" t \
	"a table added after the backup is gone: the schema is the backup's"
is "$(sql "SELECT count(*) FROM pg_indexes WHERE schemaname = 'tenant_acme'")" 5 "with its indexes"
is "$(sql "SELECT count(*) FROM tenant_globex.graph_entities")" 11 \
	"another tenant's schema is not touched"
is "$(sql "SELECT result->'restore'->>'file' FROM pgtenantd.jobs WHERE id = $id")" "$file" \
	"the result names the backup restored"
is "$(sql "SELECT result->'tables'->>'notes' FROM pgtenantd.jobs WHERE id = $id")" 500 \
	"and counts the restored rows"

# --- refusals leave the schema alone.
sql "UPDATE tenant_acme.notes SET body = 'changed after restore' WHERE id = 1" >/dev/null
changed=$(snapshot tenant_acme)
id=$(insert_job restore acme '{"backup": "nosuch.dump"}')
ok "a restore of an unknown backup fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "has no backup 'nosuch.dump'" \
	"saying that there is no such backup"
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 "without retrying"
printf 'x' >>"$file"
id=$(insert_job restore acme "{\"backup\": \"$(basename "$file")\"}")
ok "a restore of a backup changed on disk fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "has changed since it was made" \
	"saying its sha256 changed"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE id = $id AND progress->'passed' ? 'restore'")" 0 \
	"the destructive restore step did not run"
is "$(snapshot tenant_acme)" "$changed" "the schema is left as it was"

# --- retention: backup_keep: 2 keeps the two newest verified backups.
for i in 1 2 3; do
	id=$(insert_job backup acme)
	ok "backup $i of three more succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
done
out=$(ctl --json backups acme)
is "$(json_eval "$out" "(SELECT string_agg(b->>'status', ',') FROM jsonb_array_elements((:'j')::jsonb->'backups') b)")" \
	"verified,verified,deleted,deleted" "backup_keep: 2 leaves the two newest verified"
is "$(ls "$T/backups/acme" | grep -c '\.dump$')" 2 "and removes the older files"
id=$(insert_job restore acme "{\"backup\": \"$(json_eval "$out" "(:'j')::jsonb->'backups'->1->>'id'")\"}")
ok "a restore by catalog id succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
is "$(snapshot tenant_acme)" "$changed" "and brings back the state of that backup"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
done_testing
