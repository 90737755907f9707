// Standard NATS tooling sees every node: $SRV.PING, $SRV.INFO and $SRV.STATS of the service "mesh".
import anyTest from "ava";
import type { TestFn } from "ava";
import { RequestStrategy, connect } from "nats";
import type { NatsConnection, ServiceInfo, ServiceStats } from "nats";
import type { Mesh, MetricsSnapshot } from "@mesh/runtime";
import { Counter, Crasher } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { jsonRequest } from "./helpers/foreign.js";

const test = anyTest as TestFn<ClusterContext & { a: Mesh; b: Mesh; c: Mesh; nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.a = await startNode(t, { nodeId: nodeId("sa"), actors: [Counter, Crasher], capabilities: ["counter"] });
  t.context.b = await startNode(t, { nodeId: nodeId("sb"), actors: [Counter, Crasher], capabilities: ["counter"] });
  t.context.c = await startNode(t, { nodeId: nodeId("sc") });
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always((t) => t.context.nc?.close());

async function collect<T>(it: Promise<AsyncIterable<T>>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of await it) out.push(x);
  return out;
}

test.serial("$SRV.PING and $SRV.INFO list every node with its id, version, capabilities and endpoints", async (t) => {
  const { nc, a, b, c } = t.context;
  const client = nc.services.client({ strategy: RequestStrategy.Timer, maxWait: 2000 });
  const pings = await collect(client.ping("mesh"));
  t.is(pings.length, 3);
  const infos = (await collect(client.info("mesh"))) as ServiceInfo[];
  const byNode = new Map(infos.map((i) => [i.metadata?.node, i]));
  t.deepEqual([...byNode.keys()].sort(), [a.nodeId, b.nodeId, c.nodeId].sort());
  for (const node of [a, b]) {
    const info = byNode.get(node.nodeId)!;
    t.is(info.version, "0.1.0");
    t.is(info.metadata?.capabilities, "counter");
    t.is(info.metadata?.actor_types, "Counter,Crasher");
    t.deepEqual(info.endpoints.map((e) => e.name).sort(), ["call", "cast", "status"]);
    t.is(info.endpoints.find((e) => e.name === "call")?.queue_group, "mesh-ingress");
  }
  // A node without capabilities does not take ingress requests.
  t.deepEqual(
    byNode.get(c.nodeId)!.endpoints.map((e) => e.name),
    ["status"],
  );
  // Capabilities registered later show up, also when changes overlap: the last one wins, and the node is listed once.
  await Promise.all([c.registerCapabilities(["other"]), c.registerCapabilities(["counter"])]);
  const after = (await collect(client.info("mesh"))) as ServiceInfo[];
  t.deepEqual(
    after.filter((i) => i.metadata?.node === c.nodeId).map((i) => i.metadata?.capabilities),
    ["counter"],
  );
  t.deepEqual(a.nodesFor("counter"), [a.nodeId, b.nodeId, c.nodeId].sort());
  t.deepEqual(a.nodesFor("other"), []);
  await c.registerCapabilities([]);
});

test.serial("$SRV.STATS carries each node's counters, and they move when calls are made", async (t) => {
  const { nc, a, b } = t.context;
  const client = nc.services.client({ strategy: RequestStrategy.Timer, maxWait: 2000 });
  // Under load a node may answer after the collection window: ask again until it has answered.
  const statsOf = async () => {
    let mine: ServiceStats | undefined;
    await eventually(async () => {
      mine = ((await collect(client.stats("mesh"))) as ServiceStats[]).find((s) => s.metadata?.node === a.nodeId);
      return mine !== undefined;
    }, "node a to answer $SRV.STATS");
    return { data: mine!.endpoints![0]!.data as MetricsSnapshot };
  };
  const before = await statsOf();
  const ids = Array.from({ length: 40 }, (_, i) => `stat_${i}`).filter((id) => a.ownerNode(a.shardFor(id), "counter") === a.nodeId);
  for (const id of ids) await a.call({ actor: Counter, id, capability: "counter" });
  // Calls in-process to synchronous handlers are counted but not timed: time some on a by calling them from b.
  for (const id of ids) await b.call({ actor: Counter, id, capability: "counter" });
  await a.call({ actor: Crasher, id: "stat_crash", payload: { action: "crash" }, capability: "counter" }).catch(() => {});
  for (let i = 0; i < 10; i++) await jsonRequest(nc, "mesh.call.counter", { actor: "Counter", id: `ingress_${i}` });
  await eventually(async () => (await statsOf()).data.callsServed >= before.data.callsServed + ids.length, "the stats to count the calls");
  const after = await statsOf();
  t.true(after.data.activations >= before.data.activations + ids.length);
  t.is(after.data.crashes, before.data.crashes + (a.ownerNode(a.shardFor("stat_crash"), "counter") === a.nodeId ? 1 : 0));
  t.true(after.data.handlerLatency.count > before.data.handlerLatency.count);
  // The ingress requests are counted by NATS's own stats too, across the two nodes of the queue group.
  const total = ((await collect(client.stats("mesh"))) as ServiceStats[]).reduce(
    (n, s) => n + (s.endpoints?.find((e) => e.name === "call")?.num_requests ?? 0),
    0,
  );
  t.true(total >= 10);
});

test.serial("a node answers its metrics as JSON on <prefix>.status.<nodeId>", async (t) => {
  const { nc, b } = t.context;
  const reply = JSON.parse(
    new TextDecoder().decode((await nc.request(`mesh.status.${b.nodeId}`, "", { timeout: 2000 })).data),
  ) as MetricsSnapshot;
  t.is(reply.node, b.nodeId);
  t.deepEqual(reply.capabilities, ["counter"]);
  t.is(reply.actors, b.actorCount);
});
