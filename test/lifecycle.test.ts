// Stopping, and nodes that vanish without a word.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { Mesh } from "@mesh/runtime";
import { Counter, Gate } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

class Farewell {
  static reasons: string[] = [];
  handleCall() {
    return "hi";
  }
  async onDeactivate(reason: string) {
    await Promise.resolve();
    Farewell.reasons.push(reason);
  }
}

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

test.serial(
  "stop() lets handlers already running finish and answers their remote callers, then runs onDeactivate('shutdown')",
  async (t) => {
    const owner = await startNode(t, { nodeId: nodeId("stopper"), prefix: "life", actors: [Gate, Farewell], capabilities: ["life"] });
    const caller = await startNode(t, { nodeId: nodeId("waiter"), prefix: "life" });
    await caller.call({ actor: Farewell, id: "bye", capability: "life" });
    const running = caller.call<{ pid: string }>({
      actor: Gate,
      id: "busy",
      payload: { wait: "stop-k" },
      capability: "life",
      timeoutMs: 10_000,
    });
    await eventually(() => owner.actorCount === 2, "the gated call to be running on the owner");
    const stopping = owner.stop();
    t.is(owner.state, "STOPPING");
    // New calls are refused while it stops.
    const local = await owner.call({ actor: Gate, id: "x", capability: "life" }).catch((err: { code: string }) => err.code);
    t.is(local, "STOPPED");
    // Released after stop() began (by a Gate on another cluster): its caller still gets the answer.
    const helper = await startNode(t, { nodeId: nodeId("opener"), prefix: "life-other", actors: [Gate], capabilities: ["other"] });
    await helper.call({ actor: Gate, id: "opener", payload: { release: "stop-k" }, capability: "other" });
    const answer = await running;
    t.true(answer.result.pid.startsWith(`${owner.nodeId}/Gate/busy#`));
    await stopping;
    t.is(owner.state, "STOPPED");
    t.deepEqual(Farewell.reasons, ["shutdown"]);
    // The caller learned of the leave: the capability has no nodes now.
    await eventually(() => caller.nodesFor("life").length === 0, "the caller to see the owner leave");
  },
);

test.serial(
  "a node that vanished without leaving stays in the view at its calls' no responders (it may be half-open), and its calls go to the next owner once it was silent for the node timeout",
  async (t) => {
    const real = await startNode(t, { nodeId: nodeId("real"), prefix: "ghost", actors: [Counter], capabilities: ["haunted"] });
    // The ghost announced 200 ms heartbeats: silent for the caller's 1 s node timeout, it is dropped.
    const caller = await startNode(t, { nodeId: nodeId("caller"), prefix: "ghost", nodeTimeoutMs: 1000 });
    // A member that announces itself and then is gone: nobody listens on its node subject.
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    const ghost = {
      v: 1,
      node: "ghost",
      instance: "g",
      capabilities: ["haunted"],
      actorTypes: ["Counter"],
      shards: 4096,
      strategy: "rendezvous",
      version: "0",
      heartbeatMs: 200,
    };
    nc.publish("ghost.cluster.heartbeat", JSON.stringify(ghost));
    await eventually(() => caller.nodesFor("haunted").length === 2, "the caller to count the ghost in");
    const ids = Array.from({ length: 100 }, (_, i) => `h_${i}`);
    const haunted = ids.filter((id) => caller.ownerNode(caller.shardFor(id), "haunted") === "ghost");
    t.true(haunted.length > 20);
    // Every call succeeds, although a third of them were routed to the ghost first: they are sent again until it is dropped.
    const results = await Promise.all(ids.map((id) => caller.call({ actor: Counter, id, capability: "haunted", timeoutMs: 10_000 })));
    t.true(results.every((r) => r.pid.startsWith(`${real.nodeId}/`)));
    t.deepEqual(caller.nodesFor("haunted"), [real.nodeId], "the ghost is out of the view");
  },
);

test.serial(
  "with no other owner left, a vanished node's calls fail with NODE_UNAVAILABLE at their deadline, then NO_NODES once it was dropped",
  async (t) => {
    const caller = await startNode(t, { nodeId: nodeId("lonely"), prefix: "void", nodeTimeoutMs: 1000 });
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    const ghost = {
      v: 1,
      node: "ghost2",
      instance: "g",
      capabilities: ["void"],
      actorTypes: [],
      shards: 4096,
      strategy: "rendezvous",
      version: "0",
      heartbeatMs: 200,
    };
    nc.publish("void.cluster.heartbeat", JSON.stringify(ghost));
    await eventually(() => caller.nodesFor("void").length === 1, "the ghost to be seen");
    const unavailable = await t.throwsAsync(caller.call({ actor: Counter, id: "x", capability: "void", timeoutMs: 300 }));
    t.is((unavailable as { code?: string }).code, "NODE_UNAVAILABLE", unavailable?.message);
    await eventually(() => caller.nodesFor("void").length === 0, "the silent ghost to be dropped");
    const error = await t.throwsAsync(caller.call({ actor: Counter, id: "x", capability: "void" }));
    t.is((error as { code?: string }).code, "NO_NODES", error?.message);
  },
);

test.serial("stop() fails a call waiting for an owner with no responders with STOPPED, not at its deadline", async (t) => {
  const caller = await Mesh.start({ servers: t.context.server.url, nodeId: nodeId("leaving"), prefix: "wait", nodeTimeoutMs: 60_000 });
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const ghost = {
    v: 1,
    node: "ghost3",
    instance: "g",
    capabilities: ["w"],
    actorTypes: [],
    shards: 4096,
    strategy: "rendezvous",
    version: "0",
    heartbeatMs: 60_000,
  };
  nc.publish("wait.cluster.heartbeat", JSON.stringify(ghost));
  await eventually(() => caller.nodesFor("w").length === 1, "the ghost to be seen");
  const call = caller.call({ actor: Counter, id: "x", capability: "w", timeoutMs: 60_000 });
  const outcome = call.then(
    () => "answered",
    (err: { code?: string }) => err.code,
  );
  await caller.stop();
  t.is(await outcome, "STOPPED");
});
