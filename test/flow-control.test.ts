// Flow control (docs/behaviour.md "Flow control"): a flood harms only its
// sender, and the sender is told. Three processes: the owner (Slow/hot, a 5 ms
// actor, and Counter), a flooding node (helpers/flood-main.ts) and this test's
// own node, the third. Each flood runs 5 s; meanwhile the flooder and the
// third process call other actors of the owner one at a time, each call with a
// 1 s timeout: every one must be answered.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import { MeshError } from "@mesh/runtime";
import type { Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { jsonRequest } from "./helpers/foreign.js";
import type { FloodResult } from "./helpers/flood-main.js";
import { meshCli } from "./helpers/cli.js";
import { killAllNodeProcesses, runFloodProcess, startNodeProcess } from "./helpers/processes.js";
import type { NodeProcess } from "./helpers/processes.js";

const test = anyTest as TestFn<ClusterContext>;
type T = ExecutionContext<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const FLOOD_MS = 5000;

/** Calls to other actors of the owner, one at a time with a 1 s timeout, until `until` settles. */
interface Probes {
  answered: number;
  failed: string[];
  slowestMs: number;
}

async function probeUntil(call: (i: number) => Promise<unknown>, until: Promise<unknown>): Promise<Probes> {
  let done = false;
  void until.finally(() => (done = true)).catch(() => {});
  const p: Probes = { answered: 0, failed: [], slowestMs: 0 };
  for (let i = 0; !done; i++) {
    const sentAt = performance.now();
    try {
      await call(i);
      p.answered++;
      p.slowestMs = Math.max(p.slowestMs, performance.now() - sentAt);
    } catch (err) {
      p.failed.push(err instanceof MeshError ? `${err.code}: ${err.message}` : String(err));
    }
  }
  return p;
}

/** The owner process and this test's node, under a prefix of their own. */
async function setUp(t: T, name: string): Promise<{ owner: NodeProcess; third: Mesh; prefix: string }> {
  const prefix = `flow${name}`;
  const owner = await startNodeProcess(nodeId("owner"), { servers: t.context.server.url, prefix, capabilities: ["slow"] });
  const third = await startNode(t, { prefix, nodeId: nodeId("third") });
  await eventually(() => third.nodesFor("slow").length === 1, "the third node to see the owner");
  return { owner, third, prefix };
}

function report(flood: FloodResult): string {
  const { sent, overloaded, firstOverloadedMs, probes, rss, castsRefusedAtSender, noticesReceived } = flood;
  return (
    `${sent} sent, ${overloaded} OVERLOADED (${castsRefusedAtSender} refused at the sender, ${noticesReceived} notices), ` +
    `first after ${firstOverloadedMs.toFixed(0)} ms; flooder's own calls: ${probes.answered}, slowest ${probes.slowestMs.toFixed(0)} ms; ` +
    `flooder RSS ${rss.beforeMiB.toFixed(0)} -> ${rss.peakMiB.toFixed(0)} MiB`
  );
}

/** What every flood must show: OVERLOADED within a second, nothing else failing, every call to other actors answered. */
function checkFlood(t: T, flood: FloodResult, third: Probes, rssBoundMiB: number): void {
  t.log(report(flood));
  t.log(`third process: ${third.answered} calls answered, slowest ${third.slowestMs.toFixed(0)} ms`);
  t.true(flood.overloaded > 0, "the flooder was told with OVERLOADED");
  t.true(flood.firstOverloadedMs >= 0 && flood.firstOverloadedMs < 1000, `first OVERLOADED after ${flood.firstOverloadedMs} ms`);
  t.deepEqual(flood.failures, {}, "no other failure");
  t.deepEqual(flood.probes.failed, [], "every call from the flooder to another actor was answered within 1 s");
  t.true(flood.probes.answered > 0);
  t.deepEqual(third.failed, [], "every call from the third process was answered within 1 s");
  t.true(third.answered > 0);
  const growth = flood.rss.peakMiB - flood.rss.beforeMiB;
  t.true(growth < rssBoundMiB, `the flooder grew by ${growth.toFixed(0)} MiB (bound ${rssBoundMiB})`);
}

/** A flood from a node in another process, with the third process calling other actors of the owner meanwhile; checked by checkFlood. */
async function nodeFlood(t: T, mode: "casts" | "calls", inFlight: number, rssBoundMiB: number): Promise<FloodResult> {
  const { owner, third, prefix } = await setUp(t, mode);
  const flood = runFloodProcess({ servers: t.context.server.url, prefix, nodeId: nodeId("flooder"), mode, inFlight, durationMs: FLOOD_MS });
  const probes = probeUntil((i) => third.call({ actor: "Counter", id: `third_${i % 100}`, capability: "slow", timeoutMs: 1000 }), flood);
  const [f, p] = await Promise.all([flood, probes]);
  checkFlood(t, f, p, rssBoundMiB);
  await owner.stop();
  return f;
}

test.serial(
  "a cast flood at a slow actor: the flooder's casts fail with OVERLOADED within a second, its memory stays bounded, and calls from it and from a third process are answered",
  async (t) => {
    // What waits is bounded by maxOutboundBytes (256 KiB), plus the casts waiting for room (2x that).
    const f = await nodeFlood(t, "casts", 256, 64);
    t.true(f.castsRefusedAtSender > 0, "once told, the flooder refused casts itself, unsent");
    t.true(f.noticesReceived > 0, "the owner told the flooder");
  },
);

test.serial(
  "a flood of 10,000 calls in flight: OVERLOADED within a second, memory bounded, calls from the flooder and a third process answered",
  async (t) => {
    // The 10,000 calls themselves (their promises, envelopes and records) are most of it; it does not grow with the flood's length.
    await nodeFlood(t, "calls", 10_000, 256);
  },
);

for (const kind of ["cast", "call"] as const) {
  test.serial(
    `a foreign client's flood of ${kind}s through the ingress: OVERLOADED within a second, and calls through the ingress from another client answered`,
    async (t) => {
      const { owner, prefix } = await setUp(t, `ingress${kind}`);
      const other = await connect({ servers: t.context.server.url });
      try {
        const mode = kind === "cast" ? "casts" : "calls";
        const flood = runFloodProcess(
          { servers: t.context.server.url, prefix, nodeId: "", mode, inFlight: 2000, durationMs: FLOOD_MS },
          "foreign",
        );
        const probes = probeUntil(async (i) => {
          const reply = await jsonRequest(other, `${prefix}.call.slow`, { actor: "Counter", id: `other_${i % 100}`, timeoutMs: 1000 });
          if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`);
        }, flood);
        const [f, p] = await Promise.all([flood, probes]);
        t.log(`${f.sent} sent, ${f.overloaded} OVERLOADED, first after ${f.firstOverloadedMs.toFixed(0)} ms`);
        t.log(`the other client: ${p.answered} calls answered, slowest ${p.slowestMs.toFixed(0)} ms`);
        t.true(f.overloaded > 0);
        t.true(f.firstOverloadedMs >= 0 && f.firstOverloadedMs < 1000, `first OVERLOADED after ${f.firstOverloadedMs} ms`);
        t.deepEqual(f.failures, {});
        t.deepEqual(p.failed, [], "every call from the other client was answered");
        t.true(p.answered > 0);
      } finally {
        await other.close();
        await owner.stop();
      }
    },
  );
}

test.serial(
  "a frozen owner (SIGSTOP): once maxOutboundBytes are unread, a cast and a call wait for room and fail with OVERLOADED unsent; past what may wait, a cast is refused at once; resumed, the owner answers again",
  async (t) => {
    const prefix = "flowfrozen";
    const owner = await startNodeProcess(nodeId("owner"), { servers: t.context.server.url, prefix, capabilities: ["slow"] });
    const sender = await startNode(t, { prefix, nodeId: nodeId("sender"), maxOutboundBytes: 4096, callTimeoutMs: 1000 });
    await eventually(() => sender.nodesFor("slow").length === 1, "the sender to see the owner");
    await sender.call({ actor: "Counter", id: "warm", capability: "slow" });
    const outbound = () => sender.metrics().outbound;
    process.kill(owner.pid, "SIGSTOP");
    try {
      // Casts of 500 bytes to "filled" until one finds no room: it waits.
      const filler = { actor: "Counter", id: "filled", capability: "slow", payload: { pad: "x".repeat(500) } };
      const admitted: Promise<void>[] = [];
      for (let i = 0; outbound().waiting === 0; i++) {
        t.true(i < 100, "a send waits once 4 KiB are unread");
        admitted.push(sender.cast(filler));
      }
      const firstWaiting = admitted.pop()!; // the one that found no room
      t.true(outbound().bytes <= 4096);
      // What waits goes to "waited", with an initArg that would show if any of it ran.
      const waited = { actor: "Counter", id: "waited", capability: "slow", initArg: { start: 1000 }, payload: { pad: "x".repeat(500) } };
      const waiting = sender.cast(waited);
      const call = sender.call({ actor: "Counter", id: "called", capability: "slow", timeoutMs: 800 });
      // Casts to the same actor may wait up to 4 KiB: past it, the next is refused at once, unsent.
      const refusedBefore = outbound().refused.cast;
      const more: Promise<unknown>[] = [];
      for (let i = 0; outbound().refused.cast === refusedBefore; i++) {
        t.true(i < 100, "casts past what may wait are refused");
        more.push(sender.cast(waited).catch((err: unknown) => t.is((err as MeshError).code, "OVERLOADED")));
      }
      const castErr = await t.throwsAsync(waiting, { instanceOf: MeshError });
      t.is(castErr?.code, "OVERLOADED");
      t.regex(castErr!.message, /not sent/);
      const callErr = await t.throwsAsync(call, { instanceOf: MeshError });
      t.is(callErr?.code, "OVERLOADED", "a call that found no room before its deadline is OVERLOADED, not TIMEOUT: it was never sent");
      t.is((await t.throwsAsync(firstWaiting, { instanceOf: MeshError }))?.code, "OVERLOADED");
      await Promise.allSettled(more);
      await Promise.all(admitted); // they went: the server holds them for the frozen owner
    } finally {
      process.kill(owner.pid, "SIGCONT");
    }
    // Resumed: the owner reads what was sent, answers the probes, and the way is open again.
    await eventually(
      async () => (await sender.call({ actor: "Counter", id: "warm", capability: "slow" }).catch(() => undefined)) !== undefined,
      "the owner to answer again",
    );
    await eventually(() => outbound().bytes === 0 && outbound().waiting === 0, "nothing outstanding");
    const { result } = await sender.call<{ ok: number }>({ actor: "Counter", id: "waited", capability: "slow" });
    t.is(result.ok, 1, "none of the casts that waited and were refused ran");
    const called = await sender.call<{ ok: number }>({ actor: "Counter", id: "called", capability: "slow" });
    t.is(called.result.ok, 1, "the call refused unsent never ran");
    // mesh status shows what flow control did: the sender (a caller, hosting nothing) waited and refused.
    const url = t.context.server.url;
    const json = await meshCli("status", "--json", "--wait", "2000", "--server", url, "--prefix", prefix);
    const callers = (JSON.parse(json.stdout) as { callers: { node: string; flow: { waited: number; refused: number } }[] }).callers;
    const flow = callers.find((c) => c.node === sender.nodeId)?.flow;
    t.true(flow !== undefined && flow.waited > 0 && flow.refused > 0, JSON.stringify(flow));
    const text = await meshCli("status", "--wait", "2000", "--server", url, "--prefix", prefix);
    t.regex(text.stdout, new RegExp(`flow control[^]*${sender.nodeId}`));
    await owner.stop();
  },
);
