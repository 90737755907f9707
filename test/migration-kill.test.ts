// A node killed in the middle of a live migration (docs/deploying.md): node
// processes hand thousands of plain actors over on a graceful stop (20 KB of
// state each, so that the hand-over lasts), and either the stopping node or
// the one receiving its actors is SIGKILLed once the stop began. Whatever the
// moment, each plain register afterwards either kept its value (it moved) or
// starts afresh (it did not): never another value; no durable increment is
// lost.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import type { Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import type { NodeProcess } from "./helpers/processes.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const PLAIN = Array.from({ length: 3000 }, (_, i) => `p${i}`);
const value = (id: string) => ({ id, pad: "x".repeat(20_000) });
const DURABLE = Array.from({ length: 300 }, (_, i) => `d${i}`);
const CALLS = 3;

async function cluster(t: ExecutionContext<ClusterContext>, prefix: string): Promise<{ nodes: NodeProcess[]; caller: Mesh }> {
  const options = { servers: t.context.server.url, prefix, capabilities: ["mk"], heartbeatMs: 200, nodeTimeoutMs: 1500 };
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await startNodeProcess(nodeId(`${prefix}${i}`), options));
  const caller = await startNode(t, { prefix, nodeId: nodeId(`${prefix}-caller`), heartbeatMs: 200, nodeTimeoutMs: 1500 });
  await eventually(() => caller.nodesFor("mk").length === 3, "the caller to see three nodes");
  // Every register holds its value; every durable counter counted CALLS times.
  for (let i = 0; i < PLAIN.length; i += 250)
    await Promise.all(
      PLAIN.slice(i, i + 250).map((id) => caller.call({ actor: "PlainRegister", id, payload: { write: value(id) }, capability: "mk" })),
    );
  for (let c = 0; c < CALLS; c++) await Promise.all(DURABLE.map((id) => caller.call({ actor: "DurableCounter", id, capability: "mk" })));
  return { nodes, caller };
}

/** Resolves once `leaving` announced it hosts nothing: its hand-over has begun (the kill that follows lands in it, or just after it). */
const handingOver = (caller: Mesh, leaving: NodeProcess) =>
  eventually(() => !caller.nodesFor("mk").includes(leaving.nodeId), "the stopping node to hand its shards over", 10_000);

/** Each plain register holds its value (it moved or stayed) or 0 (it started afresh); each durable counter's next count is CALLS + 1. */
async function check(t: ExecutionContext<ClusterContext>, caller: Mesh, survivors: number): Promise<void> {
  await eventually(() => caller.nodesFor("mk").length === survivors, `the caller to see ${survivors} nodes`);
  let kept = 0;
  let fresh = 0;
  const other: string[] = [];
  for (let i = 0; i < PLAIN.length; i += 250) {
    const results = await Promise.all(
      PLAIN.slice(i, i + 250).map((id) =>
        caller.call({ actor: "PlainRegister", id, payload: { read: true }, capability: "mk", timeoutMs: 10_000 }),
      ),
    );
    for (const [k, { result }] of results.entries()) {
      const id = PLAIN[i + k]!;
      if (result === 0) fresh++;
      else if (JSON.stringify(result) === JSON.stringify(value(id))) kept++;
      else other.push(id);
    }
  }
  t.deepEqual(other, [], "a plain register either kept its value or started afresh");
  t.log(`plain registers: ${kept} kept their value, ${fresh} started afresh`);
  const durable = await Promise.all(
    DURABLE.map((id) => caller.call<{ count: number }>({ actor: "DurableCounter", id, capability: "mk", timeoutMs: 10_000 })),
  );
  t.deepEqual(
    durable.map((r) => r.result.count).filter((n) => n !== CALLS + 1),
    [],
    "no durable increment lost, none counted twice",
  );
}

test.serial("the stopping node SIGKILLed while it hands its actors over: each moved with its state or starts afresh", async (t) => {
  t.timeout(120_000);
  const { nodes, caller } = await cluster(t, "mka");
  const leaving = nodes[0]!;
  leaving.child.kill("SIGTERM"); // the guard passes it on: a graceful stop begins
  await handingOver(caller, leaving);
  await leaving.kill();
  await check(t, caller, 2);
  for (const n of nodes.slice(1)) t.false(/UNHANDLED|UNCAUGHT/.test(n.stderr), n.stderr);
});

test.serial("the node receiving actors SIGKILLed while they arrive: each moved with its state or starts afresh", async (t) => {
  t.timeout(120_000);
  const { nodes, caller } = await cluster(t, "mkb");
  const [leaving, receiving] = nodes as [NodeProcess, NodeProcess, NodeProcess];
  const stopped = leaving.stop();
  await handingOver(caller, leaving);
  await receiving.kill();
  t.is((await stopped).code, 0, `the stopping node still stops cleanly: ${leaving.stderr}`);
  await check(t, caller, 1);
  t.false(/UNHANDLED|UNCAUGHT/.test(nodes[2]!.stderr), nodes[2]!.stderr);
});
