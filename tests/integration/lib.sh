# lib.sh - helpers for the integration tests, sourced by each tests/integration/*.sh.
#
# The tests drive the real pgtenantd and pgtenantctl against the PostgreSQL
# that PGHOST/PGPORT/PGUSER point at (scripts/check starts a throwaway one)
# and print TAP for the Automake driver. Without PGHOST they skip.
#
#   . "$top_srcdir/tests/integration/lib.sh"
#   require_pg
#   make_env run-job                 # $T temp dir, $DB database, $JOBS_DIR
#   write_config "$T/a.yaml" "workers: 1"
#   start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon did not start"
#   id=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', 't') RETURNING id")
#   ok "the job succeeds" wait_state "$id" succeeded
#   is "$(sql "SELECT attempts FROM pgtenantd.jobs WHERE id = $id")" 1 "in one attempt"
#   done_testing
#
# Assertions: ok NAME COMMAND [ARGS...] (passes if the command exits 0;
# "ok NAME not COMMAND..." if it must fail; exit_failed RC and between N
# LOW HIGH are commands for it),
# is GOT EXPECTED NAME, isnt GOT UNEXPECTED NAME, like GOT REGEX NAME and
# unlike GOT REGEX NAME (grep -E), skip NAME REASON, diag TEXT...
# Every failure prints the tail of each daemon log as TAP comments.

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
PGTENANTD=${PGTENANTD:-$top_builddir/src/pgtenantd}
PGTENANTCTL=${PGTENANTCTL:-$top_builddir/src/pgtenantctl}

# Messages in English; the database comes from the config (or $DB).
export LC_ALL=C
unset PGDATABASE PGOPTIONS PGAPPNAME

# PostgreSQL's own programs first in PATH (for the tests and the daemons
# they start), not Debian's Perl wrapper in front of them: the tests call
# psql thousands of times, and the wrapper starts Perl each time (about
# 50 ms of CPU a call on a loaded 2-core machine, half of psql's cost).
pg_bin=$("$top_srcdir/scripts/pg-tmp" bindir 2>/dev/null) || pg_bin=
if [ -x "$pg_bin/psql" ]; then
	case ":$PATH:" in
	*":$pg_bin:"*) ;;
	*) PATH=$pg_bin:$PATH ;;
	esac
fi
unset pg_bin
export PATH

TAP_COUNT=0
TAP_FAILED=0
DAEMON_PIDS=()
declare -A DAEMON_LOGS=()
declare -A DAEMON_SOCKS=()
declare -A DAEMON_SHOWN=()	# lines of each log already shown
declare -A DAEMON_GONE=()	# stopped or killed on purpose, or reported dead
AT_EXIT=()
T=
DB=
CTL_SOCK=
DAEMON_DIED=	# pid of a daemon that died since the last start_daemon

# ---------------------------------------------------------------- TAP

# Print each line of the arguments as a TAP comment.
diag()
{
	printf '%s\n' "$*" | sed 's/^/# /'
}

# Record one test result: tap_result PASSED(0|1) NAME.
tap_result()
{
	TAP_COUNT=$((TAP_COUNT + 1))
	if [ "$1" -eq 0 ]; then
		printf 'ok %d - %s\n' "$TAP_COUNT" "$2"
		return 0
	fi
	TAP_FAILED=$((TAP_FAILED + 1))
	printf 'not ok %d - %s\n' "$TAP_COUNT" "$2"
	# Bash's caller: frame 1 is the assertion helper, frame 2 its caller.
	local where
	where=$(caller 1 2>/dev/null) || where=
	[ -n "$where" ] && diag "  at line ${where%% *} of ${BASH_SOURCE[-1]##*/}"
	show_daemon_logs
	return 1
}

# Pass if COMMAND ARGS... exits 0: ok NAME COMMAND [ARGS...].
ok()
{
	local name=$1
	shift
	"$@"
	tap_result $? "$name"
}

# Succeed if COMMAND ARGS... fails: ok NAME not COMMAND [ARGS...].
not()
{
	! "$@"
}

# True if exit status RC is the program's own failure: not 0, and not
# timeout(1)'s 124 nor a signal's 128+N (ok NAME exit_failed "$rc"; an
# "ok NAME [ A ] && [ B ]" would give ok only the first test).
exit_failed()
{
	[ "$1" -ne 0 ] && [ "$1" -lt 124 ]
}

# True if LOW <= N <= HIGH: ok NAME between N LOW HIGH.
between()
{
	[ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# Pass if GOT equals EXPECTED.
is()
{
	if [ "$1" = "$2" ]; then
		tap_result 0 "$3"
	else
		tap_result 1 "$3"
		diag "  got:      '$1'" "  expected: '$2'"
		return 1
	fi
}

# Pass if GOT differs from UNEXPECTED.
isnt()
{
	if [ "$1" != "$2" ]; then
		tap_result 0 "$3"
	else
		tap_result 1 "$3"
		diag "  got '$1', which it should not be"
		return 1
	fi
}

# Pass if some line of GOT matches the extended regex.
like()
{
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		tap_result 0 "$3"
	else
		tap_result 1 "$3"
		diag "  '$(printf '%s' "$1" | head -c 2000)'" "  does not match /$2/"
		return 1
	fi
}

# Pass if no line of GOT matches the extended regex.
unlike()
{
	if ! printf '%s\n' "$1" | grep -Eq -- "$2"; then
		tap_result 0 "$3"
	else
		tap_result 1 "$3"
		diag "  '$(printf '%s' "$1" | head -c 2000)'" "  matches /$2/"
		return 1
	fi
}

# Report a test as skipped: skip NAME REASON.
skip()
{
	TAP_COUNT=$((TAP_COUNT + 1))
	printf 'ok %d - %s # SKIP %s\n' "$TAP_COUNT" "$1" "$2"
}

# Skip the whole file (before any test ran).
skip_all()
{
	echo "1..0 # SKIP $*"
	exit 0
}

# Give up on the rest of the file: the Automake driver reports an error.
bail_out()
{
	show_daemon_logs
	echo "Bail out! $*"
	exit 1
}

# Print the plan and exit non-zero if anything failed.
done_testing()
{
	echo "1..$TAP_COUNT"
	if [ "$TAP_FAILED" -gt 0 ]; then
		diag "$TAP_FAILED of $TAP_COUNT tests failed"
		exit 1
	fi
	exit 0
}

# Print the lines each daemon log got since the last call (at most
# PGT_LOG_LINES, default 20, of them), and say which daemons died.
show_daemon_logs()
{
	local pid log total shown
	declare -A seen=()
	for pid in "${DAEMON_PIDS[@]}"; do
		daemon_check "$pid"
		log=${DAEMON_LOGS[$pid]}
		[ -z "${seen[$log]:-}" ] && [ -s "$log" ] || continue
		seen[$log]=1
		total=$(wc -l <"$log")
		shown=${DAEMON_SHOWN[$log]:-0}
		[ "$total" -gt "$shown" ] || continue
		diag "---- $log, lines $((shown + 1))-$total, the last ${PGT_LOG_LINES:-20}:"
		tail -n "+$((shown + 1))" "$log" | tail -n "${PGT_LOG_LINES:-20}" | sed 's/^/# | /'
		DAEMON_SHOWN[$log]=$total
	done
}

# ---------------------------------------------------------------- time

# Milliseconds since the epoch.
now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

# Run COMMAND ARGS... every 50 ms until it succeeds or TIMEOUT seconds
# pass: wait_cmd TIMEOUT COMMAND [ARGS...]. Returns 1 on timeout.
wait_cmd()
{
	local timeout=$1 deadline
	shift
	deadline=$(($(now_ms) + timeout * 1000))
	while :; do
		"$@" && return 0
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		daemons_alive || return 1
		sleep 0.05
	done
}

# ---------------------------------------------------------------- SQL

# Stop the file unless a PostgreSQL to test against is configured.
require_pg()
{
	[ -n "${PGHOST:-}" ] || skip_all "no PostgreSQL"
	command -v psql >/dev/null || skip_all "no psql"
}

# Run SQL on the test database and print the rows (unaligned, tuples
# only, '|' between columns): sql "SELECT ..." [PSQL OPTIONS...].
# Statements run one by one; the first error stops it (exit status 3).
sql()
{
	local query=$1
	shift
	printf '%s\n' "$query" |
		PGAPPNAME=pgt-test psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" "$@" -f -
}

# Run SQL that must fail and print its error output; prints
# "(no error)" if it succeeded instead.
sql_err()
{
	local err
	if err=$(sql "$@" 2>&1 >/dev/null); then
		echo "(no error)"
		return 1
	fi
	printf '%s\n' "$err"
}

# Poll a query returning one boolean every 50 ms until it is true or
# TIMEOUT seconds (default 10) pass: wait_until "SQL" [TIMEOUT].
wait_until()
{
	wait_cmd "${2:-10}" sql_true "$1"
}

# True if the query prints "t".
sql_true()
{
	[ "$(sql "$1" 2>/dev/null)" = t ]
}

# Evaluate a SQL expression over a JSON text bound as :'j'
# (for example "(:'j')::jsonb->>'ok'") and print the result.
json_eval()
{
	sql "SELECT $2" -v j="$1" "${@:3}"
}

# True if the JSON text has a member (at any depth) holding this JSON
# value: json_has JSON VALUE (for example 1001 or '"sleep"').
json_has()
{
	[ "$(json_eval "$1" "jsonb_path_exists((:'j')::jsonb, 'strict \$.** ? (@ == \$v)', jsonb_build_object('v', (:'v')::jsonb))" -v v="$2" 2>/dev/null)" = t ]
}

# Print the state of a job.
job_state()
{
	sql "SELECT state FROM pgtenantd.jobs WHERE id = $1"
}

# Insert one job and print its id: insert_job KIND TENANT [ARGS_JSON].
insert_job()
{
	sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	     VALUES ('$1', '$2', '${3:-"{}"}') RETURNING id"
}

# Wait until job ID is in STATE: wait_state ID STATE [TIMEOUT].
wait_state()
{
	wait_until "SELECT state = '$2' FROM pgtenantd.jobs WHERE id = $1" "${3:-10}"
}

# Print a job row for diagnostics.
diag_job()
{
	diag "$(sql "SELECT id, kind, tenant_id, state, step, attempts, max_attempts,
			    run_at, last_error, progress, result
		       FROM pgtenantd.jobs WHERE id = $1" -x 2>&1)"
}

# ---------------------------------------------------------------- setup

# Register a command to run at exit (before the daemons are killed and
# the database dropped), last registered first.
at_exit()
{
	AT_EXIT+=("$1")
}

# Kill every daemon still running, run the at_exit commands, drop the
# database and remove the temp dir (kept if PGT_KEEP_TMP is set).
cleanup()
{
	local status=$? pid i
	DAEMON_DIED=
	for pid in "${DAEMON_PIDS[@]}"; do
		DAEMON_GONE[$pid]=${DAEMON_GONE[$pid]:-stopped}
		proc_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${DAEMON_PIDS[@]}"; do
		wait_cmd 5 proc_dead "$pid" || kill -KILL "$pid" 2>/dev/null
		{ wait "$pid"; } 2>/dev/null
	done
	for ((i = ${#AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${AT_EXIT[i]}" >/dev/null 2>&1
	done
	if [ -n "$DB" ]; then
		dropdb --if-exists --force "$DB" >/dev/null 2>&1 ||
			dropdb --if-exists "$DB" >/dev/null 2>&1
	fi
	if [ -n "$T" ] && [ -d "$T" ]; then
		if [ -n "${PGT_KEEP_TMP:-}" ]; then
			echo "# kept $T" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit "$status"
}

# Create the test's temp dir ($T), database ($DB: pgt_NAME_PID) and jobs
# dir ($JOBS_DIR: the shipped kinds plus the test kinds), and the cleanup
# trap: make_env NAME.
make_env()
{
	make_tmp "$1"
	make_db
}

# The first half of make_env: the trap, $T and $JOBS_DIR, no database
# (a test that starts its own PostgreSQL runs make_db after that).
make_tmp()
{
	local name=$1 base=${TMPDIR:-/tmp} f
	# Unix socket paths are limited to 107 bytes.
	[ ${#base} -gt 60 ] && base=/tmp
	TEST_NAME=$name
	trap cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	T=$(mktemp -d "$base/pgt-$name.XXXXXX") || bail_out "mktemp failed"
	# A PostgreSQL run by another user (scripts/pg-tmp as root) may live here.
	chmod 755 "$T"
	JOBS_DIR=$T/jobs
	mkdir -p "$JOBS_DIR" "$T/state" "$T/backups"
	for f in "$top_srcdir"/jobs/*.yaml "$top_srcdir"/tests/jobs/*.yaml; do
		[ -f "$f" ] && cp "$f" "$JOBS_DIR/"
	done
	export T JOBS_DIR
}

# The second half of make_env: create $DB on the server PG* points at.
make_db()
{
	DB=pgt_${TEST_NAME//[^A-Za-z0-9_]/_}_$$
	createdb "$DB" || { DB=; bail_out "createdb failed"; }
	export DB
}

# Write a daemon config for the test database with short durations:
# write_config FILE [YAML LINE...]. A line whose top-level key is among
# the defaults replaces that default; other lines are appended.
write_config()
{
	local file=$1 line key i found
	shift
	local lines=(
		"database: \"dbname=$DB\""
		"state_dir: $T/state"
		"control_socket: $T/ctl.sock"
		"jobs_dir: $JOBS_DIR"
		"backup_dir: $T/backups"
		"workers: 2"
		"poll_interval: 200ms"
		"lease: 3s"
		"heartbeat_interval: 500ms"
		"retry_base_delay: 200ms"
		"retry_max_delay: 1s"
		"reconnect_max_delay: 1s"
		"shutdown_timeout: 5s"
		"log_level: debug"
		"test_hooks: true"
	)
	for line in "$@"; do
		found=
		if [[ $line =~ ^([a-z_]+): ]]; then
			key=${BASH_REMATCH[1]}
			for i in "${!lines[@]}"; do
				if [[ ${lines[i]} == "$key:"* ]]; then
					lines[i]=$line
					found=1
				fi
			done
		fi
		[ -n "$found" ] || lines+=("$line")
	done
	printf '%s\n' "${lines[@]}" >"$file"
}

# The tables of the batch_slow test kind: public.batch_src with keys 1..N
# and an empty public.batch_log; bails out if they cannot be made.
make_batch_tables()
{
	sql "CREATE TABLE public.batch_src (k int PRIMARY KEY);
	     INSERT INTO public.batch_src SELECT generate_series(1, $1);
	     CREATE TABLE public.batch_log (
		job_id bigint, from_key int, to_key int, n int,
		at timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null ||
		bail_out "could not create the batch tables"
}

# Print the value of a top-level key of a config file written by write_config.
config_value()
{
	sed -n "s/^$2: *//p" "$1" | sed 's/^"\(.*\)"$/\1/' | tail -n 1
}

# ---------------------------------------------------------------- daemons

# True if the process exists and is not a zombie.
proc_alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# If daemon PID died without being stopped, say so (once) and fail.
daemon_check()
{
	local pid=$1 status
	[ -n "${DAEMON_GONE[$pid]:-}" ] && return 0
	proc_alive "$pid" && return 0
	DAEMON_GONE[$pid]=died
	DAEMON_DIED=$pid
	{ wait "$pid"; } 2>/dev/null
	status=$?
	if [ "$status" -gt 128 ]; then
		status="killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null))"
	else
		status="exit status $status"
	fi
	diag "pgtenantd (pid $pid, log ${DAEMON_LOGS[$pid]}) died: $status"
	return 1
}

# False if a daemon that was not stopped on purpose has died since the
# last start_daemon (waits on the database give up at once then).
daemons_alive()
{
	local pid
	for pid in "${DAEMON_PIDS[@]}"; do
		daemon_check "$pid" || return 1
	done
	[ -z "$DAEMON_DIED" ]
}

# True if the process has exited (even if not reaped yet).
proc_dead()
{
	! proc_alive "$1"
}

# Start the daemon in the foreground mode, in the background:
# start_daemon CONFIG LOGFILE. Sets DAEMON_PID and CTL_SOCK (the config's
# control socket) and waits up to DAEMON_START_TIMEOUT seconds (default
# 10) until the control socket answers "status" and pgtenantd.job_kinds
# has rows. Returns 1 (after printing
# the log tail) if the daemon exits or does not get there in time.
start_daemon()
{
	local conf=$1 log=$2 sock deadline
	sock=$(config_value "$conf" control_socket)
	if [ ! -x "$PGTENANTD" ]; then
		diag "no daemon at $PGTENANTD"
		return 1
	fi
	echo "---- $(date '+%H:%M:%S.%N') start_daemon $conf" >>"$log"
	"$PGTENANTD" -f -c "$conf" >>"$log" 2>&1 &
	DAEMON_PID=$!
	DAEMON_DIED=
	DAEMON_PIDS+=("$DAEMON_PID")
	DAEMON_LOGS[$DAEMON_PID]=$log
	DAEMON_SOCKS[$DAEMON_PID]=$sock
	CTL_SOCK=$sock
	deadline=$(($(now_ms) + ${DAEMON_START_TIMEOUT:-10} * 1000))
	while :; do
		if ! daemon_check "$DAEMON_PID"; then
			diag "pgtenantd -c $conf did not start"
			show_daemon_logs
			return 1
		fi
		if ctl_at "$sock" --json status >/dev/null 2>&1 &&
			[ "$(sql "SELECT count(*) > 0 FROM pgtenantd.job_kinds" 2>/dev/null)" = t ]; then
			return 0
		fi
		if [ "$(now_ms)" -ge "$deadline" ]; then
			diag "pgtenantd -c $conf did not answer on $sock within ${DAEMON_START_TIMEOUT:-10} s"
			show_daemon_logs
			return 1
		fi
		sleep 0.05
	done
}

# Send SIGTERM and wait up to TIMEOUT seconds (default 15) for the daemon
# to exit: stop_daemon PID [TIMEOUT]. Returns the daemon's exit status, or
# 124 if it had to be killed.
stop_daemon()
{
	daemon_check "$1" || return 1
	term_daemon "$1"
	wait_exit "$1" "${2:-15}"
}

# Send SIGTERM to a daemon, which is expected to exit now.
term_daemon()
{
	DAEMON_GONE[$1]=stopped
	kill -TERM "$1" 2>/dev/null
}

# Wait up to TIMEOUT seconds (default 15) for a daemon that was told to
# stop to exit, and return its exit status (124 if it had to be killed).
wait_exit()
{
	local pid=$1
	if ! wait_cmd "${2:-15}" proc_dead "$pid"; then
		diag "pgtenantd (pid $pid) did not exit within ${2:-15} s of SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null
		{ wait "$pid"; } 2>/dev/null
		return 124
	fi
	{ wait "$pid"; } 2>/dev/null
}

# kill -9 a daemon and reap it.
kill_daemon()
{
	DAEMON_GONE[$1]=killed
	kill -KILL "$1" 2>/dev/null
	wait_cmd 5 proc_dead "$1"
	{ wait "$1"; } 2>/dev/null
	return 0
}

# Run pgtenantctl against a socket (bounded to 10 s): ctl_at SOCKET ARGS...
ctl_at()
{
	local sock=$1
	shift
	timeout 10 "$PGTENANTCTL" -s "$sock" "$@"
}

# Run pgtenantctl against the last started daemon's socket ($CTL_SOCK).
ctl()
{
	ctl_at "$CTL_SOCK" "$@"
}

# True if the daemon's control socket answers status with "ok": true.
ctl_answers()
{
	local out
	out=$(ctl --json status 2>/dev/null) || return 1
	[ "$(json_eval "$out" "(:'j')::jsonb->>'ok'" 2>/dev/null)" = true ]
}

# Send raw bytes (the argument, a newline appended) to a control socket
# and print the first response line: ctl_raw SOCKET TEXT. Uses perl, which
# Debian always has.
ctl_raw()
{
	printf '%s\n' "$2" | timeout 10 perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0])
			or die "connect $ARGV[0]: $!\n";
		local $/;
		my $req = <STDIN>;
		$SIG{PIPE} = "IGNORE";
		my $off = 0;
		while ($off < length $req) {
			my $n = syswrite($s, $req, 65536, $off);
			last unless defined $n;	# the daemon may close after an error
			$off += $n;
		}
		$/ = "\n";
		my $line = <$s>;
		print defined $line ? $line : "(connection closed without a response)\n";
	' "$1"
}
