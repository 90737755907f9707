// A rolling deploy under load (docs/deploying.md): three node processes of
// "v1" replaced one at a time by processes of "v2" (started, then the old one
// stopped with SIGTERM, as an orchestrator does) while a caller keeps calling
// plain and durable counters. No call fails, every plain counter keeps its
// count across its moves (live migration), and no durable increment is lost.
import anyTest from "ava";
import type { TestFn } from "ava";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { continuousCalls } from "./helpers/load.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const PLAIN = Array.from({ length: 200 }, (_, i) => `plain_${i}`);
const DURABLE = Array.from({ length: 200 }, (_, i) => `durable_${i}`);

test.serial(
  "a rolling deploy of three node processes under load: no call fails, every plain counter keeps its count, no durable increment is lost",
  async (t) => {
    t.timeout(180_000);
    const timing = { heartbeatMs: 200, nodeTimeoutMs: 2000 };
    const base = { servers: t.context.server.url, prefix: "roll", capabilities: ["roll"], ...timing };
    const v1 = [];
    for (let i = 0; i < 3; i++) v1.push(await startNodeProcess(nodeId(`v1n${i}`), { ...base, appVersion: "1" }));
    const caller = await startNode(t, { prefix: "roll", nodeId: nodeId("rcaller"), ...timing });
    await eventually(() => caller.nodesFor("roll").length === 3, "the caller to see three nodes");
    const plain = continuousCalls(caller, "roll", PLAIN, { actor: "Counter", workers: 16 });
    const durable = continuousCalls(caller, "roll", DURABLE, { actor: "DurableCounter", workers: 16 });
    const flowing = async (what: string) => {
      const [p, d] = [plain.calls, durable.calls];
      await eventually(() => plain.calls > p + 600 && durable.calls > d + 300, what, 30_000);
    };
    await flowing("calls to flow before the roll");
    for (const [i, old] of v1.entries()) {
      const fresh = await startNodeProcess(nodeId(`v2n${i}`), { ...base, appVersion: "2" });
      await eventually(() => caller.nodesFor("roll").includes(fresh.nodeId), `v2 node ${i} to join`);
      await flowing(`calls to flow with v2 node ${i}`);
      const { code } = await old.stop();
      t.is(code, 0, `v1 node ${i} stopped cleanly: ${old.stderr}`);
      await eventually(() => !caller.nodesFor("roll").includes(old.nodeId), `v1 node ${i} to leave`);
      await flowing(`calls to flow after v1 node ${i} left`);
    }
    await plain.stop();
    await durable.stop();
    t.deepEqual([...plain.failures], [], "no plain call failed");
    t.deepEqual([...durable.failures], [], "no durable call failed");

    // Each counter counted every call it answered: plain ones across their moves, durable ones in the store.
    const lostPlain: string[] = [];
    for (const id of PLAIN) {
      const { result } = await caller.call<{ ok: number }>({ actor: "Counter", id, capability: "roll" });
      if (result.ok !== (plain.answered.get(id) ?? 0) + 1) lostPlain.push(`${id}: ${result.ok} after ${plain.answered.get(id) ?? 0} calls`);
    }
    t.deepEqual(lostPlain, [], "every plain counter kept its count");
    const lostDurable: string[] = [];
    for (const id of DURABLE) {
      const { result } = await caller.call<{ count: number }>({ actor: "DurableCounter", id, capability: "roll" });
      if (result.count !== (durable.answered.get(id) ?? 0) + 1)
        lostDurable.push(`${id}: ${result.count} after ${durable.answered.get(id) ?? 0}`);
    }
    t.deepEqual(lostDurable, [], "no durable increment lost");
    const moves = (pids: Map<string, Set<string>>) => [...pids.values()].reduce((n, s) => n + s.size - 1, 0) / pids.size;
    t.log(
      `${plain.calls + durable.calls} calls; moves per actor: plain ${moves(plain.pids).toFixed(2)}, durable ${moves(durable.pids).toFixed(2)} (three nodes replaced)`,
    );
    t.true(plain.pids.size === PLAIN.length && durable.pids.size === DURABLE.length);
  },
);
