#!/bin/bash
# fleet-schedule.sh - issue 12, part 2, the schedule mode: a schedule of
# migrate_to_separate_schema with fleet: {max_parallel: 1} over tenants:
# shared, on a fake clock (a slot every 5 simulated minutes, one real
# second apart) and two daemons. Its first slot starts ONE fleet named
# after the slot (seen in pgtenantd.fleet_status and pgtenantctl fleet);
# its members move one at a time, smallest first; the slots that come
# while the fleet is active (here paused at a planted failure) start no
# other fleet and say so; each slot is fired by one daemon; once the fleet
# has finished a slot with no shared tenant records 0 jobs; a reloaded
# config's fleet settings apply to the next fleet.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env fleet-schedule

# Six shared tenants s1..s6 whose sizes run against their names (s1 is the
# largest), so that smallest first is not name order; s1 fails at first:
# its schema already holds data no migration wrote.
mig_schema >/dev/null || bail_out "cannot create the shared tables"
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type)
     SELECT 'e' || g, 's' || i, 'person'
       FROM generate_series(1, 6) i, generate_series(1, (7 - i) * 10) g;
     INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('global', '', 'org');
     CREATE SCHEMA tenant_s1; CREATE TABLE tenant_s1.graph_entities (id text);
     INSERT INTO tenant_s1.graph_entities VALUES ('planted')" >/dev/null ||
	bail_out "cannot fill the shared tables"

# The fake clock runs 300 times as fast: a */5 slot every real second.
export PGTENANTD_FAKE_CLOCK="$(date -u -d 2024-05-01T00:00:00Z +%s) 300 $(date +%s)"

schedule()
{
	printf '%s\n' "schedules:
  - name: wave
    cron: \"*/5 * * * *\"
    job: migrate_to_separate_schema
    tenants: shared
    catch_up: none
    args:
      batch_cap: 1000
    fleet:
      max_parallel: $1
      on_failure: pause"
}
mkdir -p "$T/state-a" "$T/state-b"
write_config "$T/a.yaml" "state_dir: $T/state-a" "control_socket: $T/a.sock" \
	"fleet_interval: 200ms" "$(schedule 1)"
write_config "$T/b.yaml" "state_dir: $T/state-b" "control_socket: $T/b.sock" \
	"fleet_interval: 200ms" "$(schedule 1)"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon a did not start"
pid_a=$DAEMON_PID
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "daemon b did not start"
pid_b=$DAEMON_PID
CTL_SOCK=$T/a.sock

# ------------------------------------------------------ the first slot
ok "the first slot fired starts a fleet" \
	wait_until "SELECT count(*) = 1 FROM pgtenantd.fleets" 20
read -r first first_slot <<<"$(sql "SELECT f.name, extract(epoch FROM s.slot)::bigint
	FROM pgtenantd.fleets f JOIN pgtenantd.schedule_slots s ON s.fleet = f.name" | tr '|' ' ')"
like "$first" "^wave-20240501T[0-9]{4}Z$" "it is named after the schedule and the slot ($first)"
is "$(sql "SELECT 'wave-' || to_char(min(slot) AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MI\"Z\"')
	     FROM pgtenantd.schedule_slots WHERE schedule = 'wave'")" "$first" \
	"the slot is the schedule's first"
is "$(sql "SELECT schedule, started_by = current_user, max_parallel, on_failure, args->>'batch_cap'
	     FROM pgtenantd.fleets WHERE name = '$first'")" \
	"wave|t|1|pause|1000" \
	"it is the schedule's, the daemon role's, with the schedule's fleet settings and args"
is "$(sql "SELECT jobs, skipped FROM pgtenantd.schedule_slots WHERE fleet = '$first'")" "6|0" \
	"the slot records its fleet and 6 jobs"
is "$(sql "SELECT members, rows_total FROM pgtenantd.fleet_status WHERE name = '$first'")" "6|210" \
	"fleet_status shows 6 tenants of 10 + 20 + ... + 60 rows"
is "$(sql "SELECT string_agg(m.tenant_id, ',' ORDER BY m.position) FROM pgtenantd.fleet_members m
	     JOIN pgtenantd.fleets f ON f.id = m.fleet_id WHERE f.name = '$first'")" \
	"s6,s5,s4,s3,s2,s1" "the plan is smallest first"
is "$(sql "SELECT count(DISTINCT enqueued_by) || ' ' || bool_and(enqueued_by = current_user)
	     FROM pgtenantd.jobs WHERE kind = 'migrate_to_separate_schema'")" "1 true" \
	"every member job is the daemon role's own"

# ---------------------------------- paused at s1; later slots start none
ok "the fleet pauses at the planted failure of s1, the largest, moved last" \
	wait_until "SELECT state = 'paused' FROM pgtenantd.fleets WHERE name = '$first'" 90
is "$(sql "SELECT done, failed, waiting FROM pgtenantd.fleet_status WHERE name = '$first'")" "5|1|0" \
	"the other five are done"
slots_before=$(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE schedule = 'wave'")
ok "two more slots come while the fleet is paused" \
	wait_until "SELECT count(*) >= $slots_before + 2 FROM pgtenantd.schedule_slots WHERE schedule = 'wave'" 20
is "$(sql "SELECT count(*) FROM pgtenantd.fleets")" 1 "no slot started a second fleet"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots
	    WHERE schedule = 'wave' AND slot > to_timestamp($first_slot) AND NOT (jobs = 0 AND fleet IS NULL)")" 0 \
	"each later slot recorded 0 jobs and no fleet"
is "$(sql "SELECT skipped FROM pgtenantd.schedule_slots WHERE schedule = 'wave' ORDER BY slot DESC LIMIT 1")" 1 \
	"the newest skipped s1, still shared"
ok "a daemon says why the slot started no fleet" \
	grep -q "schedule 'wave': slot .*: no new fleet: fleet '$first' of this schedule is still active" \
	"$T/a.log" "$T/b.log"

# --------------------------------------------- every slot fired once
# The slots the daemons logged; a slot is recorded (its row committed)
# a moment before the daemon that fired it reads the result and logs it,
# and the clock keeps firing slots, so the counts are compared until they
# agree (a few seconds at most), not at one instant.
logged_slots()
{
	cat "$T/a.log" "$T/b.log" |
		sed -n -E "s/.*schedule 'wave': slot ([0-9T:+-]+)( \(catch-up\))?: (fleet '|no new fleet|no fleet).*/\1/p" | sort
}
logged_as_recorded()
{
	[ "$(logged_slots | wc -l)" = "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE schedule = 'wave'")" ]
}
ok "the daemons logged each recorded slot once" wait_cmd 10 logged_as_recorded
is "$(logged_slots | uniq -d | wc -l)" 0 "no slot was fired by both daemons"
diag "slots fired by a: $(grep -c "schedule 'wave': slot" "$T/a.log"), by b: $(grep -c "schedule 'wave': slot" "$T/b.log")"

# ------------------------------------------- pgtenantctl fleet shows it
out=$(ctl fleet)
like "$out" "$first +paused +6 +5 +0 +0 +1 " "pgtenantctl fleet lists the fleet: paused, 6, 5 done, 1 failed"
out=$(ctl fleet "$first")
like "$out" "s1 +failed" "pgtenantctl fleet NAME shows the failed tenant"

# ------------------------------------------- resumed, it finishes
sql "DROP SCHEMA tenant_s1 CASCADE" >/dev/null
out=$(ctl fleet resume "$first")
like "$out" "requested" "pgtenantctl fleet resume asks"
ok "the fleet finishes" \
	wait_until "SELECT state = 'finished' FROM pgtenantd.fleets WHERE name = '$first'" 60
is "$(sql "SELECT done, failed, rows_moved FROM pgtenantd.fleet_status WHERE name = '$first'")" "6|0|210" \
	"all 6 done, every row moved"
is "$(sql "SELECT count(*) FROM pgtenantd.fleet_members m JOIN pgtenantd.jobs j ON j.id = m.job_id
	    WHERE j.state = 'succeeded'")" 6 "every member's (last) job succeeded"
is "$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id <> ''")" 0 "no tenant row is left shared"

# one at a time, smallest first, from the jobs' own times
members="SELECT m.tenant_id, m.rows, j.started_at, j.finished_at
	   FROM pgtenantd.fleet_members m JOIN pgtenantd.jobs j ON j.tenant_id = m.tenant_id
	  WHERE j.state = 'succeeded' AND j.kind = 'migrate_to_separate_schema'"
is "$(sql "WITH m AS ($members) SELECT string_agg(tenant_id, ',' ORDER BY started_at) FROM m")" \
	"s6,s5,s4,s3,s2,s1" "the migrations started smallest first"
is "$(sql "WITH m AS ($members)
	   SELECT count(*) FROM m a JOIN m b ON a.tenant_id < b.tenant_id
	    WHERE a.started_at < b.finished_at AND b.started_at < a.finished_at")" 0 \
	"no two migrations overlapped (max_parallel: 1)"

# ------------------------------- nothing left: the slot records 0 jobs
slot_done=$(sql "SELECT max(slot) FROM pgtenantd.schedule_slots WHERE schedule = 'wave'")
ok "a slot after the fleet finished is fired" \
	wait_until "SELECT count(*) > 0 FROM pgtenantd.schedule_slots WHERE schedule = 'wave' AND slot > '$slot_done'" 20
is "$(sql "SELECT jobs, skipped, fleet IS NULL FROM pgtenantd.schedule_slots
	    WHERE schedule = 'wave' AND slot > '$slot_done' ORDER BY slot LIMIT 1")" "0|0|t" \
	"with no shared tenant it records 0 jobs and no fleet"
ok "and a daemon says so" grep -q "schedule 'wave': slot .*: no fleet: no shared tenant matches" \
	"$T/a.log" "$T/b.log"
is "$(sql "SELECT count(*) FROM pgtenantd.fleets")" 1 "still one fleet"

# -------------------- a reload: the next fleet takes the new settings
write_config "$T/a.yaml" "state_dir: $T/state-a" "control_socket: $T/a.sock" \
	"fleet_interval: 200ms" "$(schedule 2)"
write_config "$T/b.yaml" "state_dir: $T/state-b" "control_socket: $T/b.sock" \
	"fleet_interval: 200ms" "$(schedule 2)"
kill -HUP "$pid_a" "$pid_b"
ok "both daemons reload" wait_cmd 10 sh -c "grep -q 'SIGHUP: reloaded' '$T/a.log' && grep -q 'SIGHUP: reloaded' '$T/b.log'"
sleep 1.5	# a slot after the reload: the new settings are in force
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type)
     VALUES ('l1', 'late-1', 'org'), ('l2', 'late-2', 'org'), ('l3', 'late-2', 'org')" >/dev/null
ok "a new shared tenant gets a new fleet at a later slot" \
	wait_until "SELECT count(*) = 2 FROM pgtenantd.fleets" 20
read -r name slot_name <<<"$(sql "SELECT f.name, 'wave-' || to_char(s.slot AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MI\"Z\"')
	 FROM pgtenantd.fleets f JOIN pgtenantd.schedule_slots s ON s.fleet = f.name
	WHERE f.name <> '$first'" | tr '|' ' ')"
isnt "$name" "" "the second fleet is found"
is "$name" "$slot_name" "it is named after the slot that started it"
is "$(sql "SELECT max_parallel, members FROM pgtenantd.fleet_status WHERE name = '$name'")" "2|2" \
	"with the reloaded max_parallel: 2 and the two new tenants"
ok "it finishes" wait_until "SELECT state = 'finished' FROM pgtenantd.fleets WHERE name = '$name'" 60

j=$(ctl --json schedules)
is "$(json_eval "$j" "(:'j')::jsonb#>>'{schedules,0,fleet,max_parallel}'")" 2 \
	"pgtenantctl schedules shows the schedule's fleet settings"

# --------------------------------------- fire_slot_fleet, called directly
# (the schedule reloaded away, so that no slot of it takes x-1 meanwhile)
write_config "$T/a.yaml" "state_dir: $T/state-a" "control_socket: $T/a.sock" "fleet_interval: 200ms"
write_config "$T/b.yaml" "state_dir: $T/state-b" "control_socket: $T/b.sock" "fleet_interval: 200ms"
kill -HUP "$pid_a" "$pid_b"
ok "both daemons reload without the schedule" \
	wait_cmd 10 sh -c "[ \$(grep -c 'SIGHUP: reloaded' '$T/a.log') = 2 ] && [ \$(grep -c 'SIGHUP: reloaded' '$T/b.log') = 2 ]"
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type) VALUES ('x', 'x-1', 'org')" >/dev/null
held=$(sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, run_at)
	    VALUES ('migrate_to_separate_schema', 'x-1', pgtenantd.fleet_hold()) RETURNING id")
fire="SELECT concat_ws('|', coalesce(jobs::text, 'null'), fleet, active_fleet)
	FROM pgtenantd.fire_slot_fleet('manual', %s, %s, '{}', ARRAY['x-1', 's2', 'nobody', 'bad id'], current_user, false)"
is "$(sql "$(printf "$fire" "'2030-01-01 00:00+00'" "'{}'")")" 0 \
	"a slot whose tenants are separate, unknown or have a migration queued starts no fleet"
is "$(sql "SELECT jobs, skipped, fleet IS NULL FROM pgtenantd.schedule_slots WHERE schedule = 'manual'")" "0|3|t" \
	"it records 0 jobs and the three valid ids as skipped"
is "$(sql "$(printf "$fire" "'2030-01-01 00:00+00'" "'{}'")")" null \
	"the same slot fired again is another daemon's: jobs NULL"
sql "DELETE FROM pgtenantd.jobs WHERE id = $held" >/dev/null
err=$(sql_err "$(printf "$fire" "'2030-01-01 01:00+00'" "'{\"time_zone\": \"Mars/Olympus\"}'")")
like "$err" 'time zone "Mars/Olympus" is not known' "start_fleet's own checks still apply"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE schedule = 'manual'")/$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE tenant_id = 'x-1'")" \
	"1/0" "a refused slot leaves no slot row and no job behind"
is "$(sql "$(printf "$fire" "'2030-01-01 02:00+00'" "'{\"max_parallel\": 1}'")")" "1|manual-20300101T0200Z" \
	"once the queued migration is gone, x-1 gets a fleet"
ok "it finishes" wait_until "SELECT state = 'finished' FROM pgtenantd.fleets WHERE name = 'manual-20300101T0200Z'" 60
is "$(sql "SELECT has_function_privilege('pgtenantd_enqueue', 'pgtenantd.fire_slot_fleet(text, timestamptz, jsonb, jsonb, text[], text, boolean)', 'EXECUTE'),
		  has_function_privilege('pgtenantd_operate', 'pgtenantd.fire_slot_fleet(text, timestamptz, jsonb, jsonb, text[], text, boolean)', 'EXECUTE')")" \
	"f|f" "fire_slot_fleet is the daemon's alone"

ok "daemon a stops" stop_daemon "$pid_a"
ok "daemon b stops" stop_daemon "$pid_b"
done_testing
