#!/bin/bash
# fleet-notify.sh - any role may NOTIFY the daemon's channel, and NOTIFY
# pgtenantd, 'fleet' kicks the fleets' advance. A flood of them must not
# put the advance off: the kick already armed stays armed, rather than
# being pushed later by each new one. fleet_interval is an hour here, so
# only a kick releases the fleet's member.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/migrate-lib.sh"
require_pg
make_env fleet-notify

write_config "$T/a.yaml" "fleet_interval: 1h"
start_daemon "$T/a.yaml" "$T/a.log" || bail_out "pgtenantd did not start"
mig_schema >/dev/null || bail_out "cannot create the shared tables"
sql "INSERT INTO public.graph_entities (id, tenant_id, entity_type)
     VALUES ('e1', 'n1', 'person'), ('e2', 'n1', 'person')" >/dev/null ||
	bail_out "cannot fill the shared tables"

# NOTIFYs, each its own transaction (one transaction would fold
# them into one), back to back: thousands a second, far closer than the
# 20 ms a kick waits
flood_start=$(sql "SELECT clock_timestamp()")
# the flood goes on until the test has seen the member start (at most 30 s):
# a daemon whose advance the NOTIFYs put off starts it only after the flood
(
	end=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$end" ] && [ ! -e "$T/flood-stop" ]; do
		for i in 1 2 3 4 5 6 7 8 9 10; do echo "NOTIFY pgtenantd, 'fleet';"; done
	done | PGAPPNAME=pgt-flood psql -X -q -d "$DB" >/dev/null 2>&1
) &
flood=$!
sleep 1
ok "a fleet starts during the flood" \
	sql "SELECT pgtenantd.start_fleet('flooded', ARRAY['n1'])"
wait_until "SELECT started_at IS NOT NULL FROM pgtenantd.jobs WHERE tenant_id = 'n1'" 20 ||
	diag "the member did not start within 20 s of the fleet"
touch "$T/flood-stop"
wait "$flood"
flood_end=$(sql "SELECT clock_timestamp()")
diag "flood from $flood_start to $flood_end"
ok "the member's migration succeeds" \
	wait_until "SELECT state = 'succeeded' FROM pgtenantd.jobs WHERE tenant_id = 'n1'" 20
is "$(sql "SELECT started_at < '$flood_end'::timestamptz
	     FROM pgtenantd.jobs WHERE tenant_id = 'n1'")" t \
	"it started while the flood went on: the NOTIFYs did not put the fleet's advance off"
is "$(sql "SELECT state FROM pgtenantd.fleets WHERE name = 'flooded'")" finished "the fleet finished"
stop_daemon "$DAEMON_PID" || diag "the daemon did not stop cleanly"

done_testing
