// Events in and out (docs/events.md): JetStream streams feeding actors in order
// per key, applied once by durable actors, dead letters, and messages published
// from turns, against a real nats-server.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh, MeshError } from "@mesh/runtime";
import type { CallContext, StreamEvent } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { eventActors } from "./helpers/event-actors.js";
import type { LedgerState } from "./helpers/event-actors.js";
import { readStream, setUpStreams } from "./helpers/streams.js";

const CLI = fileURLToPath(new URL("../../packages/runtime/lib/operations/cli.js", import.meta.url));

/** Runs the mesh tool; resolves with what it printed. */
function meshTool(...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout) => resolve({ code: err ? 1 : 0, stdout })),
  );
}

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

/** Publishes `count` events over `keys` ids, round robin: { n: i + 1 }, some with extra fields. */
async function publishEvents(
  nc: NatsConnection,
  stream: string,
  keys: number,
  count: number,
  extra: (i: number) => object = () => ({}),
): Promise<void> {
  const js = nc.jetstream();
  const acks = [];
  for (let i = 0; i < count; i++) acks.push(js.publish(`${stream}.in.k${i % keys}`, JSON.stringify({ n: i + 1, ...extra(i) })));
  await Promise.all(acks);
}

test.serial("durable actors apply each event once, in stream order per key, and publish with the commit", async (t) => {
  const stream = "LEDGER1";
  await setUpStreams(t.context.nc, stream);
  const { EventLedger } = eventActors(stream);
  const nodes = await Promise.all(
    [1, 2].map(() => startNode(t, { nodeId: nodeId("ev"), prefix: "ev1", actors: [EventLedger], capabilities: ["ev"], metricsPort: 0 })),
  );
  await eventually(() => nodes.every((n) => n.nodesFor("ev").length === 2), "two nodes to see each other");
  await publishEvents(t.context.nc, stream, 10, 200);
  const expected = (k: number) => Array.from({ length: 20 }, (_, j) => j * 10 + k + 1).reduce((a, b) => a + b, 0);
  const ledger = (k: number) => nodes[0]!.call<LedgerState>({ actor: "EventLedger", id: `k${k}`, capability: "ev" }).then((r) => r.result);
  await eventually(() => nodes.flatMap((n) => n.metrics().events).reduce((a, r) => a + r.handled, 0) === 200, "every event to be handled");
  for (let k = 0; k < 10; k++) {
    const state = await ledger(k);
    t.is(state.total, expected(k), `k${k}: the sum of its events`);
    t.deepEqual(
      state.seqs,
      Array.from({ length: 20 }, (_, j) => j * 10 + k + 1),
      `k${k}: every event once, in stream order`,
    );
  }
  const out = await readStream(t.context.nc, `${stream}_OUT`, 200);
  t.is(out.length, 200, "one message out per event");
  t.deepEqual(new Set(out.map((m) => (m.json as { seq: number }).seq)).size, 200, "each event's message exactly once");
  const report = nodes.flatMap((n) => n.metrics().events);
  t.is(
    report.reduce((a, r) => a + r.handled, 0),
    200,
  );
  t.is(
    report.reduce((a, r) => a + r.dispatchers.length, 0),
    1,
    "one dispatcher in the cluster",
  );
  t.true(nodes.reduce((a, n) => a + n.metrics().published, 0) >= 200);
  // What an operator sees: mesh events, and the Prometheus series. The lag a message carries can be stale (the stream grew as it was read): the dispatcher asks its consumer once idle.
  await eventually(
    () =>
      report.flatMap((r) => r.dispatchers).length === 1 &&
      nodes
        .flatMap((n) => n.metrics().events)
        .flatMap((r) => r.dispatchers)
        .every((d) => d.lag === 0),
    "the dispatcher's lag to come to 0",
  );
  const cli = await meshTool("events", "-s", t.context.server.url, "-p", "ev1", "--json");
  const seen = (
    JSON.parse(cli.stdout) as { subscriptions: { subscription: string; handled: number; dispatchers: { floor: number; lag: number }[] }[] }
  ).subscriptions;
  t.is(seen.length, 1);
  t.like(seen[0], { subscription: "ev.EventLedger.ledger", handled: 200 });
  t.deepEqual(
    seen[0]!.dispatchers.map((d) => [d.floor, d.lag]),
    [[200, 0]],
  );
  const table = await meshTool("events", "-s", t.context.server.url, "-p", "ev1");
  t.regex(table.stdout, /ev\.EventLedger\.ledger\s+LEDGER1\s+0\s+200\s+0\s+200\s/);
  t.regex(table.stdout, /\* since each live node started/);
  const text = await (await fetch(nodes[0]!.metricsUrl!)).text();
  t.regex(text, /mesh_events_handled_total\{subscription="ev.EventLedger.ledger",node="[^"]+"\} \d+/);
  t.regex(text, /mesh_events_dead_letters_total/);
  t.regex(text, /mesh_outbox_depth\{node="[^"]+"\} 0/);
});

test.serial(
  "a failing event is retried, then dead-lettered with its error, and its key goes on; nothing it published goes out",
  async (t) => {
    const stream = "LEDGER2";
    await setUpStreams(t.context.nc, stream);
    const { EventLedger, EventTally } = eventActors(stream);
    const node = await startNode(t, { nodeId: nodeId("ev"), prefix: "ev2", actors: [EventLedger, EventTally], capabilities: ["ev"] });
    // Event 3 (of k0) fails every time; event 6 (k1) grows the state past the store's limit.
    await publishEvents(t.context.nc, stream, 2, 8, (i) => (i === 2 ? { fail: true } : i === 5 ? { big: true } : {}));
    const state = (actor: string, id: string) => node.call<LedgerState>({ actor, id, capability: "ev" }).then((r) => r.result);
    await eventually(
      async () => (await state("EventLedger", "k1")).seqs.length === 3 && (await state("EventLedger", "k0")).seqs.length === 3,
      "the ledger's good events",
      20_000,
    );
    t.deepEqual((await state("EventLedger", "k0")).seqs, [1, 5, 7]);
    t.deepEqual((await state("EventLedger", "k1")).seqs, [2, 4, 8]);
    // A plain actor's memory goes with the activation that crashed: the next one starts afresh.
    await eventually(
      async () => (await state("EventTally", "k0")).seqs.join() === "5,7",
      "the tally's good events after the crash",
      20_000,
    );
    const dead = await readStream(t.context.nc, `${stream}_DEAD`, 3);
    const ledgerDead = dead.filter((m) => m.headers["Mesh-Subscription"] === "ev.EventLedger.ledger");
    t.deepEqual(ledgerDead.map((m) => [m.headers["Mesh-Stream-Seq"], m.headers["Mesh-Error-Code"], m.headers["Mesh-Deliveries"]]).sort(), [
      ["3", "ACTOR_CRASHED", "3"],
      ["6", "PAYLOAD_TOO_LARGE", "3"],
    ]);
    t.regex(ledgerDead.find((m) => m.headers["Mesh-Stream-Seq"] === "3")!.headers["Mesh-Error"]!, /event 3 asked to fail/);
    const out = await readStream(t.context.nc, `${stream}_OUT`, 13);
    const seqsOut = (actor: string) => out.filter((m) => m.headers.Actor === actor).map((m) => Number(m.headers["Event-Seq"]));
    t.deepEqual(
      seqsOut("EventLedger").sort((a, b) => a - b),
      [1, 2, 4, 5, 7, 8],
      "nothing from the turn that threw (3) or whose state could not be stored (6)",
    );
    t.deepEqual(
      seqsOut("EventTally").sort((a, b) => a - b),
      [1, 2, 4, 5, 6, 7, 8],
      "a plain actor's turn that threw (3) published nothing",
    );
    const report = node.metrics().events.find((r) => r.subscription === "ev.EventLedger.ledger")!;
    t.is(report.deadLetters, 2);
    t.true(report.redeliveries >= 4);
  },
);

test.serial("an event without an id to take is dead-lettered as BAD_REQUEST", async (t) => {
  const stream = "LEDGER3";
  await setUpStreams(t.context.nc, stream);
  const { EventLedger } = eventActors(stream);
  class Keyed {
    static capability = "ev";
    static events = { stream, subject: `${stream}.in.>`, key: { header: "Account" }, name: "keyed", deadLetter: `${stream}.dead` };
    seen: number[] = [];
    handleCall() {
      return this.seen;
    }
    handleEvent(e: StreamEvent, _ctx: CallContext) {
      this.seen.push(e.seq);
    }
  }
  const node = await startNode(t, { nodeId: nodeId("ev"), prefix: "ev3", actors: [EventLedger, Keyed], capabilities: ["ev"] });
  const js = t.context.nc.jetstream();
  const { headers } = await import("nats");
  const h = headers();
  h.set("Account", "acct-1");
  await js.publish(`${stream}.in.a`, "{}", { headers: h });
  await js.publish(`${stream}.in.b`, "{}");
  await eventually(
    async () => (await node.call<number[]>({ actor: "Keyed", id: "acct-1", capability: "ev" })).result.length === 1,
    "the keyed event",
  );
  const all = await readStream(t.context.nc, `${stream}_DEAD`, 1);
  const dead = all.filter((m) => m.headers["Mesh-Subscription"] === "ev.Keyed.keyed");
  t.is(dead.length, 1);
  t.is(dead[0]!.headers["Mesh-Error-Code"], "BAD_REQUEST");
  t.regex(dead[0]!.headers["Mesh-Error"]!, /no header Account/);
});

test.serial("a bad subscription fails Mesh.start with BAD_REQUEST naming the class", async (t) => {
  class NoHandler {
    static capability = "ev";
    static events = { stream: "S", key: { token: 1 } };
    handleCall() {}
  }
  class BadKey {
    static capability = "ev";
    static events = { stream: "S", key: { nope: 1 } };
    handleCall() {}
    handleEvent() {}
  }
  class BadStream {
    static capability = "ev";
    static events = { stream: "a.b", key: { token: 1 } };
    handleCall() {}
    handleEvent() {}
  }
  for (const [cls, why] of [
    [NoHandler, /needs a handleEvent method/],
    [BadKey, /key must be/],
    [BadStream, /stream must be a stream name/],
  ] as const) {
    const err = await t.throwsAsync(Mesh.start({ servers: t.context.server.url, actors: [cls as never] }), { instanceOf: MeshError });
    t.is(err?.code, "BAD_REQUEST");
    t.regex(err!.message, why);
    t.regex(err!.message, new RegExp(cls.name));
  }
});

test.serial(
  "ctx.publish refuses a bad subject, header or data with BAD_REQUEST, and a plain actor's message goes out after its turn",
  async (t) => {
    const stream = "LEDGER4";
    await setUpStreams(t.context.nc, stream);
    class Publishing {
      static capability = "ev";
      handleCall(p: { subject: string; data?: unknown; headers?: Record<string, string> }, ctx: CallContext) {
        try {
          ctx.publish(p.subject, p.data ?? "x", p.headers);
          return "published";
        } catch (err) {
          return (err as MeshError).code + ": " + (err as Error).message;
        }
      }
    }
    const node = await startNode(t, { nodeId: nodeId("ev"), prefix: "ev4", actors: [Publishing], capabilities: ["ev"] });
    const call = (payload: object) => node.call<string>({ actor: Publishing, id: "p", payload }).then((r) => r.result);
    t.regex(await call({ subject: "a.*" }), /^BAD_REQUEST: ctx.publish: subject/);
    t.regex(await call({ subject: "" }), /^BAD_REQUEST/);
    t.regex(await call({ subject: `${stream}.out.p`, headers: { "bad name": "v" } }), /^BAD_REQUEST: ctx.publish: header/);
    t.regex(await call({ subject: `${stream}.out.p`, headers: { ok: "line\nbreak" } }), /^BAD_REQUEST/);
    t.is(await call({ subject: `${stream}.out.p`, data: { hello: "world" }, headers: { Kind: "greeting" } }), "published");
    const out = await readStream(t.context.nc, `${stream}_OUT`, 1);
    t.deepEqual(out[0]!.json, { hello: "world" });
    t.is(out[0]!.headers.Kind, "greeting");
    // No stream captures the subject: the call fails once JetStream says so.
    const err = await t.throwsAsync(call({ subject: "nowhere.at.all" }), { instanceOf: MeshError });
    t.is(err?.code, "STORAGE_UNAVAILABLE");
    t.regex(err!.message, /no JetStream stream captures/);
  },
);

test.serial("partitions spread a subscription's dispatchers over the nodes; plain actors see their key's events in order", async (t) => {
  const stream = "LEDGER5";
  await setUpStreams(t.context.nc, stream);
  const { EventTally } = eventActors(stream, { partitions: 8 });
  const nodes = await Promise.all(
    [1, 2, 3].map(() => startNode(t, { nodeId: nodeId("ev"), prefix: "ev5", actors: [EventTally], capabilities: ["ev"] })),
  );
  await eventually(() => nodes.every((n) => n.nodesFor("ev").length === 3), "three nodes to see each other");
  await eventually(
    () => nodes.reduce((a, n) => a + n.metrics().events[0]!.dispatchers.length, 0) === 8,
    "eight dispatchers, one per partition",
  );
  t.true(nodes.filter((n) => n.metrics().events[0]!.dispatchers.length > 0).length >= 2, "on more than one node");
  await publishEvents(t.context.nc, stream, 30, 600);
  await eventually(() => nodes.reduce((a, n) => a + n.metrics().events[0]!.handled, 0) === 600, "every event handled once");
  for (let k = 0; k < 30; k++) {
    const { seqs } = (await nodes[k % 3]!.call<LedgerState>({ actor: "EventTally", id: `k${k}`, capability: "ev" })).result;
    t.deepEqual(
      seqs,
      Array.from({ length: 20 }, (_, j) => j * 30 + k + 1),
      `k${k}: in stream order, none missing`,
    );
  }
});

test.serial('onDeadLetter "stop" holds the key after its dead letter, while other keys go on', async (t) => {
  const stream = "LEDGER6";
  await setUpStreams(t.context.nc, stream);
  class Stopping {
    static capability = "ev";
    static events = {
      stream,
      subject: `${stream}.in.>`,
      key: { token: 2 },
      maxDeliveries: 2,
      backoffMs: 5,
      onDeadLetter: "stop" as const,
      deadLetter: `${stream}.dead`,
    };
    seen: number[] = [];
    handleCall() {
      return this.seen;
    }
    handleEvent(e: StreamEvent) {
      if (e.json<{ n: number; fail?: boolean }>().fail) throw new Error("no");
      this.seen.push(e.seq);
    }
  }
  const node = await startNode(t, { nodeId: nodeId("ev"), prefix: "ev6", actors: [Stopping], capabilities: ["ev"] });
  await publishEvents(t.context.nc, stream, 2, 6, (i) => (i === 0 ? { fail: true } : {}));
  const seen = async (id: string) => (await node.call<number[]>({ actor: Stopping, id })).result;
  await eventually(async () => (await seen("k1")).length === 3, "k1's events");
  await readStream(t.context.nc, `${stream}_DEAD`, 1);
  await eventually(() => node.metrics().events[0]!.deadLetters === 1, "the dead letter counted");
  t.deepEqual(await seen("k0"), [], "k0 stopped at its dead letter");
  t.is(node.metrics().events[0]!.dispatchers[0]!.floor, 0, "the floor stays below the stopped event");
});

test.serial("a subscription to a stream that does not exist fails Mesh.start, naming it and the streams that exist", async (t) => {
  await setUpStreams(t.context.nc, "REAL");
  class Misnamed {
    static capability = "ev";
    static events = { stream: "real", key: { token: 2 } };
    handleCall() {}
    handleEvent() {}
  }
  const err = await t.throwsAsync(Mesh.start({ servers: t.context.server.url, prefix: "evmiss", actors: [Misnamed] }), {
    instanceOf: MeshError,
  });
  t.is(err?.code, "BAD_REQUEST");
  t.regex(err!.message, /stream "real" \(subscribed by ev\.Misnamed\.\w+\) does not exist/);
  t.regex(err!.message, /the streams are: .*REAL/);
  t.notRegex(err!.message, /KV_/);
});

test.serial("a dispatcher that cannot read its stream (deleted after start) shows in mesh_events_dispatcher_errors", async (t) => {
  const stream = "GONE";
  await setUpStreams(t.context.nc, stream);
  class Reader {
    static capability = "ev";
    static events = { stream, key: { token: 2 } };
    handleCall() {}
    handleEvent() {}
  }
  const node = await startNode(t, { nodeId: nodeId("gone"), prefix: "evgone", actors: [Reader], capabilities: ["ev"], metricsPort: 0 });
  const scrape = async () => (await fetch(node.metricsUrl!)).text();
  await eventually(
    async () => /mesh_events_dispatcher_errors\{[^}]*subscription="ev\.Reader\.[^"]+"[^}]*\} 0/.test(await scrape()),
    "the series at 0",
  );
  await (await t.context.nc.jetstreamManager()).streams.delete(stream);
  await eventually(
    async () => /mesh_events_dispatcher_errors\{[^}]*\} 1/.test(await scrape()),
    "the series to count the dispatcher in error",
    20_000,
  );
  t.pass();
});
