#!/bin/bash
# hostile.sh - hostile input never makes the daemon lose or expose data or
# fall over: tenant ids and args that are refused at INSERT (and UPDATE)
# and never run, broken config and job files that are reported with file
# and line (and a reload that keeps the old kinds), and control socket
# abuse: garbage, a 1 MB line, 1,000 clients at once, clients that never
# read. After each, the daemon answers status quickly and runs a job. The
# socket is mode 0600 and another user cannot connect.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
command -v perl >/dev/null || skip_all "no perl"
make_env hostile

sql "CREATE TABLE public.test_runs (
	job_id bigint, tenant_id text, started timestamptz, ended timestamptz,
	app text, attempt int)" || bail_out "could not create test_runs"
write_config "$T/a.yaml"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
pid=$DAEMON_PID

# A known problem: a test that is expected to fail until it is fixed
# (TAP TODO: a failure is XFAIL, a pass XPASS, which fails the suite so
# that the TODO gets removed): todo NAME WHY COMMAND [ARGS...].
todo()
{
	local name=$1 why=$2
	shift 2
	TAP_COUNT=$((TAP_COUNT + 1))
	if "$@"; then
		printf 'ok %d - %s # TODO %s\n' "$TAP_COUNT" "$name" "$why"
	else
		printf 'not ok %d - %s # TODO %s\n' "$TAP_COUNT" "$name" "$why"
	fi
}

# The daemon is healthy: alive, status answers (within 20 s: a stalled
# daemon never answers; a busy machine under the sanitizers once took 8),
# and a record_run job inserted now succeeds: healthy WHAT.
healthy()
{
	local t0 ms id
	ok "after $1: the daemon is running" proc_alive "$pid" || return 1
	t0=$(now_ms)
	ok "after $1: pgtenantctl status answers" ctl_answers
	ms=$(($(now_ms) - t0))
	ok "after $1: ... within 20 s (${ms} ms)" [ "$ms" -lt 20000 ]
	id=$(insert_job record_run "t-health" '{"ms": "1"}')
	ok "after $1: a job still runs" wait_state "$id" succeeded 10 ||
		diag_job "$id"
}

# ---------------------------------------------------------------- SQL

# An INSERT of tenant id TID (bound, never pasted) must fail with an error
# matching REGEX: refused_tenant NAME TID REGEX.
refused_tenant()
{
	local err
	err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
		       VALUES ('record_run', :'tid', '{}')" -v tid="$2")
	like "$err" "$3" "tenant id $1 is refused"
}

long=$(printf 'x%.0s' {1..300})
refused_tenant "with a quote" "acme'corp" 'invalid tenant id'
refused_tenant "with a quote and SQL" "x'); DROP TABLE public.test_runs; --" 'invalid tenant id'
refused_tenant "with a double quote" 'acme"corp' 'invalid tenant id'
refused_tenant "with a semicolon" 'acme;corp' 'invalid tenant id'
refused_tenant "with a dot (schema.table)" 'public.graph_entities' 'invalid tenant id'
refused_tenant "with a slash (path)" '../../etc/passwd' 'invalid tenant id'
refused_tenant "with a backslash escape" 'acme\0corp' 'invalid tenant id'
refused_tenant "with a %00" 'acme%00corp' 'invalid tenant id'
refused_tenant "with a space" 'acme corp' 'invalid tenant id'
refused_tenant "with a leading space" ' acme' 'invalid tenant id'
refused_tenant "with a trailing newline" "$(printf 'acme\nx')" 'invalid tenant id'
refused_tenant "with a tab" "$(printf 'acme\tcorp')" 'invalid tenant id'
refused_tenant "with a Latin letter with accent (é)" 'acmé' 'invalid tenant id'
refused_tenant "in Cyrillic that looks Latin (аcme)" 'аcme' 'invalid tenant id'
refused_tenant "in Japanese" 'テナント' 'invalid tenant id'
refused_tenant "with a zero-width space" "$(printf 'ac\u200bme')" 'invalid tenant id'
refused_tenant "with a right-to-left override" "$(printf 'acme\u202egp')" 'invalid tenant id'
refused_tenant "with an emoji" "$(printf 'acme\U0001F600')" 'invalid tenant id'
refused_tenant "of 300 characters" "$long" 'invalid tenant id'
refused_tenant "that is empty" '' 'invalid tenant id ""'
refused_tenant "of 57 characters (64-byte schema name)" "$(printf 'y%.0s' {1..57})" \
	'63-byte identifier limit'
# A NUL cannot even be sent: PostgreSQL text has none.
err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('record_run', 'a' || chr(0) || 'b')")
like "$err" 'null character|invalid' "a tenant id with a NUL byte is refused"
err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('record_run', convert_from('\\x61006200', 'UTF8'))")
like "$err" 'invalid byte sequence|null character' "a tenant id with a NUL from bytes is refused"
err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('record_run', NULL)")
like "$err" 'invalid tenant id|null value' "a NULL tenant id is refused"
err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('record_run''; --', 't')")
like "$err" 'unknown job kind' "a kind with a quote is refused as unknown"
err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id)
	       SELECT 'record_run', t FROM (VALUES ('ok-1'), ('bad id'), ('ok-2')) v(t)")
like "$err" 'invalid tenant id "bad id"' "one bad row in a multi-row INSERT is named"

# An INSERT of args ARGS (JSON text, bound) must fail with an error
# matching REGEX: refused_args NAME KIND ARGS REGEX.
refused_args()
{
	local err
	err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
		       VALUES ('$2', 't-args', (:'args')::jsonb)" -v args="$3")
	like "$err" "$4" "args $1 are refused"
}

refused_args "that are an array" record_run '[{"ms": "1"}]' 'args must be a JSON object, not array'
refused_args "that are a number" record_run '42' 'args must be a JSON object, not number'
refused_args "that are a string" record_run '"{\"ms\": 1}"' 'args must be a JSON object, not string'
refused_args "that are JSON null" record_run 'null' 'args must be a JSON object, not null'
refused_args "that are not JSON" record_run "{'ms': 1}" 'invalid input syntax for type json'
refused_args "with a key the kind does not declare" record_run '{"ms": "1", "sql": "DROP TABLE x"}' \
	'job kind "record_run" has no arg "sql"'
refused_args "with a NUL in a value" record_run '{"ms": "1\u0000"}' 'unsupported Unicode escape|cannot be converted'
deep=$(printf '[%.0s' {1..20000})$(printf ']%.0s' {1..20000})
refused_args "nested 20,000 deep" record_run "{\"ms\": $deep}" 'stack depth|depth'
# (Built by the server: a psql argument cannot be that long.)
err=$(sql_err "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
	       SELECT 'record_run', 't-args', jsonb_object_agg('k' || g, g)
		 FROM generate_series(1, 20000) g")
like "$err" 'job kind "record_run" has no arg "k1"' "args with 20,000 unknown keys are refused"
ok "... with a message shorter than 64 kB ($(printf '%s' "$err" | wc -c) bytes)" \
	[ "$(printf '%s' "$err" | wc -c)" -lt 65536 ]
like "$err" 'and 19990 more' "... naming the first ten and counting the rest"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs")" 0 "none of the refused INSERTs made a row"

# UPDATE goes through the same checks: a queued job cannot be turned bad.
qid=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
	   VALUES ('record_run', 't-upd', now() + interval '1 hour') RETURNING id")
err=$(sql_err "UPDATE pgtenantd.jobs SET tenant_id = :'tid' WHERE id = $qid" -v tid="x'; DROP SCHEMA public; --")
like "$err" 'invalid tenant id' "an UPDATE to a hostile tenant id is refused"
err=$(sql_err "UPDATE pgtenantd.jobs SET args = '[1]' WHERE id = $qid")
like "$err" 'args must be a JSON object' "an UPDATE to array args is refused"
is "$(sql "SELECT tenant_id || ' ' || args::text FROM pgtenantd.jobs WHERE id = $qid")" "t-upd {}" \
	"the job row is unchanged"
sql "DELETE FROM pgtenantd.jobs WHERE id = $qid" >/dev/null

# Accepted, but garbage for the job: it fails with a clear error and its
# effect (a test_runs row) never happens.
gid=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
	   VALUES ('record_run', 't-garbage', '{\"ms\": {\"a\": [1, {\"b\": null}]}}', 1)
	   RETURNING id")
ok "a job whose arg is nested garbage ends failed" wait_state "$gid" failed 10 || diag_job "$gid"
like "$(sql "SELECT last_error FROM pgtenantd.jobs WHERE id = $gid")" 'invalid input syntax' \
	"... with the database's error in last_error"
hid=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
	   VALUES ('sleep', 't-huge', jsonb_build_object('seconds', repeat('9', 1048576)), 1)
	   RETURNING id")
ok "a job with a 1 MB arg is accepted" [ -n "$hid" ]
ok "... and ends failed (a 1 MB number is out of range)" wait_state "$hid" failed 20 ||
	diag_job "$hid"
len=$(sql "SELECT octet_length(last_error) FROM pgtenantd.jobs WHERE id = $hid")
diag "last_error of the 1 MB arg job: ${len:-?} bytes"
is "$(sql "SELECT count(*) FROM public.test_runs WHERE tenant_id LIKE 't-garbage%'")" 0 \
	"the garbage job left no effect"
healthy "hostile INSERTs"
is "$(sql "SELECT count(*) FROM public.test_runs WHERE tenant_id <> 't-health'")" 0 \
	"no job ran for any refused tenant"

# ---------------------------------------------------------------- files

# pgtenantd --check-config on CONFIG prints an error matching REGEX and
# exits non-zero: bad_config NAME CONFIG REGEX.
bad_config()
{
	local out rc
	out=$(timeout 20 "$PGTENANTD" --check-config -c "$2" 2>&1)
	rc=$?
	ok "$1: --check-config exits non-zero" exit_failed "$rc"
	like "$out" "$3" "$1: the error names the file and line"
}

mkdir -p "$T/cfg"
write_config "$T/cfg/unknown.yaml" "log_level: debug" "no_such_key: 1"
bad_config "an unknown key" "$T/cfg/unknown.yaml" "unknown\\.yaml:[0-9]+:.*no_such_key"
write_config "$T/cfg/workers.yaml" "workers: 100000"
bad_config "workers: 100000" "$T/cfg/workers.yaml" "workers\\.yaml:6:.*workers"
write_config "$T/cfg/quote.yaml" 'application_name: "never closed'
bad_config "an unclosed quote" "$T/cfg/quote.yaml" "quote\\.yaml:[0-9]+"
printf 'workers:\n\t- 2\n' >"$T/cfg/tab.yaml"
bad_config "a tab for indentation" "$T/cfg/tab.yaml" "tab\\.yaml:2"
printf '\x00\xff\xfe garbage\n' >"$T/cfg/binary.yaml"
bad_config "binary garbage" "$T/cfg/binary.yaml" "binary\\.yaml"
write_config "$T/cfg/long.yaml" "control_socket: $T/$(printf 's%.0s' {1..200})"
bad_config "a 200-byte socket path" "$T/cfg/long.yaml" "long\\.yaml:[0-9]+:.*control_socket"
out=$(timeout 20 "$PGTENANTD" -f -c "$T/cfg/unknown.yaml" 2>&1)
rc=$?
ok "the daemon refuses to start on a bad config (exit $rc)" exit_failed "$rc"
like "$out" "unknown\\.yaml:[0-9]+" "... saying file and line"

# A broken job file: --check-config names it; a reload with it keeps the
# loaded kinds and the daemon keeps running them.
mkdir -p "$T/badjobs"
cp "$JOBS_DIR"/*.yaml "$T/badjobs/"
write_config "$T/cfg/badjobs.yaml" "jobs_dir: $T/badjobs" "control_socket: $T/other.sock" \
	"state_dir: $T/state-other"
printf 'steps:\n  - name: a\n    sql: SELECT 1\n  - name: a\n    sql: SELECT 2\n' >"$T/badjobs/dup_step.yaml"
bad_config "a job file with a duplicate step" "$T/cfg/badjobs.yaml" "dup_step\\.yaml:[0-9]+"
rm "$T/badjobs/dup_step.yaml"
printf 'steps:\n  - name: a\n    sql: |\n      SELECT 1;\n      SELECT '"'"'never closed\n' >"$T/badjobs/bad_sql.yaml"
bad_config "a job file with an unterminated string" "$T/cfg/badjobs.yaml" "bad_sql\\.yaml:[0-9]+"
rm "$T/badjobs/bad_sql.yaml"
printf 'steps:\n  - name: a\n    sql: SELECT :"nope"\n' >"$T/badjobs/bad_var.yaml"
bad_config "a job file with an unknown variable" "$T/cfg/badjobs.yaml" "bad_var\\.yaml:[0-9]+.*nope"
rm "$T/badjobs/bad_var.yaml"
head -c 4096 /dev/urandom >"$T/badjobs/garbage.yaml"
bad_config "a job file of random bytes" "$T/cfg/badjobs.yaml" "garbage\\.yaml"
rm "$T/badjobs/garbage.yaml"

printf 'steps:\n  - name: a\n    sql: SELECT 1\n    bogus_key: 2\n' >"$JOBS_DIR/broken.yaml"
out=$(ctl --json reload 2>&1)
like "$out" '"ok": *false' "reload with a broken job file fails"
like "$out" 'broken\.yaml:[0-9]+' "... naming the file and line"
ok "the kinds published before are still there" \
	sql_true "SELECT count(*) > 0 FROM pgtenantd.job_kinds WHERE kind = 'record_run'"
ok "the broken kind is not published" \
	sql_true "SELECT NOT EXISTS (SELECT FROM pgtenantd.job_kinds WHERE kind = 'broken')"
kill -HUP "$pid"
sleep 0.3
healthy "a reload with a broken job file"
rm "$JOBS_DIR/broken.yaml"

# ---------------------------------------------------------------- socket

# Run a perl program (the rest of the arguments) against the socket with
# a time limit, printing what it prints: sock_perl SECONDS PROGRAM ARGS...
sock_perl()
{
	local secs=$1
	shift
	timeout -k 5 "$secs" perl -MIO::Socket::UNIX -MIO::Select -MPOSIX -e "$@"
}

# Garbage: 256 kB of random bytes, newlines included, then EOF. Every
# line answered is an error; the connection ends.
out=$(head -c 262144 /dev/urandom | sock_perl 30 '
	my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die "connect: $!\n";
	$SIG{PIPE} = "IGNORE";
	my $data = do { local $/; <STDIN> };
	my $off = 0;
	while ($off < length $data) { my $n = syswrite($s, $data, 65536, $off); last unless $n; $off += $n; }
	shutdown($s, 1);
	my ($ok, $err, $lines) = (0, 0, 0);
	while (my $l = <$s>) { $lines++; $l =~ /"ok":\s*false/ ? $err++ : $ok++; }
	print "lines=$lines errors=$err others=$ok\n";' "$CTL_SOCK")
diag "garbage: $out"
like "$out" '^lines=[0-9]+ errors=[0-9]+ others=0$' "random bytes get only error lines, and the connection ends"
healthy "256 kB of random bytes"

# A 1 MB line, and a 1 MB JSON request: an error, not a crash.
out=$(ctl_raw "$CTL_SOCK" "$(head -c 1048576 /dev/zero | tr '\0' x)")
like "$out" '"ok": *false.*longer than' "a 1 MB line gets an error"
out=$(ctl_raw "$CTL_SOCK" "{\"command\": \"status\", \"args\": [\"$(head -c 1048576 /dev/zero | tr '\0' y)\"]}")
like "$out" '"ok": *false.*longer than' "a 1 MB JSON request gets an error"
healthy "1 MB lines"

# Pipelining: 500 requests in one write, each answered, in order.
out=$(sock_perl 30 '
	my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die "connect: $!\n";
	print $s map { "job $_\n" } 1..500;
	shutdown($s, 1);
	my @l = <$s>;
	my $good = grep { /"ok":/ } @l;
	print scalar(@l), " answers, $good JSON\n";' "$CTL_SOCK")
is "$out" "500 answers, 500 JSON" "500 pipelined requests get 500 answers"

# 1,000 clients at once: the daemon serves CTL_MAX_CLIENTS (64) of them
# and turns the rest away with an error line; nobody hangs. The served
# connections are then held open (until the test creates flood-release,
# at most 40 s) to see the cap from pgtenantctl.
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
sock_perl 100 '
	$| = 1;
	my (@socks, $failed);
	for (1..1000) {
		my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]);
		if ($s) { push @socks, $s } else { $failed++ }
	}
	$SIG{PIPE} = "IGNORE";
	syswrite($_, "status\n") for @socks;
	my ($served, $away, $closed, $other) = (0, 0, 0, 0);
	my $sel = IO::Select->new(@socks);
	my %buf;
	my $deadline = time + 30;
	while ($sel->count && time < $deadline) {
		for my $s ($sel->can_read(1)) {
			my $n = sysread($s, my $chunk, 65536);
			if (!$n) { $closed++; $sel->remove($s); next; }
			$buf{$s} .= $chunk;
			next unless $buf{$s} =~ /\n/;
			if ($buf{$s} =~ /too many control clients/) { $away++ }
			elsif ($buf{$s} =~ /"ok":\s*true/) { $served++ }
			else { $other++ }
			$sel->remove($s);
		}
	}
	printf "connected=%d failed=%d served=%d away=%d closed=%d other=%d hung=%d\n",
		scalar(@socks), $failed // 0, $served, $away, $closed, $other, $sel->count;
	open(my $f, ">", $ARGV[1]) and close $f;
	my $until = time + 40;
	select(undef, undef, undef, 0.05) until -e $ARGV[2] || time > $until;' \
	"$CTL_SOCK" "$T/flood-holding" "$T/flood-release" >"$T/flood.out" 2>&1 &
flood=$!
if wait_cmd 60 test -e "$T/flood-holding"; then
	# A daemon that did not make room would answer only once the flood
	# lets go of its slots (40 s; pgtenantctl is killed after 30 s).
	t0=$(now_ms)
	capped=$(timeout 30 "$PGTENANTCTL" -s "$CTL_SOCK" --json status 2>&1)
	rc=$?
	ms=$(($(now_ms) - t0))
	ok "while 64 clients are connected, pgtenantctl status returns at once (${ms} ms)" \
		[ "$ms" -lt 10000 ]
	# root is an admin: when every slot is taken, the daemon closes the
	# idlest client to serve it (finding 12 of the trust issue).
	ok "... and is still served, as root (exit $rc)" [ "$rc" -eq 0 ]
	like "$capped" '"ok": *true' "... with the status"
	diag "pgtenantctl said: $capped"
else
	tap_result 1 "the 1,000 clients finished"
fi
: >"$T/flood-release"
wait "$flood"
out=$(cat "$T/flood.out")
diag "1,000 clients: $out"
like "$out" 'hung=0$' "no client of 1,000 was left without an answer or a close"
like "$out" 'other=0 ' "every answer was a status or the cap's error"
if [[ $out =~ connected=([0-9]+)\ failed=([0-9]+)\ served=([0-9]+)\ away=([0-9]+)\ closed=([0-9]+) ]]; then
	served=${BASH_REMATCH[3]}
	ok "at most 64 were served at once ($served)" between "$served" 1 64
	is "$((BASH_REMATCH[2] + served + BASH_REMATCH[4] + BASH_REMATCH[5]))" 1000 \
		"all 1,000 are accounted for"
else
	tap_result 1 "the 1,000 clients reported"
fi
healthy "1,000 clients at once"

# Clients that never read: each sends metrics requests as fast as it can
# for 5 s and reads nothing. The daemon must not buffer without bound or
# stall; it may close them.
rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
sock_perl 30 '
	use Fcntl;
	my @socks = map { IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die "connect: $!\n" } 1..4;
	$SIG{PIPE} = "IGNORE";
	my $req = "metrics\n" x 1000;
	my ($sent, $errors) = (0, 0);
	for my $s (@socks) { $s->blocking(0) }
	my $end = time + 5;
	while (time < $end) {
		for my $s (@socks) {
			my $n = syswrite($s, $req);
			if (defined $n) { $sent += $n } elsif ($! != EAGAIN) { $errors++ }
		}
		select(undef, undef, undef, 0.01);
	}
	print "sent=$sent write_errors=$errors\n";' "$CTL_SOCK" >"$T/noread.out" 2>&1 &
noread=$!
sleep 2
t0=$(now_ms)
ok "while 4 clients send and never read, status answers" ctl_answers
ms=$(($(now_ms) - t0))
ok "... within 20 s (${ms} ms)" [ "$ms" -lt 20000 ]
wait "$noread"
diag "clients that never read: $(cat "$T/noread.out")"
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
diag "daemon RSS before them: ${rss0:-?} kB, after: ${rss:-?} kB"
if grep -q __asan_init "$PGTENANTD" 2>/dev/null; then
	skip "the daemon's memory stayed bounded" "ASan keeps freed memory in quarantine"
else
	ok "the daemon's memory stayed bounded (RSS grew by $((${rss:-0} - ${rss0:-0})) kB < 100 MB)" \
		[ "$((${rss:-0} - ${rss0:-0}))" -lt 102400 ]
fi
healthy "clients that never read"

# A client that connects and says nothing holds one slot, not the daemon;
# it is still connected at SIGTERM (the daemon must free it).
exec 7< <(sock_perl 60 '$| = 1; my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die; print "connected\n"; sleep 50;' "$CTL_SOCK")
silent=$!
at_exit "kill $silent"
read -r -t 5 line <&7
is "$line" connected "a silent client is connected"
healthy "a silent client"

# ---------------------------------------------------------------- access

is "$(stat -c %a "$CTL_SOCK")" 600 "the control socket is mode 0600"
is "$(stat -c %U "$CTL_SOCK")" "$(id -un)" "and owned by the daemon's user"
if [ "$(id -u)" -ne 0 ] || ! command -v runuser >/dev/null; then
	skip "another user cannot connect" "not running as root (needs runuser)"
else
	out=$(timeout 10 runuser -u nobody -- perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]);
		print $s ? "connected\n" : "refused: $!\n";' "$CTL_SOCK" 2>&1)
	like "$out" '^refused: Permission denied' "user nobody cannot connect to the socket"
	if runuser -u nobody -- test -x "$PGTENANTCTL"; then
		out=$(timeout 10 runuser -u nobody -- "$PGTENANTCTL" -s "$CTL_SOCK" status 2>&1)
		rc=$?
		ok "pgtenantctl as nobody fails (exit $rc)" exit_failed "$rc"
		like "$out" '[Pp]ermission denied' "... saying permission denied"
	else
		skip "pgtenantctl as nobody fails" "nobody cannot run $PGTENANTCTL"
	fi
fi

healthy "everything"
ok "SIGTERM with a silent client connected: the daemon exits with status 0" \
	stop_daemon "$pid"
kill "$silent" 2>/dev/null
exec 7<&-

done_testing
