// Ownership leases (docs/faults.md "Pauses and lost connections"): a node frozen
// with SIGSTOP past the node timeout, or cut off from NATS until it left the
// view, or left half-open (the server closed its connection, its socket is
// still open), never answers from state another node replaced once it is back.
// Each id is driven by one sequential worker, so the order replies arrive in is
// the order they were served in: for every id,
// - a read shows at least every increment acknowledged before it was sent;
// - no reply comes from an activation (pid) after a reply from a later one;
// - acknowledged <= stored <= acknowledged + ambiguous (TIMEOUT) increments.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";
import { stateKey } from "@mesh/core";
import type { Mesh, MeshOptions } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import { TcpProxy } from "./helpers/proxy.js";
import { DurableCounter } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000, callTimeoutMs: 1000 };
const IDS = Array.from({ length: 40 }, (_, i) => `acct_${i}`);
const WORKERS = 8;

interface Trace {
  /** Acknowledged increments, per id. */
  acked: Map<string, number>;
  /** Increments whose outcome is unknown (TIMEOUT): they may have landed. */
  ambiguous: Map<string, number>;
  /** The highest count an acknowledged increment returned, per id. */
  floor: Map<string, number>;
  /** Reads that showed less than an increment acknowledged before them. */
  staleReads: string[];
  /** Replies from an activation after a reply from a newer one of the same actor. */
  zombieReplies: string[];
  failures: Map<string, number>;
  /** Replies per node. */
  servedBy: Map<string, number>;
  total: number;
}

/**
 * Sequential calls per id from `callers`: increments and reads of the durable
 * counter (`durable`), or calls of the plain Counter, which count too.
 */
function drive(callers: Mesh[], capability: string, durable: boolean) {
  const trace: Trace = {
    acked: new Map(),
    ambiguous: new Map(),
    floor: new Map(),
    staleReads: [],
    zombieReplies: [],
    failures: new Map(),
    servedBy: new Map(),
    total: 0,
  };
  const add = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);
  let running = true;
  const worker = async (w: number) => {
    const mine = IDS.filter((_, i) => i % WORKERS === w);
    const pids = new Map<string, string[]>();
    for (let round = 0; running; round++) {
      const id = mine[round % mine.length]!;
      const caller = callers[round % callers.length]!;
      const read = durable && round % 2 === 1;
      const floor = trace.floor.get(id) ?? 0;
      try {
        const { pid, result } = durable
          ? await caller.call<{ count: number }>({ actor: "DurableCounter", id, payload: read ? { get: true } : {}, capability })
          : await caller.call<{ ok: number }>({ actor: "Counter", id, payload: {}, capability });
        const seen = pids.get(id) ?? [];
        if (seen.includes(pid) && seen.at(-1) !== pid) trace.zombieReplies.push(`${id}: ${pid} answered after ${seen.at(-1)}`);
        if (!seen.includes(pid)) seen.push(pid);
        pids.set(id, seen);
        add(trace.servedBy, pid.split("/")[0]!);
        trace.total++;
        if (!durable) continue;
        const count = (result as { count: number }).count;
        if (read && count < floor) trace.staleReads.push(`${id}: read ${count} from ${pid}, ${floor} acknowledged before`);
        if (!read) {
          add(trace.acked, id);
          trace.floor.set(id, Math.max(trace.floor.get(id) ?? 0, count));
        }
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err);
        add(trace.failures, code);
        if (!read && code === "TIMEOUT") add(trace.ambiguous, id);
      }
    }
  };
  const done = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  return {
    trace,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

async function storedCounts(url: string, prefix: string, capability: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: url });
  try {
    const kv = await (await nc.jetstream()).views.kv(`${prefix}_state`);
    const counts = new Map<string, number>();
    for (const id of IDS) {
      const e = await kv.get(stateKey(capability, "DurableCounter", id));
      if (e?.operation === "PUT") counts.set(id, (decode(e.value) as { count: number }).count);
    }
    return counts;
  } finally {
    await nc.close();
  }
}

/** `alsoAllowed`: failure codes the case may meet besides (a half-open node's reads of the store time out: STORAGE_UNAVAILABLE). */
function checkTrace(t: ExecutionContext, trace: Trace, stored?: Map<string, number>, alsoAllowed: string[] = []): void {
  t.deepEqual(trace.staleReads, [], "every read shows every increment acknowledged before it");
  t.deepEqual(trace.zombieReplies, [], "no activation answers after the one that replaced it");
  for (const code of trace.failures.keys())
    t.true(["TIMEOUT", "STATE_CONFLICT", "NODE_UNAVAILABLE", "NO_NODES", ...alsoAllowed].includes(code), `failure code ${code}`);
  if (stored === undefined) return;
  for (const id of IDS) {
    const acked = trace.acked.get(id) ?? 0;
    const count = stored.get(id) ?? 0;
    t.true(
      count >= acked && count <= acked + (trace.ambiguous.get(id) ?? 0),
      `${id}: stored ${count}, acknowledged ${acked}, ambiguous ${trace.ambiguous.get(id) ?? 0}`,
    );
  }
}

async function freezeAndResume(t: ExecutionContext<ClusterContext>, prefix: string, durable: boolean): Promise<void> {
  const options = { servers: t.context.server.url, prefix, capabilities: ["acct"], ...timing };
  const [frozen, other] = await Promise.all(["f1", "f2"].map((name) => startNodeProcess(nodeId(`${prefix}-${name}`), options)));
  const callers = await Promise.all(["c1", "c2"].map((name) => startNode(t, { prefix, nodeId: nodeId(`${prefix}-${name}`), ...timing })));
  for (const caller of callers) await eventually(() => caller.nodesFor("acct").length === 2, "the callers to see both nodes");
  const load = drive(callers, "acct", durable);
  const { trace } = load;
  try {
    await eventually(
      () => (trace.servedBy.get(frozen!.nodeId) ?? 0) > 200 && (trace.servedBy.get(other!.nodeId) ?? 0) > 200,
      "both nodes to serve",
      20_000,
    );
    process.kill(frozen!.pid, "SIGSTOP");
    try {
      for (const caller of callers)
        await eventually(() => !caller.nodesFor("acct").includes(frozen!.nodeId), "the callers to drop the frozen node", 10_000);
      const before = trace.servedBy.get(other!.nodeId) ?? 0;
      await eventually(
        () => (trace.servedBy.get(other!.nodeId) ?? 0) > before + 400,
        "the other node to serve the frozen node's actors",
        20_000,
      );
    } finally {
      process.kill(frozen!.pid, "SIGCONT");
    }
    for (const caller of callers)
      await eventually(() => caller.nodesFor("acct").includes(frozen!.nodeId), "the callers to see the resumed node again", 10_000);
    const served = trace.servedBy.get(frozen!.nodeId) ?? 0;
    await eventually(() => (trace.servedBy.get(frozen!.nodeId) ?? 0) > served + 400, "the resumed node to serve its actors again", 20_000);
  } finally {
    await load.stop();
  }
  t.log(`${trace.total} calls; failures: ${JSON.stringify(Object.fromEntries(trace.failures))}`);
  checkTrace(t, trace, durable ? await storedCounts(t.context.server.url, prefix, "acct") : undefined);
}

test.serial(
  "a durable owner frozen with SIGSTOP past the node timeout and resumed under load serves no stale read and loses no acknowledged increment",
  async (t) => {
    await freezeAndResume(t, "lfreeze", true);
  },
);

test.serial("a plain owner frozen past the node timeout and resumed never answers from the copy another node replaced", async (t) => {
  await freezeAndResume(t, "lplain", false);
});

test.serial(
  "a node whose NATS connection is cut until it left the view re-validates its lease when it is back: no stale read, its actors dropped and read again",
  async (t) => {
    const prefix = "lcut";
    const proxy = await TcpProxy.start(t.context.server.url);
    t.teardown(() => proxy.close());
    const cut = await startNode(t, {
      servers: proxy.url,
      prefix,
      nodeId: nodeId("cut"),
      capabilities: ["acct"],
      ...timing,
      actors: [DurableCounter],
    });
    await startNode(t, { prefix, nodeId: nodeId("kept"), capabilities: ["acct"], ...timing, actors: [DurableCounter] });
    const callers = await Promise.all(["c1", "c2"].map((name) => startNode(t, { prefix, nodeId: nodeId(`${prefix}-${name}`), ...timing })));
    for (const caller of callers) await eventually(() => caller.nodesFor("acct").length === 2, "the callers to see both nodes");
    const load = drive(callers, "acct", true);
    const { trace } = load;
    try {
      await eventually(() => (trace.servedBy.get(cut.nodeId) ?? 0) > 200, "the node to serve", 20_000);
      await proxy.cut();
      for (const caller of callers)
        await eventually(() => !caller.nodesFor("acct").includes(cut.nodeId), "the callers to drop the cut-off node", 10_000);
      const total = trace.total;
      await eventually(() => trace.total > total + 400, "the other node to serve the cut-off node's actors", 20_000);
      await proxy.restore();
      for (const caller of callers)
        await eventually(() => caller.nodesFor("acct").includes(cut.nodeId), "the callers to see the node again", 15_000);
      const served = trace.servedBy.get(cut.nodeId) ?? 0;
      await eventually(() => (trace.servedBy.get(cut.nodeId) ?? 0) > served + 400, "the node to serve its actors again", 20_000);
    } finally {
      await load.stop();
    }
    const m = cut.metrics();
    t.true(m.leaseLapses >= 1, `lease lapses ${m.leaseLapses}`);
    t.true(m.leaseRevalidations >= 1, `re-validations ${m.leaseRevalidations}`);
    t.true(m.leaseDrops >= 1, `activations dropped ${m.leaseDrops}`);
    checkTrace(t, trace, await storedCounts(t.context.server.url, prefix, "acct"));
  },
);

/** What a half-open case works with, once the node went half-open. */
interface HalfOpen {
  options: MeshOptions;
  half: Mesh;
  kept: Mesh;
  caller: Mesh;
  trace: Trace;
}

/**
 * A node `half` behind a proxy, a node kept and a caller: increments go through the caller, reads through the
 * half-open node (its own actors' reads are local, from memory). Once `half` served, its connection is closed
 * on the server's side only (half-open), `then` runs under load, and every read is checked against what was
 * acknowledged; `samePids`: a process of the same id came after it (both count incarnations from 1).
 */
async function underHalfOpen(
  t: ExecutionContext<ClusterContext>,
  prefix: string,
  half: { nodeId: string; nodeTimeoutMs: number },
  then: (h: HalfOpen) => Promise<void>,
  samePids = false,
): Promise<void> {
  const proxy = await TcpProxy.start(t.context.server.url);
  t.teardown(() => proxy.close());
  const options = { prefix, capabilities: ["acct"], ...timing, actors: [DurableCounter] };
  const halfNode = await startNode(t, { ...options, ...half, servers: proxy.url });
  const kept = await startNode(t, { ...options, nodeId: nodeId("kept") });
  const caller = await startNode(t, { prefix, nodeId: nodeId(`${prefix}-c1`), ...timing });
  for (const node of [caller, halfNode]) await eventually(() => node.nodesFor("acct").length === 2, "the nodes to see each other");
  const load = drive([caller, halfNode], "acct", true);
  const { trace } = load;
  try {
    await eventually(() => (trace.servedBy.get(half.nodeId) ?? 0) > 200, "the node to serve", 20_000);
    proxy.halfOpen();
    await then({ options, half: halfNode, kept, caller, trace });
  } finally {
    await load.stop();
  }
  t.log(`${trace.total} calls; failures: ${JSON.stringify(Object.fromEntries(trace.failures))}`);
  if (samePids) trace.zombieReplies.length = 0;
  // A half-open node's reads of the store time out: STORAGE_UNAVAILABLE.
  checkTrace(t, trace, await storedCounts(t.context.server.url, prefix, "acct"), ["STORAGE_UNAVAILABLE"]);
  await proxy.cut(); // its socket closes too: it reconnects, and stops, as any node
  await proxy.restore();
}

for (const [i, c] of [
  { title: "", nodeTimeoutMs: timing.nodeTimeoutMs },
  { title: ", its node timeout longer than its peers' (its lease too)", nodeTimeoutMs: 3 * timing.nodeTimeoutMs },
].entries())
  test.serial(
    `a node whose connection the server closed while its own socket stays open (half-open) is taken over only once its lease ended${c.title}: no stale read through it`,
    async (t) => {
      await underHalfOpen(
        t,
        `lhalf${i}`,
        { nodeId: nodeId("half"), nodeTimeoutMs: c.nodeTimeoutMs },
        async ({ half, kept, caller, trace }) => {
          await eventually(() => !caller.nodesFor("acct").includes(half.nodeId), "the caller to drop the half-open node", 10_000);
          const served = trace.servedBy.get(kept.nodeId) ?? 0;
          await eventually(() => (trace.servedBy.get(kept.nodeId) ?? 0) > served + 40, "the other node to serve on", 20_000);
        },
      );
    },
  );

test.serial(
  "a process started with the id of a half-open node takes the id only once the old record went unrenewed for the node timeout: no stale read through the old one",
  async (t) => {
    // A lease of 4.8 s, longer than the new process takes to start: the window where both could serve.
    const same = { nodeId: nodeId("same"), nodeTimeoutMs: 5000 };
    await underHalfOpen(
      t,
      "lsameid",
      same,
      async ({ options, trace }) => {
        // Its presence probe meets no responders: the id looks free.
        // Restarted with a shorter node timeout: it waits as long as the old process's record says.
        await startNode(t, { ...options, ...same, nodeTimeoutMs: timing.nodeTimeoutMs });
        const total = trace.total;
        await eventually(() => trace.total > total + 40, "the new process to serve the id's actors", 20_000);
      },
      true,
    );
  },
);

test.serial(
  "a node that joins while another is half-open keeps that node in its view until the store removed it: no stale read through the half-open one",
  async (t) => {
    // A lease of 4.8 s, longer than the joining node takes to start.
    await underHalfOpen(t, "ljoin", { nodeId: nodeId("half"), nodeTimeoutMs: 5000 }, async ({ options, half, caller, trace }) => {
      // Its presence probe meets no responders; its record is fresh.
      const joiner = await startNode(t, { ...options, nodeId: nodeId("joiner") });
      await eventually(() => caller.nodesFor("acct").includes(joiner.nodeId), "the caller to see the joining node");
      const total = trace.total;
      await eventually(() => trace.total > total + 40, "the calls to go on", 20_000);
      await eventually(() => !caller.nodesFor("acct").includes(half.nodeId), "the caller to drop the half-open node", 15_000);
      const served = trace.servedBy.get(joiner.nodeId) ?? 0;
      await eventually(() => (trace.servedBy.get(joiner.nodeId) ?? 0) > served + 40, "the joining node to serve", 20_000);
    });
  },
);
