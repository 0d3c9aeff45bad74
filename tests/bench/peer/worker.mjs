// worker.mjs - graphile-worker as the peer of pgtenantd in scripts/bench-queue
// --peer: its default settings but the concurrency, two tasks:
//   noop  does nothing (the throughput phase)
//   mark  records when its body started: one INSERT into public.bench_marks
//         with the server's clock_timestamp() (the latency phase; the
//         pgtenantd kind `mark` runs the same statement as its first one)
// The connection comes from the PG* environment variables (node-postgres).
// Prints "ready" once the worker listens; stops on SIGTERM / SIGINT.
import pg from "pg";
import { run } from "graphile-worker";

const concurrency = Number(process.argv[2] ?? "4");
if (!Number.isInteger(concurrency) || concurrency < 1) {
	console.error(`worker.mjs: concurrency must be a positive integer, not ${process.argv[2]}`);
	process.exit(2);
}

const pgPool = new pg.Pool({ max: concurrency + 2 });
pgPool.on("error", (err) => console.error(`worker.mjs: pool: ${err.message}`));
const runner = await run({
	pgPool,
	concurrency,
	noHandleSignals: true,
	taskList: {
		noop: async () => {},
		mark: async (payload, helpers) => {
			await helpers.query(
				"INSERT INTO public.bench_marks (system, round, tag, at)" +
					" VALUES ('graphile', $1, $2, clock_timestamp())",
				[payload.round, payload.tag],
			);
		},
	},
});
console.log("ready");

let stopping = false;
const stop = async () => {
	if (stopping) return;
	stopping = true;
	await runner.stop();
	await pgPool.end();
	process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
await runner.promise;
