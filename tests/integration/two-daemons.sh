#!/bin/bash
# two-daemons.sh - two daemons serve one database: 500 jobs over 20 tenants
# all succeed, each runs exactly once, runs of one tenant never overlap,
# and both daemons do part of the work.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
require_pg
make_env two-daemons

sql "CREATE TABLE public.test_runs (
	job_id bigint, tenant_id text, started timestamptz, ended timestamptz,
	app text, attempt int)" || bail_out "could not create test_runs"

mkdir -p "$T/state-a" "$T/state-b"
write_config "$T/a.yaml" "state_dir: $T/state-a" "control_socket: $T/a.sock" \
	"application_name: pgt-a"
write_config "$T/b.yaml" "state_dir: $T/state-b" "control_socket: $T/b.sock" \
	"application_name: pgt-b"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "daemon A did not start"
pid_a=$DAEMON_PID
start_daemon "$T/b.yaml" "$T/b.log" || bail_out "daemon B did not start"
pid_b=$DAEMON_PID

sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args)
     SELECT 'record_run', 'tenant-' || (g % 20), '{\"ms\": \"10\"}'
       FROM generate_series(1, 500) g" || bail_out "could not insert the jobs"

if ! ok "all 500 jobs finish" \
	wait_until "SELECT count(*) = 500 FROM pgtenantd.jobs
		     WHERE state IN ('succeeded', 'failed', 'cancelled')" 120; then
	diag "$(sql "SELECT state, count(*) FROM pgtenantd.jobs GROUP BY 1")"
fi
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE state = 'succeeded'")" 500 \
	"all 500 succeeded"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs WHERE attempts <> 1")" 0 \
	"each in its first attempt"
is "$(sql "SELECT count(*) FROM (SELECT job_id FROM public.test_runs
				  GROUP BY job_id HAVING count(*) > 1) x")" 0 \
	"no job ran twice"
is "$(sql "SELECT count(*) FROM pgtenantd.jobs j
	    WHERE NOT EXISTS (SELECT FROM public.test_runs r WHERE r.job_id = j.id)")" 0 \
	"every job has its run"
is "$(sql "SELECT count(*) FROM public.test_runs WHERE ended IS NULL")" 0 \
	"every run ended"
overlaps=$(sql "SELECT count(*) FROM public.test_runs a JOIN public.test_runs b
		  ON a.tenant_id = b.tenant_id AND a.job_id < b.job_id
		 AND tstzrange(a.started, a.ended) && tstzrange(b.started, b.ended)")
is "$overlaps" 0 "no two runs of one tenant overlap in time"
[ "$overlaps" = 0 ] || diag "$(sql "SELECT a.tenant_id, a.job_id, a.app, a.started, a.ended,
				   b.job_id, b.app, b.started, b.ended
			      FROM public.test_runs a JOIN public.test_runs b
				ON a.tenant_id = b.tenant_id AND a.job_id < b.job_id
			       AND tstzrange(a.started, a.ended) && tstzrange(b.started, b.ended)
			     LIMIT 5")"
ok "several tenants ran at the same time (the daemons worked in parallel)" \
	sql_true "SELECT EXISTS (SELECT FROM public.test_runs a JOIN public.test_runs b
			  ON a.tenant_id <> b.tenant_id
			 AND tstzrange(a.started, a.ended) && tstzrange(b.started, b.ended))"

# Who ran what: the sessions' application_name, which the daemons set from
# their config (pgt-a, pgt-b). A run without it is a regression, not a
# reason to skip.
diag "runs by application_name: $(sql "SELECT app || '=' || count(*) FROM public.test_runs
					 GROUP BY app ORDER BY 1" | tr '\n' ' ')"
is "$(sql "SELECT count(*) FROM public.test_runs WHERE app IS NULL OR app !~ '^pgt-[ab]( |$)'")" 0 \
	"every run's session carries its daemon's application_name (pgt-a or pgt-b)"
ok "daemon A ran some jobs" sql_true "SELECT EXISTS (SELECT FROM public.test_runs WHERE app ~ '^pgt-a( |$)')"
ok "daemon B ran some jobs" sql_true "SELECT EXISTS (SELECT FROM public.test_runs WHERE app ~ '^pgt-b( |$)')"

ok "daemon A exits with status 0 on SIGTERM" stop_daemon "$pid_a"
ok "daemon B exits with status 0 on SIGTERM" stop_daemon "$pid_b"

done_testing
