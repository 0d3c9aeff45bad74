#!/bin/bash
# valgrind.sh - the daemon under valgrind memcheck through a whole cycle:
# start, jobs of every test kind (one failing after a retry, one cancelled,
# one running a child process, one in batches), control socket commands
# good and bad, a reload, SIGHUP and SIGTERM. Memcheck must find no invalid
# access and no definite leak (its exit status and its log both say).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
command -v valgrind >/dev/null || skip_all "valgrind is not installed (scripts/deps installs it)"
# ASan's shadow memory and valgrind do not mix.
grep -q __asan_init "$PGTENANTD" 2>/dev/null &&
	skip_all "the daemon is built with sanitizers (valgrind cannot run it)"
make_env valgrind

# start_daemon runs $PGTENANTD: a wrapper that execs the real daemon
# under memcheck, so that the daemon's pid is valgrind's.
real_daemon=$PGTENANTD
PGTENANTD=$T/pgtenantd-memcheck
cat >"$PGTENANTD" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --error-exitcode=99 \\
	--leak-check=full --show-leak-kinds=definite \\
	--errors-for-leak-kinds=definite --track-origins=yes \\
	--child-silent-after-fork=yes --num-callers=30 \\
	--log-file=$T/memcheck.%p.log "$real_daemon" "\$@"
EOF
chmod +x "$PGTENANTD"

# Show memcheck's findings (its log without the banner) as TAP comments.
show_memcheck()
{
	local f
	for f in "$T"/memcheck.*.log; do
		[ -f "$f" ] || continue
		diag "---- $f"
		diag "$(grep -v '^==[0-9]*== *$' "$f" | grep -E -A 25 'Invalid|uninitialised|definitely lost in|Mismatched|overlap|ERROR SUMMARY|LEAK SUMMARY' | head -n 150)"
	done
}

sql "CREATE TABLE public.test_runs (
	job_id bigint, tenant_id text, started timestamptz, ended timestamptz,
	app text, attempt int)" ||
	bail_out "could not create the test tables"
make_batch_tables 50

# Everything is slower under valgrind: a longer lease and shutdown.
write_config "$T/a.yaml" "lease: 10s" "heartbeat_interval: 1s" \
	"shutdown_timeout: 20s"
# memcheck starts the daemon many times slower: on a loaded machine 10 s
# is not enough
DAEMON_START_TIMEOUT=60 start_daemon "$T/a.yaml" "$T/a.log" || {
	show_memcheck
	bail_out "pgtenantd did not start under valgrind"
}
pid=$DAEMON_PID
ok "the daemon runs under valgrind" grep -q 'Memcheck' "$T"/memcheck.$pid.log

noop=$(insert_job noop t-noop)
run=$(insert_job record_run t-run '{"ms": "50"}')
stats=$(insert_job tenant_stats t-stats)
echo_id=$(insert_job exec_echo t-exec)
batch=$(insert_job batch_slow t-batch '{"ms": "10"}')
fail=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, max_attempts)
	    VALUES ('fail_sql', 't-fail', 2) RETURNING id")
sleep_id=$(insert_job sleep t-sleep '{"seconds": "30"}')

for id in "$noop" "$run" "$stats" "$echo_id" "$batch"; do
	ok "job $id ($(sql "SELECT kind FROM pgtenantd.jobs WHERE id = $id")) succeeds" \
		wait_state "$id" succeeded 60 || diag_job "$id"
done
ok "the fail_sql job fails after 2 attempts" wait_state "$fail" failed 60 ||
	diag_job "$fail"
is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $fail")" 2 \
	"it was tried twice"
ok "the sleep job runs" wait_state "$sleep_id" running 30

# The control socket: every command, and requests it must refuse.
for cmd in status "jobs" "jobs running" "job $sleep_id" "job 999999" \
	schedules backups "backups t-noop" metrics pause resume reload \
	"nosuchcommand x y"; do
	out=$(ctl --json $cmd 2>&1)
	like "$out" '"ok": *(true|false)' "pgtenantctl $cmd answers"
done
out=$(ctl_raw "$CTL_SOCK" '{"command": "status", "args": [1, 2]}')
like "$out" '"ok": *false' "a bad JSON request is refused"
out=$(ctl_raw "$CTL_SOCK" "$(printf 'status\001')")
like "$out" '"ok": *false' "a request with a control character is refused"
out=$(ctl_raw "$CTL_SOCK" "$(head -c 70000 /dev/zero | tr '\0' x)")
like "$out" '"ok": *false' "a line over 64 kB is refused"

out=$(ctl --json cancel "$sleep_id" 2>&1)
like "$out" '"ok": *true' "cancel of the running sleep job is accepted"
ok "the sleep job ends cancelled" wait_state "$sleep_id" cancelled 30 ||
	diag_job "$sleep_id"

kill -HUP "$pid"
late=$(insert_job noop t-late)
ok "after SIGHUP a job still runs" wait_state "$late" succeeded 60

# A client that is still connected at SIGTERM must be freed too.
exec 7< <(timeout 120 perl -MIO::Socket::UNIX -e '$| = 1; my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die; print "connected\n"; sleep 100;' "$CTL_SOCK")
silent=$!
at_exit "kill $silent"
read -r -t 20 line <&7
is "$line" connected "a silent client is connected"
stop_daemon "$pid" 90
status=$?
kill "$silent" 2>/dev/null
exec 7<&-
is "$status" 0 "SIGTERM: the daemon exits with status 0 (memcheck's 99 means errors)"
log=$T/memcheck.$pid.log
like "$(grep 'ERROR SUMMARY' "$log")" 'ERROR SUMMARY: 0 errors' \
	"memcheck: no invalid access or use of uninitialised memory"
unlike "$(grep 'definitely lost:' "$log")" 'definitely lost: [1-9]' \
	"memcheck: no definite leak"
[ "$TAP_FAILED" -gt 0 ] && show_memcheck

done_testing
