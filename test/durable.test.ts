// Durable actors: state in JetStream KV, stored before the reply, fenced by revision.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";
import { MeshError, stateKey } from "@mesh/core";
import type { Mesh } from "@mesh/runtime";
import type { PlacementFn } from "@mesh/core";
import { startNatsServer } from "@mesh/runtime/testing";
import { NATS_CONF, eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Counter, DurableCounter } from "./helpers/actors.js";
import type { DurableCounterCall } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const CAP = "durable";
type State = { count: number; extra?: unknown };

function counter(mesh: Mesh, id: string, payload: DurableCounterCall = {}, extra: { initArg?: unknown; timeoutMs?: number } = {}): Promise<State> {
  return mesh.call<State>({ actor: DurableCounter, id, payload, capability: CAP, ...extra }).then((r) => r.result);
}

/** Reads a stored state straight from the bucket, as any NATS client could. */
async function stored(url: string, id: string, prefix: string): Promise<unknown> {
  const bucket = `${prefix}_state`;
  const nc = await connect({ servers: url });
  try {
    const kv = await nc.jetstream().views.kv(bucket, { bindOnly: true });
    const entry = await kv.get(stateKey("DurableCounter", id));
    return entry?.operation === "PUT" ? decode(entry.value) : undefined;
  } finally {
    await nc.close();
  }
}

/** A durable node; each test passes its own prefix, so its nodes and bucket (`<prefix>_state`) are its own. */
async function durableNode(t: { context: ClusterContext }, prefix: string, options: Parameters<typeof startNode>[1] = {}): Promise<Mesh> {
  return startNode(t as never, { nodeId: nodeId("d"), prefix, actors: [DurableCounter, Counter], capabilities: [CAP], ...options });
}

test.serial("a durable counter's state is stored before the reply and read back by a fresh node after every node stopped", async (t) => {
  const a = await durableNode(t, "restart");
  for (let i = 1; i <= 5; i++) t.is((await counter(a, "restart-1")).count, i);
  t.deepEqual(await stored(t.context.server.url, "restart-1", "restart"), { count: 5 });
  await a.stop();
  const b = await durableNode(t, "restart");
  t.is((await counter(b, "restart-1")).count, 6);
  t.is(b.metrics().stateLoads, 1);
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
  t.deepEqual(counts, Array.from({ length: 500 }, (_, i) => i + 2), "every turn counted once, replies in order of the turns");
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

test.serial("states that cannot be stored fail the turn with BAD_STATE or PAYLOAD_TOO_LARGE and keep the last committed state", async (t) => {
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
});

test.serial("ids of every shape we accept are stored under their documented keys", async (t) => {
  const a = await durableNode(t, "keys");
  const ids = ["", "plain_id-1", "with.dots", "with spaces", "ünïcødé 🎲", "x".repeat(1024), "é".repeat(1024), "=looks-encoded"];
  for (const id of ids) t.is((await counter(a, id)).count, 1, JSON.stringify(id).slice(0, 40));
  for (const id of ids) t.deepEqual(await stored(t.context.server.url, id, "keys"), { count: 1 }, JSON.stringify(id).slice(0, 40));
  t.is(stateKey("DurableCounter", "plain_id-1"), "DurableCounter.plain_id-1");
  t.is(stateKey("DurableCounter", ""), "DurableCounter.=");
  t.is(stateKey("DurableCounter", "with.dots"), "DurableCounter.=d2l0aC5kb3Rz");
});

test.serial("two activations of one id at once (views that disagree): every acknowledged increment survives and the loser sees STATE_CONFLICT", async (t) => {
  // Each node places every shard on itself: both host an activation of the same id.
  const selfFirst = (self: string): PlacementFn =>
    function selfFirst(_shard, _capability, nodes) {
      return nodes.includes(self) ? self : nodes[0]!;
    };
  const [idA, idB] = [nodeId("split-a"), nodeId("split-b")];
  const a = await durableNode(t, "split", { nodeId: idA, strategy: selfFirst(idA) });
  const b = await durableNode(t, "split", { nodeId: idB, strategy: selfFirst(idB) });
  await eventually(() => a.nodesFor(CAP).length === 2 && b.nodesFor(CAP).length === 2, "both nodes to see each other");
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
  const final = ((await stored(t.context.server.url, "split-1", "split")) as State).count;
  t.log(`acknowledged ${acknowledged}, final ${final}, failures ${JSON.stringify([...failures])}`);
  t.deepEqual([...pids].sort(), [idA, idB].sort(), "both nodes hosted an activation");
  t.true((failures.get("STATE_CONFLICT") ?? 0) > 0, "the losers saw STATE_CONFLICT");
  t.deepEqual([...failures.keys()], ["STATE_CONFLICT"]);
  t.is(final, acknowledged, "every acknowledged increment is in the final count, and nothing else");
  t.true(a.metrics().stateConflicts + b.metrics().stateConflicts > 0);
});

test.serial("a store that does not answer fails the turn with STORAGE_UNAVAILABLE; after it is back, the state is intact", async (t) => {
  const server = await startNatsServer({ config: NATS_CONF });
  t.teardown(() => server.stop());
  const a = await durableNode(t, "down", { servers: server.url, storage: { timeoutMs: 500 } });
  t.is((await counter(a, "down-1")).count, 1);
  await server.kill();
  const err = await t.throwsAsync(counter(a, "down-1", {}, { timeoutMs: 3000 }), { instanceOf: MeshError });
  t.is(err?.code, "STORAGE_UNAVAILABLE");
  await server.restart();
  await eventually(async () => (await counter(a, "down-1", { get: true }).catch(() => undefined))?.count === 1, "the store to answer again with the last committed state");
  t.is((await counter(a, "down-1")).count, 2);
});

test.serial("a node with a durable class refuses to start on a server without JetStream, with a one-line reason", async (t) => {
  const plain = await startNatsServer();
  t.teardown(() => plain.stop());
  const err = await t.throwsAsync(durableNode(t, "nojs", { servers: plain.url }), { instanceOf: MeshError });
  t.is(err?.code, "STORAGE_UNAVAILABLE");
  t.regex(err!.message, /JetStream is not enabled/);
  t.false(err!.message.includes("\n"));
  // A node without durable classes does not need JetStream.
  const fine = await startNode(t, { servers: plain.url, actors: [Counter], capabilities: ["plain"] });
  t.is((await fine.call({ actor: Counter, id: "c", capability: "plain" })).pid.split("#")[1], "1");
});
