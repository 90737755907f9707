// Timers: in memory, per activation, run as turns in the mailbox, one scheduler per node.
import anyTest from "ava";
import type { TestFn } from "ava";
import { MeshError } from "@mesh/runtime";
import type { Mesh } from "@mesh/runtime";
import { eventually, holds, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Counter, Ticker } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const tick = (mesh: Mesh, id: string, payload: object) =>
  mesh.call<string[]>({ actor: Ticker, id, payload, capability: "t" }).then((r) => r.result);
const fired = (pidPrefix: string, name: string) => Ticker.log.filter((l) => l.startsWith(pidPrefix) && l.endsWith(` ${name}`)).length;

test.serial("a timer fires once; an every-timer fires until it is cleared", async (t) => {
  const mesh = await startNode(t, { prefix: "tm1", nodeId: nodeId("tm1"), actors: [Ticker], capabilities: ["t"] });
  await tick(mesh, "a", { set: { name: "once", ms: 20 } });
  await tick(mesh, "a", { set: { name: "beat", ms: 20, every: true } });
  await eventually(async () => (await tick(mesh, "a", {})).filter((e) => e === "timer beat").length >= 3, "three beats");
  await tick(mesh, "a", { clear: "beat" });
  const events = await tick(mesh, "a", {});
  const beats = events.filter((e) => e === "timer beat").length;
  t.is(events.filter((e) => e === "timer once").length, 1, "the one-shot timer fired once");
  // Cleared: no beat comes any more, while the scheduler keeps running other timers.
  await tick(mesh, "a", { set: { name: "probe", ms: 150 } });
  await eventually(async () => (await tick(mesh, "a", {})).includes("timer probe"), "a later timer to fire");
  t.is((await tick(mesh, "a", {})).filter((e) => e === "timer beat").length, beats);
});

test.serial("timer turns run in mailbox order: a timer that falls due during a slow call waits for it", async (t) => {
  const mesh = await startNode(t, { prefix: "tm2", nodeId: nodeId("tm2"), actors: [Ticker], capabilities: ["t"] });
  await tick(mesh, "b", { set: { name: "soon", ms: 10 } });
  const events = await tick(mesh, "b", { slowMs: 200 });
  t.deepEqual(events, ["call", "slow call"], "the timer did not run inside the slow call's turn");
  await eventually(async () => (await tick(mesh, "b", {})).includes("timer soon"), "the timer to run after it");
  t.deepEqual((await tick(mesh, "b", {})).slice(0, 3), ["call", "slow call", "timer soon"]);
});

test.serial("timers end with the activation: a crash, a passivation or a stop ends them", async (t) => {
  const mesh = await startNode(t, {
    prefix: "tm3",
    nodeId: nodeId("tm3"),
    actors: [Ticker, Counter],
    capabilities: ["t"],
    idleTimeoutMs: 100,
  });
  const pid = (await mesh.call({ actor: Ticker, id: "c", payload: { set: { name: "late", ms: 400 } }, capability: "t" })).pid;
  const err = await t.throwsAsync(tick(mesh, "c", { crash: true }), { instanceOf: MeshError });
  t.is(err?.code, "ACTOR_CRASHED");
  // The idle one: set a timer, let passivation take the actor first.
  const idlePid = (await mesh.call({ actor: Ticker, id: "d", payload: { set: { name: "late", ms: 600 } }, capability: "t" })).pid;
  await eventually(() => mesh.actorCount === 0, "the idle actor to be passivated", 5000);
  await holds(() => fired(pid, "late") === 0 && fired(idlePid, "late") === 0, "no timer of an ended activation fires", 800);
});

test.serial("a bad timer is BAD_REQUEST, and 10,000 timers on 10,000 actors hold one Node timer", async (t) => {
  const mesh = await startNode(t, { prefix: "tm4", nodeId: nodeId("tm4"), actors: [Ticker, Counter], capabilities: ["t"] });
  for (const set of [
    { name: "", ms: 10 },
    { name: "x", ms: 0 },
    { name: "x", ms: Number.NaN },
  ]) {
    const err = await t.throwsAsync(tick(mesh, "bad", { set }), { instanceOf: MeshError });
    t.regex(err!.message, /BAD_REQUEST|timer/);
  }
  const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  const before = timeouts();
  const ids = Array.from({ length: 10_000 }, (_, i) => `many_${i}`);
  for (let i = 0; i < ids.length; i += 500)
    await Promise.all(ids.slice(i, i + 500).map((id) => tick(mesh, id, { set: { name: "far", ms: 600_000 } })));
  const after = timeouts();
  t.log(`Node Timeout handles: ${before} before, ${after} with 10,000 actor timers`);
  t.true(after - before <= 1, `${after - before} more Node timers`);
});

test.serial(
  "a repeating timer faster than its actor's turns keeps one firing waiting, not one per interval: the call that clears it is not refused",
  async (t) => {
    const mesh = await startNode(t, { prefix: "tm5", nodeId: nodeId("tm5"), actors: [Ticker], capabilities: ["t"], maxMailbox: 2 });
    await tick(mesh, "e", { set: { name: "beat", ms: 5, every: true } });
    let settled = false;
    const slow = tick(mesh, "e", { slowMs: 300 }).finally(() => (settled = true));
    let deepest = 0;
    while (!settled) {
      deepest = Math.max(deepest, mesh.metrics().queuedLetters);
      await new Promise((r) => setTimeout(r, 5));
    }
    await slow;
    t.true(deepest <= 1, `${deepest} letters waited in the mailbox during a 300 ms turn, with a 5 ms timer`);
    // While another slow turn runs, the call that clears the timer waits behind one firing at most: room in a mailbox of 2.
    const again = tick(mesh, "e", { slowMs: 100 });
    await eventually(() => mesh.metrics().queuedLetters === 1, "a firing to wait");
    await tick(mesh, "e", { clear: "beat" });
    await again;
    const beats = (await tick(mesh, "e", {})).filter((e) => e === "timer beat").length;
    t.is((await tick(mesh, "e", {})).filter((e) => e === "timer beat").length, beats, "cleared: no beat after it");
  },
);

test.serial("a firing whose timer was cleared before its turn came does not run", async (t) => {
  const mesh = await startNode(t, { prefix: "tm6", nodeId: nodeId("tm6"), actors: [Ticker], capabilities: ["t"] });
  // The timer falls due during the slow turn that set it (its firing waits), and that turn clears it.
  t.deepEqual(await tick(mesh, "f", { set: { name: "once", ms: 10 }, slowMs: 100, clearAfterSlow: "once" }), ["slow call", "cleared true"]);
  await eventually(() => mesh.metrics().queuedLetters === 0, "the firing's turn to come");
  t.deepEqual(await tick(mesh, "f", {}), ["slow call", "cleared true", "call"], "the cleared timer's firing did not run");
});
