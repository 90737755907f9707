// Durable actors on the move (docs/deploying.md): a stopping node hands each
// durable activation's stored record and revision to its new owner once its
// commits have landed, so the new owner does not read the store; its commits
// stay fenced by that revision.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { encode } from "@msgpack/msgpack";
import { MeshError, stateKey } from "@mesh/core";
import type { CallContext, Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { DurableCounter } from "./helpers/actors.js";
import { meshCli } from "./helpers/cli.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const SHARDS = 256;
const options = (prefix: string) => ({ prefix, shards: SHARDS, actors: [DurableCounter], capabilities: ["dm"] });
const count = (mesh: Mesh, id: string, payload: object = {}) =>
  mesh.call<{ count: number }>({ actor: DurableCounter, id, payload, capability: "dm" }).then((r) => r.result.count);

test.serial(
  "a stopping node hands its durable actors' records over: the new owner activates none early, reads none from the store, and loses no count",
  async (t) => {
    const a = await startNode(t, { nodeId: nodeId("dma"), ...options("dm1") });
    const b = await startNode(t, { nodeId: nodeId("dmb"), ...options("dm1") });
    await eventually(() => a.nodesFor("dm").length === 2 && b.nodesFor("dm").length === 2, "the nodes to meet");
    const ids: string[] = [];
    for (let i = 0; ids.length < 300; i++) if (a.ownerNode(a.shardFor(`d${i}`), "dm") === a.nodeId) ids.push(`d${i}`);
    for (const id of ids) for (let k = 0; k < 3; k++) await count(a, id);
    // One actor's last turn only read its state: it moves too. One cleared its state: its activation ended then, and
    // nothing of it is live to move; its next activation reads the store (which holds a delete).
    await count(a, ids[1]!, { get: true });
    await count(a, ids[0]!, { clear: true });
    const loadsBefore = b.metrics().stateLoads;
    await a.stop();
    // Each record waits on the new owner for the actor's next message, which activates it (with its initArg) from it.
    t.is(b.actorCount, 0, "nothing is activated before its next message");
    const counts = await Promise.all(ids.map((id) => count(b, id)));
    t.is(b.metrics().migrationsIn, ids.length - 1, "every live durable activation's record was used");
    t.is(counts[0], 1, "the cleared one starts from its initial state");
    t.deepEqual(
      counts.slice(1),
      ids.slice(1).map(() => 4),
      "each counts on from its stored 3",
    );
    t.is(b.metrics().stateLoads - loadsBefore, 1, "only the cleared one's record was read from the store");
    t.is(a.metrics().migrationsOut, ids.length - 1);
  },
);

test.serial(
  "a handed-over durable actor stays fenced: a write to the store it did not see makes its next commit a STATE_CONFLICT",
  async (t) => {
    const a = await startNode(t, { nodeId: nodeId("dfa"), ...options("dm2") });
    const b = await startNode(t, { nodeId: nodeId("dfb"), ...options("dm2") });
    await eventually(() => a.nodesFor("dm").length === 2, "the nodes to meet");
    let id = "f0";
    for (let i = 0; a.ownerNode(a.shardFor(id), "dm") !== a.nodeId; i++) id = `f${i}`;
    await count(a, id);
    await a.stop();
    // Another writer (a foreign client) stores 100 behind the new owner's back.
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    const kv = await nc.jetstream().views.kv("dm2_state", { bindOnly: true });
    await kv.put(stateKey("dm", "DurableCounter", id), encode({ count: 100 }));
    const err = await t.throwsAsync(count(b, id), { instanceOf: MeshError });
    t.is(err?.code, "STATE_CONFLICT");
    t.is(await count(b, id), 101, "the next activation reads the store again");
  },
);

test.serial(
  "a record handed over and parked is dropped when an operator deletes the actor's state: the next activation starts afresh",
  async (t) => {
    const a = await startNode(t, { nodeId: nodeId("dda"), ...options("dm3") });
    const b = await startNode(t, { nodeId: nodeId("ddb"), ...options("dm3") });
    await eventually(() => a.nodesFor("dm").length === 2, "the nodes to meet");
    const ids: string[] = [];
    for (let i = 0; ids.length < 10; i++) if (a.ownerNode(a.shardFor(`g${i}`), "dm") === a.nodeId) ids.push(`g${i}`);
    for (const id of ids) for (let k = 0; k < 3; k++) await count(a, id);
    await a.stop(); // each record waits on b for its actor's next message
    const url = t.context.server.url;
    for (const id of ids.slice(0, 5)) {
      const deleted = await meshCli("state", "delete", "dm", "DurableCounter", id, "-p", "dm3", "-s", url);
      t.is(deleted.code, 0, deleted.stderr);
    }
    const counts = await Promise.all(ids.map((id) => count(b, id)));
    t.deepEqual(counts, [1, 1, 1, 1, 1, 4, 4, 4, 4, 4], "the deleted ones start from their initial state, the others count on");
    t.is(b.metrics().migrationsIn, 5);
  },
);

/** A durable actor whose timer's firings are stored with its state. */
class DurableTicker {
  static actorType = "DurableTicker";
  static durable = true;
  state = { fired: [] as string[] };
  handleCall(p: { ringIn?: number } | undefined, ctx: CallContext): { fired: string[] } {
    if (p?.ringIn !== undefined) ctx.setTimer("ring", p.ringIn);
    return this.state;
  }
  handleTimer(name: string, ctx: CallContext): void {
    this.state.fired.push(`${name}@${ctx.nodeId}`);
  }
}

test.serial("a durable actor's timers move with its record: each fires on the new owner once its node stopped", async (t) => {
  const o = { prefix: "dm4", shards: SHARDS, actors: [DurableTicker], capabilities: ["dm"] };
  const a = await startNode(t, { nodeId: nodeId("dta"), ...o });
  const b = await startNode(t, { nodeId: nodeId("dtb"), ...o });
  await eventually(() => a.nodesFor("dm").length === 2 && b.nodesFor("dm").length === 2, "the nodes to meet");
  const ids: string[] = [];
  for (let i = 0; ids.length < 20; i++) if (a.ownerNode(a.shardFor(`t${i}`), "dm") === a.nodeId) ids.push(`t${i}`);
  const ticker = (mesh: Mesh, id: string, payload?: object) =>
    mesh.call<{ fired: string[] }>({ actor: DurableTicker, id, payload, capability: "dm" }).then((r) => r.result.fired);
  for (const id of ids) await ticker(a, id, { ringIn: 2000 });
  await a.stop();
  // The records came with their timers: the new owner activates each to run them, without a message.
  await eventually(() => b.actorCount === ids.length, "the new owner to activate the actors with timers", 10_000);
  for (const id of ids) await eventually(async () => (await ticker(b, id)).length > 0, `${id}'s timer to fire on ${b.nodeId}`, 15_000);
  for (const id of ids) t.deepEqual(await ticker(b, id), [`ring@${b.nodeId}`], `${id}: fired once, on the new owner`);
});
