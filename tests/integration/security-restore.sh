#!/bin/bash
# security-restore.sh - findings 2 and 8 of issue 10. A restore uses only a
# backup of the catalog, re-hashed right before use, whose TOC holds only
# the tenant schema's tables, and runs as a role that is not a superuser:
# a dump planted in backup_dir/<tenant>/ without a catalog row, a
# catalogued dump changed after verification and a dump whose schema has a
# CHECK constraint calling a function that makes a role SUPERUSER are all
# refused (and nobody becomes superuser); a CHECK calling a function outside
# the schema is refused before any data is loaded. Children get every
# connection setting of the daemon (PGSSLMODE, PGCONNECT_TIMEOUT,
# PGAPPNAME...), over stale PG* variables of the daemon's own environment.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env security-restore

APP=pgt_sr_app_$$
OWNER=pgt_sr_owner_$$
psql -X -q -d "$DB" -c "CREATE ROLE $APP; CREATE ROLE $OWNER" || bail_out "could not create the roles"
at_exit "psql -X -q -d \"\$DB\" -c 'DROP OWNED BY $APP, $OWNER'; psql -X -q -d \"\$DB\" -c 'DROP ROLE $APP'; psql -X -q -d \"\$DB\" -c 'DROP ROLE $OWNER'"
is_super() { sql "SELECT rolsuper FROM pg_roles WHERE rolname = '$APP'"; }

# The tenant's schema, owned by a role of its own; the restores run as it.
sql "CREATE SCHEMA tenant_acme AUTHORIZATION $OWNER;
     SET ROLE $OWNER;
     CREATE TABLE tenant_acme.items (id int PRIMARY KEY, v text);
     INSERT INTO tenant_acme.items SELECT g, 'v' || g FROM generate_series(1, 100) g" ||
	bail_out "could not create the tenant schema"

write_config "$T/a.yaml" \
	"database: \"dbname=$DB sslmode=disable connect_timeout=7 application_name=pgt-sr-child\""
# The daemon's own environment has stale PG* variables that contradict
# database: (libpq lets the conninfo win for the daemon itself).
mkdir -p "$T/bin"
cat >"$T/bin/pgtenantd" <<EOF
#!/bin/sh
PGSSLMODE=require PGCONNECT_TIMEOUT=99 PGAPPNAME=stale-app
export PGSSLMODE PGCONNECT_TIMEOUT PGAPPNAME
exec "$PGTENANTD" "\$@"
EOF
chmod +x "$T/bin/pgtenantd"
PGTENANTD=$T/bin/pgtenantd start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"

# --- finding 8: an exec child sees the daemon's connection settings.
id=$(insert_job exec_env acme "{\"out\": \"$T/env.txt\"}")
ok "finding 8: the exec step succeeds" wait_state "$id" succeeded 20 || diag_job "$id"
env_seen=$(cat "$T/env.txt" 2>/dev/null)
diag "$(grep -v PGPASSWORD "$T/env.txt" 2>/dev/null)"
like "$env_seen" "(^|$(printf '\n'))PGSSLMODE=disable($|$(printf '\n'))" \
	"finding 8: the child gets sslmode from database:, not the daemon's stale PGSSLMODE"
like "$env_seen" "PGCONNECT_TIMEOUT=7($|$(printf '\n'))" "and connect_timeout"
like "$env_seen" "PGAPPNAME=pgt-sr-child($|$(printf '\n'))" "and application_name"
like "$env_seen" "PGDATABASE=$DB($|$(printf '\n'))" "and the database"

# --- a normal backup and restore work, as the schema's owner.
id=$(insert_job backup acme)
ok "a backup succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
good=$(sql "SELECT result->'backup'->>'file' FROM pgtenantd.jobs WHERE id = $id")
sql "DELETE FROM tenant_acme.items WHERE id > 50" >/dev/null
id=$(insert_job restore acme)
ok "a restore of it succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
is "$(sql "SELECT count(*) FROM tenant_acme.items")" 100 "and brings the rows back"
is "$(sql "SELECT tableowner FROM pg_tables WHERE schemaname = 'tenant_acme' AND tablename = 'items'")" \
	"$OWNER" "the restored table belongs to the restore role, the schema's owner"

# --- finding 2: a dump planted in backup_dir/<tenant>/ without a catalog row.
# A real pg_dump of a crafted schema whose CHECK calls a function that
# makes the application role a superuser.
sql "CREATE DATABASE ${DB}_evil" >/dev/null || bail_out "could not create the crafted database"
at_exit "dropdb --if-exists ${DB}_evil"
psql -X -q -v ON_ERROR_STOP=1 -d "${DB}_evil" -c "CREATE SCHEMA tenant_acme;
CREATE FUNCTION tenant_acme.escalate(int) RETURNS boolean LANGUAGE plpgsql AS
\$\$BEGIN EXECUTE 'ALTER ROLE $APP SUPERUSER'; RETURN true; END\$\$;
CREATE TABLE tenant_acme.items (id int PRIMARY KEY CHECK (tenant_acme.escalate(id)), v text);
INSERT INTO tenant_acme.items VALUES (1, 'x')" >/dev/null && sql "ALTER ROLE $APP NOSUPERUSER" >/dev/null ||
	bail_out "could not create the crafted schema"
planted=$T/backups/acme/planted.dump
pg_dump -d "${DB}_evil" --format=custom --schema=tenant_acme --file="$planted" ||
	bail_out "pg_dump of the crafted schema failed"
is "$(is_super)" f "the application role is not a superuser"
before=$(sql "SELECT count(*) || ':' || coalesce(max(v), '') FROM tenant_acme.items")
id=$(insert_job restore acme '{"backup": "planted.dump"}')
ok "finding 2: a restore of a dump without a catalog row fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "has no backup 'planted.dump' in its catalog" \
	"saying it is not in the catalog"
is "$(is_super)" f "finding 2: the planted dump made nobody a superuser"
is "$(sql "SELECT count(*) || ':' || coalesce(max(v), '') FROM tenant_acme.items")" "$before" "the schema is left alone"

# --- finding 2: a catalogued dump changed after it was verified (a forged
# job row cannot skip the find step: the restore step checks again).
cp "$good" "$T/good.copy"
printf 'x' >>"$good"
id=$(insert_job restore acme "{\"backup\": \"$(basename "$good")\"}")
ok "finding 2: a restore of a catalogued dump changed on disk fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" "has changed since it was made" \
	"saying its sha256 changed"
cp "$T/good.copy" "$good"

# --- finding 2: the crafted schema backed up by the daemon itself is in
# the catalog, but its TOC holds a FUNCTION: refused, nobody escalates.
sql "SET ROLE $OWNER;
     CREATE FUNCTION tenant_acme.escalate(int) RETURNS boolean LANGUAGE plpgsql AS
     \$\$BEGIN EXECUTE 'ALTER ROLE $APP SUPERUSER'; RETURN true; END\$\$;
     ALTER TABLE tenant_acme.items ADD CONSTRAINT esc CHECK (tenant_acme.escalate(id)) NOT VALID" >/dev/null ||
	bail_out "could not add the crafted function"
id=$(insert_job backup acme)
ok "a backup of the schema with the function succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
evil=$(sql "SELECT result->'backup'->>'file' FROM pgtenantd.jobs WHERE id = $id")
pg_restore --list "$evil" | grep -q "FUNCTION tenant_acme escalate" || bail_out "the dump holds no function"
id=$(insert_job restore acme "{\"backup\": \"$(basename "$evil")\"}")
ok "finding 2: the restore of a dump with a function in the schema fails" wait_state "$id" failed 30 || diag_job "$id"
err=$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")
like "$err" "refused: the dump holds an entry .*'[0-9]+; [0-9]+ [0-9]+ FUNCTION tenant_acme escalate\\(integer\\) $OWNER'" \
	"refused by the TOC check, which names the function's entry"
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 "without retrying"
is "$(is_super)" f "finding 2: the application role is NOT a superuser afterwards"

# --- a CHECK calling a function outside the schema: the TOC is clean, the
# dependency check refuses it before any row is loaded (such a function
# could RESET ROLE back to the daemon's superuser).
sql "ALTER TABLE tenant_acme.items DROP CONSTRAINT esc; DROP FUNCTION tenant_acme.escalate(int);
     CREATE FUNCTION public.pgt_sr_escalate_$$(int) RETURNS boolean LANGUAGE plpgsql AS
     \$\$BEGIN RESET ROLE; EXECUTE 'ALTER ROLE $APP SUPERUSER'; RETURN true; END\$\$;
     GRANT EXECUTE ON FUNCTION public.pgt_sr_escalate_$$(int) TO $OWNER;
     ALTER TABLE tenant_acme.items ADD CONSTRAINT esc2 CHECK (public.pgt_sr_escalate_$$(id)) NOT VALID" >/dev/null ||
	bail_out "could not add the outside function"
id=$(insert_job backup acme)
ok "a backup of the schema calling an outside function succeeds" wait_state "$id" succeeded 30 || diag_job "$id"
outside=$(sql "SELECT result->'backup'->>'file' FROM pgtenantd.jobs WHERE id = $id")
id=$(insert_job restore acme "{\"backup\": \"$(basename "$outside")\"}")
ok "finding 2: its restore fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"refused: constraint esc2 on table tenant_acme.items depends on function public.pgt_sr_escalate_$$\\(integer\\)" \
	"refused by the dependency check, naming the constraint and the function"
is "$(is_super)" f "finding 2: nobody became a superuser"
is "$(sql "SELECT count(*) FROM tenant_acme.items")" 100 "the schema is left as it was"

# --- a superuser as the restore role is refused.
write_config "$T/b.yaml" "restore_role: $PGUSER" "control_socket: $T/ctl-b.sock"
ok "stop the daemon" stop_daemon "$DAEMON_PID"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "pgtenantd did not start again"
id=$(insert_job restore acme "{\"backup\": \"$(basename "$good")\"}")
ok "finding 2: a restore with a superuser as restore_role fails" wait_state "$id" failed 30 || diag_job "$id"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $id")" \
	"refused: its restore role $PGUSER \\(restore_role\\) is a superuser" "saying so"
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 "without retrying"

ok "SIGTERM: the daemon exits with status 0" stop_daemon "$DAEMON_PID"
done_testing
