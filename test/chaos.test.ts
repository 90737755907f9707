// Chaos: four node processes, steady callers, nodes killed and restarted at random for about a minute.
import anyTest from "ava";
import type { TestFn } from "ava";
import { isErrorCode } from "@mesh/core";
import type { Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { continuousCalls } from "./helpers/load.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import type { NodeProcess } from "./helpers/processes.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const SECONDS = Number(process.env.CHAOS_SECONDS ?? 60);
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000, callTimeoutMs: 1000 };
const IDS = Array.from({ length: 400 }, (_, i) => `chaos_${i}`);

test.serial(`chaos: ${SECONDS} s of nodes killed and restarted under steady calls (seed ${SEED})`, async (t) => {
  t.timeout((SECONDS + 60) * 1000);
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on("unhandledRejection", onUnhandled);
  t.teardown(() => process.off("unhandledRejection", onUnhandled));

  let seed = SEED;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const options = { servers: t.context.server.url, prefix: "chaos", capabilities: ["chaos"], ...timing };
  const names = ["n1", "n2", "n3", "n4"].map(nodeId);
  const nodes = new Map<string, NodeProcess>();
  for (const name of names) nodes.set(name, await startNodeProcess(name, options));
  const caller: Mesh = await startNode(t, { nodeId: nodeId("chaos-caller"), prefix: "chaos", ...timing });
  await eventually(() => caller.nodesFor("chaos").length === 4, "the caller to see four nodes");

  const load = continuousCalls(caller, "chaos", IDS);
  const ended: { name: string; code: number | null; stderr: string }[] = [];
  const faults = { killed: 0, stopped: 0, restarted: 0 };
  const until = Date.now() + SECONDS * 1000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 1000 + random() * 3000)); // the pace of the chaos, not a synchronisation
    const name = names[Math.floor(random() * names.length)]!;
    const node = nodes.get(name)!;
    if (random() < 0.6) {
      await node.kill();
      faults.killed++;
    } else {
      const { code } = await node.stop();
      ended.push({ name, code, stderr: node.stderr });
      faults.stopped++;
    }
    if (node.stderr.includes("UNHANDLED") || node.stderr.includes("UNCAUGHT")) ended.push({ name, code: -1, stderr: node.stderr });
    nodes.set(name, await startNodeProcess(name, options)); // the same node id, a new process
    faults.restarted++;
  }
  const lastFaultAt = Date.now();

  // After the last fault, the cluster settles and then every call succeeds. Calls that were
  // in flight to a killed node end in TIMEOUT up to callTimeoutMs after the kill.
  await eventually(() => caller.nodesFor("chaos").length === 4, "the caller to see all four nodes again", 10_000);
  await eventually(
    () => Date.now() - lastFaultAt > timing.callTimeoutMs + 100 && Date.now() - load.lastFailureAt > 2000,
    "two seconds without a failed call",
    15_000,
  );
  const settledFailures = new Map(load.failures);
  const before = load.succeeded;
  await eventually(() => load.succeeded > before + 2000, "2,000 more calls");
  await load.stop();

  const reactivations = [...load.pids.values()].reduce((n, pids) => n + pids.size - 1, 0);
  t.log(
    `seed ${SEED}; faults ${JSON.stringify(faults)}; calls ${load.calls}, succeeded ${load.succeeded}, failed by code ${JSON.stringify(Object.fromEntries(load.failures))}; re-activations ${reactivations}; last failure ${load.lastFailureAt ? load.lastFailureAt - lastFaultAt : "none"} ms after the last fault`,
  );
  for (const code of load.failures.keys()) t.true(isErrorCode(code), `undocumented failure: ${code}`);
  if (load.lastFailureAt)
    t.true(
      load.lastFailureAt - lastFaultAt <= timing.nodeTimeoutMs + timing.callTimeoutMs + 1000,
      "failures end within the node timeout and a call timeout of the last fault",
    );
  t.deepEqual(Object.fromEntries(load.failures), Object.fromEntries(settledFailures), "no call failed once the cluster settled");
  t.deepEqual(unhandled, [], "no unhandled rejection in the test process");
  for (const e of ended) t.is(e.code, 0, `${e.name} ended badly: ${e.stderr}`);
  for (const node of nodes.values()) {
    const { code } = await node.stop();
    t.is(code, 0, node.stderr);
    t.false(/UNHANDLED|UNCAUGHT/.test(node.stderr), node.stderr);
  }
});
