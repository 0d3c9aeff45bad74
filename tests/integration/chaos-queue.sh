#!/bin/bash
# chaos-queue.sh - three daemons work through 2,000 mixed jobs over 50
# tenants while daemons are killed with SIGKILL and restarted (5 times, at
# seeded random moments). Afterwards: every job ended, the ones that can
# succeed did and the failing ones failed; every step's effect is there,
# and a step was done twice only when the first time was by a daemon that
# was then killed; no two jobs of one tenant ever ran at the same time.
# CHAOS_SEED=N repeats a run (the seed is printed).
#
# The queue cannot run dry before the kills are done: the test holds a lock
# on the tables the record_run and chaos_steps jobs write, so those jobs
# stop inside their steps, and lets them run only in windows between kills
# too short for all of them to end. A kill counts only when the job rows
# show it landed: the killed daemon had jobs running, which were claimed
# again afterwards.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env chaos-queue

seed=${CHAOS_SEED:-$(($(date +%s) % 100000))}
RANDOM=$seed
diag "seed $seed (CHAOS_SEED=$seed repeats this run)"
kills_wanted=5

# The effects: record_run writes test_runs (one step), chaos_steps writes
# chaos_effects (two steps); chaos_kills holds each killed daemon
# incarnation (its application_name) and when it was killed.
sql "CREATE TABLE public.test_runs (
	job_id bigint, tenant_id text, started timestamptz, ended timestamptz,
	app text, attempt int);
     CREATE TABLE public.chaos_effects (
	job_id bigint, tenant_id text, step text, attempt int, app text,
	started timestamptz, ended timestamptz);
     CREATE TABLE public.chaos_kills (app text PRIMARY KEY, killed_at timestamptz,
	jobs bigint[], attempts int[]);
     CREATE VIEW public.effects AS
	SELECT job_id, tenant_id, 'record' AS step, attempt,
	       split_part(app, ' ', 1) AS app, started, ended
	  FROM public.test_runs
	UNION ALL
	SELECT job_id, tenant_id, step, attempt, split_part(app, ' ', 1),
	       started, ended
	  FROM public.chaos_effects;
     ALTER DATABASE $DB SET client_connection_check_interval = '100ms'" ||
	bail_out "could not create the tables"

# The hold: a session of the test that locks the tables the record_run and
# chaos_steps jobs write (their steps wait for it; the other kinds run on).
hold_send()
{
	printf '%s;\n' "$1" >&"${HOLD_PSQL[1]}"
	read -r -t 60 line <&"${HOLD_PSQL[0]}"
}
hold_take()
{
	hold_send "BEGIN; LOCK TABLE public.test_runs, public.chaos_effects IN EXCLUSIVE MODE; SELECT 1"
}
hold_release()
{
	hold_send "COMMIT; SELECT 1"
}
coproc HOLD_PSQL {
	PGAPPNAME=pgt-hold stdbuf -oL psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" 2>&1
}
at_exit "kill $HOLD_PSQL_PID"
hold_take || bail_out "could not take the hold"

# Daemon N (a, b, c) runs as incarnation app chaos-N-NN, a new one after
# each kill, each with its own state_dir (kept across its restarts).
names=(a b c)
declare -A incarnation pids owner
start_incarnation()
{
	local n=$1 app
	incarnation[$n]=$((${incarnation[$n]:-0} + 1))
	app=$(printf 'chaos-%s-%02d' "$n" "${incarnation[$n]}")
	mkdir -p "$T/state-$n"
	write_config "$T/$n.yaml" "state_dir: $T/state-$n" "control_socket: $T/$n.sock" \
		"application_name: $app" "lease: 2s" "heartbeat_interval: 300ms" \
		"poll_interval: 100ms" "retry_base_delay: 50ms" "retry_max_delay: 200ms" \
		"log_level: info"
	start_daemon "$T/$n.yaml" "$T/$n.log" || return 1
	pids[$n]=$DAEMON_PID
	# The owner name of its jobs (host:node, kept with its state_dir).
	owner[$n]=$(sed -n 's/.* starting as \(.*\): [0-9]* worker.*/\1/p' "$T/$n.log" | tail -n 1)
	[ -n "${owner[$n]}" ] || { diag "no owner name in $T/$n.log"; return 1; }
}
for n in "${names[@]}"; do
	start_incarnation "$n" || bail_out "daemon $n did not start"
done

# 2,000 jobs over 50 tenants: a tenth fail (max_attempts 2), three tenths
# each of noop, record_run and chaos_steps (the last two may be retried
# after kills: max_attempts 10).
sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts, priority)
     SELECT CASE WHEN g % 10 = 0 THEN 'fail_sql'
		 WHEN g % 10 <= 3 THEN 'noop'
		 WHEN g % 10 <= 6 THEN 'record_run'
		 ELSE 'chaos_steps' END,
	    'c-' || (g % 50),
	    CASE WHEN g % 10 BETWEEN 4 AND 6 THEN '{\"ms\": \"50\"}'
		 WHEN g % 10 >= 7 THEN '{\"ms\": \"25\"}'
		 ELSE '{}' END::jsonb,
	    CASE WHEN g % 10 = 0 THEN 2 ELSE 10 END,
	    (g * 7919) % 3
       FROM generate_series(1, 2000) g" || bail_out "could not insert the jobs"
t0=$(now_ms)

# Kill a random daemon after a window of 0.3-1.2 s in which the jobs run
# freely, restart it after 0-0.4 s as a new incarnation; the jobs that
# write are held meanwhile. At most 6 workers each end at most one writing
# job per 50 ms (their steps sleep that long): with 200 of them left, a
# window cannot end them all. With fewer left, the kill comes without a
# window, while they wait for the hold.
kills=0 landed=0
while [ "$landed" -lt "$kills_wanted" ] && [ "$kills" -lt 30 ]; do
	left=$(sql "SELECT count(*) FROM pgtenantd.jobs
		     WHERE kind IN ('record_run', 'chaos_steps') AND state IN ('queued', 'running')")
	if [ "${left:-0}" -eq 0 ]; then
		diag "no writing job is left after $kills kills (the hold did not hold)"
		break
	fi
	window=0
	if [ "$left" -ge 200 ]; then
		window=$((RANDOM % 10 + 3))
		hold_release || bail_out "could not release the hold"
		sleep "$((window / 10)).$((window % 10))"
	fi
	n=${names[RANDOM % 3]}
	app=$(printf 'chaos-%s-%02d' "$n" "${incarnation[$n]}")
	kill_daemon "${pids[$n]}"
	sql "INSERT INTO public.chaos_kills (app, killed_at) VALUES ('$app', clock_timestamp())" >/dev/null
	[ "$window" -eq 0 ] || hold_take || bail_out "could not take the hold again"
	kills=$((kills + 1))
	# What the kill interrupted: the jobs its rows say it was running
	# (fail_sql ones may end failed without a new claim).
	sql "UPDATE public.chaos_kills k SET jobs = j.ids, attempts = j.att
	       FROM (SELECT array_agg(id ORDER BY id) AS ids, array_agg(attempts ORDER BY id) AS att
		       FROM pgtenantd.jobs
		      WHERE state = 'running' AND owner = :'o' AND kind <> 'fail_sql') j
	      WHERE k.app = '$app'" -v o="${owner[$n]}" >/dev/null
	hit=$(sql "SELECT coalesce(cardinality(jobs), 0) FROM public.chaos_kills WHERE app = '$app'")
	[ "$hit" -gt 0 ] && landed=$((landed + 1))
	diag "kill $kills: $app (pid ${pids[$n]}) at $(($(now_ms) - t0)) ms after $([ "$window" -eq 0 ] && echo "no window" || echo "a $((window * 100)) ms window"), $left writing jobs left, $hit of its jobs running"
	sleep "0.$((RANDOM % 4))"
	start_incarnation "$n" || bail_out "daemon $n did not restart"
done
hold_release || bail_out "could not release the hold"
is "$landed" "$kills_wanted" "$kills_wanted kills landed on running jobs ($kills kills)"

if ! ok "all 2,000 jobs end (within 90 s)" \
	wait_until "SELECT count(*) = 0 FROM pgtenantd.jobs WHERE state IN ('queued', 'running')" 90; then
	diag "$(sql "SELECT kind, state, count(*) FROM pgtenantd.jobs GROUP BY 1, 2 ORDER BY 1, 2")"
fi
diag "all ended $(($(now_ms) - t0)) ms after the insert"
diag "$(sql "SELECT kind || ' ' || state || ': ' || count(*) || ' (attempts ' || min(attempts) || '-' || max(attempts) || ')'
	       FROM pgtenantd.jobs GROUP BY kind, state ORDER BY 1")"

is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE kind <> 'fail_sql' AND state <> 'succeeded'")" 0 \
	"every noop, record_run and chaos_steps job succeeded"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE kind = 'fail_sql' AND state <> 'failed'")" 0 \
	"every fail_sql job failed"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE kind = 'fail_sql' AND attempts NOT BETWEEN 1 AND 2")" 0 \
	"... after at most its 2 attempts"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE state = 'failed' AND coalesce(last_error, '') = ''")" 0 \
	"... each with last_error"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs
	    WHERE finished_at IS NULL OR started_at IS NULL OR finished_at < started_at")" 0 \
	"every job has started_at <= finished_at"

# Effects: every step of every job that succeeded has one.
missing=$(sql "SELECT count(*) FROM pgtenantd.jobs j
		CROSS JOIN LATERAL (SELECT unnest(CASE j.kind WHEN 'record_run' THEN ARRAY['record']
						ELSE ARRAY['one', 'two'] END) AS step) s
		WHERE j.kind IN ('record_run', 'chaos_steps') AND j.state = 'succeeded'
		  AND NOT EXISTS (SELECT FROM public.effects e
				   WHERE e.job_id = j.id AND e.step = s.step)")
is "$missing" 0 "every step of every succeeded job left its effect"
is "$(sql "SELECT count(*) FROM public.effects e JOIN pgtenantd.jobs j ON j.id = e.job_id
	    WHERE j.kind NOT IN ('record_run', 'chaos_steps')")" 0 \
	"other kinds left none"
is "$(sql "SELECT count(*) FROM public.effects WHERE ended IS NULL")" 0 \
	"every effect is whole (its transaction committed all of it)"
is "$(sql "SELECT count(*) FROM public.effects e JOIN pgtenantd.jobs j ON j.id = e.job_id
	    WHERE e.attempt NOT BETWEEN 1 AND j.attempts")" 0 \
	"every effect belongs to one of its job's attempts"
is "$(sql "SELECT count(*) FROM (SELECT FROM public.effects
				  GROUP BY job_id, step, attempt HAVING count(*) > 1) x")" 0 \
	"no attempt did a step twice"

# A step done more than once: every time but the last must be by a daemon
# incarnation that was killed, and must have started before the kill.
redo=$(sql "SELECT count(*) FROM (
		SELECT e.*, row_number() OVER (PARTITION BY job_id, step ORDER BY started DESC) AS nth
		  FROM public.effects e) x
	     WHERE nth > 1")
bad_redo=$(sql "SELECT count(*) FROM (
		SELECT e.*, row_number() OVER (PARTITION BY job_id, step ORDER BY started DESC) AS nth
		  FROM public.effects e) x
	     LEFT JOIN public.chaos_kills k ON k.app = x.app
	     WHERE nth > 1 AND (k.app IS NULL OR x.started > k.killed_at)")
diag "steps done again after a kill: $redo"
is "$bad_redo" 0 "a step was redone only after the daemon that did it first was killed"
[ "$bad_redo" = 0 ] || diag "$(sql "SELECT x.job_id, x.step, x.attempt, x.app, x.started, k.killed_at FROM (
		SELECT e.*, row_number() OVER (PARTITION BY job_id, step ORDER BY started DESC) AS nth
		  FROM public.effects e) x
	     LEFT JOIN public.chaos_kills k ON k.app = x.app
	     WHERE nth > 1 AND (k.app IS NULL OR x.started > k.killed_at) LIMIT 10")"
ok "the kills hit running jobs (some job needed more than one attempt)" \
	sql_true "SELECT EXISTS (SELECT FROM pgtenantd.jobs WHERE kind <> 'fail_sql' AND attempts > 1)"
is "$(sql "SELECT count(*) FROM public.chaos_kills k
	     CROSS JOIN LATERAL unnest(k.jobs, k.attempts) AS x (id, attempts)
	     JOIN pgtenantd.jobs j ON j.id = x.id
	    WHERE j.attempts <= x.attempts OR j.state <> 'succeeded'")" 0 \
	"every job a kill interrupted was claimed again (its attempts grew) and succeeded"

# Never two jobs of one tenant at the same time.
overlaps=$(sql "SELECT count(*) FROM public.effects a JOIN public.effects b
		  ON a.tenant_id = b.tenant_id AND a.job_id < b.job_id
		 AND tstzrange(a.started, a.ended) && tstzrange(b.started, b.ended)")
is "$overlaps" 0 "no two jobs of one tenant ran at the same time"
[ "$overlaps" = 0 ] || diag "$(sql "SELECT a.tenant_id, a.job_id, a.step, a.app, a.started, a.ended,
				   b.job_id, b.step, b.app, b.started, b.ended
			      FROM public.effects a JOIN public.effects b
				ON a.tenant_id = b.tenant_id AND a.job_id < b.job_id
			       AND tstzrange(a.started, a.ended) && tstzrange(b.started, b.ended)
			     LIMIT 5")"
diag "effects by daemon incarnation: $(sql "SELECT app || '=' || count(*) FROM public.effects
					    GROUP BY app ORDER BY app" | tr '\n' ' ')"

for n in "${names[@]}"; do
	ok "daemon $n (incarnation ${incarnation[$n]}) exits with status 0 on SIGTERM" \
		stop_daemon "${pids[$n]}" 20
done

done_testing
