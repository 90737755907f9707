// A durable actor's reply leaves once its turn's state is stored, and a plain
// actor's once JetStream has the messages its turn published, while the next
// turns already run: the caller still gets the reply as its turn left it,
// locally and remotely, even when a later turn changes or breaks what it returned.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { MeshError } from "@mesh/core";
import type { CallContext, Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test, async (t) => {
  // The stream that takes what PublishingList publishes.
  const nc = await connect({ servers: t.context.server.url });
  try {
    await (await nc.jetstreamManager()).streams.add({ name: "REPLIES_OUT", subjects: ["repliesout.>"] });
  } finally {
    await nc.close();
  }
});

const CAP = "replies";

/** The docs' cart: its reply is its own state's array, which the next turn changes. */
class AliasCart {
  static actorType = "AliasCart";
  static durable = true;
  state: { items: string[] } = { items: [] };
  handleCall(p: { add?: string; boom?: boolean }): string[] {
    if (p.add !== undefined) this.state.items.push(p.add);
    if (p.boom) throw new Error("boom after adding");
    return this.state.items;
  }
}

/** A plain actor whose turns publish: its reply, its own array, waits for JetStream. */
class PublishingList {
  static actorType = "PublishingList";
  items: string[] = [];
  handleCall(p: { add?: string }, ctx: CallContext): string[] {
    if (p.add !== undefined) this.items.push(p.add);
    ctx.publish(`repliesout.${ctx.id}`, { items: this.items.length });
    return this.items;
  }
}

const add = (mesh: Mesh, id: string, item: string, boom = false) =>
  mesh.call<string[]>({ actor: "AliasCart", id, payload: { add: item, boom }, capability: CAP }).then((r) => r.result);

/** The owner hosts the cart; `caller` is the owner itself (local) or a node without actors (remote). */
let tests = 0;
async function nodes(t: { context: ClusterContext }, where: "local" | "remote"): Promise<{ owner: Mesh; caller: Mesh }> {
  const prefix = `replies${tests++}`; // each test its own nodes and bucket
  const owner = await startNode(t as never, { nodeId: nodeId("owner"), prefix, actors: [AliasCart, PublishingList], capabilities: [CAP] });
  if (where === "local") return { owner, caller: owner };
  const caller = await startNode(t as never, { nodeId: nodeId("caller"), prefix });
  await eventually(() => caller.nodesFor(CAP).length === 1, "the caller to see the owner");
  return { owner, caller };
}

for (const where of ["local", "remote"] as const) {
  test.serial(`${where}: a reply is what its turn returned, though the next turn changed it before the commit landed`, async (t) => {
    const { caller } = await nodes(t, where);
    // Sent together: the second turn runs while the first one's commit is on its way.
    const [first, second] = await Promise.all([add(caller, "cart-1", "a"), add(caller, "cart-1", "b")]);
    t.deepEqual(first, ["a"]);
    t.deepEqual(second, ["a", "b"]);
  });

  test.serial(`${where}: a reply never shows what a later turn that crashed did`, async (t) => {
    const { caller } = await nodes(t, where);
    const [first, second] = await Promise.allSettled([add(caller, "cart-2", "a"), add(caller, "cart-2", "b", true)]);
    t.deepEqual(first.status === "fulfilled" ? first.value : first.reason, ["a"]);
    t.is(second.status === "rejected" && second.reason instanceof MeshError ? second.reason.code : String(second), "ACTOR_CRASHED");
    // The crash stored nothing, and the next activation agrees with what the caller was told.
    t.deepEqual(await add(caller, "cart-2", "c"), ["a", "c"]);
  });

  test.serial(`${where}: a plain actor's reply, which waits for its messages, is what its turn returned`, async (t) => {
    const { caller } = await nodes(t, where);
    const push = (item: string) =>
      caller.call<string[]>({ actor: "PublishingList", id: "list-1", payload: { add: item }, capability: CAP }).then((r) => r.result);
    const [first, second] = await Promise.all([push("a"), push("b")]);
    t.deepEqual(first, ["a"]);
    t.deepEqual(second, ["a", "b"]);
  });
}
