#!/bin/bash
# fleet.sh - issue 12, part 2: moving many shared tenants in waves. A fleet
# of 50 tenants of mixed sizes, started by an operator role, moves smallest
# first with at most 3 migrations at once across two daemons (checked from
# the jobs' started_at/finished_at, not by sampling), pauses at a planted
# failure, resumes and finishes; a fleet outside its window starts nothing
# and can be cancelled; size bounds; on_failure continue; the view and
# pgtenantctl fleet agree; what a starter can and cannot make the daemon
# do, and who sees and changes a fleet.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env fleet

R=$$
OP=fleet_op_$R	  # starts fleets: pgtenantd_operate
OP2=fleet_op2_$R  # another operator
APP=fleet_app_$R  # may enqueue maintenance only: pgtenantd_enqueue
ROLES="$OP $OP2 $APP"
at_exit "for r in $ROLES; do psql -X -q -d postgres -c \"DROP ROLE IF EXISTS \$r\"; done"
for r in $ROLES; do
	sql "CREATE ROLE $r NOLOGIN" >/dev/null || bail_out "cannot create role $r"
done

N=3	# max_parallel
write_config "$T/a.yaml" "workers: 3" "fleet_interval: 200ms"
write_config "$T/b.yaml" "workers: 3" "fleet_interval: 200ms" \
	"control_socket: $T/b.sock" "state_dir: $T/state-b"
mkdir -p "$T/state-b"
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "daemon b did not start"
B_PID=$DAEMON_PID
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon a did not start"
sql "GRANT pgtenantd_operate TO $OP, $OP2; GRANT pgtenantd_enqueue TO $APP" >/dev/null ||
	bail_out "cannot grant the group roles"

as() { local r=$1 q=$2; shift 2; sql "SET ROLE $r; $q" "$@"; }
as_err() { local r=$1 q=$2; shift 2; sql_err "SET ROLE $r; $q" "$@"; }

# 50 shared tenants f01..f50 whose sizes are a permutation of their names'
# order: tenant i has k = (37 i mod 50) + 1 entities and k relations, so
# every tenant has its own size and the smallest is not the first name.
mig_schema >/dev/null || bail_out "cannot create the shared tables"
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type)
     SELECT 'e' || g, 'f' || lpad(i::text, 2, '0'), 'person'
       FROM generate_series(1, 50) i, generate_series(1, (37 * i) % 50 + 1) g;
     INSERT INTO public.graph_relations (id, tenant_id, relation_type, source_id, target_id)
     SELECT 'r' || g, 'f' || lpad(i::text, 2, '0'), 'knows', 'e1', 'e' || g
       FROM generate_series(1, 50) i, generate_series(1, (37 * i) % 50 + 1) g;
     INSERT INTO public.graph_entities (id, tenant_id, entity_type)
     VALUES ('global', '', 'org'), ('w1', 'win-1', 'org'), ('w2', 'win-2', 'org'),
	    ('w3', 'win-2', 'org')" >/dev/null || bail_out "cannot fill the shared tables"
# The planted failure: tenant f07 (10 of each: the 10th smallest) already
# has a schema holding data no migration wrote, so
# the migration's preflight refuses it for good.
sql "CREATE SCHEMA tenant_f07; CREATE TABLE tenant_f07.graph_entities (id text);
     INSERT INTO tenant_f07.graph_entities VALUES ('planted')" >/dev/null ||
	bail_out "cannot plant the failure"

# ------------------------------------------------------------ who may start
err=$(as_err "$APP" "SELECT pgtenantd.start_fleet('app-fleet', ARRAY['f01'])")
like "$err" "permission denied|may not enqueue" \
	"a role that may not migrate cannot start a fleet"
err=$(as_err "$OP" "SELECT pgtenantd.start_fleet('bad', ARRAY['f01', 'nobody'])")
like "$err" 'tenants "nobody" have no rows in the shared tables' \
	"a listed tenant that is not shared is refused, by name"
err=$(as_err "$OP" "SELECT pgtenantd.start_fleet('bad', ARRAY['f01'], p_window => '22:00-25:00')")
like "$err" 'window "22:00-25:00" is not HH:MM-HH:MM' "a bad window is refused"
err=$(as_err "$OP" "SELECT pgtenantd.start_fleet('bad', ARRAY['f01'], p_time_zone => 'Mars/Olympus')")
like "$err" 'time zone "Mars/Olympus" is not known' "an unknown time zone is refused"
sql "CREATE SEQUENCE public.fleet_seq; GRANT ALL ON SEQUENCE public.fleet_seq TO $OP" >/dev/null
err=$(as_err "$OP" "SELECT pgtenantd.start_fleet('bad', p_query =>
	\$q\$SELECT 'f01' WHERE nextval('public.fleet_seq') > 0\$q\$)")
like "$err" "cannot execute nextval\(\) in a read-only transaction" "a query filter runs read only"
err=$(as_err "$OP" "SELECT pgtenantd.start_fleet('bad', p_query => 'SELECT tenant_id FROM public.graph_entities')")
like "$err" "permission denied for table graph_entities" \
	"a query filter runs with the starter's rights, not the daemon's"
err=$(as_err "$OP" "SELECT pgtenantd.start_fleet('big-filter', p_query => 'SELECT ''f01''' || repeat(' ', 70000))")
like "$err" "the filter of [0-9]+ bytes is over the limit of 65536 bytes" "a huge filter is not stored"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs") $(sql "SELECT count(*) FROM pgtenantd.fleets")" "0 0" \
	"refused starts left no job and no fleet behind"
# a held job of someone else cannot be made a fleet's member
held=$(as "$OP2" "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
		  VALUES ('migrate_to_separate_schema', 'win-1', pgtenantd.fleet_hold()) RETURNING id")
err=$(as_err "$OP" "SELECT pgtenantd.fleet_record('{\"name\": \"steal\"}', '[{\"job_id\": $held}]')")
like "$err" "not held migrations inserted by this transaction" \
	"fleet_record refuses a job this transaction did not insert"
ok "the daemon's fleet_advance is not for its users" \
	not as "$OP" "SELECT pgtenantd.fleet_advance()" 2>/dev/null
sql "UPDATE pgtenantd.jobs SET cancel_requested = true WHERE id = $held" >/dev/null

# ------------------------------------------------------------- the window
is "$(sql "SELECT string_agg(pgtenantd.fleet_in_window(s::time, e::time, tz, at::timestamptz)::text, ' ' ORDER BY n)
	     FROM (VALUES (1, '22:00', '06:00', 'UTC', '2026-03-01 23:00+00'),
			  (2, '22:00', '06:00', 'UTC', '2026-03-01 05:59+00'),
			  (3, '22:00', '06:00', 'UTC', '2026-03-01 06:00+00'),
			  (4, '22:00', '06:00', 'UTC', '2026-03-01 12:00+00'),
			  (5, '01:30', '05:00', 'UTC', '2026-03-01 01:30+00'),
			  (6, '01:30', '05:00', 'UTC', '2026-03-01 05:30+00'),
			  (7, '22:00', '06:00', 'Europe/Berlin', '2026-03-01 21:30+00'),
			  (8, '22:00', '06:00', 'Europe/Berlin', '2026-03-01 20:30+00'),
			  (9, NULL, NULL, 'UTC', '2026-03-01 12:00+00')) v(n, s, e, tz, at)")" \
	"true true false false true false true false true" \
	"windows: spanning midnight, start inclusive, end exclusive, in the fleet's time zone, none"

# ---------------------------------------------- a window that is closed now
sql "SELECT set_config('TimeZone', 'UTC', false)" >/dev/null
win=$(sql "SELECT to_char(now() AT TIME ZONE 'Asia/Tokyo' + interval '3 hours', 'HH24:MI') || '-' ||
		  to_char(now() AT TIME ZONE 'Asia/Tokyo' + interval '4 hours', 'HH24:MI')")
ok "a fleet with a window starts" \
	as "$OP" "SELECT pgtenantd.start_fleet('later', ARRAY['win-1', 'win-2'],
		   p_window => '$win', p_time_zone => 'Asia/Tokyo')"
sleep 1.5	# several fleet_interval rounds of both daemons
is "$(sql "SELECT state, in_window, waiting, running, \"window\" FROM pgtenantd.fleet_status WHERE name = 'later'")" \
	"running|f|2|0|$win" "outside its window (Asia/Tokyo) the fleet starts nothing"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE tenant_id LIKE 'win-%' AND state = 'queued'
	     AND run_at = pgtenantd.fleet_hold() AND enqueued_by = '$OP'")" 2 \
	"its jobs are held, enqueued by the starter"
err=$(as_err "$OP2" "SELECT pgtenantd.fleet_cancel('later')")
like "$err" "no fleet \"later\" that role $OP2 may change" "another operator cannot cancel it"
out=$(ctl fleet cancel later)
like "$out" "requested" "pgtenantctl fleet cancel asks"
ok "a cancelled fleet's waiting tenants are cancelled" \
	wait_until "SELECT state = 'cancelled' AND cancelled = 2 AND finished_at IS NOT NULL
		      FROM pgtenantd.fleet_status WHERE name = 'later'"
is "$(sql "SELECT string_agg(j.state, ',') FROM pgtenantd.fleet_members m
	     JOIN pgtenantd.fleets f ON f.id = m.fleet_id JOIN pgtenantd.jobs j ON j.id = m.job_id
	    WHERE f.name = 'later'")" \
	"cancelled,cancelled" "and their jobs too"

# ------------------------------------------------------ the fleet of 50
t0=$(now_ms)
ok "an operator starts a fleet of every shared f tenant" \
	as "$OP" "SELECT pgtenantd.start_fleet('wave', p_query => \$q\$SELECT 'f' || lpad(g::text, 2, '0') FROM generate_series(1, 50) g\$q\$,
		   p_max_parallel => $N, p_args => '{\"batch_cap\": \"1000\"}')"
is "$(sql "SELECT members, rows_total FROM pgtenantd.fleet_status WHERE name = 'wave'")" \
	"50|2550" "50 tenants planned with their rows (2 x (1 + ... + 50))"
is "$(sql "SELECT count(*) FROM pgtenantd.fleet_members m JOIN pgtenantd.fleets f ON f.id = m.fleet_id
	     WHERE f.name = 'wave' AND m.position <> (SELECT count(*) FROM pgtenantd.fleet_members m2
						      WHERE m2.fleet_id = m.fleet_id AND m2.rows <= m.rows)")" 0 \
	"the plan orders the tenants smallest first"
ok "the fleet pauses at the planted failure" \
	wait_until "SELECT state = 'paused' FROM pgtenantd.fleets WHERE name = 'wave'" 60
like "$(sql "SELECT paused_reason FROM pgtenantd.fleets WHERE name = 'wave'")" \
	'tenant "f07" \(job [0-9]+\) failed: .*schema "tenant_f07" exists and holds data' \
	"why it paused names the tenant, its job and the error"
ok "the migrations that were running finish" \
	wait_until "SELECT running = 0 FROM pgtenantd.fleet_status WHERE name = 'wave'" 30
paused=$(sql "SELECT done || '/' || waiting FROM pgtenantd.fleet_status WHERE name = 'wave'")
sleep 1
is "$(sql "SELECT done || '/' || waiting FROM pgtenantd.fleet_status WHERE name = 'wave'")" "$paused" \
	"paused, the fleet starts nothing new"
is "$(sql "SELECT failed FROM pgtenantd.fleet_status WHERE name = 'wave'")" 1 "one tenant failed"
done_paused=${paused%/*}
# Released after the failure? Not measured from the job's finished_at:
# that is taken before the failure commits, and until the commit (later
# by any amount on a loaded machine) an advance rightly releases more.
# The advances hold the fleet's row lock in turn and each stamps what it
# releases with its start (started_at); the first to see the failure
# pauses the fleet and stamps updated_at with the same start, which
# nothing else changes while the fleet stays paused. So no member may
# have started at or after the fleet's updated_at: released by the
# advance that paused, or by a later one, it would have been released
# with the failure in sight.
pos=$(sql "SELECT m.position FROM pgtenantd.fleet_members m JOIN pgtenantd.fleets f ON f.id = m.fleet_id
	    WHERE f.name = 'wave' AND m.tenant_id = 'f07'")
is "$pos" 10 "f07 is the 10th smallest"
is "$(sql "SELECT count(*) FILTER (WHERE m.position < $pos AND m.state = 'done') || '/' ||
		  count(*) FILTER (WHERE m.started_at >= f.updated_at)
	     FROM pgtenantd.fleet_members m JOIN pgtenantd.fleets f ON f.id = m.fleet_id
	    WHERE f.name = 'wave'")" "$((pos - 1))/0" \
	"every smaller tenant moved; none was released once the failure was seen"
diag "members released between f07's finished_at and the pause (before the failure committed): $(
	sql "SELECT count(*) FROM pgtenantd.fleet_members m JOIN pgtenantd.fleets f ON f.id = m.fleet_id
	       JOIN pgtenantd.fleet_members f07 ON f07.fleet_id = f.id AND f07.tenant_id = 'f07'
	       JOIN pgtenantd.jobs j ON j.id = f07.job_id
	      WHERE f.name = 'wave' AND m.started_at > j.finished_at")"

# the view and pgtenantctl agree
view=$(sql "SELECT done, running, waiting, failed, rows_moved FROM pgtenantd.fleet_status WHERE name = 'wave'")
j=$(ctl --json fleet wave)
is "$(json_eval "$j" "concat_ws('|', (:'j')::jsonb#>>'{fleet,done}', (:'j')::jsonb#>>'{fleet,running}',
		     (:'j')::jsonb#>>'{fleet,waiting}', (:'j')::jsonb#>>'{fleet,failed}',
		     (:'j')::jsonb#>>'{fleet,rows_moved}')")" "$view" \
	"pgtenantctl fleet NAME shows the view's counts"
is "$(json_eval "$j" "jsonb_array_length((:'j')::jsonb#>'{fleet,members}')")" 50 "and its 50 tenants"
out=$(ctl fleet)
like "$out" "^wave +paused +50 +$done_paused +0 +$((50 - done_paused - 1)) +1 " \
	"pgtenantctl fleet lists it: paused, tenants, done, running, waiting, failed"
diag "$out"
out=$(ctl fleet wave)
like "$out" "f07 +failed" "pgtenantctl fleet wave shows the failed tenant"
diag "$(printf '%s\n' "$out" | head -n 32)"
isnt "$(sql "SELECT eta FROM pgtenantd.fleet_status WHERE name = 'wave'")" "" "an ETA from the rate so far"

# The fleet lives in the database: both daemons stop, one comes back.
ok "daemon b stops" stop_daemon "$B_PID"
ok "daemon a stops" stop_daemon "$DAEMON_PID"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon a did not start again"
is "$(sql "SELECT state, done FROM pgtenantd.fleet_status WHERE name = 'wave'")" "paused|$done_paused" \
	"a restarted daemon finds the fleet as it was"
# fix the cause and resume: the failed tenant runs again
sql "DROP SCHEMA tenant_f07 CASCADE" >/dev/null
err=$(as_err "$OP2" "SELECT pgtenantd.fleet_resume('wave')")
like "$err" "no fleet \"wave\" that role $OP2 may change" "another operator cannot resume it"
ok "the starter resumes it" as "$OP" "SELECT pgtenantd.fleet_resume('wave')"
ok "the fleet finishes" \
	wait_until "SELECT state = 'finished' FROM pgtenantd.fleets WHERE name = 'wave'" 90
is "$(sql "SELECT done, running, waiting, failed, rows_moved, eta IS NULL FROM pgtenantd.fleet_status WHERE name = 'wave'")" \
	"50|0|0|0|2550|t" "all 50 done, every row moved"
is "$(sql "SELECT count(*) FROM pgtenantd.separate_tenants() t WHERE t LIKE 'f%'")" 50 \
	"every tenant has its own schema"
is "$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id LIKE 'f%'")" 0 "no f row is left shared"
is "$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id IN ('', 'win-1', 'win-2')")" 4 \
	"other tenants' and global rows are untouched"
is "$(sql "SELECT m.jobs_run || ' ' || j.enqueued_by || ' ' || j.state FROM pgtenantd.fleet_members m
	     JOIN pgtenantd.jobs j ON j.id = m.job_id WHERE m.tenant_id = 'f07'")" "2 $OP succeeded" \
	"the failed tenant ran again, as a job of the starter"
is "$(sql "SELECT count(DISTINCT enqueued_by) || ' ' || min(enqueued_by) FROM pgtenantd.jobs
	     WHERE kind = 'migrate_to_separate_schema' AND tenant_id LIKE 'f%'")" "1 $OP" \
	"every member job was enqueued by the starter"
is "$(as "$OP" "SELECT count(*) FROM pgtenantd.jobs WHERE tenant_id LIKE 'f%'")" 51 \
	"who sees them all (row-level security)"

# smallest first and never more than N at once, from the jobs' own times
members="SELECT m.tenant_id, m.position, m.rows, j.started_at, j.finished_at, m.started_at AS released
	   FROM pgtenantd.fleet_members m JOIN pgtenantd.fleets f ON f.id = m.fleet_id
	   JOIN pgtenantd.jobs j ON j.tenant_id = m.tenant_id AND j.state = 'succeeded'
	  WHERE f.name = 'wave'"
is "$(sql "WITH m AS ($members)
	   SELECT count(*) FROM m a JOIN m b ON a.rows < b.rows
	    WHERE a.released > b.released AND 'f07' NOT IN (a.tenant_id, b.tenant_id)")" 0 \
	"the fleet released the tenants smallest first (but the retried f07)"
is "$(sql "WITH m AS ($members)
	   SELECT count(*) FROM m a JOIN m b ON a.released < b.released
	    WHERE a.started_at > b.started_at")" 0 \
	"no tenant's job started before one released earlier"
concurrency=$(sql "WITH m AS ($members)
		   SELECT max((SELECT count(*) FROM m b
			        WHERE b.started_at <= a.started_at AND b.finished_at > a.started_at))
		     FROM m a")
ok "at most $N migrations ran at once (at most $concurrency)" between "$concurrency" 1 "$N"
ok "and the fleet used its parallelism ($concurrency at once)" between "$concurrency" 2 "$N"
ok "daemon a ran some members" \
	grep -q "migrate_to_separate_schema f[0-9]*.*claimed" "$T/a.log"
ok "daemon b ran some" grep -q "migrate_to_separate_schema f[0-9]*.*claimed" "$T/b.log"
diag "50 tenants in $(($(now_ms) - t0)) ms, $N at once, with a pause"

# ------------------------------------------------ seen and changed by whom
RD=fleet_rd_$R
sql "CREATE ROLE $RD NOLOGIN; GRANT pgtenantd_read TO $RD" >/dev/null
at_exit "psql -X -q -d postgres -c 'DROP ROLE IF EXISTS $RD'"
is "$(as "$OP2" "SELECT count(*) FROM pgtenantd.fleet_status WHERE name = 'wave'")/$(as "$OP2" "SELECT count(*) FROM pgtenantd.fleet_members")" \
	"0/0" "another operator sees neither the fleet nor its tenants"
is "$(as "$RD" "SELECT done FROM pgtenantd.fleet_status WHERE name = 'wave'")" 50 "pgtenantd_read sees it"
err=$(as_err "$OP" "UPDATE pgtenantd.fleets SET state = 'running', max_parallel = 100 WHERE name = 'wave'")
like "$err" "permission denied" "the starter cannot rewrite its fleet, only ask"
is "$(sql "REVOKE SELECT ON pgtenantd.fleet_status FROM pgtenantd_read;
	   REVOKE EXECUTE ON FUNCTION pgtenantd.fleet_record(jsonb, jsonb) FROM pgtenantd_operate;
	   SELECT pgtenantd.apply_grants();
	   SELECT has_table_privilege('pgtenantd_read', 'pgtenantd.fleet_status', 'SELECT'),
		  has_function_privilege('pgtenantd_operate', 'pgtenantd.fleet_record(jsonb, jsonb)', 'EXECUTE'),
		  has_function_privilege('pgtenantd_operate', 'pgtenantd.fleet_advance()', 'EXECUTE'),
		  has_function_privilege('pgtenantd_admin', 'pgtenantd.fleet_advance()', 'EXECUTE')" | tail -n 1)" \
	"t|t|f|f" "apply_grants (each daemon start) grants the fleet's privileges again; fleet_advance to no one"

# A starter who lost the right to migrate: a retry is refused, skip is not.
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('z', 'z-1', 'org');
     CREATE SCHEMA tenant_z_1; CREATE TABLE tenant_z_1.graph_entities (id text);
     INSERT INTO tenant_z_1.graph_entities VALUES ('planted')" >/dev/null
ok "another fleet, of one tenant" as "$OP2" "SELECT pgtenantd.start_fleet('lost', ARRAY['z-1'])"
ok "it pauses at its failure" \
	wait_until "SELECT state = 'paused' FROM pgtenantd.fleets WHERE name = 'lost'" 30
sql "REVOKE pgtenantd_operate FROM $OP2; DROP SCHEMA tenant_z_1 CASCADE" >/dev/null 2>&1
like "$(ctl fleet resume lost)" "requested" "an administrator asks to retry it"
ok "the retry is refused: the starter may no longer enqueue migrations" \
	wait_until "SELECT paused_reason LIKE 'cannot retry: role \"$OP2\"%may no longer enqueue%'
		      FROM pgtenantd.fleets WHERE name = 'lost'"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE tenant_id = 'z-1'")" 1 "and no job was enqueued for it"
like "$(ctl fleet skip lost)" "requested" "skip asks to go on without it"
ok "the fleet finishes, its tenant skipped" \
	wait_until "SELECT state = 'finished' AND skipped = 1 FROM pgtenantd.fleet_status WHERE name = 'lost'"

# ------------------------------------- size bounds and on_failure: continue
# c-1..c-4 of 2, 4, 6 and 100 rows; c-2 planted to fail.
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type)
     SELECT 'e' || g, 'c-' || i, 'org'
       FROM generate_series(1, 4) i, generate_series(1, CASE WHEN i = 4 THEN 50 ELSE i END) g;
     INSERT INTO public.graph_relations (id, tenant_id, relation_type, source_id, target_id)
     SELECT 'r' || g, 'c-' || i, 'knows', 'e1', 'e1'
       FROM generate_series(1, 4) i, generate_series(1, CASE WHEN i = 4 THEN 50 ELSE i END) g;
     CREATE SCHEMA tenant_c_2; CREATE TABLE tenant_c_2.graph_entities (id text);
     INSERT INTO tenant_c_2.graph_entities VALUES ('planted')" >/dev/null
ok "a fleet within size bounds that goes on past failures" \
	as "$OP" "SELECT pgtenantd.start_fleet('bounded', p_query => \$q\$SELECT 'c-' || g FROM generate_series(1, 9) g\$q\$,
		   p_min_rows => 3, p_max_rows => 10, p_max_parallel => 2, p_on_failure => 'continue')"
is "$(sql "SELECT string_agg(m.tenant_id || ':' || m.rows, ' ' ORDER BY m.position)
	     FROM pgtenantd.fleet_members m JOIN pgtenantd.fleets f ON f.id = m.fleet_id WHERE f.name = 'bounded'")" \
	"c-2:4 c-3:6" "only the tenants of 3 to 10 rows are members, smallest first"
ok "it finishes in spite of the failure" \
	wait_until "SELECT state = 'finished' FROM pgtenantd.fleets WHERE name = 'bounded'" 30
is "$(sql "SELECT done, failed, paused_reason IS NULL FROM pgtenantd.fleet_status WHERE name = 'bounded'")" \
	"1|1|t" "one done, one failed, never paused"
out=$(ctl fleet nosuch 2>&1)
rc=$?
is "$rc $out" "1 pgtenantctl: no such fleet" "pgtenantctl fleet of an unknown name: no such fleet, exit status 1"

ok "daemon a stops cleanly" stop_daemon "$DAEMON_PID"
done_testing
