// What waits in a crashed actor's mailbox keeps its kind and its call chain:
// timer turns end with the activation that set them, a reminder's turn runs as
// a reminder in the fresh activation, a call between actors keeps its chain.
import anyTest from "ava";
import type { TestFn } from "ava";
import { MeshError } from "@mesh/runtime";
import type { CallContext, Mesh, ReminderInfo } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const gates = new Map<string, () => void>();
const gate = (key: string) => new Promise<void>((resolve) => gates.set(key, resolve));
const open = (key: string) => gates.get(key)?.();

/** What each handler received, in this process. */
const seen = { casts: [] as unknown[], calls: [] as unknown[], timers: [] as string[], reminders: [] as string[] };

type Order = { tick?: number; crashAt?: string; holdAt?: string; remind?: number; callBack?: string; via?: string };

/** Sets timers (and reminders, when durable), crashes at a gate, and calls other actors of its type on request. */
class Crashy {
  async handleCall(p: Order | undefined, ctx: CallContext): Promise<unknown> {
    seen.calls.push(p);
    if (p?.tick !== undefined) ctx.setTimer("tick", p.tick, { every: true });
    if (p?.remind !== undefined) await ctx.remind("ring", { afterMs: p.remind });
    if (p?.holdAt !== undefined) await gate(p.holdAt);
    if (p?.crashAt !== undefined) {
      await gate(p.crashAt);
      throw new Error("crash on purpose");
    }
    // A call between actors: its chain says who waits on it.
    if (p?.via !== undefined) return (await ctx.call({ actor: Crashy, id: p.via, payload: { callBack: ctx.id }, capability: "k" })).result;
    if (p?.callBack !== undefined) {
      try {
        await ctx.call({ actor: Crashy, id: p.callBack, capability: "k", timeoutMs: 3000 });
        return "answered";
      } catch (err) {
        return (err as MeshError).code;
      }
    }
    return ctx.pid;
  }
  handleCast(p: unknown): void {
    seen.casts.push(p);
  }
  handleTimer(name: string, ctx: CallContext): void {
    seen.timers.push(`${ctx.pid} ${name}`);
  }
  handleReminder(name: string, _info: ReminderInfo, ctx: CallContext): void {
    seen.reminders.push(`${ctx.pid} ${name}`);
  }
}

/** Crashy, durable: it may set reminders. */
class DurableCrashy extends Crashy {
  static durable = true;
  state = { n: 0 };
}

const test = anyTest as TestFn<ClusterContext & { mesh: Mesh }>;
useNatsServer(test, async (t) => {
  t.context.mesh = await startNode(t, {
    nodeId: nodeId("kinds"),
    actors: [Crashy, DurableCrashy],
    capabilities: ["k"],
    reminderScanMs: 200,
  });
});

const call = (mesh: Mesh, id: string, payload?: Order, actor: typeof Crashy = Crashy) =>
  mesh.call({ actor, id, payload, capability: "k", timeoutMs: 10_000 });
const waiting = (mesh: Mesh) => mesh.metrics().queuedLetters;

test.serial(
  "timer turns queued behind a crashing turn end with it: the fresh activation gets no cast, no call, no timer of the old one",
  async (t) => {
    const { mesh } = t.context;
    const first = (await call(mesh, "t", { tick: 2 })).pid;
    const crash = call(mesh, "t", { crashAt: "t" });
    await eventually(() => waiting(mesh) >= 1, "a timer turn to queue behind the crashing turn (one at most: timers.md)");
    const calls = seen.calls.length;
    open("t");
    const err = await t.throwsAsync(crash, { instanceOf: MeshError });
    t.is(err?.code, "ACTOR_CRASHED");
    const fresh = (await call(mesh, "t")).pid;
    t.not(fresh, first, "a fresh activation answers");
    t.deepEqual(seen.casts, [], "no queued timer turn came back as a cast");
    t.is(seen.calls.length - calls, 1, "nor as a call: the fresh activation ran only the call made to it");
    t.false(
      seen.timers.some((l) => l.startsWith(`${fresh} `)),
      "the fresh activation ran no timer turn: the timer ended with the activation that set it",
    );
    t.is(waiting(mesh), 0);
  },
);

test.serial(
  "a reminder's turn queued behind a crashing turn runs as a reminder in the fresh activation, once, and only then counts as fired",
  async (t) => {
    const { mesh } = t.context;
    await call(mesh, "r", { remind: 100 }, DurableCrashy);
    const crash = call(mesh, "r", { crashAt: "r" }, DurableCrashy);
    await eventually(() => waiting(mesh) >= 1, "the reminder's turn to queue behind the crashing turn");
    t.is(mesh.metrics().remindersFired, 0, "not fired while its turn waits");
    const calls = seen.calls.length;
    open("r");
    t.is((await t.throwsAsync(crash, { instanceOf: MeshError }))?.code, "ACTOR_CRASHED");
    await eventually(() => mesh.metrics().remindersFired === 1, "the reminder to fire in the fresh activation");
    t.is(seen.reminders.filter((l) => l.endsWith(" ring")).length, 1, "handleReminder ran once");
    t.deepEqual(seen.calls.slice(calls), [], "handleCall never saw the reminder");
    t.deepEqual(seen.casts, []);
  },
);

test.serial(
  "a call between actors queued behind a crashing turn keeps its chain in the fresh activation: a call back is CALL_CYCLE at once",
  async (t) => {
    const { mesh } = t.context;
    await call(mesh, "b");
    const crash = call(mesh, "b", { crashAt: "b" });
    await eventually(() => waiting(mesh) === 0, "b's crashing turn to run");
    // a's turn calls b, which waits behind b's crashing turn; a's call carries the chain [a].
    const viaA = call(mesh, "a", { via: "b" });
    await eventually(() => waiting(mesh) >= 1, "a's call to queue at b");
    open("b");
    t.is((await t.throwsAsync(crash, { instanceOf: MeshError }))?.code, "ACTOR_CRASHED");
    // The fresh b calls a back: a waits on b, so the chain must make it CALL_CYCLE (without it: a TIMEOUT).
    t.is((await viaA).result, "CALL_CYCLE");
  },
);

test.serial(
  "when an actor moves to a node that joins, its queued timer turns end with it and its queued reminder is not run as a call: the new owner gets no cast, and the reminder fires there",
  async (t) => {
    const options = { prefix: "kmove", actors: [Crashy, DurableCrashy], reminderScanMs: 200 };
    const a = await startNode(t, { ...options, nodeId: nodeId("ka"), capabilities: ["k"] });
    const b = await startNode(t, { ...options, nodeId: nodeId("kb"), capabilities: ["elsewhere"] });
    await eventually(() => a.nodesFor("elsewhere").length === 1 && b.nodesFor("k").length === 1, "the two nodes to see each other");
    // Plain actors with a 2 ms timer, durable ones with a reminder due in 100 ms; every one held in a turn.
    const plain = Array.from({ length: 12 }, (_, i) => `m${i}`);
    const durable = Array.from({ length: 12 }, (_, i) => `d${i}`);
    for (const id of [...plain, ...durable]) gates.delete(id);
    for (const id of plain) await call(a, id, { tick: 2 });
    // Each durable actor sets its reminder in the turn that then holds: it cannot fire before that turn, however slow the machine.
    const held = [
      ...plain.map((id) => call(a, id, { holdAt: id })),
      ...durable.map((id) => call(a, id, { remind: 100, holdAt: id }, DurableCrashy)),
    ];
    await eventually(
      () => [...plain, ...durable].every((id) => gates.has(id)) && waiting(a) >= plain.length + durable.length, // one timer turn each at most
      "every turn to be held, and timer and reminder turns to queue behind them",
    );
    const casts = seen.casts.length;
    const calls = seen.calls.length;
    await b.registerCapabilities(["k"]);
    await eventually(() => a.nodesFor("k").length === 2, "node a to see node b take capability k");
    const movedTo = (id: string) => a.ownerNode(a.shardFor(id), "k") === b.nodeId;
    const moved = [...plain, ...durable].filter(movedTo);
    t.true(moved.length > 0, "some actors move to the new node"); // 24 ids stay all on a with a chance of 2^-24
    for (const id of [...plain, ...durable]) open(id);
    await Promise.all(held);
    // Each moved plain actor answers from its new owner. Called through a: whatever a handed on to b left on
    // the same connection before this call, so b has run it by the time the call is answered.
    for (const id of plain.filter(movedTo)) t.true((await call(a, id)).pid.startsWith(`${b.nodeId}/`), id);
    t.deepEqual(seen.casts.slice(casts), [], "no queued timer turn went on as a cast");
    // Every moved durable actor's reminder fires on the new owner, as a reminder.
    for (const id of durable.filter(movedTo)) {
      await eventually(() => seen.reminders.some((l) => l.startsWith(`${b.nodeId}/DurableCrashy/${id}#`)), `${id}'s reminder to fire on b`);
    }
    const sinceMove = seen.calls.slice(calls) as (Order & { name?: unknown })[];
    t.false(
      sinceMove.some((p) => p !== null && typeof p === "object" && "name" in p),
      "handleCall never saw a reminder",
    );
  },
);
