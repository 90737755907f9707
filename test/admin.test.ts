// The admin API on each node's status subject (docs/observability.md "Admin
// API"), asked by a plain NATS client as an operator's tool would: the answers
// match what the test did. Refused to a client role: security.test.ts.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Alarm, Counter, Slow } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

/** One admin question to node `node` under `prefix`: the parsed answer. */
async function ask(t: ExecutionContext<ClusterContext & { nc: NatsConnection }>, prefix: string, node: string, q: object | string) {
  const body = typeof q === "string" ? q : JSON.stringify(q);
  const reply = await t.context.nc.request(`${prefix}.status.${node}`, new TextEncoder().encode(body), { timeout: 5000 });
  return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown> & { ok?: boolean };
}

test.serial(
  "the admin API answers what the test did: the node, activations per type, the hot actor, a blocked actor's turn and queue, the shard map",
  async (t) => {
    const prefix = "admin";
    const a = await startNode(t, { prefix, nodeId: nodeId("a"), actors: [Counter, Slow], capabilities: ["c"], appVersion: "7" });
    const b = await startNode(t, { prefix, nodeId: nodeId("b"), actors: [Counter, Slow], capabilities: ["c"], appVersion: "7" });
    await eventually(() => a.nodesFor("c").length === 2 && b.nodesFor("c").length === 2, "both nodes in both views");

    // 30 Counters, 3,200 calls to one of them; 5 Slows.
    for (let i = 0; i < 30; i++) await a.call({ actor: Counter, id: `n${i}`, capability: "c" });
    for (let i = 0; i < 3200; i++) await a.call({ actor: Counter, id: "hot", capability: "c" });
    for (let i = 0; i < 5; i++) await a.call({ actor: Slow, id: `s${i}`, capability: "c", payload: { ms: 0 } });

    const node = await ask(t, prefix, a.nodeId, { q: "node" });
    t.like(node, {
      ok: true,
      node: a.nodeId,
      q: "node",
      answer: { node: a.nodeId, appVersion: "7", capabilities: ["c"], lease: { held: true } },
    });
    const load = node.answer as { uptimeMs: number; memory: { rss: number }; eventLoopDelayMs: { p99: number } };
    t.true(load.uptimeMs > 0 && load.memory.rss > 0 && load.eventLoopDelayMs.p99 >= 0);

    const types = [a, b].map((m) => ask(t, prefix, m.nodeId, { q: "types" }));
    const [ta, tb] = (await Promise.all(types)).map((r) => r.answer as Record<string, number>);
    t.is(ta!.Counter! + tb!.Counter!, 31, "31 Counters live across the two nodes");
    t.is(ta!.Slow! + tb!.Slow!, 5);

    // The hot actor is at the top of its owner's list (sampled: 1 turn in 32, so about 100 of its 3,200).
    const tops = await Promise.all([a, b].map((m) => ask(t, prefix, m.nodeId, { q: "top", n: 5 })));
    const first = tops.map((r) => (r.answer as { id: string; perSecond: number }[])[0]).filter((x) => x !== undefined);
    t.true(
      first.some((r) => r.id === "hot"),
      JSON.stringify(tops),
    );
    t.like(await ask(t, prefix, a.nodeId, { q: "top", by: "p99" }), { ok: true });
    const rates = await Promise.all(
      [a, b].map(async (m) => (await ask(t, prefix, m.nodeId, { q: "rates" })).answer as Record<string, { perSecond: number }>),
    );
    t.true(
      rates.some((r) => (r.Counter?.perSecond ?? 0) > 0),
      JSON.stringify(rates),
    );

    // A blocked actor: a 3 s turn and two calls waiting behind it.
    const where = await a.call<{ calls: number }>({ actor: Slow, id: "blocked", capability: "c", payload: { ms: 0 } });
    const blockedNode = [a, b].find((m) => where.pid.startsWith(`${m.nodeId}/`))!;
    const long = a.call({ actor: Slow, id: "blocked", capability: "c", payload: { ms: 3000 }, timeoutMs: 10_000 });
    const queued = [1, 2].map(() => a.call({ actor: Slow, id: "blocked", capability: "c", payload: { ms: 0 }, timeoutMs: 10_000 }));
    let view: { turn?: { kind: string; ageMs: number }; queue: number; phase: string }[] = [];
    await eventually(async () => {
      view = (await ask(t, prefix, blockedNode.nodeId, { q: "actor", actor: "Slow", id: "blocked" })).answer as typeof view;
      return view.length === 1 && view[0]!.queue === 2 && (view[0]!.turn?.ageMs ?? 0) >= 100;
    }, "the blocked actor's view: a call turn running for a while, two waiting");
    t.is(view[0]!.turn!.kind, "call");
    t.true(view[0]!.turn!.ageMs < 3000, `${view[0]!.turn!.ageMs} ms`);
    await Promise.all([long, ...queued]);
    t.deepEqual((await ask(t, prefix, blockedNode.nodeId, { q: "actor", actor: "Slow", id: "never" })).answer, []);

    // The shard map: every shard owned by one of the two nodes, as both see it.
    const shards = (await ask(t, prefix, a.nodeId, { q: "shards", capability: "c" })).answer as {
      shards: number;
      nodes: string[];
      owners: number[];
    };
    t.is(shards.owners.length, shards.shards);
    t.deepEqual([...shards.nodes].sort(), [a.nodeId, b.nodeId].sort());
    t.deepEqual((await ask(t, prefix, b.nodeId, { q: "shards", capability: "c" })).answer, shards);
    t.is((await ask(t, prefix, a.nodeId, { q: "shards", capability: "nobody" })).answer, null);
    t.deepEqual((await ask(t, prefix, a.nodeId, { q: "subscriptions" })).answer, []);
    t.deepEqual((await ask(t, prefix, a.nodeId, { q: "reminders" })).answer, []);
  },
);

test.serial("the admin API refuses bad questions with BAD_REQUEST and still answers an empty request with the metrics", async (t) => {
  const prefix = "adminbad";
  const a = await startNode(t, { prefix, nodeId: nodeId("a"), actors: [Counter], capabilities: ["c"] });
  for (const bad of [
    "{",
    "[]",
    '"node"',
    JSON.stringify({ q: "nope" }),
    JSON.stringify({ q: "top", n: 0 }),
    JSON.stringify({ q: "top", by: "x" }),
    JSON.stringify({ q: "actor" }),
  ]) {
    const r = await ask(t, prefix, a.nodeId, bad);
    t.false(r.ok, bad);
    t.is((r.error as { code: string }).code, "BAD_REQUEST", bad);
  }
  const metrics = await ask(t, prefix, a.nodeId, "");
  t.is(metrics.node, a.nodeId);
  t.true("callsServed" in metrics);
});

test.serial("the admin API lists the reminders a node holds that are due soon, soonest first", async (t) => {
  const prefix = "adminrem";
  const a = await startNode(t, { prefix, nodeId: nodeId("a"), actors: [Alarm], capabilities: ["c"] });
  await a.call({ actor: Alarm, id: "r", capability: "c", payload: { remind: { name: "later", afterMs: 40_000 } } });
  await a.call({ actor: Alarm, id: "r", capability: "c", payload: { remind: { name: "sooner", afterMs: 20_000 } } });
  await a.call({ actor: Alarm, id: "r", capability: "c", payload: { remind: { name: "tomorrow", afterMs: 24 * 3600_000 } } });
  let due: { name: string; id: string; runAt: number }[] = [];
  await eventually(async () => {
    due = (await ask(t, prefix, a.nodeId, { q: "reminders", withinMs: 60_000 })).answer as typeof due;
    return due.length === 2;
  }, "the node to hold the two reminders due within a minute");
  t.deepEqual(
    due.map((r) => [r.id, r.name]),
    [
      ["r", "sooner"],
      ["r", "later"],
    ],
  );
  const first = (await ask(t, prefix, a.nodeId, { q: "reminders", withinMs: 30_000, n: 1 })).answer as typeof due;
  t.deepEqual(
    first.map((r) => r.name),
    ["sooner"],
  );
});

test("the hot-actor sampler counts about every turn, whatever the order callers take (no aliasing), and keeps at most 1,000 actors a slot", async (t) => {
  type Hot = {
    skip: number;
    turn(who: object, ms: number): void;
    top(n: number, by: string): { id: string; perSecond: number }[];
    rates(): Record<string, { perSecond: number }>;
  };
  const { HotActors } = (await import(new URL("../../packages/runtime/lib/operations/hot-actors.js", import.meta.url).href)) as {
    HotActors: new () => Hot;
  };
  const hot = new HotActors();
  const actor = (id: string) => ({ pid: `n/A/${id}#1`, capability: "c", actorType: "A", id });
  const [a, b] = [actor("a"), actor("b")];
  const started = performance.now();
  for (let i = 0; i < 32_000; i++) {
    const who = i % 2 === 0 ? a : b; // alternating callers: a fixed period of 16 would see only one of them
    if (--hot.skip <= 0) hot.turn(who, 0.1);
  }
  for (let i = 0; i < 5000; i++) if (--hot.skip <= 0) hot.turn(actor(`cold${i}`), -1);
  const seconds = Math.max(1, (performance.now() - started) / 1000);
  const rows = hot.top(2, "calls");
  t.deepEqual(rows.map((r) => r.id).sort(), ["a", "b"]);
  for (const r of rows) t.true(Math.abs(r.perSecond * seconds - 16_000) < 2_000, `${r.id}: ${r.perSecond * seconds} of 16,000 turns`);
  t.true(Math.abs(hot.rates().A!.perSecond * seconds - 37_000) < 1_000, JSON.stringify(hot.rates()));
  t.true(hot.top(5000, "calls").length <= 1000, "at most 1,000 actors a slot");
});
