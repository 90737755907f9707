// Stale routes: a node that receives a call for a shard it does not own forwards it.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { decode, encode } from "@msgpack/msgpack";
import type { Mesh } from "@mesh/runtime";
import { Counter } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext & { a: Mesh; b: Mesh; nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.a = await startNode(t, { nodeId: nodeId("a"), actors: [Counter], capabilities: ["route"] });
  t.context.b = await startNode(t, { nodeId: nodeId("b"), actors: [Counter], capabilities: ["route"] });
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always((t) => t.context.nc?.close());

/** An id whose shard `owner` owns. */
function idOwnedBy(mesh: Mesh, owner: string, prefix: string): string {
  for (let i = 0; ; i++) if (mesh.ownerNode(mesh.shardFor(`${prefix}${i}`), "route") === owner) return `${prefix}${i}`;
}

const call = async (nc: NatsConnection, node: string, id: string, hops = 0) =>
  decode(
    (await nc.request(`mesh.node.${node}`, encode([1, 0, "route", "Counter", id, 2000, hops, null, {}]), { timeout: 3000 })).data,
  ) as unknown[];

test.serial("a call sent to a node that does not own the shard is forwarded; the owner's reply reaches the caller", async (t) => {
  const { a, b, nc } = t.context;
  const id = idOwnedBy(a, b.nodeId, "fwd-");
  const reply = await call(nc, a.nodeId, id);
  t.deepEqual(reply.slice(0, 2), [1, 0]);
  t.true(String(reply[2]).startsWith(`${b.nodeId}/Counter/${id}#`), String(reply[2]));
  // The same activation as a direct call: forwarding does not create a second one.
  const direct = await a.call({ actor: Counter, id, capability: "route" });
  t.is(direct.pid, String(reply[2]));
  t.deepEqual(direct.result, { ok: 2 });
  t.is(a.actorCount, 0);
});

test.serial("a cast sent to the wrong node is forwarded too", async (t) => {
  const { a, b, nc } = t.context;
  const id = idOwnedBy(a, b.nodeId, "fwdcast-");
  await a.call({ actor: Counter, id, capability: "route" });
  await a.call({ actor: Counter, id, capability: "route" });
  nc.publish(`mesh.node.${a.nodeId}`, encode([1, 1, "route", "Counter", id, 0, 0, null, { action: "reset" }]));
  await eventually(
    async () => (await b.call<{ ok: number }>({ actor: Counter, id, capability: "route" })).result.ok === 1,
    "the forwarded reset to be applied",
  );
  t.is(a.actorCount, 0);
});

test.serial("a call that has used up its hops is served where it is, so disagreeing views cannot loop", async (t) => {
  const { a, b, nc } = t.context;
  const id = idOwnedBy(a, b.nodeId, "hops-");
  const reply = await call(nc, a.nodeId, id, 3);
  t.true(String(reply[2]).startsWith(`${a.nodeId}/Counter/${id}#`), String(reply[2]));
  // That activation does not outlive the message: a does not own the shard, so it lets go, and b serves the id.
  await eventually(() => a.actorCount === 0, "the stray activation on a to end");
  t.true((await a.call({ actor: Counter, id, capability: "route" })).pid.startsWith(`${b.nodeId}/`));
});
