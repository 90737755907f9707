// The nodes bucket (`<prefix>_nodes`), where the quorum keeps each node's
// record, deleted under running nodes (an operator's mistake, a JetStream
// reset): their renewals fail, so their turns wait; the node makes the bucket
// again as at start, finds its record gone, re-validates (its activations
// dropped: another node might have served them) and serves again. And what a
// joining node makes of the records it finds: a fresh one that no process
// answers for (a half-open or crashed node) is in its view until the store
// removed it; values that are not records are passed over.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Counter } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

test("a node whose nodes bucket was deleted makes it again and serves again, its activations dropped", async (t) => {
  const prefix = "nb";
  const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000 };
  const node = await startNode(t, { prefix, nodeId: nodeId("n"), actors: [Counter], capabilities: ["c"], ...timing });
  const call = () => node.call<{ ok: number }>({ actor: Counter, id: "a", capability: "c", timeoutMs: 1000 });
  t.is((await call()).result.ok, 1);
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(`KV_${prefix}_nodes`);
  await eventually(() => node.metrics().leaseLapses > 0, "the lease to lapse");
  let answer: number | undefined;
  await eventually(
    async () => {
      answer = (await call().catch(() => undefined))?.result.ok;
      return answer !== undefined;
    },
    "the node to serve again",
    20_000,
  );
  t.is(answer, 1, "a fresh activation: the one from before the lapse was dropped");
  t.true(node.metrics().leaseDrops >= 1);
  t.true((await jsm.streams.info(`KV_${prefix}_nodes`)).state.messages >= 1, "the bucket is there again, with the node's record");
});

test("a joining node keeps a node with a fresh record that no process serves in its view until the store removed it, and passes over values that are not records", async (t) => {
  const prefix = "nbjoin";
  const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000 };
  const options = { prefix, actors: [Counter], capabilities: ["c"], ...timing };
  const first = await startNode(t, { ...options, nodeId: nodeId("first") });
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const kv = await (await nc.jetstream()).views.kv(`${prefix}_nodes`);
  let record: { announcement?: Record<string, unknown> } = {};
  await eventually(async () => {
    record = (await kv.get(first.nodeId))?.json() ?? {};
    return record.announcement !== undefined;
  }, "the record to keep the node's announcement");
  // A node that wrote its record a moment ago, and that no process serves now.
  const at = Date.now();
  const ghost = { ...record.announcement, node: "ghost", instance: "g", key: undefined };
  await kv.put("ghost", JSON.stringify({ node: "ghost", instance: "g", at, nodeTimeoutMs: 1000, announcement: ghost }));
  await kv.put("bad1", "not json");
  await kv.put("bad2", JSON.stringify({ at, announcement: { v: 1 } }));
  await kv.put("bad3", JSON.stringify({ at, announcement: { ...ghost, node: "other" } }));
  await kv.put("bad4", JSON.stringify([at]));
  const joiner = await startNode(t, { ...options, nodeId: nodeId("joiner") });
  t.true(joiner.nodesFor("c").includes("ghost"), "in the view from its record");
  t.deepEqual(
    joiner
      .nodesFor("c")
      .filter((n) => n !== "ghost")
      .sort(),
    [first.nodeId, joiner.nodeId].sort(),
  );
  await eventually(() => !joiner.nodesFor("c").includes("ghost"), "the store's verdict to remove it");
  t.is((await kv.get("ghost"))?.operation, "DEL", "its record deleted at the revision the joining node saw");
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => joiner.call({ actor: Counter, id: `a${i}`, capability: "c" })));
  t.is(answers.length, 40, "every actor answers, those of the removed node's shards too");
});
