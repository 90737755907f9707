// A durable actor's turn that ended just before its node paused past the lease
// (here the event loop blocked: a SIGSTOP, a long GC, a CPU-starved VM) must
// not be stored once another node has taken the actor over and loaded its
// state: the new owner would answer from a state older than what was
// acknowledged. Its commit waits for the lease; the node was replaced, so the
// caller gets STATE_CONFLICT and nothing of the turn is stored.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import anyTest from "ava";
import type { TestFn } from "ava";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import { DurableCounter } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

test("a turn that ended as its node paused past the lease is not stored after another node took the actor over", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "mesh-stall-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const flag = join(dir, "resume");
  const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000, standbyMs: 0 };
  const prefix = "stall";
  const stalling = await startNodeProcess(nodeId("s"), { servers: t.context.server.url, prefix, capabilities: ["acct"], ...timing });
  const peer = await startNode(t, { prefix, nodeId: nodeId("p"), actors: [DurableCounter], capabilities: ["acct"], ...timing });
  const caller = await startNode(t, { prefix, nodeId: nodeId("c"), ...timing });
  await eventually(() => caller.nodesFor("acct").length === 2, "the caller to see both owners");
  const id = Array.from({ length: 400 }, (_, i) => `acct-${i}`).find(
    (k) => caller.ownerNode(caller.shardFor(k), "acct") === stalling.nodeId,
  )!;
  const call = (payload: object, timeoutMs = 1000) =>
    caller.call<{ count: number }>({ actor: "DurableCounter", id, payload, capability: "acct", timeoutMs });
  t.is((await call({})).result.count, 1);

  // The second call counts to 2, then blocks its node's event loop until the peer has served the actor.
  const stalled = call({ stallUntil: flag }, 20_000).then(
    (r) => ({ acknowledged: r.result.count }),
    (err: { code?: string }) => ({ refused: err.code }),
  );
  await eventually(
    async () => {
      const read = await call({ get: true }, 300).catch(() => undefined);
      return read !== undefined && read.pid.startsWith(`${peer.nodeId}/`);
    },
    "the peer to take the actor over",
    15_000,
  );
  writeFileSync(flag, "");
  const outcome = await stalled;
  t.deepEqual(outcome, { refused: "STATE_CONFLICT" }, "the turn's commit was not sent: the node had been replaced");
  // Every read after it answers from the store, which never got count 2.
  for (let i = 0; i < 20; i++) t.is((await call({ get: true }, 5000)).result.count, 1);
  t.is((await call({}, 5000)).result.count, 2, "the next write counts from what was stored");
});
