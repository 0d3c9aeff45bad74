#!/bin/bash
# lost-commit.sh - a PostgreSQL crash that loses commits the daemon saw
# (synchronous_commit = off: the WAL writer had not written them): at the
# entry of every step of migrate_to_separate_schema and of a test kind
# (batch, transactional for_each, destructive batch) the commit that moves
# the job on is lost while SQLite already holds it. The job row is the
# authority: the job resumes from it and ends with every row moved, every
# key and index made and nothing deleted that was not copied. Uses its own
# PostgreSQL, which it crashes.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
PG_TMP=$top_srcdir/scripts/pg-tmp
[ -f "$PG_TMP" ] || skip_all "no scripts/pg-tmp"

pg_tmp()
{
	if [ -x "$PG_TMP" ]; then "$PG_TMP" "$@"; else sh "$PG_TMP" "$@"; fi
}

make_tmp lost-commit
shared_pg="${PGHOST:-}:${PGPORT:-}"
pg_env=$(pg_tmp start --fast --port $((20000 + ($$ + 7919) % 20000)) "$T/pg") ||
	bail_out "scripts/pg-tmp start failed"
at_exit "pg_tmp stop '$T/pg'"
eval "$pg_env"
[ "${PGHOST:-}:${PGPORT:-}" != "$shared_pg" ] ||
	bail_out "scripts/pg-tmp start did not point PGHOST/PGPORT at a new server"
# Nothing but the WAL writer may write WAL out behind the test's back: no
# autovacuum, no background writer, no timed checkpoint. The WAL writer
# itself is slow, so that only durable() makes commits safe: were it
# ineffective, the crashes would lose more than the one commit.
printf '%s\n' "autovacuum = off" "bgwriter_lru_maxpages = 0" \
	"checkpoint_timeout = 1h" "max_wal_size = 4GB" "wal_writer_delay = 10s" >>"$T/pg/data/postgresql.conf" ||
	bail_out "cannot configure the server"
pg_tmp restart "$T/pg" >/dev/null || bail_out "scripts/pg-tmp restart failed"
diag "own PostgreSQL at PGHOST=$PGHOST PGPORT=${PGPORT:-}"
make_db

mig_schema
mig_fill acme-corp 150 300
mig_fill beta 50 100
mig_fill '' 10 20
mig_snapshot acme-corp
sql "CREATE TABLE public.lc_src (k int PRIMARY KEY);
     INSERT INTO public.lc_src SELECT generate_series(1, 60);
     CREATE TABLE public.lc_dst (k int PRIMARY KEY);
     CREATE TABLE public.lc_each (n int PRIMARY KEY);
     CREATE TABLE public.lc_flush (n int)" >/dev/null ||
	bail_out "could not create the test kind's tables"

write_config "$T/a.yaml" "lease: 30s" "heartbeat_interval: 1s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "the daemon did not start"

# Everything committed so far is on disk: the WAL is flushed past where it
# ended when this began. A commit waits for the flush only if its
# transaction wrote WAL before the commit record (RecordTransactionCommit):
# one that only took an xid (SELECT txid_current()) commits asynchronously
# even under synchronous_commit = on. So a row is written, and the flush
# position checked.
durable()
{
	local lsn
	lsn=$(sql "SELECT pg_current_wal_insert_lsn()") || return 1
	sql "BEGIN; SET LOCAL synchronous_commit = on;
	     INSERT INTO public.lc_flush VALUES (1); COMMIT" >/dev/null || return 1
	[ "$(sql "SELECT pg_current_wal_flush_lsn() >= '$lsn'::pg_lsn")" = t ] ||
		{ diag "the WAL is not flushed up to $lsn"; return 1; }
}

# The job's position as the row says: STEP/N (batches or for_each rows).
position()
{
	sql "SELECT coalesce(step, '-') || '/' || coalesce(progress->>'batches',
						 progress->>'for_each_done', '0')
	       FROM pgtenantd.jobs WHERE id = $1"
}

# Lose the commit that follows position STEP/N of job ID: the job waits at
# the gate inside STEP after N batches (or rows); that much is made
# durable, the WAL writer is stopped, the job commits once more (SQLite
# records it), then PostgreSQL crashes and restarts (the WAL writer
# killed first, then an immediate stop), and the row is back at STEP/N.
# After the last step the job's end is lost too: its lease expires and it
# runs its last step again. A case that cannot be set up is a failed check
# of its own; the next case goes on from wherever the job is.
lost=()
lose_after()
{
	local id=$1 step=$2 n=$3 what="$MIG_KIND: lose the commit after $2/$3" before after ww
	if [ "$(sql "SELECT state FROM pgtenantd.jobs WHERE id = $id")" != running ] &&
		! wait_until "SELECT state = 'running' FROM pgtenantd.jobs WHERE id = $id" 30; then
		ok "$what: the job is still running" false
		diag_job "$id"
		return 1
	fi
	if ! gate_to "$id" "$step" "$n"; then
		ok "$what: the job waits at the gate there" false
		return 1
	fi
	before=$(position "$id")
	if ! durable; then
		ok "$what: the WAL is flushed up to $before" false
		return 1
	fi
	ww=$(sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
	if [ -z "$ww" ] || ! kill -STOP "$ww"; then
		ok "$what: the WAL writer is stopped" false
		return 1
	fi
	# At the gate again (SQLite has the commit), or done after the last step.
	if ! gate_pass || ! wait_until "SELECT ($MIG_GATE_LOCKS) > 0 OR state <> 'running'
					  FROM pgtenantd.jobs WHERE id = $id" 30; then
		kill -CONT "$ww"
		ok "$what: the job commits once more and gets to the gate again" false
		diag_job "$id"
		return 1
	fi
	after=$(position "$id")
	# The daemon waits while the server is down and the gate is taken again.
	kill -STOP "$DAEMON_PID"
	kill -KILL "$ww"
	pg_tmp restart --immediate "$T/pg" >/dev/null 2>&1 || bail_out "PostgreSQL did not restart"
	gate_reset
	gate_hold || bail_out "could not take the test gate again"
	kill -CONT "$DAEMON_PID"
	lost+=("$step/$n: $after lost, back at $(position "$id")")
	is "$(position "$id")" "$before" \
		"$MIG_KIND: the crash lost the commit after $before (the row had said $after)"
}

# ---------------------------------------------------------------- test kind
MIG_KIND=lost_commit
gate_hold || bail_out "could not take the test gate"
id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
	  VALUES ('lost_commit', 'lc', jsonb_build_object('test_gate', :'g'), 100)
	  RETURNING id" -v g="$MIG_GATE")
for at in "copy 0" "copy 2" "each 0" "each 2" "purge 0" "purge 2"; do
	lose_after "$id" $at
done
gate_release
if ! ok "lost_commit: after ${#lost[@]} lost commits the job succeeds" wait_state "$id" succeeded 60; then
	diag_job "$id"
fi
is "$(sql "SELECT count(*) FROM public.lc_dst")" 60 "lost_commit: every key was copied"
is "$(sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM public.lc_each")" "1,2,3,4" \
	"lost_commit: every for_each row was done"
is "$(sql "SELECT count(*) FROM public.lc_src")" 0 "lost_commit: every key was deleted"
like "$(cat "$T/a.log")" "resumed delete step: one more pass from the start" \
	"lost_commit: the resumed delete step swept once more"
like "$(cat "$T/a.log")" "the local checkpoint .* is ahead of the job row" \
	"lost_commit: the daemon saw its checkpoint ahead of the row and said so"
diag "lost: $(printf '%s; ' "${lost[@]}")"

# ---------------------------------------------------------------- migration
MIG_KIND=migrate_to_separate_schema
lost=()
gate_hold || bail_out "could not take the test gate"
id=$(mig_insert acme-corp "{\"test_gate\": \"$MIG_GATE\", \"batch_cap\": \"1\"}")
steps=$(sql "SELECT array_to_string(steps, ' ') FROM pgtenantd.job_kinds WHERE kind = '$MIG_KIND'")
# A job that failed on the way (loudly: verify or lift) fails the cases
# after it and the checks below, as it must.
for step in $steps; do
	lose_after "$id" "$step" 0
done
gate_release
diag "lost: $(printf '%s; ' "${lost[@]}")"
if ! ok "migration: after ${#lost[@]} lost commits the job succeeds" wait_state "$id" succeeded 90; then
	diag_job "$id"
fi
mig_check_done acme-corp tenant_acme_corp "migration after lost commits"
is "$(sql "SELECT string_agg(c.conrelid::regclass::text, ',' ORDER BY 1) FROM pg_constraint c
	    WHERE c.connamespace = 'tenant_acme_corp'::regnamespace AND c.contype = 'p'")" \
	"tenant_acme_corp.graph_entities,tenant_acme_corp.graph_relations" \
	"migration after lost commits: both tenant tables have their primary key"
is "$(sql "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	    WHERE c.relnamespace = 'tenant_acme_corp'::regnamespace AND NOT i.indisvalid")" 0 \
	"migration after lost commits: no invalid index"

ok "the daemon stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
