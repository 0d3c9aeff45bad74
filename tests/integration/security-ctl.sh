#!/bin/bash
# security-ctl.sh - issue 10, findings 12, 13 and 15: the control socket
# checks its peers' credentials, refuses world-accessible modes, closes
# clients that trickle bytes without a whole line and still serves an
# administrator when every slot is taken; pgtenantctl prints no raw
# control characters from job rows; a config file holding a password is
# installed 0600 and a readable one is warned about.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
[ "$(id -u)" = 0 ] || skip_all "needs root (peers of another uid)"
command -v setpriv >/dev/null || skip_all "no setpriv"
command -v perl >/dev/null || skip_all "no perl"
make_env security-ctl

# Run a command as uid 65534 (nobody) in group 0: the socket is root:root
# 0660, so the file mode lets it in and only the credential check decides.
as_nobody()
{
	setpriv --reuid=65534 --regid=0 --clear-groups "$@"
}

# ------------------------------------------------------------ finding 12

write_config "$T/world.yaml" 'control_socket_mode: "0666"'
out=$("$PGTENANTD" --check-config -c "$T/world.yaml" 2>&1)
rc=$?
ok "finding 12: control_socket_mode \"0666\" is a config error (exit $rc)" [ "$rc" -ne 0 ]
like "$out" 'control_socket_mode.*lets every user of the host connect' \
	"finding 12: ... that says why"
write_config "$T/world.yaml" 'control_socket_mode: "0606"'
out=$("$PGTENANTD" --check-config -c "$T/world.yaml" 2>&1)
rc=$?
ok "finding 12: control_socket_mode \"0606\" is refused too (exit $rc)" [ "$rc" -ne 0 ]
like "$out" '"0606".*lets every user' "finding 12: ... that says why"

# Four client slots and a 12 s idle timeout: long enough that no slot
# frees itself while pgtenantctl status gets its answer (below).
MAX=4
IDLE_S=12
write_config "$T/a.yaml" 'control_socket_mode: "0660"' "control_max_clients: $MAX" \
	"control_idle_timeout: ${IDLE_S}s"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
is "$(stat -c %a "$CTL_SOCK")" 660 "the control socket has mode 0660"

out=$(as_nobody "$PGTENANTCTL" -s "$CTL_SOCK" status 2>&1)
rc=$?
ok "finding 12: pgtenantctl as another uid (65534) fails (exit $rc)" [ "$rc" -ne 0 ]
like "$out" 'uid 65534 may not use this control socket' \
	"finding 12: ... refused by the peer-credential check, not the file mode"
ok "finding 12: ... and the refusal is logged" \
	grep -q 'refused a client with uid 65534' "$T/a.log"
ok "finding 12: root still gets an answer" ctl_answers

# Fill every slot with tricklers: each sends one byte without a newline
# every second, more often than the idle timeout. Each socket's fate is
# reported: when it was closed (seconds after it connected) and its line.
sock_trickle()
{
	timeout $((IDLE_S + 30)) perl -MIO::Socket::UNIX -MIO::Select -MTime::HiRes=time,sleep -e '
		my ($path, $n, $ready, $secs) = @ARGV;
		my (@s, %buf, %gone, %since);
		$SIG{PIPE} = "IGNORE";
		for my $i (0 .. $n - 1) {
			my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)
				or die "connect $i: $!\n";
			$since{$s} = time;
			push @s, $s;
			sleep 0.05;
		}
		my $t0 = time;
		syswrite($_, "s") for @s;
		sleep 0.3;
		open(my $f, ">", $ready) and close $f;
		my $sel = IO::Select->new(@s);
		my $next = $t0 + 1;
		while (time < $t0 + $secs && $sel->count) {
			for my $s ($sel->can_read(0.1)) {
				my $r = sysread($s, my $chunk, 4096);
				$buf{$s} .= $chunk if $r;
				next if $r;
				$gone{$s} = time - $since{$s};
				$sel->remove($s);
			}
			if (time >= $next) {
				syswrite($_, "t") for $sel->handles;
				$next += 1;
			}
		}
		for my $i (0 .. $#s) {
			my $s = $s[$i];
			my $line = $buf{$s} // "";
			$line =~ s/\n.*//s;
			printf "client %d: %s after %.1f s: %s\n", $i,
				exists $gone{$s} ? "closed" : "open", $gone{$s} // 0, $line;
		}' "$CTL_SOCK" "$MAX" "$T/trickling" $((IDLE_S + 8))
}
sock_trickle >"$T/trickle.out" 2>&1 &
trickle=$!
if wait_cmd 20 test -e "$T/trickling"; then
	# A daemon that did not make room would answer only once a trickler's
	# idle timeout frees a slot, IDLE_S (12 s) after it connected, about
	# 11.5 s from now (pgtenantctl is killed after 30 s).
	t0=$(now_ms)
	out=$(timeout 30 "$PGTENANTCTL" -s "$CTL_SOCK" --json status 2>&1)
	rc=$?
	ms=$(($(now_ms) - t0))
	ok "finding 12: with all $MAX slots held by tricklers, pgtenantctl status (root) answers (exit $rc, ${ms} ms)" \
		[ "$rc" -eq 0 ]
	is "$(json_eval "$out" "(:'j')::jsonb->>'ok'" 2>/dev/null)" true "finding 12: ... with ok: true"
	ok "finding 12: ... within 8 s, before any slot frees itself" [ "$ms" -lt 8000 ]
	out=$(as_nobody "$PGTENANTCTL" -s "$CTL_SOCK" status 2>&1)
	like "$out" 'may not use this control socket' \
		"finding 12: ... while a refused uid still gets nothing"
else
	tap_result 1 "the tricklers connected"
fi
wait "$trickle"
out=$(cat "$T/trickle.out")
diag "$out"
evicted=$(grep -c 'closed after .*make room for an administrator' <<<"$out")
ok "finding 12: the admin's connection made room by closing the idlest trickler ($evicted)" \
	[ "$evicted" -ge 1 ]
idle_closed=$(grep -cE "closed after ([0-9.]+) s: .*closing an idle connection" <<<"$out")
is "$idle_closed" "$((MAX - evicted))" \
	"finding 12: every other trickler was closed for want of a whole line, trickling notwithstanding"
late=$(grep -E "closing an idle connection" <<<"$out" |
	awk '{ t = $5 + 0; if (t < '"$IDLE_S"' - 0.2 || t > '"$IDLE_S"' + 3) print }')
is "$late" "" "finding 12: ... ${IDLE_S} s (the idle timeout) after connecting, give or take"
ok "finding 12: the daemon answers afterwards" ctl_answers
ok "finding 12: the eviction is logged" \
	grep -q 'to serve an administrator' "$T/a.log"

# A user named in control_allow_users is served (after a restart: the
# socket's settings are taken at start).
stop_daemon "$DAEMON_PID" || diag "stop: exit $?"
write_config "$T/b.yaml" 'control_socket_mode: "0660"' "control_max_clients: $MAX" \
	"control_allow_users: [nobody]"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "pgtenantd did not start again"
out=$(as_nobody "$PGTENANTCTL" -s "$CTL_SOCK" --json status 2>&1)
is "$(json_eval "$out" "(:'j')::jsonb->>'ok'" 2>/dev/null)" true \
	"finding 12: uid 65534 listed in control_allow_users is served"

# ------------------------------------------------------------ finding 13

# A job that will not run for a day, whose daemon-owned columns hold
# terminal escapes (written here as the superuser, with triggers off).
jid=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
	   VALUES ('noop', 't-esc', now() + interval '1 day') RETURNING id")
sql "BEGIN;
     SET LOCAL session_replication_role = replica;
     UPDATE pgtenantd.jobs
        SET step = E'st\\u001b[2Jep',
            progress = jsonb_build_object(
                E'key\\u001b]0;pwned-key\\u0007', E'v\\u001b]0;pwned-title\\u0007x',
                'clear', E'\\u001b[2J\\u001b[H', 'c1', E'csi\\u009b2J'),
            result = jsonb_build_object('r', E'\\u001b[31mred'),
            last_error = E'boom \\u001b]0;pwned-error\\u0007 \\u001b[2J done'
      WHERE id = $jid;
     COMMIT;" >/dev/null || bail_out "cannot write the hostile job row"

# True if the file holds a byte a terminal acts on: ESC, BEL, CSI (C1).
has_escape()
{
	LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$1"
}

ctl job "$jid" >"$T/job.out" 2>&1
rc=$?
ok "finding 13: pgtenantctl job ID answers (exit $rc)" [ "$rc" -eq 0 ]
ok "finding 13: job ID prints no raw control character (ESC, BEL, C1)" not has_escape "$T/job.out"
like "$(cat "$T/job.out")" 'v\\x1b\]0;pwned-title\\x07x' "finding 13: ... the progress value shown escaped"
like "$(cat "$T/job.out")" 'key\\x1b\]0;pwned-key\\x07' "finding 13: ... and the key"
like "$(cat "$T/job.out")" 'boom \\x1b\]0;pwned-error\\x07 \\x1b\[2J done' "finding 13: ... and last_error"
like "$(cat "$T/job.out")" 'csi\\u009b2J' "finding 13: ... and a C1 CSI"
has_escape "$T/job.out" && diag "$(od -c "$T/job.out" | head -20)"

ctl jobs >"$T/jobs.out" 2>&1
ok "finding 13: pgtenantctl jobs answers" [ $? -eq 0 ]
ok "finding 13: jobs prints no raw control character" not has_escape "$T/jobs.out"
like "$(cat "$T/jobs.out")" 'st\\x1b\[2Jep' "finding 13: ... the step shown escaped"

ctl --json job "$jid" >"$T/job.json" 2>&1
ok "finding 13: --json job ID prints no raw control character" not has_escape "$T/job.json"
is "$(json_eval "$(cat "$T/job.json")" "(:'j')::jsonb->'job'->>'last_error' = E'boom \\u001b]0;pwned-error\\u0007 \\u001b[2J done'")" t \
	"finding 13: ... and is JSON holding the very text"
is "$(json_eval "$(cat "$T/job.json")" "(:'j')::jsonb->'job'->'progress'->>'c1' = E'csi\\u009b2J'")" t \
	"finding 13: ... the C1 character too (as \\u009b)"

# The daemon's error for an unknown command quotes it as it came.
ctl "$(printf 'x\033]0;pwned-cmd\007\033[2J')" >"$T/err.out" 2>&1
ok "finding 13: pgtenantctl fails on an unknown command" [ $? -eq 1 ]
like "$(cat "$T/err.out")" 'unknown command.*x\\x1b\]0;pwned-cmd\\x07\\x1b\[2J' \
	"finding 13: the daemon's error text is shown escaped"
ok "finding 13: ... with no raw control character" not has_escape "$T/err.out"

# ------------------------------------------------------------ finding 15

write_config "$T/secret.yaml" "database: \"dbname=$DB password=hunter2\""
chmod 644 "$T/secret.yaml"
out=$("$PGTENANTD" --check-config -c "$T/secret.yaml" 2>&1)
like "$out" "$T/secret.yaml holds the database password and is readable by group and others \\(mode 0644\\)" \
	"finding 15: --check-config warns about a 0644 config with password= (file and mode named)"
like "$out" "chmod 600 $T/secret.yaml" "finding 15: ... and says how to fix it"
like "$out" "configuration OK" "finding 15: ... a warning, not an error"
chmod 600 "$T/secret.yaml"
out=$("$PGTENANTD" --check-config -c "$T/secret.yaml" 2>&1)
unlike "$out" "password" "finding 15: no warning at mode 0600"
write_config "$T/uri.yaml" "database: \"postgresql://app:hunter2@localhost/$DB\""
chmod 640 "$T/uri.yaml"
out=$("$PGTENANTD" --check-config -c "$T/uri.yaml" 2>&1)
like "$out" 'readable by its group \(mode 0640\)' "finding 15: a URI's password in a 0640 file: warned"
write_config "$T/nopw.yaml"
chmod 644 "$T/nopw.yaml"
out=$("$PGTENANTD" --check-config -c "$T/nopw.yaml" 2>&1)
unlike "$out" "password" "finding 15: no password, no warning"

# make install puts the config in place as 0600 (only the install hook,
# into a scratch DESTDIR).
if [ -f "$top_builddir/Makefile" ]; then
	make -s -C "$top_builddir" install-data-local DESTDIR="$T/inst" \
		sysconfdir=/etc mandir=/man >"$T/install.out" 2>&1 ||
		diag "$(cat "$T/install.out")"
	is "$(stat -c %a "$T/inst/etc/pgtenantd.yaml" 2>&1)" 600 \
		"finding 15: make install writes the config with mode 0600"
else
	skip "finding 15: make install writes the config with mode 0600" "no Makefile"
fi

done_testing
