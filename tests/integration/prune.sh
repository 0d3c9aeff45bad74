#!/bin/bash
# prune.sh - issue 12, bounded history: the daemon deletes exactly the
# finished jobs, fired schedule slots and catalog rows of removed backups
# past the ages it keeps (keep_succeeded_jobs, keep_failed_jobs for failed
# and cancelled, keep_schedule_slots but never a schedule's newest slot,
# keep_removed_backups), and nothing else: not a queued or running job,
# not a recent one. pgtenantd.prune_jobs works a batch at a time.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env prune

keep=("keep_succeeded_jobs: 14d" "keep_failed_jobs: 90d" "keep_schedule_slots: 30d"
	"keep_removed_backups: 90d")

# History with known ages: N jobs of STATE finished DAYS ago (rows that an
# INSERT cannot make; the table's owner writes them, as the daemon does).
aged_jobs() # TAG STATE N DAYS
{
	# one transaction: no daemon sees the rows before they are aged
	sql "INSERT INTO pgtenantd.jobs (kind, tenant_id)
	     SELECT 'noop', '$1-' || g FROM generate_series(1, $3) g;
	     UPDATE pgtenantd.jobs j SET state = '$2',
		    created_at = now() - interval '$4 days 1 hour',
		    finished_at = CASE WHEN '$2' IN ('succeeded', 'failed', 'cancelled')
				       THEN now() - interval '$4 days' END,
		    -- a queued one is not due: no daemon runs it meanwhile
		    run_at = now() + interval '1 day'
	      WHERE j.tenant_id LIKE '$1-%'" >/dev/null || bail_out "could not make the $1 jobs"
}
make_history()
{
	aged_jobs s-old succeeded 7 20
	aged_jobs s-new succeeded 3 1
	aged_jobs f-old failed 4 100
	aged_jobs f-mid failed 2 20
	aged_jobs c-old cancelled 2 100
	aged_jobs q-old queued 2 100
	sql "INSERT INTO pgtenantd.schedule_slots (schedule, slot, kind, fired_at) VALUES
		('nightly', now() - interval '40 days', 'noop', now() - interval '40 days'),
		('nightly', now() - interval '35 days', 'noop', now() - interval '35 days'),
		('nightly', now() - interval '31 days', 'noop', now() - interval '31 days'),
		('nightly', now() - interval '2 days', 'noop', now() - interval '2 days'),
		('weekly', now() - interval '60 days', 'noop', now() - interval '60 days')" >/dev/null ||
		bail_out "could not make the schedule slots"
}

# ---- the SQL functions, with the daemon's own pruning an hour away
write_config "$T/a.yaml" "prune_interval: 1h" "${keep[@]}"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
make_history
is "$(sql "SELECT pgtenantd.prune_jobs('{succeeded}', '14 days', 3)")" 3 "prune_jobs: a batch of 3"
is "$(sql "SELECT pgtenantd.prune_jobs('{succeeded}', '14 days', 3)")" 3 "prune_jobs: the next batch of 3"
is "$(sql "SELECT pgtenantd.prune_jobs('{succeeded}', '14 days', 3)")" 1 "prune_jobs: the last one"
is "$(sql "SELECT pgtenantd.prune_jobs('{succeeded}', '14 days', 3)")" 0 "prune_jobs: then none"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE tenant_id LIKE 's-old-%'")" 0 \
	"prune_jobs: every succeeded job older than 14 days is gone"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE tenant_id NOT LIKE 's-old-%'")" 13 \
	"prune_jobs: nothing else was touched"
is "$(sql "SELECT pgtenantd.prune_jobs('{queued,running}', '1 day', 100)")" 0 \
	"prune_jobs: never a queued or running job, whatever it is asked"
# version 7: each batch starts after the (finished_at, id) the last one
# reached; the four failed jobs of 100 days ago finished at the same time
f100=$(sql "SELECT max(finished_at) FROM pgtenantd.jobs WHERE tenant_id LIKE 'f-old-%'")
f3=$(sql "SELECT id FROM pgtenantd.jobs WHERE tenant_id LIKE 'f-old-%' ORDER BY id OFFSET 2 LIMIT 1")
is "$(sql "SELECT deleted FROM pgtenantd.prune_jobs_from('{failed}', '10 days', 10, now() - interval '15 days', 0)")" 0 \
	"prune_jobs_from: nothing that finished before the position is deleted (the failed jobs of 20 days ago)"
is "$(sql "SELECT deleted || ' ' || (reached_at = '$f100') || ' ' || (reached_id = $f3)
	    FROM pgtenantd.prune_jobs_from('{failed,cancelled}', '90 days', 3, '-infinity', 0)")" "3 true true" \
	"prune_jobs_from: a batch of 3 of the 4 failed jobs that finished 100 days ago together, reaching the third"
is "$(sql "SELECT deleted FROM pgtenantd.prune_jobs_from('{failed,cancelled}', '90 days', 4, '$f100', $f3)")" 3 \
	"prune_jobs_from: the next batch starts there: the fourth, which finished at that same time, and the two cancelled ones"
is "$(sql "SELECT deleted || ' ' || coalesce(reached_at::text, 'none')
	    FROM pgtenantd.prune_jobs_from('{failed,cancelled}', '90 days', 4, '$f100', $f3)")" "0 none" \
	"prune_jobs_from: then none, and no position"
is "$(sql "SELECT string_agg(DISTINCT split_part(tenant_id, '-', 1) || '-' || split_part(tenant_id, '-', 2), ' ')
	    FROM pgtenantd.jobs WHERE state IN ('failed', 'cancelled')")" "f-mid" \
	"prune_jobs_from: the failed and cancelled jobs over 90 days are gone, those of 20 days stay"
is "$(sql "SELECT pgtenantd.prune_slots('30 days', 100)")" 3 \
	"prune_slots: the three slots of nightly over 30 days old"
is "$(sql "SELECT string_agg(schedule || ':' || (now() - slot > interval '30 days'), ' ' ORDER BY schedule, slot)
	    FROM pgtenantd.schedule_slots")" "nightly:false weekly:true" \
	"prune_slots: nightly's recent slot and weekly's only one, 60 days old, stay (a schedule's newest slot always does)"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"
sql "DELETE FROM pgtenantd.jobs; DELETE FROM pgtenantd.schedule_slots" >/dev/null

# ---- the daemon prunes by itself, every prune_interval
make_history
store=$T/state/pgtenantd.sqlite
sqlite3 "$store" "INSERT INTO backups (tenant_id, schema, file, status, started_at, deleted_at) VALUES
	('t1', 'tenant_t1', 'a.dump', 'deleted', strftime('%s','now') - 101 * 86400, strftime('%s','now') - 100 * 86400),
	('t1', 'tenant_t1', 'b.dump', 'deleted', strftime('%s','now') - 96 * 86400, strftime('%s','now') - 95 * 86400),
	('t1', 'tenant_t1', 'c.dump', 'deleted', strftime('%s','now') - 2 * 86400, strftime('%s','now') - 86400),
	('t1', 'tenant_t1', 'd.dump', 'verified', strftime('%s','now') - 200 * 86400, NULL)" ||
	bail_out "could not plant the backup catalog rows"
write_config "$T/b.yaml" "prune_interval: 1s" "${keep[@]}"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "pgtenantd did not restart"
ok "the daemon prunes within a few seconds" \
	wait_until "SELECT count(*) = 7 FROM pgtenantd.jobs" 10
is "$(sql "SELECT string_agg(DISTINCT split_part(tenant_id, '-', 1) || '-' || split_part(tenant_id, '-', 2), ' ')
	    FROM pgtenantd.jobs")" "f-mid q-old s-new" \
	"exactly the succeeded jobs over 14 days and the failed and cancelled over 90 are gone"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots")" 2 "the three old slots are gone, the newest of each schedule stays"
ok "the log says what it pruned" \
	wait_cmd 5 grep -q "pruned history: 7 succeeded job(s), 6 failed or cancelled job(s), 3 schedule slot(s), 2 removed backup(s) in the catalog" "$T/b.log"
like "$(ctl metrics)" "pgtenantd_history_pruned_total 18" "metrics: history_pruned_total counts the 18 rows"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"
is "$(sqlite3 "$store" "SELECT group_concat(file, ' ') FROM (SELECT file FROM backups ORDER BY file)")" "c.dump d.dump" \
	"the catalog rows of backups removed over 90 days ago are gone; a recent removal and a verified backup stay"

# ---- 0 keeps for ever (succeeded jobs still pruned: the rounds ran)
sql "DELETE FROM pgtenantd.jobs; DELETE FROM pgtenantd.schedule_slots" >/dev/null
make_history
write_config "$T/c.yaml" "prune_interval: 1s" "keep_succeeded_jobs: 14d" "keep_failed_jobs: 0" \
	"keep_schedule_slots: 0" "keep_removed_backups: 0"
start_daemon "$T/c.yaml" "$T/c.log" || bail_out "pgtenantd did not restart"
ok "keep: a round ran (the old succeeded jobs are gone)" \
	wait_until "SELECT count(*) = 0 FROM pgtenantd.jobs WHERE tenant_id LIKE 's-old-%'" 10
sleep 1.5 # another round
is "$(sql "SELECT count(*) FROM pgtenantd.jobs")" 13 "keep_failed_jobs: 0 keeps every failed and cancelled job"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots")" 5 "keep_schedule_slots: 0 keeps every slot"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

# ---- fleets: finished and cancelled ones past keep_fleets go, with their
# members; a running or paused one never does, however old
make_fleet()
{ # make_fleet NAME STATE DAYS_AGO (finished_at; NULL for running, paused)
	sql "WITH f AS (
		INSERT INTO pgtenantd.fleets (name, state, started_by, kind, args, max_attempts,
					      max_parallel, time_zone, on_failure, created_at, finished_at)
		VALUES ('$1', '$2', current_user, 'migrate_to_separate_schema', '{}', 3, 1, 'UTC', 'pause',
			now() - interval '$3 days 1 hour',
			CASE WHEN '$2' IN ('finished', 'cancelled') THEN now() - interval '$3 days' END)
		RETURNING id)
	     INSERT INTO pgtenantd.fleet_members (fleet_id, position, tenant_id, job_id, rows, bytes, state)
	     SELECT f.id, g, '$1-' || g, 1000000 + g, 10, 100, 'done' FROM f, generate_series(1, 2) g" >/dev/null ||
		bail_out "could not make fleet $1"
}
make_fleet fin-old finished 100
make_fleet can-old cancelled 95
make_fleet fin-new finished 10
make_fleet run-old running 200
make_fleet pau-old paused 200
is "$(sql "SELECT pgtenantd.prune_fleets('90 days', 1)")" 1 "prune_fleets: a batch of 1"
is "$(sql "SELECT pgtenantd.prune_fleets('90 days', 5)")" 1 "prune_fleets: the other one past 90 days"
is "$(sql "SELECT string_agg(name, ' ' ORDER BY name) FROM pgtenantd.fleets")" "fin-new pau-old run-old" \
	"prune_fleets: the finished and the cancelled fleet over 90 days are gone; a recent one, a running and a paused one stay"
is "$(sql "SELECT count(*) FROM pgtenantd.fleet_members")" 6 "prune_fleets: their members went with them"
sql "DELETE FROM pgtenantd.fleets" >/dev/null
make_fleet fin-old finished 100
make_fleet fin-new finished 10
make_fleet run-old running 200
write_config "$T/d.yaml" "prune_interval: 1s" "keep_fleets: 30d"
start_daemon "$T/d.yaml" "$T/d.log" || bail_out "pgtenantd did not restart"
ok "keep_fleets: the daemon prunes the finished fleet over 30 days old" \
	wait_until "SELECT count(*) = 0 FROM pgtenantd.fleets WHERE name = 'fin-old'" 10
is "$(sql "SELECT string_agg(name, ' ' ORDER BY name) FROM pgtenantd.fleets")" "fin-new run-old" \
	"keep_fleets: a fleet finished 10 days ago and a running one stay"
ok "the log counts the fleet" wait_cmd 5 grep -q "tenant history row(s), 1 fleet(s)" "$T/d.log"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

done_testing
