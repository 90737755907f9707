// Durable reminders: stored in JetStream KV, fired by the owner of the actor's shard when due,
// through passivation and restarts; one scheduler per node.
import anyTest from "ava";
import type { TestFn } from "ava";
import type { CallContext, Mesh } from "@mesh/runtime";
import { MeshError } from "@mesh/runtime";
import { eventually, holds, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Alarm, Counter } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

type Fired = { name: string; node: string; late: number; failures: number }[];
const alarm = (mesh: Mesh, id: string, payload?: object) =>
  mesh.call<Fired>({ actor: "Alarm", id, payload, capability: "a", timeoutMs: 10_000 }).then((r) => r.result);
const count = async (mesh: Mesh, id: string, name: string) => (await alarm(mesh, id)).filter((f) => f.name === name).length;

/** An Alarm that leaves memory after 100 ms idle. */
class SleepyAlarm extends Alarm {
  static override actorType = "SleepyAlarm";
  static idleTimeoutMs = 100;
}

const options = { actors: [Alarm, SleepyAlarm, Counter], capabilities: ["a"], reminderScanMs: 200 };

test.serial("a reminder fires after its actor was passivated: the owner activates it and runs handleReminder", async (t) => {
  const mesh = await startNode(t, { prefix: "rem1", nodeId: nodeId("rem1"), ...options });
  await mesh.call({ actor: "SleepyAlarm", id: "s", payload: { remind: { name: "wake", afterMs: 800 } }, capability: "a" });
  await eventually(() => mesh.actorCount === 0, "the actor to be passivated first", 5000);
  await eventually(async () => mesh.metrics().remindersFired === 1, "the reminder to fire", 10_000);
  const fired = (await mesh.call<Fired>({ actor: "SleepyAlarm", id: "s", capability: "a" })).result;
  t.is(fired.length, 1);
  t.is(fired[0]!.name, "wake");
  t.true(fired[0]!.late < 1000, `late ${fired[0]!.late} ms`);
  await holds(() => mesh.metrics().remindersFired === 1, "a one-shot reminder fires once", 600);
});

test.serial("a repeating reminder fires until forget; a failing turn is retried with backoff and counted", async (t) => {
  const mesh = await startNode(t, { prefix: "rem2", nodeId: nodeId("rem2"), ...options });
  await alarm(mesh, "r", { remind: { name: "beat", everyMs: 150 } });
  await eventually(async () => (await count(mesh, "r", "beat")) >= 3, "three beats", 10_000);
  await alarm(mesh, "r", { forget: "beat" });
  const after = await count(mesh, "r", "beat");
  // A sentinel due four beats later: once it fired, a beat that was still set would have fired too.
  await alarm(mesh, "r", { remind: { name: "sentinel", afterMs: 600 } });
  await eventually(async () => (await count(mesh, "r", "sentinel")) === 1, "the sentinel to fire", 10_000);
  t.true((await count(mesh, "r", "beat")) <= after + 1, "at most the beat already running when forgotten");

  Alarm.failures.set("f/flaky", 2);
  await alarm(mesh, "f", { remind: { name: "flaky", afterMs: 50 } });
  await eventually(async () => (await count(mesh, "f", "flaky")) === 1, "the third try to succeed", 15_000);
  const [fired] = await alarm(mesh, "f");
  t.is(fired!.failures, 2, "the handler learned about the two failed tries");
  t.is(mesh.metrics().remindersFailed, 2);
  t.true(fired!.late >= 2500, `retried after 1 s and 2 s of backoff (late ${fired!.late} ms)`);
});

test.serial("a repeating reminder keeps firing across a restart of every node", async (t) => {
  const first = await startNode(t, { prefix: "rem3", nodeId: nodeId("rem3a"), ...options });
  await alarm(first, "k", { remind: { name: "tick", everyMs: 200 } });
  await eventually(async () => (await count(first, "k", "tick")) >= 2, "ticks on the first node", 10_000);
  await first.stop();
  const second = await startNode(t, { prefix: "rem3", nodeId: nodeId("rem3b"), ...options });
  await eventually(async () => (await alarm(second, "k")).some((f) => f.node === second.nodeId), "ticks on the new node", 10_000);
  t.true((await count(second, "k", "tick")) >= 3);
  await alarm(second, "k", { forget: "tick" });
});

test.serial("bad reminders are BAD_REQUEST: a plain actor, no handleReminder, bad times", async (t) => {
  const mesh = await startNode(t, { prefix: "rem4", nodeId: nodeId("rem4"), ...options });
  for (const remind of [
    { name: "", afterMs: 10 },
    { name: "x", afterMs: -1 },
    { name: "x", at: Number.NaN },
    { name: "x" },
    { name: "x", afterMs: 10, everyMs: 1 },
  ]) {
    const err = await t.throwsAsync(alarm(mesh, "bad", { remind }), { instanceOf: MeshError });
    t.is(err?.code, "ACTOR_CRASHED", JSON.stringify(remind));
    t.is(err?.rootCode, "BAD_REQUEST", JSON.stringify(remind));
    t.regex(err!.message, /remind|reminder|everyMs/);
  }
});

test.serial("10,000 reminders due in the same second all fire, and the node's Node timers stay few", async (t) => {
  t.timeout(120_000);
  const mesh = await startNode(t, { prefix: "rem5", nodeId: nodeId("rem5"), ...options, reminderScanMs: 5000 });
  const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  const before = timeouts();
  const at = Date.now() + 20_000; // far enough that scheduling 10,000 ends first, even on a loaded machine
  const ids = Array.from({ length: 10_000 }, (_, i) => `many_${i}`);
  for (let i = 0; i < ids.length; i += 500)
    await Promise.all(ids.slice(i, i + 500).map((id) => alarm(mesh, id, { remind: { name: "now", at: at + (i % 1000) } })));
  // A node keeps a few timers of its own (the scheduler's, a sweep of pending requests while any
  // is in flight): wait, until the reminders fall due, for those to settle. Ten thousand held
  // reminders must not show as thousands of timers, nor as any more than those few.
  await eventually(
    () => timeouts() - before <= 3,
    "the node's timers to settle while 10,000 reminders are held",
    Math.max(3000, at - Date.now() - 500),
  );
  const held = timeouts();
  t.log(`Node Timeout handles: ${before} before, ${held} with 10,000 reminders scheduled`);
  t.true(held - before <= 3, `${held - before} more Node timers`);
  await eventually(() => mesh.metrics().remindersFired >= 10_000, "all 10,000 to fire", 60_000);
  const late = mesh.metrics().reminderLateness;
  t.log(`fired ${mesh.metrics().remindersFired}; lateness histogram count ${late.count}, mean ${(late.sumMs / late.count).toFixed(0)} ms`);
  t.is(mesh.metrics().remindersFired, 10_000);
});

test.serial("under maxActors: 100, 1,000 reminders due at once all fire, once each, and live actors stay near the cap", async (t) => {
  t.timeout(120_000);
  const mesh = await startNode(t, { prefix: "rem6", nodeId: nodeId("rem6"), ...options, reminderScanMs: 5000, maxActors: 100 });
  const ids = Array.from({ length: 1000 }, (_, i) => `capped_${i}`);
  const at = Date.now() + 8000; // after every reminder is stored, even on a loaded machine
  for (let i = 0; i < ids.length; i += 100)
    await Promise.all(ids.slice(i, i + 100).map((id) => alarm(mesh, id, { remind: { name: "burst", at } })));
  t.is(mesh.metrics().remindersHeld, ids.length, "every reminder set is held: due within the horizon");
  let peak = 0;
  const watch = setInterval(() => (peak = Math.max(peak, mesh.actorCount)), 5);
  t.teardown(() => clearInterval(watch));
  await eventually(() => mesh.metrics().remindersFired >= ids.length, "all 1,000 to fire", 60_000);
  clearInterval(watch);
  await holds(() => mesh.metrics().remindersFired === ids.length, "each fires once", 500);
  t.is(mesh.metrics().remindersFailed, 0);
  await eventually(() => mesh.metrics().remindersHeld === 0, "fired reminders to be let go");
  // Half the cap at most runs reminder turns; each new activation evicts an idle one.
  t.true(peak <= 100 + 50 + 1, `peak live actors ${peak}`);
  t.log(`peak live actors while 1,000 fired: ${peak}`);
  for (const id of ["capped_0", "capped_499", "capped_999"]) t.is(await count(mesh, id, "burst"), 1, id);
});

/** Stores `n` reminders due in an hour: a scan then reads them all (hundreds of milliseconds), holding none. */
async function fill(mesh: Mesh, n: number): Promise<void> {
  const at = Date.now() + 3_600_000;
  for (let i = 0; i < n; i += 250)
    await Promise.all(
      Array.from({ length: Math.min(250, n - i) }, (_, k) => alarm(mesh, `filler_${i + k}`, { remind: { name: "later", at } })),
    );
}

test.serial(
  "a reminder set at once after Mesh.start fires on time: the start's scan, reading 5,000 others, does not drop it",
  async (t) => {
    t.timeout(60_000);
    // The default scan period (30 s): a reminder the first scan dropped would wait for the next one.
    const o = { prefix: "rem7", nodeId: nodeId("rem7"), actors: [Alarm], capabilities: ["a"] };
    const before = await startNode(t, o);
    await fill(before, 5000);
    await before.stop();
    const mesh = await startNode(t, o);
    await alarm(mesh, "early", { remind: { name: "welcome", afterMs: 200 } });
    await eventually(async () => (await count(mesh, "early", "welcome")) === 1, "the reminder to fire", 5000);
    t.pass();
  },
);

test.serial("reminders set while a node joins (every node scans 5,000 stored ones) fire on time", async (t) => {
  t.timeout(60_000);
  const o = { prefix: "rem8", actors: [Alarm], capabilities: ["a"] };
  const a = await startNode(t, { ...o, nodeId: nodeId("rem8a") });
  await fill(a, 5000);
  const ids = Array.from({ length: 100 }, (_, i) => `join_${i}`);
  const joining = startNode(t, { ...o, nodeId: nodeId("rem8b") });
  await Promise.all(ids.map((id) => alarm(a, id, { remind: { name: "soon", afterMs: 300 } })));
  const b = await joining;
  const fired = () => a.metrics().remindersFired + b.metrics().remindersFired;
  await eventually(() => fired() >= ids.length, "every reminder to fire", 10_000);
  await holds(() => fired() === ids.length, "each once", 500);
  t.pass();
});

/** Sets a reminder without awaiting it, in a handler that returns at once: the promise is kept for the test. */
class Careless {
  static actorType = "Careless";
  static durable = true;
  static pending: Promise<void>[] = [];
  static fired = 0;
  state = { calls: 0 };
  handleCall(_p: unknown, ctx: CallContext): number {
    Careless.pending.push(ctx.remind("soon", { afterMs: 200 }));
    return ++this.state.calls;
  }
  handleReminder(): void {
    Careless.fired++;
  }
}

/** The same mistake, the promise dropped: its rejection must not end the process (ava fails a file on an unhandled rejection). */
class Forgetful extends Careless {
  static override actorType = "Forgetful";
  override handleCall(_p: unknown, ctx: CallContext): number {
    void ctx.remind("soon", { afterMs: 200 });
    return ++this.state.calls;
  }
}

test.serial("a remind not awaited, whose turn ended before it was stored, fails with BAD_REQUEST and leaves nothing stored", async (t) => {
  const warned: string[] = [];
  const logger = { debug: () => {}, info: () => {}, warn: (f: { err?: string }) => void warned.push(f.err ?? ""), error: () => {} };
  const actors = [Careless, Forgetful];
  const mesh = await startNode(t, { prefix: "rem9", nodeId: nodeId("rem9"), actors, capabilities: ["a"], reminderScanMs: 200, logger });
  t.is((await mesh.call<number>({ actor: Careless, id: "c", capability: "a" })).result, 1);
  const err = await t.throwsAsync(Careless.pending[0]!, { instanceOf: MeshError });
  t.is(err?.code, "BAD_REQUEST");
  t.regex(err!.message, /after its turn had ended: await ctx\.remind/);
  await eventually(() => mesh.metrics().remindersHeld === 0, "nothing held");
  // Later turns commit nothing of it: no reminder fires, at its time or after a scan.
  t.is((await mesh.call<number>({ actor: Careless, id: "c", capability: "a" })).result, 2);
  await t.throwsAsync(Careless.pending[1]!, { instanceOf: MeshError });
  await holds(() => Careless.fired === 0 && mesh.metrics().remindersHeld === 0, "no reminder fires", 800);
  // Dropped: logged, and the node serves on.
  t.is((await mesh.call<number>({ actor: Forgetful, id: "f", capability: "a" })).result, 1);
  await eventually(() => warned.some((w) => w.includes('reminder "soon" of Forgetful f was set after its turn had ended')), "the warning");
  t.is((await mesh.call<number>({ actor: Forgetful, id: "f", capability: "a" })).result, 2);
});
