// Live migration (docs/behaviour.md "Live migration"): a plain activation whose
// shard moves, or whose node stops, goes to its new owner with its state and
// its timers, instead of starting afresh there.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import type { CallContext, Logger, Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import { meshCli } from "./helpers/cli.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

type Order = { alarmMs?: number } | undefined;

/** Counts its calls; an alarm fires once after alarmMs. Records activations and deactivations. */
class Kept {
  static actorType = "Kept";
  static activated = 0;
  static deactivated: string[] = [];
  n = 0;
  alarms = 0;
  constructor(readonly id: string) {}
  onActivate(): void {
    Kept.activated++;
  }
  handleCall(p: Order, ctx: CallContext): { n: number; alarms: number; node: string } {
    if (p?.alarmMs) ctx.setTimer("alarm", p.alarmMs);
    return { n: ++this.n, alarms: this.alarms, node: ctx.nodeId };
  }
  handleTimer(): void {
    this.alarms++;
  }
  onDeactivate(reason: string): void {
    Kept.deactivated.push(`${this.id}:${reason}`);
  }
}

/** Opts out: starts afresh on its new owner, as before live migration. */
class Stays extends Kept {
  static override actorType = "Stays";
  static migrate = false;
}

/** Holds what the value model does not carry (a Map): it cannot move, and starts afresh. */
class Unmovable extends Kept {
  static override actorType = "Unmovable";
  seen = new Map<string, number>();
}

/** Shapes what moves: only `n`, under another name, and says it was rehydrated. */
class Shaped extends Kept {
  static override actorType = "Shaped";
  rehydrated = false;
  dehydrate(): unknown {
    return { count: this.n };
  }
  rehydrate(data: { count: number }): void {
    this.n = data.count;
    this.rehydrated = true;
  }
  override handleCall(p: Order, ctx: CallContext): { n: number; alarms: number; node: string; rehydrated?: boolean } {
    return { ...super.handleCall(p, ctx), rehydrated: this.rehydrated };
  }
}

/** Its rehydrate throws: it starts as usual on the new owner (onActivate), and its calls do not fail. */
class BadRehydrate extends Kept {
  static override actorType = "BadRehydrate";
  rehydrate(): void {
    throw new Error("cannot take this shape");
  }
}

const IDS = Array.from({ length: 60 }, (_, i) => `m${i}`);

async function cluster(t: ExecutionContext<ClusterContext>, prefix: string, logger?: Logger): Promise<[Mesh, Mesh, Mesh]> {
  const options = { prefix, actors: [Kept, Stays, Unmovable, Shaped, BadRehydrate], capabilities: ["mig"], ...(logger ? { logger } : {}) };
  const nodes = [await startNode(t, { ...options, nodeId: nodeId("ma") }), await startNode(t, { ...options, nodeId: nodeId("mb") })];
  const caller = await startNode(t, { prefix, nodeId: nodeId("mcaller") });
  await eventually(() => caller.nodesFor("mig").length === 2 && nodes.every((n) => n.nodesFor("mig").length === 2), "two nodes");
  return [nodes[0]!, nodes[1]!, caller];
}

const call = (caller: Mesh, actor: string, id: string, payload?: Order) =>
  caller
    .call<{ n: number; alarms: number; node: string; rehydrated?: boolean }>({ actor, id, payload, capability: "mig" })
    .then((r) => r.result);

test.serial(
  "a node that stops hands its plain actors to the others with their state and their timers; onActivate and onDeactivate do not run",
  async (t) => {
    const [a, b, caller] = await cluster(t, "migstop");
    for (const id of IDS) for (let i = 0; i < 3; i++) await call(caller, "Kept", id);
    const onA = IDS.filter((id) => a.ownerNode(a.shardFor(id), "mig") === a.nodeId);
    t.true(onA.length > 0 && onA.length < IDS.length, `${onA.length} of ${IDS.length} on a`);
    // An alarm set just before the stop, due after it: it must fire on the new owner.
    for (const id of onA) await call(caller, "Kept", id, { alarmMs: 300 });
    Kept.activated = 0;
    Kept.deactivated = [];
    const moving = a.metrics();
    await a.stop();
    t.is(moving.actors, onA.length);
    for (const id of onA) {
      const r = await call(caller, "Kept", id);
      t.is(r.node, b.nodeId);
      t.is(r.n, 5, `${id} kept its count`);
    }
    await eventually(
      async () => (await Promise.all(onA.map((id) => call(caller, "Kept", id)))).every((r) => r.alarms === 1),
      "the moved alarms to fire on b",
    );
    t.is(Kept.activated, 0, "no onActivate for a moved actor");
    t.deepEqual(Kept.deactivated, [], "no onDeactivate for a moved actor");
    t.is(b.metrics().migrationsIn, onA.length);
    const status = await meshCli("status", "--json", "-p", "migstop", "-s", t.context.server.url);
    const report = JSON.parse(status.stdout) as { nodes: { node: string; migrations: { in: number; out: number; refused: number } }[] };
    t.deepEqual(
      report.nodes.find((n) => n.node === b.nodeId)?.migrations,
      { in: onA.length, out: 0, refused: 0 },
      "mesh status shows them",
    );
  },
);

test.serial(
  "static migrate = false starts afresh on the new owner, deactivated on the old one; state that cannot move starts afresh, counted and logged once per class",
  async (t) => {
    const warned: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (f: object, m: string) => void warned.push(`${m} ${JSON.stringify(f)}`) };
    const [a, b, caller] = await cluster(t, "migopt", logger);
    const onA = IDS.filter((id) => a.ownerNode(a.shardFor(id), "mig") === a.nodeId);
    for (const actor of ["Stays", "Unmovable", "Shaped", "BadRehydrate"])
      for (const id of onA) for (let i = 0; i < 2; i++) await call(caller, actor, id);
    Kept.deactivated = [];
    await a.stop();
    for (const id of onA) {
      t.is((await call(caller, "Stays", id)).n, 1, `Stays ${id} started afresh`);
      t.is((await call(caller, "Unmovable", id)).n, 1, `Unmovable ${id} started afresh`);
      const shaped = await call(caller, "Shaped", id);
      t.deepEqual([shaped.n, shaped.rehydrated], [3, true], `Shaped ${id} moved through dehydrate and rehydrate`);
      t.is((await call(caller, "BadRehydrate", id)).n, 1, `BadRehydrate ${id}: started as usual, its call answered`);
    }
    t.is(Kept.deactivated.filter((d) => d.endsWith(":shutdown")).length, 2 * onA.length, "Stays and Unmovable were deactivated");
    t.is(a.metrics().migrationsRefused, onA.length, "each Unmovable counted");
    t.is(warned.filter((w) => w.includes("cannot move") && w.includes("Unmovable")).length, 1, warned.join("\n"));
    t.is(b.metrics().migrationsIn, onA.length, "only the Shaped ones arrived");
    t.is(b.metrics().migrationsRefused, onA.length, "each BadRehydrate counted on the new owner");
    t.true(
      warned.some((w) => w.includes("cannot move") && w.includes("BadRehydrate")),
      warned.join("\n"),
    );
  },
);
