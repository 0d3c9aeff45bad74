#!/bin/bash
# maint-schedule.sh - schedules on a fake clock (PGTENANTD_FAKE_CLOCK, about
# 8.4 simulated hours per real second): a simulated week with two daemons
# fires every slot exactly once, one job per tenant, also over the spring
# DST change in Europe/Berlin; with both daemons down over several slots,
# catch_up: latest fires the newest missed slot once and catch_up: none
# fires none of them; pgtenantctl schedules shows last and next fire.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env maint-schedule

# Tenants with their own schema (tenant_x has no graph_entities: not one).
sql "CREATE SCHEMA tenant_s1; CREATE TABLE tenant_s1.graph_entities (id text PRIMARY KEY);
     CREATE SCHEMA tenant_s2; CREATE TABLE tenant_s2.graph_entities (id text PRIMARY KEY);
     CREATE SCHEMA tenant_x; CREATE TABLE tenant_x.other (id int)" ||
	bail_out "could not create the tenant schemas"

speed=30240	# one simulated week in 20 real seconds
fake0=$(date -u -d 2024-03-24T12:00:00Z +%s)
# The real start in milliseconds (the daemon reads a fraction), so that
# the fake clock's time at any real moment is known to the millisecond.
real0_ms=$(now_ms)
PGTENANTD_FAKE_CLOCK="$fake0 $speed $((real0_ms / 1000)).$(printf %03d $((real0_ms % 1000)))"
export PGTENANTD_FAKE_CLOCK

# Sleep until the fake clock shows the UTC time given.
sleep_until_fake()
{
	local target ms
	target=$(date -u -d "$1" +%s)
	ms=$(((target - fake0) * 1000 / speed - ($(now_ms) - real0_ms)))
	[ "$ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	return 0
}

# The fake clock's second at real millisecond MS, rounded down (or up:
# fake_s_at MS up).
fake_s_at()
{
	local round=0
	[ "${2:-}" = up ] && round=999
	echo $((fake0 + ((($1 - real0_ms) * speed + round) / 1000)))
}

# The day of March 2024 of nightly's first slot (02:30 Berlin, 01:30 UTC
# before the DST change) after fake second S: first_night_after S.
first_night_after()
{
	local day
	for ((day = 24; day < 31; day++)); do
		[ "$(date -u -d "2024-03-${day}T01:30:00Z" +%s)" -gt "$1" ] && break
	done
	echo "$day"
}

# True if the daemon on SOCKET has planned nightly's next slot: its
# scheduler has read its clock and set out from there.
nightly_planned()
{
	local out
	out=$(ctl_at "$1" --json schedules 2>/dev/null) || return 1
	[ "$(json_eval "$out" "(SELECT s->>'next_fire' IS NOT NULL
				 FROM jsonb_array_elements((:'j')::jsonb->'schedules') s
				WHERE s->>'name' = 'nightly')" 2>/dev/null)" = t ]
}

schedules="schedules:
  - name: hourly
    cron: \"CRON_TZ=Europe/Berlin 0 * * * *\"
    job: noop
    tenants: [t-a, t-b]
  - name: nightly
    cron: \"CRON_TZ=Europe/Berlin 30 2 * * *\"
    job: noop
    tenants: separate
  - name: quarter
    cron: \"*/15 * * * *\"
    job: noop
    tenants: [t-c]
    catch_up: none"
mkdir -p "$T/state-a" "$T/state-b"
write_config "$T/a.yaml" "state_dir: $T/state-a" "control_socket: $T/a.sock" \
	"log_level: info" "$schedules"
write_config "$T/b.yaml" "state_dir: $T/state-b" "control_socket: $T/b.sock" \
	"log_level: info" "$schedules"
# Nothing was fired yet: nightly's first slot is the first after the fake
# time at which daemon A's scheduler starts (B's starts later), which
# lies between the two real moments taken around it.
before_a_ms=$(now_ms)
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon A did not start"
pid_a=$DAEMON_PID
ok "daemon A's scheduler plans nightly's first slot" wait_cmd 20 nightly_planned "$T/a.sock"
planned_ms=$(now_ms)
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "daemon B did not start"
pid_b=$DAEMON_PID

sleep_until_fake 2024-03-27T12:00:00Z
out=$(ctl --json schedules)
like "$out" '"name": ?"hourly"' "schedules lists the hourly schedule"
is "$(json_eval "$out" "(SELECT count(*) FROM jsonb_array_elements((:'j')::jsonb->'schedules') s
			 WHERE s->>'last_fire' IS NOT NULL AND s->>'next_fire' > s->>'last_fire'
			   AND s ? 'cron' AND s ? 'job')")" 3 \
	"each schedule shows its cron, job, last fire and a later next fire"
like "$(ctl schedules)" 'CRON_TZ=Europe/Berlin 30 2' "pgtenantctl schedules renders a table"

sleep_until_fake 2024-04-01T00:10:00Z
ok "daemon A stops" stop_daemon "$pid_a"
ok "daemon B stops" stop_daemon "$pid_b"
stopped_ms=$(now_ms)

# hourly: consecutive hours, each fired once with one job per tenant.
read -r n span <<<"$(sql "SELECT count(*), extract(epoch FROM max(slot) - min(slot))::int / 3600 + 1
			 FROM pgtenantd.schedule_slots WHERE schedule = 'hourly'" | tr '|' ' ')"
diag "hourly: $n slots over $span hours"
ok "a simulated week of hourly slots fired (at least 150)" [ "${n:-0}" -ge 150 ]
is "$n" "$span" "no hourly slot was skipped (consecutive hours)"
# A tenant whose job of the schedule is still queued or running when the
# next slot comes (the simulated hours pass faster than a loaded machine
# runs the jobs) is skipped, and the slot says so.
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE schedule = 'hourly' AND jobs + skipped <> 2")" 0 \
	"each hourly slot: a job for each of the two tenants, or the tenant counted as skipped"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE dedupe_key LIKE 'hourly:%'")" \
	"$(sql "SELECT sum(jobs) FROM pgtenantd.schedule_slots WHERE schedule = 'hourly'")" \
	"the hourly jobs are the ones the slots counted"
diag "hourly slots with a tenant skipped: $(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE schedule = 'hourly' AND skipped > 0")"
is "$(sql "SELECT count(*) FROM (SELECT dedupe_key FROM pgtenantd.jobs
				  WHERE dedupe_key IS NOT NULL
				  GROUP BY 1 HAVING count(*) > 1) x")" 0 \
	"no slot enqueued a tenant's job twice (jobs that ended included)"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots s
	    WHERE jobs <> (SELECT count(*) FROM pgtenantd.jobs j
			    WHERE j.dedupe_key LIKE s.schedule || ':%'
			      AND j.dedupe_key LIKE '%' || to_char(s.slot AT TIME ZONE 'UTC',
						'YYYY-MM-DD\"T\"HH24:MI\"Z\"') || ':%')")" 0 \
	"each slot row counts the jobs that carry its dedupe_key"
is "$(sql "SELECT count(DISTINCT fired_by) FROM pgtenantd.schedule_slots")" 2 \
	"both daemons fired slots"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE catch_up")" 0 \
	"no catch-up while a daemon ran"

# nightly at 02:30 Berlin: 01:30 UTC in winter; on 2024-03-31 02:30 does
# not exist and the slot fires when the gap ends, 03:00 CEST (01:00 UTC).
# The first slot, 03-25 01:30, comes 1.6 real seconds after the clock
# starts: a daemon that needs longer to start (sanitizers on a busy
# machine) begins with a later day's. Which one follows from the fake
# times before daemon A started and once it had planned (usually both
# give 03-25), and the days are counted from there.
first_lo=$(first_night_after "$(fake_s_at "$before_a_ms")")
first_hi=$(first_night_after "$(fake_s_at "$((planned_ms + 1))" up)")
first_night=$(sql "SELECT to_char(min(slot) AT TIME ZONE 'UTC', 'DD') FROM pgtenantd.schedule_slots
		   WHERE schedule = 'nightly'")
ok "nightly's first slot ($first_night) is the first after its scheduler started (03-$first_lo to 03-$first_hi)" \
	between "${first_night:-0}" "$first_lo" "$first_hi"
nights=
for ((day = 10#${first_night:-25}; day <= 30; day++)); do
	nights+="03-$day 01:30=2 "
done
is "$(sql "SELECT string_agg(to_char(slot AT TIME ZONE 'UTC', 'MM-DD HH24:MI') || '=' || (jobs + skipped), ' ' ORDER BY slot)
	     FROM pgtenantd.schedule_slots
	    WHERE schedule = 'nightly' AND slot < '2024-04-01'")" \
	"${nights}03-31 01:00=2" \
	"nightly fired once a day for both tenant schemas, at the gap's end on the DST day"
is "$(sql "SELECT string_agg(DISTINCT tenant_id, ',') FROM pgtenantd.jobs WHERE dedupe_key LIKE 'nightly:%'")" \
	"s1,s2" "tenants: separate is the schemas with graph_entities"
read -r n span <<<"$(sql "SELECT count(*), extract(epoch FROM max(slot) - min(slot))::int / 900 + 1
			 FROM pgtenantd.schedule_slots WHERE schedule = 'quarter'" | tr '|' ' ')"
is "$n" "$span" "every quarter-hour slot fired ($n)"
ok "the jobs ran" wait_until "SELECT count(*) = 0 FROM pgtenantd.jobs WHERE state NOT IN ('succeeded', 'queued')" 30

# Both daemons down for about 4 real seconds (33.6 simulated hours): longer
# than the lease (3 s), so the slots since were missed while no daemon ran
# (a gap seen less than a lease after a slot was fired is a daemon behind).
last_hourly=$(sql "SELECT max(slot) FROM pgtenantd.schedule_slots WHERE schedule = 'hourly'")
last_quarter=$(sql "SELECT max(slot) FROM pgtenantd.schedule_slots WHERE schedule = 'quarter'")
ms=$((4000 - ($(now_ms) - stopped_ms)))
[ "$ms" -gt 0 ] && sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon A did not start again"
pid_a=$DAEMON_PID
sleep 0.5
ok "daemon A stops again" stop_daemon "$pid_a"

diag "$(sql "SELECT schedule, to_char(slot AT TIME ZONE 'UTC', 'MM-DD HH24:MI'), catch_up
	       FROM pgtenantd.schedule_slots
	      WHERE slot > '$last_quarter'::timestamptz - interval '1 hour' AND schedule <> 'quarter'
	      ORDER BY slot LIMIT 8")"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE schedule = 'hourly' AND catch_up")" 1 \
	"catch_up: latest fires once for the slots missed while no daemon ran"
ok "and that is the newest missed slot: several hours after the last one, none in between" \
	sql_true "SELECT slot >= '$last_hourly'::timestamptz + interval '6 hours'
		    AND NOT EXISTS (SELECT FROM pgtenantd.schedule_slots o
				     WHERE o.schedule = 'hourly' AND o.slot > '$last_hourly'
				       AND o.slot < c.slot)
		   FROM pgtenantd.schedule_slots c WHERE c.schedule = 'hourly' AND c.catch_up"
ok "after the catch-up, the hourly slots go on one by one" \
	sql_true "SELECT count(*) >= 1 AND count(*) = extract(epoch FROM max(slot) - min(slot)) / 3600 + 1
		   FROM pgtenantd.schedule_slots
		  WHERE schedule = 'hourly'
		    AND slot >= (SELECT slot FROM pgtenantd.schedule_slots WHERE schedule = 'hourly' AND catch_up)"
is "$(sql "SELECT count(*) FROM pgtenantd.schedule_slots WHERE schedule = 'quarter' AND catch_up")" 0 \
	"catch_up: none fires no missed slot"
ok "catch_up: none skipped the missed quarter hours (one gap of hours)" \
	sql_true "SELECT min(slot) > '$last_quarter'::timestamptz + interval '6 hours'
		   FROM pgtenantd.schedule_slots WHERE schedule = 'quarter' AND slot > '$last_quarter'"
is "$(sql "SELECT count(*) FROM (SELECT dedupe_key FROM pgtenantd.jobs
				  WHERE dedupe_key IS NOT NULL
				  GROUP BY 1 HAVING count(*) > 1) x")" 0 \
	"still no job enqueued twice"
like "$(grep -h "catching up" "$T/a.log")" "schedule 'hourly'.*catching up" "the catch-up is logged"
like "$(grep -h "skipping them" "$T/a.log")" "schedule 'quarter'.*catch_up: none" \
	"and the skipped slots too"

done_testing
