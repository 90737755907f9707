// Three nodes, each with its own NATS connection, on one real nats-server.
import anyTest from "ava";
import type { TestFn } from "ava";
import { Mesh, MeshError } from "@mesh/runtime";
import type { CallResult } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import { Counter, GameActor } from "./helpers/actors.js";
import { NATS_CONF, eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

/** Chat rooms, for the clustering guide's split of capabilities. */
class ChatRoom {
  messages: string[] = [];
  handleCall(payload: { say?: string }) {
    if (payload?.say) this.messages.push(payload.say);
    return { messages: this.messages };
  }
}
class Payment {
  handleCall() {
    return "paid";
  }
}

const test = anyTest as TestFn<ClusterContext & { a: Mesh; b: Mesh; c: Mesh; split: Mesh[]; caller: Mesh }>;
useNatsServer(test, async (t) => {
  const actors = [Counter, GameActor, ChatRoom, Payment];
  t.context.a = await startNode(t, { nodeId: nodeId("a"), actors, capabilities: ["counter"] });
  t.context.b = await startNode(t, { nodeId: nodeId("b"), actors, capabilities: ["counter"] });
  t.context.c = await startNode(t, { nodeId: nodeId("c"), actors, capabilities: ["counter"] });
});

const views = (nodes: Mesh[], capability: string) => nodes.map((n) => n.nodesFor(capability).join(","));

test.serial("3,000 ids spread over three nodes, each owning 25-42 %", async (t) => {
  const { a, b, c } = t.context;
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const { pid } = await a.call({ actor: Counter, id: `spread_${i}`, capability: "counter" });
    const owner = pid.split("/")[0]!;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  t.deepEqual([...counts.keys()].sort(), [a.nodeId, b.nodeId, c.nodeId].sort());
  for (const [node, n] of counts) t.true(n >= 750 && n <= 1260, `${node} owns ${n} of 3000`);
  t.is(a.actorCount + b.actorCount + c.actorCount, 3000);
});

test.serial("a call from any node reaches the same activation for the same id", async (t) => {
  const { a, b, c } = t.context;
  for (let i = 0; i < 50; i++) {
    const id = `same_${i}`;
    const results = [];
    for (const node of [a, b, c, b, a]) results.push(await node.call<{ ok: number }>({ actor: Counter, id, capability: "counter" }));
    t.is(new Set(results.map((r) => r.pid)).size, 1, `one pid for ${id}`);
    t.deepEqual(
      results.map((r) => r.result.ok),
      [1, 2, 3, 4, 5],
    );
    const owner = a.ownerNode(a.shardFor(id), "counter");
    t.true(results[0]!.pid.startsWith(`${owner}/Counter/${id}#`));
  }
});

test.serial("nodesFor, allCapabilities and ownerNode agree on every node", async (t) => {
  const nodes = [t.context.a, t.context.b, t.context.c];
  for (const n of nodes) {
    t.deepEqual(n.nodesFor("counter"), nodes.map((x) => x.nodeId).sort());
    t.deepEqual(n.allCapabilities(), ["counter"]);
  }
  for (let shard = 0; shard < 4096; shard++) {
    const owners = new Set(nodes.map((n) => n.ownerNode(shard, "counter")));
    t.is(owners.size, 1, `shard ${shard}`);
  }
});

test.serial("capabilities split as in the clustering guide route only to nodes that have them", async (t) => {
  const actors = [GameActor, ChatRoom, Payment];
  // game on A, chat on B, game + chat + payment on C, and a caller with nothing.
  const ga = await startNode(t, { nodeId: nodeId("game"), actors, capabilities: ["game"] });
  const gb = await startNode(t, { nodeId: nodeId("chat"), actors, capabilities: ["chat"] });
  const gc = await startNode(t, { nodeId: nodeId("all"), actors });
  await gc.registerCapabilities(["game", "chat", "payment"]);
  const caller = await startNode(t, { nodeId: nodeId("caller") });
  const everyone = [t.context.a, t.context.b, t.context.c, ga, gb, gc, caller];

  for (const n of everyone) {
    t.deepEqual(n.nodesFor("game"), [ga.nodeId, gc.nodeId].sort());
    t.deepEqual(n.nodesFor("chat"), [gb.nodeId, gc.nodeId].sort());
    t.deepEqual(n.nodesFor("payment"), [gc.nodeId]);
    t.deepEqual(n.allCapabilities(), ["chat", "counter", "game", "payment"]);
  }
  const owners = (capability: string, actor: typeof GameActor | typeof ChatRoom | typeof Payment) =>
    Promise.all(Array.from({ length: 200 }, (_, i) => caller.call({ actor, id: `${capability}_${i}`, capability, payload: {} })));
  const at = (results: { pid: string }[]) => new Set(results.map((r) => r.pid.split("/")[0]));
  t.deepEqual([...at(await owners("game", GameActor))].sort(), [ga.nodeId, gc.nodeId].sort());
  t.deepEqual([...at(await owners("chat", ChatRoom))].sort(), [gb.nodeId, gc.nodeId].sort());
  t.deepEqual([...at(await owners("payment", Payment))], [gc.nodeId]);
  t.is(caller.actorCount, 0);

  for (const n of everyone) {
    for (let shard = 0; shard < 4096; shard += 17) {
      t.is(n.ownerNode(shard, "game"), caller.ownerNode(shard, "game"));
      t.is(n.ownerNode(shard, "chat"), caller.ownerNode(shard, "chat"));
    }
  }
  await Promise.all([ga.stop(), gb.stop(), gc.stop(), caller.stop()]);
  await eventually(() => views([t.context.a], "game")[0] === "", "the split nodes to leave every view");
});

test.serial("registerCapabilities replaces the node's set, and every node sees it when it resolves", async (t) => {
  const { a, b, c } = t.context;
  await b.registerCapabilities(["counter", "extra"]);
  for (const n of [a, b, c]) {
    t.deepEqual(n.nodesFor("extra"), [b.nodeId]);
    t.true(n.allCapabilities().includes("extra"));
  }
  await b.registerCapabilities(["counter"]);
  for (const n of [a, b, c]) t.deepEqual(n.nodesFor("extra"), []);
  const error = await t.throwsAsync(a.call({ actor: Counter, id: "x", capability: "extra" }), { instanceOf: MeshError });
  t.is(error?.code, "NO_NODES");
});

test.serial("a node that dropped all capabilities owns nothing but can still call", async (t) => {
  const { a, b, c } = t.context;
  await c.registerCapabilities([]);
  t.deepEqual(a.nodesFor("counter"), [a.nodeId, b.nodeId].sort());
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => c.call({ actor: Counter, id: `from_c_${i}`, capability: "counter" })),
  );
  t.false(results.some((r) => r.pid.startsWith(`${c.nodeId}/`)));
  await c.registerCapabilities(["counter"]);
  t.deepEqual(views([a, b, c], "counter"), Array(3).fill([a.nodeId, b.nodeId, c.nodeId].sort().join(",")));
});

test.serial(
  "a node cut off from its only server runs no turn until it is back: a local call waits for the lease, and stop() still ends",
  async (t) => {
    const own = await startNatsServer({ config: NATS_CONF });
    t.teardown(() => own.stop());
    const node = await Mesh.start({ servers: own.url, nodeId: nodeId("island"), actors: [Counter], capabilities: ["island"] });
    t.teardown(() => node.stop());
    const before = await node.call<{ ok: number }>({ actor: Counter, id: "local_only", capability: "island" });
    await own.kill(); // the node's only server is gone: the node cannot know who else serves its actors now
    await eventually(() => node.metrics().leaseLapses >= 1, "the node to see its connection gone");
    const err = await t.throwsAsync(node.call({ actor: Counter, id: "local_only", capability: "island", timeoutMs: 300 }), {
      instanceOf: MeshError,
    });
    t.is(err?.code, "TIMEOUT");
    await own.restart();
    // Back, and nobody else removed it (it has no peers): the same activation answers, and the call that timed out never ran.
    let after: CallResult<{ ok: number }> | undefined;
    await eventually(async () => {
      after = await node
        .call<{ ok: number }>({ actor: Counter, id: "local_only", capability: "island", timeoutMs: 300 })
        .catch(() => undefined);
      return after !== undefined;
    }, "the node to serve again once its server is back");
    t.is(after!.pid, before.pid);
    t.is(after!.result.ok, before.result.ok + 1);
    // And stopping does not hang on a missing server.
    await own.kill();
    await node.stop();
    t.is(node.state, "STOPPED");
  },
);
