#!/bin/bash
# kill-resume.sh - a batch job survives kill -9 of its daemon: restarted on
# the same state_dir it resumes from its SQLite checkpoint; another daemon
# with an empty state_dir takes it over once the lease expired and resumes
# from the job row's progress. Either way at most one batch is redone and
# every key is done.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env kill-resume

# 200 keys, 10 a batch (fixed in batch_slow.yaml), 150 ms a batch: 3 s a job.
make_batch_tables 200
ARGS='{"ms": "150"}'

# Check what batch_log says about job ID: every key done, at most one
# batch (10 keys) done twice.
check_batches()
{
	local id=$1 what=$2
	is "$(sql "SELECT count(*) FROM public.batch_src s
		    WHERE NOT EXISTS (SELECT FROM public.batch_log l
				       WHERE l.job_id = $id AND s.k BETWEEN l.from_key AND l.to_key)")" 0 \
		"$what: every key was done"
	local twice
	twice=$(sql "SELECT count(*) FROM (
			SELECT s.k FROM public.batch_src s JOIN public.batch_log l
			    ON l.job_id = $id AND s.k BETWEEN l.from_key AND l.to_key
			 GROUP BY s.k HAVING count(*) > 1) x")
	diag "$what: $twice keys done twice; batches: $(sql "SELECT count(*) FROM public.batch_log WHERE job_id = $id")"
	ok "$what: at most one batch (10 keys) was redone" [ "${twice:-99}" -le 10 ]
	is "$(sql "SELECT count(*) FROM public.batch_log WHERE job_id = $id AND (n <> 10 OR to_key - from_key <> 9)")" 0 \
		"$what: every batch had 10 keys"
}

# ---- 1: kill -9, restart on the same state_dir
mkdir -p "$T/state-a" "$T/state-b"
write_config "$T/a.yaml" "state_dir: $T/state-a" "control_socket: $T/a.sock"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon A did not start"
id=$(insert_job batch_slow t1 "$ARGS")
ok "the batch job gets going (3 batches done)" \
	wait_until "SELECT count(*) >= 3 FROM public.batch_log WHERE job_id = $id" 15
ok "its progress is mirrored to the job row" \
	wait_until "SELECT progress <> '{}' FROM pgtenantd.jobs WHERE id = $id" 5
diag "progress: $(sql "SELECT progress FROM pgtenantd.jobs WHERE id = $id")"
kill_daemon "$DAEMON_PID"
done_before=$(sql "SELECT count(*) FROM public.batch_log WHERE job_id = $id")
is "$(job_state "$id")" running "after kill -9 the job row still says running"
ok "the job was not finished at the kill" [ "$done_before" -lt 20 ]

start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon A did not restart"
if ! ok "restarted on its state_dir, the daemon finishes the job" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
check_batches "$id" "restart"
ok "the restart did not start over (batches after the kill < 20)" \
	[ "$(sql "SELECT count(*) FROM public.batch_log WHERE job_id = $id")" -lt $((done_before + 20)) ]

# ---- 2: kill -9, another daemon with an empty state_dir takes over
id=$(insert_job batch_slow t2 "$ARGS")
ok "a second batch job gets going" \
	wait_until "SELECT count(*) >= 3 FROM public.batch_log WHERE job_id = $id" 15
kill_daemon "$DAEMON_PID"
kill_at=$(sql "SELECT clock_timestamp()")
lease_until=$(sql "SELECT lease_until FROM pgtenantd.jobs WHERE id = $id")
ok "the job row has a lease (lease_until) at the kill" [ -n "$lease_until" ]
write_config "$T/b.yaml" "state_dir: $T/state-b" "control_socket: $T/b.sock"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "daemon B did not start"
if ! ok "daemon B takes the job over after the lease and finishes it" wait_state "$id" succeeded 30; then
	diag_job "$id"
fi
check_batches "$id" "takeover"
is "$(sql "SELECT count(*) FROM public.batch_log
	    WHERE job_id = $id AND at > '$kill_at' AND at < '$lease_until'")" 0 \
	"nobody ran the job while the dead daemon's lease was valid"
ok "daemon B resumed from the job row (fewer than 20 batches after the kill)" \
	[ "$(sql "SELECT count(*) FROM public.batch_log WHERE job_id = $id AND at > '$kill_at'")" -lt 20 ]

ok "daemon B exits with status 0 on SIGTERM" stop_daemon "$DAEMON_PID"

done_testing
