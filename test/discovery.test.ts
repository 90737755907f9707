// Membership through NATS: discovery, heartbeats, leave, silence.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { Mesh } from "@mesh/runtime";
import { Counter } from "./helpers/actors.js";
import { eventually, holds, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

// Heartbeats every minute: whatever a node knows right after start, it learned through discovery.
const slowHeartbeat = { heartbeatMs: 60_000, nodeTimeoutMs: 120_000 };

test.serial("a node started after the others sees all of them as soon as start resolves, and they see it", async (t) => {
  const first: Mesh[] = [];
  for (const name of ["d1", "d2", "d3"])
    first.push(await startNode(t, { ...slowHeartbeat, nodeId: nodeId(name), actors: [Counter], capabilities: ["disc"] }));
  const late = await startNode(t, { ...slowHeartbeat, nodeId: nodeId("late"), actors: [Counter], capabilities: ["disc"] });
  const all = [...first, late].map((n) => n.nodeId).sort();
  t.deepEqual(late.nodesFor("disc"), all);
  for (const n of first) t.deepEqual(n.nodesFor("disc"), all);
  // And it can call at once, to any owner.
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => late.call({ actor: Counter, id: `late_${i}`, capability: "disc" })),
  );
  t.is(new Set(results.map((r) => r.pid.split("/")[0])).size, 4);
  await Promise.all([...first, late].map((n) => n.stop()));
});

test.serial("a member too busy to answer discovery at once is still known when start resolves: its record is fresh", async (t) => {
  const options = { ...slowHeartbeat, prefix: "busy", capabilities: ["busy"] };
  const busy = await startNodeProcess(nodeId("busy"), { ...options, servers: t.context.server.url });
  // The member's event loop stands still from before the newcomer asks until 300 ms after: far past discoveryQuietMs (50 ms).
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  let resumed = false;
  const resume = () => {
    if (!resumed) process.kill(busy.pid, "SIGCONT");
    resumed = true;
  };
  t.teardown(resume);
  nc.subscribe("busy.cluster.discover", { callback: () => setTimeout(resume, 300) }); // the fault's length, not a synchronisation
  await nc.flush();
  process.kill(busy.pid, "SIGSTOP");
  const late = await startNode(t, { ...options, nodeId: nodeId("busy-late") });
  t.true(resumed);
  t.deepEqual(late.nodesFor("busy"), [busy.nodeId, late.nodeId].sort());
  await late.stop();
  await busy.stop();
});

test.serial(
  "a member SIGKILLed just before, its record still fresh, is not waited for (no process serves its subject) but is in the view from its record",
  async (t) => {
    const options = { ...slowHeartbeat, prefix: "gone", capabilities: ["gone"] };
    const dead = await startNodeProcess(nodeId("dead"), { ...options, servers: t.context.server.url });
    const alive = await startNode(t, { ...options, nodeId: nodeId("alive") });
    await eventually(() => alive.nodesFor("gone").includes(dead.nodeId), "the member to be seen");
    await dead.kill();
    const said: string[] = [];
    const logger = { debug() {}, warn() {}, error() {}, info: (f: object, m: string) => void said.push(`${m} ${JSON.stringify(f)}`) };
    const late = await startNode(t, { ...options, nodeId: nodeId("producer"), logger });
    t.true(
      said.some((s) => s.includes("did not answer discovery has a fresh record") && s.includes(dead.nodeId)),
      said.join("\n"),
    );
    // It may be half-open and serving under its lease: only the store's verdict removes it (nodes-bucket.test.ts).
    t.deepEqual(late.nodesFor("gone"), [alive.nodeId, dead.nodeId, late.nodeId].sort());
  },
);

test.serial("a stopped node disappears from every view", async (t) => {
  const nodes: Mesh[] = [];
  for (const name of ["s1", "s2", "s3"])
    nodes.push(await startNode(t, { ...slowHeartbeat, nodeId: nodeId(name), actors: [Counter], capabilities: ["stopcap"] }));
  const [x, y, z] = nodes as [Mesh, Mesh, Mesh];
  await z.stop();
  t.is(z.state, "STOPPED");
  // `leave` is a message, so the others learn it as soon as NATS delivers it, not after a timeout.
  await eventually(
    () => x.nodesFor("stopcap").length === 2 && y.nodesFor("stopcap").length === 2,
    "z to leave the views of x and y",
    2_000,
  );
  t.deepEqual(x.nodesFor("stopcap"), [x.nodeId, y.nodeId].sort());
  t.deepEqual(y.nodesFor("stopcap"), [x.nodeId, y.nodeId].sort());
  await Promise.all([x.stop(), y.stop()]);
});

test.serial("a node that falls silent is removed after the node timeout; its heartbeats bring it back", async (t) => {
  const watcher = await startNode(t, { nodeId: nodeId("watcher"), heartbeatMs: 100, nodeTimeoutMs: 400 });
  // A raw NATS client that speaks the membership protocol, then stops talking (as a frozen process would).
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const ghost = {
    v: 1,
    node: "ghost",
    instance: "g1",
    capabilities: ["haunt"],
    actorTypes: [],
    shards: 4096,
    strategy: "rendezvous",
    version: "0",
    heartbeatMs: 100,
  };
  nc.publish("mesh.cluster.heartbeat", JSON.stringify(ghost));
  await eventually(() => watcher.nodesFor("haunt").length === 1, "the ghost to be seen");
  t.deepEqual(watcher.nodesFor("haunt"), ["ghost"]);
  await eventually(() => watcher.nodesFor("haunt").length === 0, "the silent ghost to be removed", 3_000);
  nc.publish("mesh.cluster.heartbeat", JSON.stringify(ghost));
  await eventually(() => watcher.nodesFor("haunt").length === 1, "the ghost to be seen again");
  t.deepEqual(watcher.allCapabilities(), ["haunt"]);
});

test.serial("nodes with another shard count or strategy are refused, and say so in the log", async (t) => {
  const errors: string[] = [];
  const logger = { debug() {}, info() {}, warn() {}, error: (_f: object, m: string) => errors.push(m) };
  const a = await startNode(t, { nodeId: nodeId("mod-a"), prefix: "refuse", strategy: "modulo", capabilities: ["r"], logger });
  const b = await startNode(t, { nodeId: nodeId("rv-b"), prefix: "refuse", capabilities: ["r"] });
  const c = await startNode(t, { nodeId: nodeId("sh-c"), prefix: "refuse", strategy: "modulo", shards: 64, capabilities: ["r"] });
  t.deepEqual(a.nodesFor("r"), [a.nodeId]);
  t.deepEqual(b.nodesFor("r"), [b.nodeId]);
  t.deepEqual(c.nodesFor("r"), [c.nodeId]);
  t.true(errors.some((m) => m.includes("refused a node whose shard count or placement strategy differs")));
  // A node of a wire protocol this one does not speak (a future Mesh, say): refused, and said once, naming both.
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const future = { v: 1, node: "future", instance: "f", capabilities: ["r"], actorTypes: [], shards: 4096, strategy: "rendezvous" };
  for (let i = 0; i < 3; i++)
    nc.publish("refuse.cluster.heartbeat", JSON.stringify({ ...future, version: "9.0.0", heartbeatMs: 1000, protocol: 9 }));
  const old = { ...future, node: "older", version: "0.1.0", heartbeatMs: 1000 }; // no protocol: 1, which this node still speaks
  nc.publish("refuse.cluster.heartbeat", JSON.stringify(old));
  await eventually(() => b.nodesFor("r").includes("older"), "a node of the previous protocol to be taken");
  t.false(b.nodesFor("r").includes("future"));
  t.true(a.nodesFor("r").every((n) => n !== "future"));
  t.is(errors.filter((m) => m.includes("speaks wire protocol 9; this node speaks 2 and 1")).length, 1, errors.join("\n"));
});

test.serial(
  "membership messages that are not valid, or claim what their sender cannot be, are refused and logged; the node keeps serving",
  async (t) => {
    const errors: string[] = [];
    const logger = {
      error: (_f: object, m: string) => void errors.push(m),
      warn: (_f: object, m: string) => void errors.push(m),
      info() {},
      debug() {},
    };
    const node = await startNode(t, { nodeId: nodeId("robust"), prefix: "robust", actors: [Counter], capabilities: ["rob"], logger });
    const other = await startNode(t, { nodeId: nodeId("robust-other"), prefix: "robust", actors: [Counter], capabilities: ["rob"] });
    await eventually(() => node.nodesFor("rob").length === 2, "the two nodes to see each other");
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    for (const subject of ["robust.cluster.heartbeat", "robust.cluster.discover", "robust.cluster.leave"]) {
      nc.publish(subject, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
      nc.publish(subject, JSON.stringify({ v: 1, node: 42 }));
      nc.publish(subject, "[]");
    }
    // Invalid tokens in an otherwise well-formed announcement are refused too.
    const bad = {
      v: 1,
      node: "bad.node",
      instance: "i",
      capabilities: ["rob"],
      actorTypes: [],
      shards: 4096,
      strategy: "rendezvous",
      version: "0",
      heartbeatMs: 100,
    };
    nc.publish("robust.cluster.heartbeat", JSON.stringify(bad));
    nc.publish("robust.cluster.heartbeat", JSON.stringify({ ...bad, node: "ok", capabilities: ["a b"] }));
    // Claims that do not match their sender: a leave for a live node from another instance, and a heartbeat in this node's name.
    nc.publish("robust.cluster.leave", JSON.stringify({ v: 1, node: other.nodeId, instance: "not-its-instance" }));
    nc.publish("robust.cluster.heartbeat", JSON.stringify({ ...bad, node: node.nodeId, instance: "an-impostor", capabilities: ["rob"] }));
    // Messages from one connection arrive in order: once this probe is seen, the garbage above was handled.
    nc.publish("robust.cluster.heartbeat", JSON.stringify({ ...bad, node: "probe", capabilities: ["probe"] }));
    await eventually(() => node.nodesFor("probe").length === 1, "the probe heartbeat to be seen");
    t.deepEqual(node.nodesFor("rob"), [node.nodeId, other.nodeId].sort(), "the forged leave removed nobody");
    t.true(errors.includes("mesh: another live node uses this node's id; node ids must be unique"), JSON.stringify(errors));
    t.true(errors.includes("mesh: ignored a malformed membership message"));
    t.deepEqual(node.allCapabilities(), ["probe", "rob"]);
    // The node still serves over NATS, not only in-process.
    const caller = await startNode(t, { nodeId: nodeId("robust-caller"), prefix: "robust" });
    t.deepEqual((await caller.call({ actor: Counter, id: "still", capability: "rob" })).result, { ok: 1 });
    t.true(caller.nodesFor("rob").includes(other.nodeId));
  },
);

test.serial("a node that heart-beats slower than our node timeout is kept: silence is judged by its own interval", async (t) => {
  const slow = await startNode(t, { nodeId: nodeId("slow"), prefix: "pace", heartbeatMs: 1000, capabilities: ["pace"] });
  const fast = await startNode(t, { nodeId: nodeId("fast"), prefix: "pace", heartbeatMs: 50, nodeTimeoutMs: 150, capabilities: ["pace"] });
  // For well over the fast node's own timeout, the slow node never drops out of its view.
  await holds(() => fast.nodesFor("pace").includes(slow.nodeId), "the slow node to stay in the fast node's view", 1_500);
  t.deepEqual(fast.nodesFor("pace"), [fast.nodeId, slow.nodeId].sort());
});
