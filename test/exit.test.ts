// A process ends by itself once mesh.stop() has resolved: Mesh leaves nothing
// ref'd behind (no timer, socket or watch). Each run is a child process that
// never calls process.exit; if it is still alive REPORT_MS after its last
// stop() it prints what holds it (resources, and where each ref'd timer was
// made) and exits 3.
//  - fixtures/exit-node.ts: Mesh nodes with a plain and a durable actor with
//    reminders (scans every 20 ms) start, work and stop, three rounds, at a
//    different moment in each run: right after start (first scans under way),
//    right after other nodes joined (view changes: scans), with calls in
//    flight, or as another node leaves.
//  - fixtures/exit-watch.ts: the race under it, made likely: reads of the
//    reminders bucket (the scans' KV watch) whose connection drains while the
//    watch's consumer is being created. nats.js then starts the consumer's
//    heartbeat monitor on a closed subscription (a ref'd 5 s interval for
//    ever) unless Mesh cancels it.
import { fileURLToPath } from "node:url";
import test from "ava";
import type { ExecutionContext } from "ava";
import { spawnGuarded, startNatsServer } from "@mesh/runtime/testing";
import type { NatsServer } from "@mesh/runtime/testing";
import { NATS_CONF } from "./helpers/cluster.js";

const NODE_CHILD = fileURLToPath(new URL("./fixtures/exit-node.js", import.meta.url));
const WATCH_CHILD = fileURLToPath(new URL("./fixtures/exit-watch.js", import.meta.url));
/** The child reports what still holds it this long after stop() resolved (a clean exit takes a few ms). */
const REPORT_MS = 3000;
/** The parent gives up on a child this long after its stop() resolved. */
const EXIT_MS = REPORT_MS + 4000;
/** From spawn to stop() resolved, at most (a loaded machine makes JetStream slow). */
const STOP_MS = 60_000;
const MOMENTS = ["start", "scan", "calls", "leave"] as const;
/** 20 runs, 4 at a time: each moment with 5 different delays. */
const RUNS = Array.from({ length: 20 }, (_, i) => ({
  moment: MOMENTS[i % MOMENTS.length]!,
  delayMs: [0, 3, 11, 27, 45][Math.floor(i / MOMENTS.length)]!,
}));
const PARALLEL = 4;

let server: NatsServer;
test.before(async () => {
  server = await startNatsServer({ config: NATS_CONF });
});
test.after.always(async () => {
  await server?.stop();
});

interface Outcome {
  run: string;
  code: number | null;
  signal: string | null;
  /** ms from stop() resolved to the exit; undefined when it never stopped. */
  exitLagMs: number | undefined;
  problem: string | undefined;
  stdout: string;
  stderr: string;
}

/** Runs a child with `env`, and polls until it exits, or a deadline passes (then kills it). */
async function runChild(run: string, script: string, env: Record<string, string>): Promise<Outcome> {
  const child = spawnGuarded(process.execPath, [script], { env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  let stoppedAt: number | undefined;
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stoppedAt === undefined && /^stopped /m.test(stdout)) stoppedAt = Date.now();
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let exit: { code: number | null; signal: string | null; at: number } | undefined;
  child.once("exit", (code, signal) => (exit = { code, signal, at: Date.now() }));
  const spawned = Date.now();
  let problem: string | undefined;
  // Poll for the exit, with a deadline for each step.
  while (exit === undefined) {
    if (stoppedAt === undefined && Date.now() - spawned > STOP_MS) problem = `stop() had not resolved ${STOP_MS} ms after spawn`;
    if (stoppedAt !== undefined && Date.now() - stoppedAt > EXIT_MS) problem = `still running ${EXIT_MS} ms after stop() resolved`;
    if (problem !== undefined) {
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("close", resolve));
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const exitLagMs = exit && stoppedAt !== undefined ? exit.at - stoppedAt : undefined;
  if (problem === undefined && exit && exit.code !== 0) problem = `exited with code ${exit.code} (signal ${exit.signal})`;
  if (problem === undefined && stoppedAt === undefined) problem = "exited without stopping";
  return { run, code: exit?.code ?? null, signal: exit?.signal ?? null, exitLagMs, problem, stdout, stderr };
}

/** Logs the runs, and fails with those whose child did not exit by itself with code 0 (their report in the log). */
function check(t: ExecutionContext, outcomes: Outcome[]): void {
  const lags = outcomes.flatMap((o) => (o.exitLagMs === undefined ? [] : [o.exitLagMs])).sort((x, y) => x - y);
  t.log(`${outcomes.length} runs; exit after the last stop: median ${lags[Math.floor(lags.length / 2)]} ms, max ${lags.at(-1)} ms`);
  const failed = outcomes.filter((o) => o.problem !== undefined);
  for (const f of failed) t.log(`${f.run}: ${f.problem}\nstdout: ${f.stdout.trim()}\nstderr: ${f.stderr.trim()}`);
  t.deepEqual(
    failed.map((f) => `${f.run}: ${f.problem}`),
    [],
    "every child exits by itself with code 0 once it has stopped",
  );
}

test("a process with stopped Mesh nodes exits by itself, whenever stop() comes: nothing ref'd is left", async (t) => {
  t.timeout(120_000); // about 17 s on an idle 2-core machine; twice that when the rest of the suite runs beside it
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < RUNS.length) {
      const i = next++;
      const { moment, delayMs } = RUNS[i]!;
      const options = { servers: server.url, prefix: `exit${i}`, moment, delayMs, reportMs: REPORT_MS };
      outcomes.push(await runChild(`run ${i} (${moment}, +${delayMs} ms)`, NODE_CHILD, { MESH_EXIT_NODE: JSON.stringify(options) }));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  check(t, outcomes);
  // The runs past start did their work: reminders fired before they stopped.
  const fired = outcomes.map((o) => JSON.parse(/^stopped (.*)$/m.exec(o.stdout)?.[1] ?? "{}") as { moment?: string; fired?: number });
  t.true(
    fired.filter((f) => f.moment !== "start").every((f) => (f.fired ?? 0) > 0),
    JSON.stringify(fired),
  );
});

// Serial: it runs first, alone, so that its reads are not starved by the runs of the other test.
test.serial("a reminders read whose connection drains while its watch is set up leaves nothing running", async (t) => {
  t.timeout(120_000);
  // 60 reads in each of two processes: before the fix, one read in ten to fifteen left a heartbeat monitor running.
  const outcomes = await Promise.all(
    [0, 1].map((i) =>
      runChild(`watch run ${i}`, WATCH_CHILD, {
        MESH_EXIT_WATCH: JSON.stringify({ servers: server.url, prefix: `exitw${i}`, reads: 60, reportMs: REPORT_MS }),
      }),
    ),
  );
  check(t, outcomes);
  // The drains came at the moments that matter: some reads completed, some were cut short.
  for (const o of outcomes) {
    t.regex(o.stdout, /"read 5":\d+/);
    t.regex(o.stdout, /"failed: /);
  }
});
