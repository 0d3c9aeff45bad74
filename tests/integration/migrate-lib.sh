# migrate-lib.sh - shared tables, data and checks for the
# migrate_to_separate_schema tests (sourced after lib.sh).
#
#   mig_schema                       the shared layout, empty
#   mig_fill TENANT ENTITIES RELATIONS   rows of one tenant ('' = global)
#   mig_snapshot TENANT              remember what the migration must produce
#   mig_check_done TENANT SCHEMA WHAT    assert the state after a migration
#   mig_check_keys SCHEMA WHAT       assert its keys and indexes (done by
#                                    mig_check_done)
#   mig_insert TENANT ARGS_JSON      enqueue a migration (max_attempts 100)
#
# The data has what tends to break copies: the same ids in several tenants,
# an empty id, ids with quotes, semicolons and non-ASCII letters, NULLs in
# every nullable column, nested JSON, microsecond timestamps and odd floats.

MIG_KIND=migrate_to_separate_schema

# Create the shared tables as the application has them.
mig_schema()
{
	sql "
	CREATE TABLE public.graph_entities (
		id text NOT NULL,
		tenant_id text NOT NULL DEFAULT '',
		entity_type text NOT NULL,
		properties jsonb,
		embedding bytea,
		created_at timestamptz NOT NULL DEFAULT now(),
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (id, tenant_id));
	CREATE INDEX graph_entities_tenant_type ON public.graph_entities (tenant_id, entity_type);
	CREATE TABLE public.graph_relations (
		id text NOT NULL,
		tenant_id text NOT NULL DEFAULT '',
		relation_type text NOT NULL,
		source_id text NOT NULL,
		target_id text NOT NULL,
		properties jsonb,
		weight real DEFAULT 1.0,
		created_at timestamptz NOT NULL DEFAULT now(),
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (id, tenant_id));
	CREATE INDEX graph_relations_tenant_source ON public.graph_relations (tenant_id, source_id);
	CREATE INDEX graph_relations_tenant_target ON public.graph_relations (tenant_id, target_id);
	CREATE INDEX idx_graph_relations_tenant_type ON public.graph_relations (tenant_id, relation_type);
	-- A killed daemon's backend notices soon that its client is gone.
	ALTER DATABASE $DB SET client_connection_check_interval = '100ms';
	"
}

# Add N entities and M relations of a tenant: mig_fill TENANT N M.
mig_fill()
{
	sql "
	INSERT INTO public.graph_entities
	SELECT CASE g WHEN 1 THEN '' WHEN 2 THEN 'it''s' WHEN 3 THEN 'semi;colon'
		      WHEN 4 THEN 'ünï-çødé ✓' ELSE 'e' || lpad(g::text, 6, '0') END,
	       :'t',
	       (ARRAY['person', 'org', 'place'])[1 + g % 3],
	       CASE WHEN g % 7 = 0 THEN NULL
		    ELSE jsonb_build_object('n', g, 'name', 'name ' || g, 'tags',
					    jsonb_build_array('a', g % 5, NULL),
					    'nested', jsonb_build_object('x', g / 3.0)) END,
	       CASE WHEN g % 11 = 0 THEN NULL
		    ELSE decode(md5(:'t' || g) || md5(g || :'t'), 'hex') END,
	       timestamptz '2021-03-04 05:06:07.123456+00' + g * interval '1 minute 0.000321 s',
	       timestamptz '2022-01-01 00:00:00+00' + g * interval '17.654321 s'
	  FROM generate_series(1, $2) g;
	INSERT INTO public.graph_relations
	SELECT CASE g WHEN 1 THEN '' WHEN 2 THEN 'r''q' ELSE 'r' || lpad(g::text, 6, '0') END,
	       :'t',
	       (ARRAY['knows', 'owns', 'near', 'likes'])[1 + g % 4],
	       'e' || lpad((1 + g % $2)::text, 6, '0'),
	       'e' || lpad((1 + (g * 7) % $2)::text, 6, '0'),
	       CASE WHEN g % 5 = 0 THEN NULL ELSE jsonb_build_object('since', 2000 + g % 20) END,
	       CASE WHEN g % 9 = 0 THEN NULL ELSE (g / 7.0)::real END,
	       timestamptz '2021-05-06 07:08:09.987654+00' + g * interval '3.000123 s',
	       timestamptz '2023-01-01 00:00:00+00' + g * interval '1.5 s'
	  FROM generate_series(1, $3) g;
	" -v t="$1"
}

# md5 over the text of every row of a query's result, in order.
mig_md5()
{
	sql "SELECT coalesce(md5(string_agg(x::text, E'\n' ORDER BY n)), 'empty')
	       FROM (SELECT row_number() OVER () AS n, q AS x FROM ($1) q) z" "${@:2}"
}

MIG_E_COLS="id, entity_type, properties, embedding, created_at, updated_at"
MIG_R_COLS="id, relation_type, source_id, target_id, properties, weight, created_at, updated_at"
# Rows the checks compare: a test whose application writes during the move
# leaves its own rows out (its writer checks those key by key).
MIG_ROWS=true

# What a migration of TENANT must produce, from the shared tables now:
# MIG_WANT_E / MIG_WANT_R (its rows without tenant_id) and MIG_OTHERS (the
# other tenants' and the global rows).
mig_snapshot()
{
	MIG_WANT_E=$(mig_md5 "SELECT $MIG_E_COLS FROM public.graph_entities WHERE tenant_id = :'t' AND $MIG_ROWS ORDER BY id" -v t="$1")
	MIG_WANT_R=$(mig_md5 "SELECT $MIG_R_COLS FROM public.graph_relations WHERE tenant_id = :'t' AND $MIG_ROWS ORDER BY id" -v t="$1")
	MIG_OTHERS=$(mig_others "$1")
	MIG_WANT_NE=$(sql "SELECT count(*) FROM public.graph_entities WHERE tenant_id = :'t' AND $MIG_ROWS" -v t="$1")
	MIG_WANT_NR=$(sql "SELECT count(*) FROM public.graph_relations WHERE tenant_id = :'t' AND $MIG_ROWS" -v t="$1")
}

# Fingerprint of every shared row that is not TENANT's.
mig_others()
{
	echo "$(mig_md5 "SELECT g FROM public.graph_entities g WHERE tenant_id <> :'t' ORDER BY tenant_id, id" -v t="$1")/$(mig_md5 "SELECT g FROM public.graph_relations g WHERE tenant_id <> :'t' ORDER BY tenant_id, id" -v t="$1")"
}

# Fingerprint of all shared rows.
mig_shared_all()
{
	echo "$(mig_md5 "SELECT g FROM public.graph_entities g ORDER BY tenant_id, id")/$(mig_md5 "SELECT g FROM public.graph_relations g ORDER BY tenant_id, id")"
}

# Enqueue a migration and print its id: mig_insert TENANT [ARGS_JSON].
mig_insert()
{
	local args=${2:-}

	[ -n "$args" ] || args='{}'
	sql "INSERT INTO pgtenantd.jobs (kind, tenant_id, args, max_attempts)
	     VALUES ('$MIG_KIND', :'t', :'a', 100) RETURNING id" -v t="$1" -v a="$args"
}

# Assert the state after TENANT's migration into SCHEMA (mig_snapshot
# first): mig_check_done TENANT SCHEMA WHAT.
mig_check_done()
{
	local t=$1 s=$2 what=$3
	is "$(mig_md5 "SELECT $MIG_E_COLS FROM $s.graph_entities WHERE $MIG_ROWS ORDER BY id")" "$MIG_WANT_E" \
		"$what: $s.graph_entities holds exactly the tenant's former entities, every column equal"
	is "$(mig_md5 "SELECT $MIG_R_COLS FROM $s.graph_relations WHERE $MIG_ROWS ORDER BY id")" "$MIG_WANT_R" \
		"$what: $s.graph_relations holds exactly the tenant's former relations, every column equal"
	is "$(sql "SELECT (SELECT count(*) FROM $s.graph_entities WHERE $MIG_ROWS) || '/' || (SELECT count(*) FROM $s.graph_relations WHERE $MIG_ROWS)")" \
		"$MIG_WANT_NE/$MIG_WANT_NR" "$what: $MIG_WANT_NE entities and $MIG_WANT_NR relations in $s"
	is "$(sql "SELECT (SELECT count(*) FROM public.graph_entities WHERE tenant_id = :'t')
		   + (SELECT count(*) FROM public.graph_relations WHERE tenant_id = :'t')" -v t="$t")" 0 \
		"$what: no shared rows of the tenant are left"
	is "$(mig_others "$t")" "$MIG_OTHERS" \
		"$what: the other tenants' and the global shared rows are untouched"
	is "$(sql "SELECT isolation_mode FROM public.tenant_metadata WHERE tenant_id = :'t'" -v t="$t")" \
		separate_schema "$what: the config row says separate_schema"
	is "$(sql "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes
		    WHERE schemaname = '$s' AND indexname LIKE 'idx_%'")" \
		"idx_${s}_entities_type,idx_${s}_relations_source,idx_${s}_relations_target,idx_${s}_relations_type" \
		"$what: the application's indexes exist by their names"
	is "$(sql "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, ordinal_position)
		    FROM information_schema.columns WHERE table_schema = '$s'")" \
		"graph_entities.id,graph_entities.entity_type,graph_entities.properties,graph_entities.embedding,graph_entities.created_at,graph_entities.updated_at,graph_relations.id,graph_relations.relation_type,graph_relations.source_id,graph_relations.target_id,graph_relations.properties,graph_relations.weight,graph_relations.created_at,graph_relations.updated_at" \
		"$what: the tenant's tables have the shared columns minus tenant_id"
	is "$(sql "SELECT string_agg(m.phase, ',') || '/' || count(t.tgname) || '/' || count(c.id)
		    FROM pgtenantd.migrations m
		    LEFT JOIN pg_trigger t ON t.tgname LIKE 'pgtenantd\_migration\_' || m.job_id || '\_%'
		    LEFT JOIN pgtenantd.migration_changes c ON c.job_id = m.job_id
		   WHERE m.tenant_id = :'t' AND m.phase = 'done'" -v t="$t")" "done/0/0" \
		"$what: the migration is done, its capture triggers and change rows are gone"
	mig_check_keys "$s" "$what"
}

# Assert that SCHEMA's tables have their primary keys and the application's
# four indexes, each on its column, and no other index, all valid and
# ready: mig_check_keys SCHEMA WHAT. A batch of the index step that was
# lost (or an index build that was interrupted) shows here.
mig_check_keys()
{
	local s=$1 what=$2
	is "$(sql "SELECT string_agg(t.relname || ' ' || pg_get_constraintdef(c.oid), ', ' ORDER BY t.relname)
		    FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
		   WHERE c.connamespace = '$s'::regnamespace AND c.contype = 'p'")" \
		"graph_entities PRIMARY KEY (id), graph_relations PRIMARY KEY (id)" \
		"$what: both tenant tables have their primary key on id"
	is "$(sql "SELECT string_agg(i.relname || ' ON ' || t.relname || ' (' || a.attname || ')'
			       || CASE WHEN x.indisvalid AND x.indisready AND x.indislive THEN ''
				       ELSE ' NOT VALID' END, ', ' ORDER BY i.relname)
		    FROM pg_index x
		    JOIN pg_class i ON i.oid = x.indexrelid
		    JOIN pg_class t ON t.oid = x.indrelid
		    LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
		   WHERE t.relnamespace = '$s'::regnamespace")" \
		"graph_entities_pkey ON graph_entities (id), graph_relations_pkey ON graph_relations (id), idx_${s}_entities_type ON graph_entities (entity_type), idx_${s}_relations_source ON graph_relations (source_id), idx_${s}_relations_target ON graph_relations (target_id), idx_${s}_relations_type ON graph_relations (relation_type)" \
		"$what: the primary keys' and the four named indexes exist, on their columns, valid (and no other index)"
}

# ---- the test gate: a job run with {"test_gate": "$MIG_GATE"} (a reserved
# arg of every kind, which write_config's test_hooks: true lets through)
# waits in every batch and step (its work done, before it commits) for a
# shared advisory lock that the test holds exclusively in a session of its
# own, so the test can stop the job inside exactly the step it wants:
#   gate_hold                    take the lock (the job stops at its next pause)
#   gate_wait                    wait until the job waits at the gate
#   gate_pass                    let it through exactly one pause (returns once
#                                that step or batch committed)
#   gate_release                 let it run freely
#   gate_reset                   forget the gate sessions (after a server
#                                restart killed them); gate_hold starts anew
#   gate_reopen                  gate_reset and gate_hold: take the gate
#                                again after a PostgreSQL restart
#   gate_pass_n N [STOP]         let it through about N pauses from inside the
#                                holding session (fewer if the SQL condition
#                                STOP is true at a pause; one session, so a
#                                fast job may slip through two at once: for
#                                chaos, not for exact positions)
# Two sessions take turns holding the lock. To let one pause through, the
# session not holding it queues for the lock behind the waiting job before
# the holder lets go: the job is granted its shared lock, the queued
# exclusive request waits for the job's transaction to end, and the job's
# next pause queues behind it. (Letting go and taking the lock back in one
# session races the job: a holder descheduled between the two lets a fast
# job through twice.)
MIG_GATE=pgt-migrate-test-gate
# (in this test's database: tests run side by side on one server)
MIG_GATE_LOCKS="SELECT count(*) FROM pg_locks
		 WHERE locktype = 'advisory' AND mode = 'ShareLock' AND NOT granted
		   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
MIG_GATE_IN=()	    # per session: fd of its psql's input
MIG_GATE_OUT=()	    # per session: fd of its psql's output
MIG_GATE_PID=()	    # per session: pid of its psql
MIG_GATE_BACKEND=() # per session: its backend's pid
MIG_GATE_HOLDER=    # the session holding the lock, if any
MIG_GATE_RUNS=0     # sessions started so far (fifo names)
MIG_GATE_FN=()	    # per session: 1 once pg_temp.gate_pass_n exists there

# Send SQL to gate session I and read N result lines (TIMEOUT seconds,
# default 30, at most each): gate_send_to I SQL N [TIMEOUT].
gate_send_to()
{
	local i line
	printf '%s;\n' "$2" >&"${MIG_GATE_IN[$1]}" || return 1
	for ((i = 0; i < $3; i++)); do
		read -r -t "${4:-30}" line <&"${MIG_GATE_OUT[$1]}" || return 1
		MIG_GATE_LINE=$line
	done
}

# Start gate session I: gate_open I.
gate_open()
{
	local i=$1 fifo fd
	MIG_GATE_RUNS=$((MIG_GATE_RUNS + 1))
	fifo=$T/gate-$MIG_GATE_RUNS
	mkfifo "$fifo.in" "$fifo.out" || return 1
	PGAPPNAME=pgt-gate stdbuf -oL psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" \
		<"$fifo.in" >"$fifo.out" 2>&1 &
	MIG_GATE_PID[i]=$!
	at_exit "kill ${MIG_GATE_PID[i]} 2>/dev/null"
	exec {fd}>"$fifo.in"
	MIG_GATE_IN[i]=$fd
	exec {fd}<"$fifo.out"
	MIG_GATE_OUT[i]=$fd
	gate_send_to "$i" "SELECT pg_backend_pid()" 1 || return 1
	MIG_GATE_BACKEND[i]=$MIG_GATE_LINE
}

gate_reset()
{
	local i fd
	for i in "${!MIG_GATE_PID[@]}"; do
		fd=${MIG_GATE_IN[i]}
		exec {fd}>&-
		fd=${MIG_GATE_OUT[i]}
		exec {fd}<&-
		kill "${MIG_GATE_PID[i]}" 2>/dev/null
		wait "${MIG_GATE_PID[i]}" 2>/dev/null
	done
	MIG_GATE_IN=() MIG_GATE_OUT=() MIG_GATE_PID=() MIG_GATE_BACKEND=() MIG_GATE_FN=()
	MIG_GATE_HOLDER=
}

gate_hold()
{
	local i
	for i in 0 1; do
		[ -n "${MIG_GATE_PID[i]:-}" ] || gate_open "$i" || return 1
	done
	MIG_GATE_HOLDER=${MIG_GATE_HOLDER:-0}
	gate_send_to "$MIG_GATE_HOLDER" "SELECT pg_advisory_lock(hashtext('$MIG_GATE'))" 1
}

gate_wait()
{
	wait_until "SELECT ($MIG_GATE_LOCKS) > 0" "${1:-30}"
}

# True when no session (a killed daemon's left-over backend) waits at the gate.
gate_empty()
{
	wait_until "SELECT ($MIG_GATE_LOCKS) = 0" "${1:-10}"
}

gate_pass()
{
	local h=${MIG_GATE_HOLDER:?gate_pass without gate_hold} n line
	n=$((1 - h))
	printf '%s;\n' "SELECT pg_advisory_lock(hashtext('$MIG_GATE'))" >&"${MIG_GATE_IN[n]}" ||
		return 1
	wait_until "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory'
				   AND pid = ${MIG_GATE_BACKEND[n]} AND NOT granted)" 30 ||
		return 1
	gate_send_to "$h" "SELECT pg_advisory_unlock(hashtext('$MIG_GATE'))" 1 || return 1
	read -r -t 30 line <&"${MIG_GATE_OUT[n]}" || return 1
	MIG_GATE_HOLDER=$n
}

# Take the gate again in a new session, after a PostgreSQL restart ended
# the old one (the old psql is stopped).
gate_reopen()
{
	gate_reset
	gate_hold
}

# Let the job through N pauses, each as gate_wait and gate_pass do but
# within the gate session (no psql started per pause), stopping early when
# the SQL condition STOP (optional) is true while the job waits at the
# gate: gate_pass_n N [STOP]. Prints how many pauses it let through; fails
# if the job did not come to the gate within 30 s. A procedure that commits
# as it waits: an open transaction would hold up fence_settle.
gate_pass_n()
{
	local stop=${2:-false}
	local h=${MIG_GATE_HOLDER:?gate_pass_n without gate_hold}
	if [ -z "${MIG_GATE_FN[h]:-}" ]; then
		gate_send_to "$h" "CREATE PROCEDURE pg_temp.gate_pass_n(n int, stop text, INOUT passed int)
			   LANGUAGE plpgsql AS \$f\$
			   DECLARE
				deadline timestamptz;
				stopped boolean;
			   BEGIN
				passed := 0;
				WHILE passed < n LOOP
					deadline := clock_timestamp() + interval '30 s';
					LOOP
						COMMIT;
						EXIT WHEN ($MIG_GATE_LOCKS) > 0;
						IF clock_timestamp() > deadline THEN
							passed := -1;
							RETURN;
						END IF;
						PERFORM pg_sleep(0.005);
					END LOOP;
					EXECUTE 'SELECT ' || stop INTO stopped;
					EXIT WHEN stopped;
					PERFORM pg_advisory_unlock(hashtext('$MIG_GATE'));
					PERFORM pg_advisory_lock(hashtext('$MIG_GATE'));
					passed := passed + 1;
				END LOOP;
			   END \$f\$; SELECT 1" 1 || return 1
		MIG_GATE_FN[h]=1
	fi
	gate_send_to "$h" "CALL pg_temp.gate_pass_n($1, '$(printf '%s' "$stop" | sed "s/'/''/g")', NULL)" 1 \
		$(($1 * 30 + 30)) || return 1
	echo "$MIG_GATE_LINE"
	[ "$MIG_GATE_LINE" -ge 0 ] 2>/dev/null
}

gate_release()
{
	local i
	for i in "${!MIG_GATE_PID[@]}"; do
		gate_send_to "$i" "SELECT pg_advisory_unlock_all(), 1" 1 || return 1
	done
	MIG_GATE_HOLDER=
}

# Let job ID through the gate until it waits inside STEP after N batches
# (or for_each rows) of it: gate_to ID STEP [N]. Fails if it went past.
gate_to()
{
	local id=$1 step=$2 n=${3:-0} idx pos
	idx=$(sql "SELECT array_position(steps, '$step') - 1 FROM pgtenantd.job_kinds WHERE kind = '$MIG_KIND'")
	while :; do
		if ! gate_wait; then
			diag "job $id did not get to the gate (on the way to $step after $n)"
			diag_job "$id"
			return 1
		fi
		pos=$(sql "SELECT step_index - $idx, coalesce((progress->>'batches')::int,
						      (progress->>'for_each_done')::int, 0)
			     FROM pgtenantd.jobs WHERE id = $id")
		if [ "${pos%|*}" -gt 0 ]; then
			diag "job $id went past $step"
			return 1
		fi
		[ "${pos%|*}" -eq 0 ] && [ "${pos#*|}" -ge "$n" ] && return 0
		gate_pass || { diag "the gate did not let job $id through"; return 1; }
	done
}
