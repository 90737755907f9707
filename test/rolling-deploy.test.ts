// A rolling deploy under load (docs/deploying.md): three node processes of
// release 1 replaced one at a time by processes of release 2 (started, then the
// old one stopped with SIGTERM, as an orchestrator does) while a caller keeps
// calling plain and durable counters, a versioned durable counter whose state
// shape v2 changes, and plain actors whose repeating timers tick, and while
// events flow from a stream into durable ledgers. No call fails, every plain
// counter keeps its count across its moves (live migration), no durable
// increment is lost, v2 migrates what v1 stored and no v1 turn runs after a
// v2 turn, timers keep ticking, events are applied once and in order, and
// each actor moves once (standbys and heirs: docs/deploying.md).
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { MeshOptions } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { checkApplied } from "./helpers/event-checks.js";
import { continuousCalls } from "./helpers/load.js";
import type { Load } from "./helpers/load.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import { setUpStreams } from "./helpers/streams.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const ids = (kind: string, n: number) => Array.from({ length: n }, (_, i) => `${kind}_${i}`);
const PLAIN = ids("plain", 200);
const DURABLE = ids("durable", 200);
const VERSIONED = ids("versioned", 100);
const TICKERS = ids("ticker", 50);
const KEYS = 20;

test.serial(
  "a rolling deploy of three node processes under load: no call fails, plain state kept, no durable write lost, v1 state migrated, timers and events go on, one move per actor",
  async (t) => {
    t.timeout(180_000);
    const stream = "ROLL";
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    await setUpStreams(nc, stream);
    const timing = { heartbeatMs: 200, nodeTimeoutMs: 2000 };
    const base = { servers: t.context.server.url, prefix: "roll", capabilities: ["roll", "ev"], eventStream: stream, ...timing };
    const release = (n: 1 | 2) => ({ ...base, appVersion: String(n), release: n }) as MeshOptions;
    const v1 = [];
    for (let i = 0; i < 3; i++) v1.push(await startNodeProcess(nodeId(`v1n${i}`), release(1)));
    const caller = await startNode(t, { prefix: "roll", nodeId: nodeId("rcaller"), ...timing });
    await eventually(() => caller.nodesFor("roll").length === 3, "the caller to see three nodes");

    // Per versioned counter: the highest count a v1 turn answered, the lowest a v2 turn did, and where v2 started from.
    const versions = new Map<string, { v1: number; v2: number; from: Set<number> }>();
    const seen = (id: string, r: unknown) => {
      const { count, code, from } = r as { count: number; code: number; from?: number };
      const v = versions.get(id) ?? { v1: 0, v2: Infinity, from: new Set<number>() };
      if (code === 1) v.v1 = Math.max(v.v1, count);
      else v.v2 = Math.min(v.v2, count);
      if (from !== undefined) v.from.add(from);
      versions.set(id, v);
    };
    const loads = {
      plain: continuousCalls(caller, "roll", PLAIN, { actor: "Counter", workers: 12 }),
      durable: continuousCalls(caller, "roll", DURABLE, { actor: "DurableCounter", workers: 12 }),
      versioned: continuousCalls(caller, "roll", VERSIONED, { actor: "VCounter", workers: 8, onResult: seen }),
    };
    const ticks = async () =>
      Promise.all(
        TICKERS.map(async (id) => (await caller.call<{ ticks: number }>({ actor: "Ticker", id, capability: "roll" })).result.ticks),
      );
    await ticks(); // each ticker's timer starts
    // Events flow all along, to KEYS ledgers.
    const js = nc.jetstream();
    const sent: { key: string; seq: number; n: number }[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let n = 0; publishing; n++) {
        const key = `k${n % KEYS}`;
        const ack = await js.publish(`${stream}.in.${key}`, JSON.stringify({ n }));
        sent.push({ key, seq: ack.seq, n });
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const flowing = async (what: string) => {
      const [p, d, v, e] = [loads.plain.calls, loads.durable.calls, loads.versioned.calls, sent.length];
      await eventually(
        () => loads.plain.calls > p + 500 && loads.durable.calls > d + 250 && loads.versioned.calls > v + 150 && sent.length > e + 50,
        what,
        30_000,
      );
    };
    await flowing("calls and events to flow before the roll");
    // Each versioned counter answers under both releases: polled, as the 8 workers reach all 100 ids at the load's pace.
    const answeredUnder = (release: "v1" | "v2") =>
      VERSIONED.every((id) => {
        const v = versions.get(id);
        return v !== undefined && (release === "v1" ? v.v1 > 0 : v.v2 < Infinity);
      });
    await eventually(() => answeredUnder("v1"), "every versioned counter to answer under release 1", 30_000);
    const ticksBefore = await ticks();

    for (const [i, old] of v1.entries()) {
      const fresh = await startNodeProcess(nodeId(`v2n${i}`), release(2));
      await eventually(() => caller.nodesFor("roll").includes(fresh.nodeId), `v2 node ${i} to join`);
      await flowing(`calls to flow with v2 node ${i}`);
      const { code } = await old.stop();
      t.is(code, 0, `v1 node ${i} stopped cleanly: ${old.stderr}`);
      await eventually(() => !caller.nodesFor("roll").includes(old.nodeId), `v1 node ${i} to leave`);
      await flowing(`calls to flow after v1 node ${i} left`);
    }
    await eventually(() => answeredUnder("v2"), "every versioned counter to answer under release 2", 30_000);
    for (const load of Object.values(loads)) await load.stop();
    publishing = false;
    await publisher;
    for (const [kind, load] of Object.entries(loads)) t.deepEqual([...load.failures], [], `no ${kind} call failed`);

    // Each counter counted every call it answered: plain ones across their moves, durable ones in the store.
    // The activation that answers now counts among those seen (the last move of an id may have had no call after it).
    const lost = async (actor: string, list: readonly string[], load: Load, read: (r: never) => number) => {
      const wrong: string[] = [];
      for (const id of list) {
        const { result, pid } = await caller.call({ actor, id, capability: "roll" });
        load.pids.get(id)?.add(pid);
        const count = read(result as never);
        if (count !== (load.answered.get(id) ?? 0) + 1) wrong.push(`${id}: ${count} after ${load.answered.get(id) ?? 0} calls`);
      }
      return wrong;
    };
    t.deepEqual(await lost("Counter", PLAIN, loads.plain, (r: { ok: number }) => r.ok), [], "every plain counter kept its count");
    t.deepEqual(await lost("DurableCounter", DURABLE, loads.durable, (r: { count: number }) => r.count), [], "no durable increment lost");
    t.deepEqual(await lost("VCounter", VERSIONED, loads.versioned, (r: { count: number }) => r.count), [], "no versioned increment lost");

    // v2 read every v1 state through migrateState, and for no counter did a v1 turn come after a v2 turn.
    const backwards = [...versions].filter(([, v]) => v.v1 >= v.v2).map(([id, v]) => `${id}: v1 answered ${v.v1}, v2 ${v.v2}`);
    t.deepEqual(backwards, [], "no v1 turn after a v2 turn");
    t.deepEqual(new Set([...versions.values()].flatMap((v) => [...v.from])), new Set([1]), "every v2 state was migrated from version 1");

    // Timers kept their counts across the moves and go on ticking.
    const ticksAfter = await ticks();
    t.true(
      ticksAfter.every((n, i) => n > ticksBefore[i]!),
      "no ticker started over",
    );
    await eventually(async () => (await ticks()).every((n, i) => n > ticksAfter[i]! + 2), "the tickers to go on ticking");

    await checkApplied(t, nc, caller, stream, sent);

    const moves = (pids: Map<string, Set<string>>) => [...pids.values()].reduce((n, s) => n + s.size - 1, 0) / pids.size;
    const calls = Object.values(loads).reduce((n, l) => n + l.calls, 0);
    t.log(
      `${calls} calls, ${sent.length} events; moves per actor: plain ${moves(loads.plain.pids).toFixed(2)}, durable ${moves(loads.durable.pids).toFixed(2)}, versioned ${moves(loads.versioned.pids).toFixed(2)} (three nodes replaced)`,
    );
    t.is(moves(loads.plain.pids), 1, "each plain actor moved once: from its v1 node to the v2 node that took its key");
    t.is(moves(loads.durable.pids), 1, "and each durable one");
  },
);

test.serial("a rollback from release 2 to release 1 under load: no call fails, plain state kept, no durable write lost", async (t) => {
  t.timeout(120_000);
  const timing = { heartbeatMs: 200, nodeTimeoutMs: 2000 };
  const base = { servers: t.context.server.url, prefix: "back", capabilities: ["roll"], ...timing };
  const release = (n: 1 | 2) => ({ ...base, appVersion: String(n), release: n }) as MeshOptions;
  const v2 = [];
  for (let i = 0; i < 3; i++) v2.push(await startNodeProcess(nodeId(`b2n${i}`), release(2)));
  const caller = await startNode(t, { prefix: "back", nodeId: nodeId("bcaller"), ...timing });
  await eventually(() => caller.nodesFor("roll").length === 3, "the caller to see three nodes");
  const plain = continuousCalls(caller, "roll", PLAIN, { actor: "Counter", workers: 16 });
  const durable = continuousCalls(caller, "roll", DURABLE, { actor: "DurableCounter", workers: 16 });
  const flowing = async (what: string) => {
    const [p, d] = [plain.calls, durable.calls];
    await eventually(() => plain.calls > p + 500 && durable.calls > d + 250, what, 30_000);
  };
  await flowing("calls to flow before the rollback");
  for (const [i, newer] of v2.entries()) {
    // Older code is never a standby: it joins under its own key and takes its share at once.
    const older = await startNodeProcess(nodeId(`b1n${i}`), release(1));
    await eventually(() => caller.nodesFor("roll").includes(older.nodeId), `v1 node ${i} to join`);
    await flowing(`calls to flow with v1 node ${i}`);
    t.is((await newer.stop()).code, 0, `v2 node ${i} stopped cleanly: ${newer.stderr}`);
    await eventually(() => !caller.nodesFor("roll").includes(newer.nodeId), `v2 node ${i} to leave`);
  }
  await flowing("calls to flow after the rollback");
  await plain.stop();
  await durable.stop();
  t.deepEqual([...plain.failures, ...durable.failures], [], "no call failed");
  for (const id of PLAIN) {
    const { result } = await caller.call<{ ok: number }>({ actor: "Counter", id, capability: "roll" });
    if (result.ok !== (plain.answered.get(id) ?? 0) + 1) t.fail(`${id}: ${result.ok} after ${plain.answered.get(id) ?? 0} calls`);
  }
  for (const id of DURABLE) {
    const { result } = await caller.call<{ count: number }>({ actor: "DurableCounter", id, capability: "roll" });
    if (result.count !== (durable.answered.get(id) ?? 0) + 1) t.fail(`${id}: ${result.count} after ${durable.answered.get(id) ?? 0}`);
  }
  const moves = [...plain.pids.values()].reduce((n, s) => n + s.size - 1, 0) / plain.pids.size;
  t.log(`${plain.calls + durable.calls} calls; moves per plain actor ${moves.toFixed(2)} (rendezvous, no standbys)`);
  t.true(moves > 0, "actors moved to the older nodes");
});
