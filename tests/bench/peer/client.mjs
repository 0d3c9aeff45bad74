// client.mjs - the measuring client of scripts/bench-queue --peer: the same
// client library (node-postgres) and the same method for pgtenantd and for
// graphile-worker, both running against one PostgreSQL.
//
//   node client.mjs [--n N] [--rate R] [--throughput-n M] [--tenants T]
//                   [--fresh F] [--rounds K] [--out FILE]
//
// Per round and per system (the order alternates between rounds):
//   latency     N jobs enqueued one at a time at R/s; each job's first
//               statement inserts clock_timestamp() into public.bench_marks.
//               Latency = that time - the client's time just before its
//               INSERT / add_job, the clocks aligned by a round-trip
//               calibration (the one of least round trip of 50).
//   throughput  M no-op jobs enqueued in one statement while the workers
//               run; M / (the moment the client sees none left - the moment
//               before the statement), polled every 5 ms with an
//               index-only probe (not a count, which would load the server).
//               The enqueue statement's own time is printed beside it.
//   fresh       F fresh connections, each timing its first enqueue (the
//               cost an application that connects per request pays); and,
//               as the floor of this machine, F fresh connections each
//               timing its first INSERT into a plain table with a primary
//               key and no trigger (public.bench_floor).
// The connection comes from the PG* environment variables. Prints a report
// and, with --out, writes the figures as JSON.
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import pg from "pg";

const opts = { n: 1000, rate: 100, "throughput-n": 5000, tenants: 100, fresh: 100, rounds: 3, out: "" };
for (let i = 2; i < process.argv.length; i += 2) {
	const key = process.argv[i].replace(/^--/, "");
	const value = process.argv[i + 1];
	if (!(key in opts) || value === undefined) {
		console.error(`client.mjs: unknown or incomplete option ${process.argv[i]}`);
		process.exit(2);
	}
	if (key === "out") {
		opts.out = value;
		continue;
	}
	if (!/^[1-9][0-9]*$/.test(value)) {
		console.error(`client.mjs: --${key} wants a positive integer, not '${value}'`);
		process.exit(2);
	}
	opts[key] = Number(value);
}

const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

// What differs between the two systems: how a job is enqueued and how the
// client sees that none is left.
const systems = {
	pgtenantd: {
		mark: (c, round, tag) =>
			c.query("INSERT INTO pgtenantd.jobs (kind, tenant_id, args) VALUES ('mark', $1, $2::jsonb)", [
				`lat-${tag % opts.tenants}`,
				JSON.stringify({ round: String(round), tag: String(tag) }),
			]),
		noop: (c, tag) =>
			c.query("INSERT INTO pgtenantd.jobs (kind, tenant_id) VALUES ('noop', $1)", [`fresh-${tag % opts.tenants}`]),
		noops: (c, m) =>
			c.query(
				"INSERT INTO pgtenantd.jobs (kind, tenant_id)" +
					" SELECT 'noop', 'tp-' || (g % $2) FROM generate_series(1, $1::int) g",
				[m, opts.tenants],
			),
		// an index-only probe (jobs_active_tenant_kind_idx): the poll
		// must not cost the server more than the jobs do
		left: async (c) => {
			const r = await c.query(
				"SELECT EXISTS (SELECT 1 FROM pgtenantd.jobs WHERE state IN ('queued', 'running')) AS left",
			);
			return r.rows[0].left ? 1 : 0;
		},
		failed: async (c) => {
			const r = await c.query(
				"SELECT count(*)::int AS n FROM pgtenantd.jobs WHERE state IN ('failed', 'cancelled')",
			);
			return r.rows[0].n;
		},
		clear: async (c) => {
			await c.query("DELETE FROM pgtenantd.jobs WHERE state = 'succeeded'");
			await c.query("VACUUM ANALYZE pgtenantd.jobs");
		},
	},
	graphile: {
		mark: (c, round, tag) =>
			c.query("SELECT graphile_worker.add_job('mark', $1::json)", [JSON.stringify({ round, tag })]),
		noop: (c) => c.query("SELECT graphile_worker.add_job('noop', '{}'::json)"),
		noops: (c, m) => c.query("SELECT graphile_worker.add_job('noop', '{}'::json) FROM generate_series(1, $1::int)", [m]),
		// a job leaves the table when it succeeds; a failed one stays
		// (retried later), so the poll would time out on it
		left: async (c) => {
			const r = await c.query("SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS left");
			return r.rows[0].left ? 1 : 0;
		},
		failed: async (c) => {
			const r = await c.query(
				"SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE last_error IS NOT NULL",
			);
			return r.rows[0].n;
		},
		clear: async (c) => {
			await c.query("VACUUM ANALYZE graphile_worker._private_jobs");
		},
	},
};

// server clock - client clock, in ms, from the sample of least round trip.
async function clockOffset(c) {
	let best = null;
	for (let i = 0; i < 50; i++) {
		const a = wall();
		const r = await c.query("SELECT extract(epoch FROM clock_timestamp())::float8 * 1000 AS ms");
		const b = wall();
		if (best === null || b - a < best.rtt) best = { rtt: b - a, offset: r.rows[0].ms - (a + b) / 2 };
	}
	return best;
}

function pct(sorted, p) {
	if (sorted.length === 0) return NaN;
	const pos = p * (sorted.length - 1);
	const lo = Math.floor(pos);
	const hi = Math.min(lo + 1, sorted.length - 1);
	return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

function summary(values) {
	const s = [...values].sort((a, b) => a - b);
	return { p50: pct(s, 0.5), p99: pct(s, 0.99), max: s[s.length - 1] };
}

const median = (xs) => summary(xs).p50;

async function waitUntil(what, fn, timeoutMs) {
	const deadline = wall() + timeoutMs;
	for (;;) {
		if (await fn()) return;
		if (wall() > deadline) throw new Error(`${what}: not done within ${timeoutMs / 1000} s`);
		await sleep(5);
	}
}

async function latency(name, sys, c, poll, round) {
	const { rtt, offset } = await clockOffset(c);
	const sent = new Map();
	const start = wall() + 50;
	for (let tag = 1; tag <= opts.n; tag++) {
		await sleep(start + ((tag - 1) * 1000) / opts.rate - wall());
		sent.set(tag, wall());
		await sys.mark(c, round, tag);
	}
	let rows = [];
	await waitUntil(
		`${name} latency round ${round}`,
		async () => {
			const r = await poll.query("SELECT count(*)::int AS n FROM public.bench_marks WHERE system = $1 AND round = $2", [
				name,
				round,
			]);
			return r.rows[0].n >= opts.n;
		},
		60000,
	);
	rows = (
		await poll.query(
			"SELECT tag, extract(epoch FROM at)::float8 * 1000 AS ms FROM public.bench_marks WHERE system = $1 AND round = $2",
			[name, round],
		)
	).rows;
	const ms = rows.map((r) => r.ms - offset - sent.get(r.tag));
	return { ...summary(ms), clock_rtt: rtt };
}

async function throughput(name, sys, c, poll) {
	const t0 = wall();
	await sys.noops(c, opts["throughput-n"]);
	const enqueueMs = wall() - t0;
	await waitUntil(`${name} throughput`, async () => (await sys.left(poll)) === 0, 120000);
	const seconds = (wall() - t0) / 1000;
	const failed = await sys.failed(poll);
	if (failed > 0) throw new Error(`${name}: ${failed} job(s) failed in the throughput phase`);
	return { jobsPerS: opts["throughput-n"] / seconds, enqueueMs };
}

async function fresh(name, sys) {
	const ms = [];
	for (let i = 0; i < opts.fresh; i++) {
		const c = new pg.Client();
		await c.connect();
		const t0 = wall();
		await sys.noop(c, i);
		ms.push(wall() - t0);
		await c.end();
	}
	return summary(ms);
}

// The floor of a fresh connection's first INSERT on this machine: a plain
// table, a primary key, no trigger, no policy.
const floorTable = {
	noop: (c, tag) => c.query("INSERT INTO public.bench_floor (kind, tenant_id) VALUES ('noop', $1)", [`fresh-${tag}`]),
};

async function main() {
	const c = new pg.Client();
	const poll = new pg.Client();
	await c.connect();
	await poll.connect();
	await c.query(
		"CREATE TABLE IF NOT EXISTS public.bench_marks (system text NOT NULL, round int NOT NULL, tag int NOT NULL, at timestamptz NOT NULL)",
	);
	await c.query("TRUNCATE public.bench_marks");
	await c.query(
		"CREATE TABLE IF NOT EXISTS public.bench_floor (id bigserial PRIMARY KEY, kind text NOT NULL, tenant_id text NOT NULL)",
	);
	const floors = [];
	const runs = { pgtenantd: [], graphile: [] };
	for (let round = 1; round <= opts.rounds; round++) {
		const order = round % 2 ? ["pgtenantd", "graphile"] : ["graphile", "pgtenantd"];
		for (const name of order) {
			const sys = systems[name];
			await sys.clear(poll);
			const lat = await latency(name, sys, c, poll, round);
			await sys.clear(poll);
			const tp = await throughput(name, sys, c, poll);
			await sys.clear(poll);
			const fr = await fresh(name, sys);
			await waitUntil(`${name} fresh-connection jobs`, async () => (await sys.left(poll)) === 0, 60000);
			runs[name].push({
				latency_ms: lat,
				throughput_jobs_per_s: tp.jobsPerS,
				throughput_enqueue_ms: tp.enqueueMs,
				fresh_first_enqueue_ms: fr,
			});
			if (name === "pgtenantd") floors.push((await fresh("floor", floorTable)).p50);
			console.log(
				`  round ${round} ${name.padEnd(9)} latency p50 ${lat.p50.toFixed(2)} p99 ${lat.p99.toFixed(2)}` +
					` max ${lat.max.toFixed(2)} ms   throughput ${tp.jobsPerS.toFixed(0)} jobs/s` +
					` (enqueue statement ${tp.enqueueMs.toFixed(0)} ms)` +
					`   fresh first enqueue p50 ${fr.p50.toFixed(2)} ms`,
			);
		}
	}
	const med = {};
	for (const name of Object.keys(runs)) {
		const r = runs[name];
		med[name] = {
			latency_p50_ms: median(r.map((x) => x.latency_ms.p50)),
			latency_p99_ms: median(r.map((x) => x.latency_ms.p99)),
			throughput_jobs_per_s: median(r.map((x) => x.throughput_jobs_per_s)),
			fresh_first_enqueue_p50_ms: median(r.map((x) => x.fresh_first_enqueue_ms.p50)),
		};
	}
	const p = med.pgtenantd;
	const g = med.graphile;
	const ratio = {
		latency_p50: p.latency_p50_ms / g.latency_p50_ms,
		latency_p99: p.latency_p99_ms / g.latency_p99_ms,
		throughput: p.throughput_jobs_per_s / g.throughput_jobs_per_s,
		fresh_first_enqueue: p.fresh_first_enqueue_p50_ms / g.fresh_first_enqueue_p50_ms,
	};
	const verdict = (ok) => (ok ? "PASS" : "MISS");
	const line = (label, pv, gv, r, unit, target, ok) =>
		`  ${label.padEnd(26)} ${pv.toFixed(2).padStart(9)} ${gv.toFixed(2).padStart(9)} ${unit.padEnd(7)}` +
		` ${r.toFixed(2).padStart(6)}x   ${target.padEnd(28)} ${verdict(ok)}`;
	console.log(`
medians of ${opts.rounds} round(s)            pgtenantd  graphile            ratio   target`);
	console.log(line("latency p50", p.latency_p50_ms, g.latency_p50_ms, ratio.latency_p50, "ms", "<= 0.8x", ratio.latency_p50 <= 0.8));
	console.log(line("latency p99", p.latency_p99_ms, g.latency_p99_ms, ratio.latency_p99, "ms", "<= 0.8x", ratio.latency_p99 <= 0.8));
	console.log(
		line(
			"throughput",
			p.throughput_jobs_per_s,
			g.throughput_jobs_per_s,
			ratio.throughput,
			"jobs/s",
			">= 2x and >= 3000 jobs/s",
			ratio.throughput >= 2 && p.throughput_jobs_per_s >= 3000,
		),
	);
	console.log(
		line(
			"fresh conn. first enqueue",
			p.fresh_first_enqueue_p50_ms,
			g.fresh_first_enqueue_p50_ms,
			ratio.fresh_first_enqueue,
			"ms p50",
			"pgtenantd <= 5 ms",
			p.fresh_first_enqueue_p50_ms <= 5,
		),
	);
	const floor = median(floors);
	console.log(
		`  ${"fresh plain-table INSERT".padEnd(26)} ${floor.toFixed(2).padStart(9)} ms p50 (the floor on this machine: no trigger, no policy, one index)`,
	);
	if (opts.out)
		writeFileSync(
			opts.out,
			JSON.stringify({ options: opts, runs, medians: med, ratio, fresh_plain_table_insert_p50_ms: floor }, null, 2) + "\n",
		);
	await c.end();
	await poll.end();
}

main().catch((err) => {
	console.error(`client.mjs: ${err.message}`);
	process.exit(1);
});
