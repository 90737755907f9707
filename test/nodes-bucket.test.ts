// The nodes bucket (`<prefix>_nodes`), where the quorum keeps each node's
// record, deleted under running nodes (an operator's mistake, a JetStream
// reset): their renewals fail, so their turns wait; the node makes the bucket
// again as at start, finds its record gone, re-validates (its activations
// dropped: another node might have served them) and serves again.
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
