// Durable actors: state in JetStream KV, stored before the reply, fenced by revision.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";
import { MeshError, stateKey } from "@mesh/core";
import type { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import { NATS_CONF, eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Counter, DurableCounter } from "./helpers/actors.js";
import type { DurableCounterCall } from "./helpers/actors.js";
import { jsonRequest } from "./helpers/foreign.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const CAP = "durable";
type State = { count: number; extra?: unknown };

function counter(
  mesh: Mesh,
  id: string,
  payload: DurableCounterCall = {},
  extra: { initArg?: unknown; timeoutMs?: number } = {},
): Promise<State> {
  return mesh.call<State>({ actor: DurableCounter, id, payload, capability: CAP, ...extra }).then((r) => r.result);
}

/** Reads a stored state straight from the bucket, as any NATS client could. */
async function stored(url: string, id: string, prefix: string): Promise<unknown> {
  const bucket = `${prefix}_state`;
  const nc = await connect({ servers: url });
  try {
    const kv = await nc.jetstream().views.kv(bucket, { bindOnly: true });
    const entry = await kv.get(stateKey(CAP, "DurableCounter", id));
    return entry?.operation === "PUT" ? decode(entry.value) : undefined;
  } finally {
    await nc.close();
  }
}

/** A durable node; each test passes its own prefix, so its nodes and bucket (`<prefix>_state`) are its own. */
async function durableNode(t: { context: ClusterContext }, prefix: string, options: Parameters<typeof startNode>[1] = {}): Promise<Mesh> {
  return startNode(t as never, { nodeId: nodeId("d"), prefix, actors: [DurableCounter, Counter], capabilities: [CAP], ...options });
}

test.serial("durable counts survive a graceful stop of every node and a fresh start of the cluster", async (t) => {
  const first = await Promise.all([1, 2, 3].map(() => durableNode(t, "restart")));
  await eventually(() => first.every((n) => n.nodesFor(CAP).length === 3), "three nodes to see each other");
  const ids = Array.from({ length: 60 }, (_, i) => `restart-${i}`);
  // Every id counted three times, through each of the three nodes.
  for (const node of first) await Promise.all(ids.map((id) => counter(node, id)));
  t.deepEqual(await stored(t.context.server.url, "restart-7", "restart"), { count: 3 });
  await Promise.all(first.map((n) => n.stop()));
  const second = await Promise.all([1, 2, 3].map(() => durableNode(t, "restart")));
  await eventually(() => second.every((n) => n.nodesFor(CAP).length === 3), "the new nodes to see each other");
  const counts = await Promise.all(ids.map((id, i) => counter(second[i % 3]!, id).then((s) => s.count)));
  t.deepEqual(
    counts,
    ids.map(() => 4),
  );
  t.is(
    second.reduce((n, m) => n + m.metrics().stateLoads, 0),
    ids.length,
    "each actor read its state once",
  );
});

test.serial("a crashing turn stores nothing: the next activation sees the last committed state", async (t) => {
  const a = await durableNode(t, "crash");
  t.is((await counter(a, "crash-1")).count, 1);
  t.is((await counter(a, "crash-1")).count, 2);
  const err = await t.throwsAsync(counter(a, "crash-1", { crash: true }), { instanceOf: MeshError });
  t.is(err?.code, "ACTOR_CRASHED");
  t.deepEqual(await stored(t.context.server.url, "crash-1", "crash"), { count: 2 });
  t.is((await counter(a, "crash-1")).count, 3);
});

test.serial("initArg shapes only the first life: once a state is stored it is ignored, also after a restart", async (t) => {
  const a = await durableNode(t, "init");
  t.is((await counter(a, "init-1", {}, { initArg: { start: 100 } })).count, 101);
  t.is((await counter(a, "init-1", {}, { initArg: { start: 500 } })).count, 102);
  await a.stop();
  const b = await durableNode(t, "init");
  t.is((await counter(b, "init-1", {}, { initArg: { start: 900 } })).count, 103);
});

test.serial("a read-only turn writes nothing; turns queued behind a commit share the next one (group commit)", async (t) => {
  const a = await durableNode(t, "hot");
  await counter(a, "hot-1");
  const before = a.metrics().stateCommits;
  await counter(a, "hot-1", { get: true });
  t.is(a.metrics().stateCommits, before, "a get does not commit");
  const replies = await Promise.all(Array.from({ length: 500 }, () => counter(a, "hot-1")));
  const counts = replies.map((r) => r.count).sort((x, y) => x - y);
  t.deepEqual(
    counts,
    Array.from({ length: 500 }, (_, i) => i + 2),
    "every turn counted once, replies in order of the turns",
  );
  t.deepEqual(await stored(t.context.server.url, "hot-1", "hot"), { count: 501 });
  const commits = a.metrics().stateCommits - before;
  t.log(`500 concurrent calls to one durable actor: ${commits} commits`);
  t.true(commits < 500, `${commits} commits for 500 turns`);
});

test.serial("clearState() deletes the stored state when the turn commits; the next call starts from the initial state", async (t) => {
  const a = await durableNode(t, "clear");
  await counter(a, "clear-1");
  await counter(a, "clear-1");
  const cleared = await counter(a, "clear-1", { clear: true });
  t.is(cleared.count, 3, "the clearing turn replies as usual");
  t.is(await stored(t.context.server.url, "clear-1", "clear"), undefined);
  t.true(DurableCounter.deactivations.some((d) => d.startsWith("clear-1:cleared")));
  t.is((await counter(a, "clear-1")).count, 1, "a fresh state");
  t.deepEqual(await stored(t.context.server.url, "clear-1", "clear"), { count: 1 });
});

test.serial(
  "states that cannot be stored fail the turn with BAD_STATE or PAYLOAD_TOO_LARGE and keep the last committed state",
  async (t) => {
    const a = await durableNode(t, "poison");
    t.is((await counter(a, "poison-1")).count, 1);
    for (const [poison, code] of [
      ["function", "BAD_STATE"],
      ["cycle", "BAD_STATE"],
      ["map", "BAD_STATE"],
      ["big", "PAYLOAD_TOO_LARGE"],
    ] as const) {
      const err = await t.throwsAsync(counter(a, "poison-1", { poison }), { instanceOf: MeshError }, poison);
      t.is(err?.code, code, poison);
      t.deepEqual(await stored(t.context.server.url, "poison-1", "poison"), { count: 1 }, `${poison}: nothing stored`);
    }
    t.is((await counter(a, "poison-1")).count, 2, "the next activation starts from the last committed state");
  },
);

test.serial("ids of every shape we accept are stored under their documented keys", async (t) => {
  const a = await durableNode(t, "keys");
  const ids = ["", "plain_id-1", "with.dots", "with spaces", "ünïcødé 🎲", "x".repeat(1024), "é".repeat(1024), "=looks-encoded"];
  for (const id of ids) t.is((await counter(a, id)).count, 1, JSON.stringify(id).slice(0, 40));
  for (const id of ids) t.deepEqual(await stored(t.context.server.url, id, "keys"), { count: 1 }, JSON.stringify(id).slice(0, 40));
  t.is(stateKey(CAP, "DurableCounter", "plain_id-1"), "durable.DurableCounter.plain_id-1");
  t.is(stateKey(CAP, "DurableCounter", ""), "durable.DurableCounter.=");
  t.is(stateKey(CAP, "DurableCounter", "with.dots"), "durable.DurableCounter.=d2l0aC5kb3Rz");
});

test.serial(
  "two activations of one id at once (two clusters sharing one state bucket): every acknowledged increment survives and the loser sees STATE_CONFLICT",
  async (t) => {
    // Within one cluster, the handover keeps one activation per actor (docs/faults.md); two clusters (two prefixes) that
    // share one state bucket each host an activation of the same id, and only the fencing keeps their writes apart.
    const [idA, idB] = [nodeId("split-a"), nodeId("split-b")];
    const storage = { bucket: "split_state" };
    const a = await durableNode(t, "split-a", { nodeId: idA, storage });
    const b = await durableNode(t, "split-b", { nodeId: idB, storage });
    await eventually(() => a.nodesFor(CAP).length === 1 && b.nodesFor(CAP).length === 1, "each cluster to see its node");
    let acknowledged = 0;
    const failures = new Map<string, number>();
    const pids = new Set<string>();
    const worker = async (mesh: Mesh) => {
      for (let i = 0; i < 150; i++) {
        try {
          const { pid } = await mesh.call({ actor: DurableCounter, id: "split-1", payload: {}, capability: CAP });
          pids.add(pid.split("/")[0]!);
          acknowledged++;
        } catch (err) {
          const code = (err as MeshError).code;
          failures.set(code, (failures.get(code) ?? 0) + 1);
        }
      }
    };
    await Promise.all([worker(a), worker(a), worker(b), worker(b)]);
    const final = ((await stored(t.context.server.url, "split-1", "split")) as State).count; // the split_state bucket
    t.log(`acknowledged ${acknowledged}, final ${final}, failures ${JSON.stringify([...failures])}`);
    t.deepEqual([...pids].sort(), [idA, idB].sort(), "both nodes hosted an activation");
    t.true((failures.get("STATE_CONFLICT") ?? 0) > 0, "the losers saw STATE_CONFLICT");
    t.deepEqual([...failures.keys()], ["STATE_CONFLICT"]);
    t.is(final, acknowledged, "every acknowledged increment is in the final count, and nothing else");
    t.true(a.metrics().stateConflicts + b.metrics().stateConflicts > 0);
  },
);

test.serial(
  "a store that does not answer fails the turn with STORAGE_UNAVAILABLE; after a nats-server SIGKILL and restart, every acknowledged state is intact",
  async (t) => {
    const server = await startNatsServer({ config: NATS_CONF });
    t.teardown(() => server.stop());
    const a = await durableNode(t, "down", { servers: server.url, storage: { timeoutMs: 500 } });
    const ids = Array.from({ length: 50 }, (_, i) => `down-${i}`);
    await Promise.all(ids.map((id) => counter(a, id)));
    t.is((await counter(a, "down-1")).count, 2);
    // The turn starts while the node is connected (a node cut off runs no turn: leases, docs/faults.md)
    // and its commit meets a store that is gone.
    const turn = counter(a, "down-1", { delayMs: 300 }, { timeoutMs: 3000 });
    await server.kill();
    const err = await t.throwsAsync(turn, { instanceOf: MeshError });
    t.is(err?.code, "STORAGE_UNAVAILABLE");
    await server.restart();
    // The failed turn's write may still land once the connection is back (nats.js sends what it buffered):
    // STORAGE_UNAVAILABLE on a write is as ambiguous as TIMEOUT. What was acknowledged is never lost.
    let after = 0;
    await eventually(async () => {
      after = (await counter(a, "down-1", { get: true }).catch(() => undefined))?.count ?? 0;
      return after >= 2;
    }, "the store to answer again");
    t.true(after === 2 || after === 3, `down-1 is at ${after}`);
    t.is((await counter(a, "down-1")).count, after + 1);
    const others = ids.filter((id) => id !== "down-1");
    t.deepEqual(
      await Promise.all(others.map((id) => counter(a, id, { get: true }).then((s) => s.count))),
      others.map(() => 1),
    );
  },
);

test.serial("a foreign NATS client calls a durable actor through the ingress; its increments are stored like any other", async (t) => {
  await durableNode(t, "ingress");
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  for (let i = 1; i <= 3; i++) {
    const reply = await jsonRequest(nc, `ingress.call.${CAP}`, { actor: "DurableCounter", id: "foreign-1", payload: {} });
    t.like(reply, { ok: true, result: { count: i } });
  }
  t.deepEqual(await stored(t.context.server.url, "foreign-1", "ingress"), { count: 3 });
});

test.serial(
  "a state bucket deleted under a running node: a new activation fails with STORAGE_UNAVAILABLE, never starts afresh",
  async (t) => {
    const a = await durableNode(t, "gone");
    t.is((await counter(a, "gone-1")).count, 1);
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    await (await nc.jetstreamManager()).streams.delete("KV_gone_state");
    // A read-only call writes nothing: only its load can tell that the store is gone.
    const err = await t.throwsAsync(counter(a, "gone-2", { get: true }), { instanceOf: MeshError });
    t.is(err?.rootCode, "STORAGE_UNAVAILABLE", err?.message);
  },
);

test.serial("a node with a durable class refuses to start on a server without JetStream, with a one-line reason", async (t) => {
  const plain = await startNatsServer({ jetstream: false });
  t.teardown(() => plain.stop());
  const err = await t.throwsAsync(durableNode(t, "nojs", { servers: plain.url }), { instanceOf: MeshError });
  t.is(err?.code, "STORAGE_UNAVAILABLE");
  t.regex(err!.message, /JetStream is not enabled/);
  t.false(err!.message.includes("\n"));
  // A node without durable classes does not need JetStream.
  const fine = await startNode(t, { servers: plain.url, actors: [Counter], capabilities: ["plain"] });
  t.is((await fine.call({ actor: Counter, id: "c", capability: "plain" })).pid.split("#")[1], "1");
});

test.serial("durable metrics: loads, commits and their latency, in metrics() and in Prometheus", async (t) => {
  const a = await durableNode(t, "metrics", { metricsPort: 0 });
  for (let i = 0; i < 3; i++) await counter(a, "m-1");
  const m = a.metrics();
  t.is(m.stateLoads, 1);
  t.is(m.stateCommits, 3);
  t.is(m.commitLatency.count, 3);
  const text = await (await fetch(a.metricsUrl!)).text();
  t.regex(text, /^mesh_state_loads_total\{node="[^"]+"\} 1$/m);
  t.regex(text, /^mesh_state_commits_total\{node="[^"]+"\} 3$/m);
  t.regex(text, /^mesh_state_commit_duration_seconds_count\{node="[^"]+"\} 3$/m);
  for (const name of ["mesh_state_conflicts_total", "mesh_passivations_total", "mesh_evictions_total"])
    t.regex(text, new RegExp(`^${name}\\{node="[^"]+"\\} 0$`, "m"));
});
