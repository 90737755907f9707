// Placement during a roll (docs/deploying.md): a node of newer code joins as
// a standby that owns nothing; a stopping node names it heir, and it takes
// exactly that node's shards, with their plain actors' state. A standby
// takes its own key when no older member shares its capabilities, after
// standbyMs, or when a member speaks the protocol before placement keys.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { Mesh } from "@mesh/runtime";
import { eventually, holds, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Counter } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const SHARDS = 256;
const owners = (mesh: Mesh, capability: string) => Array.from({ length: SHARDS }, (_, s) => mesh.ownerNode(s, capability));
const start = (t: Parameters<typeof startNode>[0], prefix: string, appVersion: string, more: object = {}) =>
  startNode(t, {
    nodeId: nodeId(`${prefix}-${appVersion.replaceAll(".", "_")}`),
    prefix,
    appVersion,
    shards: SHARDS,
    actors: [Counter],
    capabilities: [prefix],
    ...more,
  });

test.serial(
  "a node of newer code joins as a standby that owns nothing, then takes exactly a stopping node's shards and actors",
  async (t) => {
    const a = await start(t, "heir", "1.9.0");
    const b = await start(t, "heir", "1.9.0");
    // Nodes of one version are no standbys once started: each took its own key before start resolved.
    t.deepEqual(
      [a, b].map((n) => n.metrics().placement.standby),
      [false, false],
    );
    await eventually(() => a.nodesFor("heir").length === 2 && b.nodesFor("heir").length === 2, "the v1 nodes to meet");
    await eventually(() => owners(a, "heir").includes(b.nodeId), "a to place shards on b");
    const ids = Array.from({ length: 200 }, (_, i) => `c${i}`);
    for (const id of ids) await a.call({ actor: Counter, id, capability: "heir" });
    const before = owners(a, "heir");

    const d = await start(t, "heir", "1.10.0");
    await eventually(() => a.nodesFor("heir").includes(d.nodeId) && b.nodesFor("heir").includes(d.nodeId), "the v2 node to be known");
    t.deepEqual(d.metrics().placement, { yields: [], key: d.nodeId, standby: true });
    for (const view of [a, b, d]) t.deepEqual(owners(view, "heir"), before, `${view.nodeId} places nothing on the standby`);
    t.is(d.actorCount, 0);

    await a.stop();
    await eventually(
      () => d.metrics().placement.key === a.nodeId && !d.metrics().placement.standby,
      "the standby to take the leaver's key",
    );
    const expected = before.map((o) => (o === a.nodeId ? d.nodeId : o));
    await eventually(() => b.nodesFor("heir").length === 2, "b to see a leave");
    t.deepEqual(owners(b, "heir"), expected, "exactly a's shards went to d, as b sees it");
    t.deepEqual(owners(d, "heir"), expected, "and as d sees it");
    // The actors of a's shards moved with their counts: each counts on from 1.
    for (const id of ids) t.deepEqual((await b.call<{ ok: number }>({ actor: Counter, id, capability: "heir" })).result, { ok: 2 }, id);
    t.true(d.actorCount > 0 && d.actorCount === ids.filter((id) => expected[b.shardFor(id)] === d.nodeId).length);
  },
);

test.serial("a standby takes its own key when no member of older code shares its capability, or after standbyMs", async (t) => {
  const old = await start(t, "own", "1");
  const waiting = await start(t, "own", "2", { standbyMs: 60_000 });
  await eventually(() => old.nodesFor("own").length === 2, "the standby to be known");
  t.true(waiting.metrics().placement.standby);
  await old.registerCapabilities([]); // the older node stops hosting "own", naming no heir
  await eventually(() => !waiting.metrics().placement.standby, "the standby to take its own key");
  t.deepEqual(waiting.metrics().placement, { yields: [], key: waiting.nodeId, standby: false });
  t.true(owners(old, "own").every((o) => o === waiting.nodeId));

  const older = await start(t, "timed", "1");
  const canary = await start(t, "timed", "2", { standbyMs: 300 });
  t.true(canary.metrics().placement.standby, "a standby at first");
  await eventually(() => !canary.metrics().placement.standby, "the canary to take its own key after standbyMs");
  await eventually(() => owners(older, "timed").includes(canary.nodeId), "the canary to own shards");
  t.true(owners(older, "timed").includes(older.nodeId));

  const unversioned = await startNode(t, {
    nodeId: nodeId("plain"),
    prefix: "timed",
    shards: SHARDS,
    actors: [Counter],
    capabilities: ["timed"],
  });
  t.deepEqual(
    unversioned.metrics().placement,
    { yields: [], key: unversioned.nodeId, standby: false },
    "a node without appVersion is never a standby",
  );
});

test.serial("with a member of the protocol before placement keys in the view, a newer node takes its own key", async (t) => {
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const previous = {
    v: 1,
    node: "previous",
    instance: "p",
    capabilities: ["mixed"],
    actorTypes: ["Counter"],
    shards: SHARDS,
    strategy: "rendezvous",
    version: "0.1.0",
    app: "1",
    protocol: 2,
    heartbeatMs: 60_000,
  };
  const v1 = await start(t, "mixed", "1");
  // It heart-beats as any member does, so that the node started next hears it too.
  const beat = setInterval(() => nc.publish("mixed.cluster.heartbeat", JSON.stringify(previous)), 100);
  t.teardown(() => clearInterval(beat));
  await eventually(() => v1.nodesFor("mixed").includes("previous"), "the protocol 2 member to be known");
  const v2 = await start(t, "mixed", "2");
  await eventually(() => !v2.metrics().placement.standby, "the newer node to take its own key");
  await holds(() => !v2.metrics().placement.standby, "it stays keyed", 400);
  t.true(owners(v1, "mixed").includes(v2.nodeId));
});

test.serial("a node started with the id of a node whose key another took over places under a key of its own", async (t) => {
  const id = nodeId("reused");
  const first = await startNode(t, {
    nodeId: id,
    prefix: "reuse",
    appVersion: "1",
    shards: SHARDS,
    actors: [Counter],
    capabilities: ["reuse"],
  });
  const heir = await start(t, "reuse", "2");
  t.true(heir.metrics().placement.standby);
  await first.stop();
  await eventually(() => heir.metrics().placement.key === id, "the heir to take the stopped node's key");
  // The same id again, as an in-place deploy with fixed ids does: its own key would be the heir's.
  const again = await startNode(t, {
    nodeId: id,
    prefix: "reuse",
    appVersion: "2",
    shards: SHARDS,
    actors: [Counter],
    capabilities: ["reuse"],
  });
  const { key, standby } = again.metrics().placement;
  t.false(standby);
  t.not(key, id);
  await eventually(() => owners(heir, "reuse").includes(id), "the new node to own shards under its own key");
  t.true(owners(again, "reuse").includes(heir.nodeId), "and the heir keeps the key it took");
});
