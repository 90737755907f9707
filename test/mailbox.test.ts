// A mailbox per actor: one message at a time, and no actor waits for another.
import anyTest from "ava";
import type { TestFn } from "ava";
import { MeshError } from "@mesh/runtime";
import type { Mesh } from "@mesh/runtime";
import { Echo, Gate, Hung } from "./helpers/actors.js";
import { nodeId, sameShardIds, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext & { owner: Mesh; caller: Mesh }>;
useNatsServer(test, async (t) => {
  t.context.owner = await startNode(t, { nodeId: nodeId("owner"), actors: [Gate, Hung, Echo], capabilities: ["box"], callTimeoutMs: 600 });
  t.context.caller = await startNode(t, { nodeId: nodeId("caller"), callTimeoutMs: 600 });
});

for (const where of ["local", "remote"] as const) {
  const from = (t: { context: { owner: Mesh; caller: Mesh } }) => (where === "local" ? t.context.owner : t.context.caller);

  test(`${where}: a blocked actor does not delay another actor on the same shard`, async (t) => {
    const node = from(t);
    const [blocked, free] = sameShardIds(node, `${where}-gate-`);
    t.is(node.shardFor(blocked), node.shardFor(free));
    const waiting = node.call({ actor: Gate, id: blocked, payload: { wait: `${where}-k` }, capability: "box" });
    // The other actor answers while the first one is still blocked.
    const other = await node.call<{ pid: string }>({ actor: Gate, id: free, payload: {}, capability: "box" });
    t.true(other.result.pid.includes(`/Gate/${free}#`));
    let settled = false;
    waiting.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((resolve) => setImmediate(resolve)); // let anything that could settle it run
    t.false(settled, "the blocked call is still waiting for its gate");
    await node.call({ actor: Gate, id: `${where}-releaser`, payload: { release: `${where}-k` }, capability: "box" });
    const released = await waiting;
    t.true((released.result as { pid: string }).pid.includes(`/Gate/${blocked}#`));
  });

  test(`${where}: a call to a hung actor fails with TIMEOUT after callTimeoutMs, and other actors keep answering`, async (t) => {
    const node = from(t);
    const [hung, neighbour] = sameShardIds(node, `${where}-hung-`);
    const started = performance.now();
    const error = await t.throwsAsync(node.call({ actor: Hung, id: hung, payload: { hang: true }, capability: "box" }), {
      instanceOf: MeshError,
    });
    t.is(error?.code, "TIMEOUT");
    t.true(performance.now() - started >= 599, "not before callTimeoutMs");
    t.regex(error!.message, /600 ms/);
    t.is((await node.call({ actor: Hung, id: neighbour, payload: {}, capability: "box" })).result, "awake");
    // Calls queued behind the hung handler time out too; a per-call timeout overrides the node's.
    const queued = await t.throwsAsync(node.call({ actor: Hung, id: hung, payload: {}, capability: "box", timeoutMs: 100 }), {
      instanceOf: MeshError,
    });
    t.is(queued?.code, "TIMEOUT");
  });

  test(`${where}: an actor handles one message at a time, in arrival order, async handlers keeping the turn`, async (t) => {
    const node = from(t);
    const id = `${where}-echo`;
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        node.call<{ payload: number; seen: number }>({ actor: Echo, id, payload: i, capability: "box" }),
      ),
    );
    // Each handler saw exactly the messages before it: no interleaving inside a turn.
    t.deepEqual(
      replies.map((r) => r.result.seen),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    t.deepEqual(
      replies.map((r) => r.result.payload),
      Array.from({ length: 50 }, (_, i) => i),
    );
    t.is(new Set(replies.map((r) => r.pid)).size, 1);
  });
}

test("a call whose caller gave up while it waited in the mailbox does not run", async (t) => {
  const { owner } = t.context;
  const id = "skip-stale";
  const blocking = owner.call({ actor: Gate, id, payload: { wait: "stale" }, capability: "box", timeoutMs: 5_000 });
  const stale = await t.throwsAsync(owner.call({ actor: Gate, id, payload: { release: "never-run" }, capability: "box", timeoutMs: 50 }), {
    instanceOf: MeshError,
  });
  t.is(stale?.code, "TIMEOUT");
  await owner.call({ actor: Gate, id: "other-releaser", payload: { release: "stale" }, capability: "box" });
  await blocking;
  // The next message runs normally: the stale one was skipped, not run late.
  const after = await owner.call<{ ran: unknown[] }>({ actor: Gate, id, payload: { last: true }, capability: "box" });
  t.deepEqual(after.result.ran, [{ wait: "stale" }, { last: true }]);
});
