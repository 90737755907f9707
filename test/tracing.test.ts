// Traces with the real OpenTelemetry SDK (docs/observability.md "Traces"): an
// in-memory exporter collects what the nodes of this process make; the
// foreign client's context comes in a W3C traceparent header.
import anyTest from "ava";
import type { TestFn } from "ava";
import { SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { connect, headers } from "nats";
import { MeshError } from "@mesh/core";
import type { CallContext } from "@mesh/runtime";
import { Alarm, Counter, Crasher, DurableCounter, Relay, Ticker } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { eventActors } from "./helpers/event-actors.js";
import { readStream, setUpStreams } from "./helpers/streams.js";

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const tracer = trace.getTracer("tracing-test");

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** A handler that makes its own spans: one under ctx.traceContext, one under the active context. */
class Worker {
  static actorType = "Worker";
  async handleCall(_p: unknown, ctx: CallContext): Promise<string> {
    tracer.startSpan("db query", {}, ctx.traceContext).end();
    await Promise.resolve();
    tracer.startSpan("http call").end(); // the active context, after an await
    return ctx.id;
  }
}

/** Calls a Worker after an await: with no context manager, only ctx itself knows the turn then. */
class Later {
  static actorType = "Later";
  async handleCall(_p: unknown, ctx: CallContext): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    tracer.startSpan("own", {}, ctx.traceContext).end();
    return (await ctx.call<string>({ actor: "Worker", id: "after", capability: "w" })).result;
  }
}

/** Spans of the trace `traceId`. */
function spansOf(traceId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
}

/** The one span named `name` in `spans`; fails when there is not exactly one. */
function one(spans: ReadableSpan[], name: string, where?: (s: ReadableSpan) => boolean): ReadableSpan {
  const found = spans.filter((s) => s.name === name && (where === undefined || where(s)));
  if (found.length !== 1) throw new Error(`expected one span "${name}", found ${found.length}: ${spans.map((s) => s.name).join(", ")}`);
  return found[0]!;
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** Waits until the trace holds spans with all of `names`. */
async function traceWith(traceId: string, names: string[]): Promise<ReadableSpan[]> {
  await eventually(() => names.every((n) => spansOf(traceId).some((s) => s.name === n)), `spans ${names.join(", ")} in trace ${traceId}`);
  return spansOf(traceId);
}

test.serial(
  "with no context manager (serial: it is taken away, then given back), a turn's calls and its own spans after an await still go under the turn",
  async (t) => {
    const node = await startNode(t, { prefix: "trace0", nodeId: nodeId("n"), actors: [Later, Worker], capabilities: ["w"] });
    context.disable();
    try {
      t.is((await node.call({ actor: Later, id: "l1", capability: "w" })).result, "after");
      // No active context to start from: the call starts a trace.
      const first = () => exporter.getFinishedSpans().find((s) => s.name === "call Later");
      await eventually(() => first() !== undefined, "the call's span");
      const traceId = first()!.spanContext().traceId;
      t.is(parentOf(first()!), undefined);
      const spans = await traceWith(traceId, ["turn Later", "own", "call Worker", "turn Worker"]);
      const turn = one(spans, "turn Later").spanContext().spanId;
      t.is(parentOf(one(spans, "own")), turn);
      t.is(parentOf(one(spans, "call Worker")), turn);
    } finally {
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    }
  },
);

test("a call through a remote owner that calls an actor on a third node is one trace: call, serve and turn spans, parent under child, with their attributes", async (t) => {
  const prefix = "trace1";
  const front = await startNode(t, { prefix, nodeId: nodeId("front"), actors: [Relay], capabilities: ["front"] });
  const back = await startNode(t, { prefix, nodeId: nodeId("back"), actors: [Relay, Worker], capabilities: ["back"] });
  const caller = await startNode(t, { prefix, nodeId: nodeId("caller"), capabilities: [] });
  await eventually(() => caller.nodesFor("front").length === 1 && front.nodesFor("back").length === 1, "the nodes to see each other");

  const { traceId, result } = await tracer.startActiveSpan("request", async (root) => {
    const r = await caller.call({
      actor: Relay,
      id: "r1",
      capability: "front",
      payload: { via: [{ actor: "Relay", id: "r2", capability: "back" }] },
    });
    root.end();
    return { traceId: root.spanContext().traceId, result: r.result };
  });
  t.deepEqual(result, [`${front.nodeId}:r1`, `${back.nodeId}:r2`]);

  const spans = await traceWith(traceId, ["request", "call Relay", "serve Relay", "turn Relay"]);
  const root = one(spans, "request");
  const call1 = one(spans, "call Relay", (s) => s.attributes["mesh.node"] === caller.nodeId);
  const serve1 = one(spans, "serve Relay", (s) => s.attributes["mesh.node"] === front.nodeId);
  const turn1 = one(spans, "turn Relay", (s) => s.attributes["mesh.node"] === front.nodeId);
  const call2 = one(spans, "call Relay", (s) => s.attributes["mesh.node"] === front.nodeId);
  const serve2 = one(spans, "serve Relay", (s) => s.attributes["mesh.node"] === back.nodeId);
  const turn2 = one(spans, "turn Relay", (s) => s.attributes["mesh.node"] === back.nodeId);
  t.is(spans.length, 7, spans.map((s) => s.name).join(", "));
  // Each under the one before it.
  const chain = [root, call1, serve1, turn1, call2, serve2, turn2];
  for (let i = 1; i < chain.length; i++)
    t.is(parentOf(chain[i]!), chain[i - 1]!.spanContext().spanId, `${chain[i]!.name} on ${String(chain[i]!.attributes["mesh.node"])}`);
  t.is(call1.kind, SpanKind.CLIENT);
  t.is(serve1.kind, SpanKind.SERVER);
  t.is(turn1.kind, SpanKind.INTERNAL);
  t.like(call1.attributes, {
    "rpc.system": "mesh",
    "rpc.service": "Relay",
    "rpc.method": "call",
    "mesh.actor.type": "Relay",
    "mesh.actor.id": "r1",
    "mesh.capability": "front",
    "mesh.owner.node": front.nodeId,
    "mesh.remote": true,
    "mesh.outcome": "ok",
  });
  t.like(turn2.attributes, {
    "mesh.actor.type": "Relay",
    "mesh.actor.id": "r2",
    "mesh.capability": "back",
    "mesh.node": back.nodeId,
    "mesh.incarnation": 1,
    "mesh.actor.pid": `${back.nodeId}/Relay/r2#1`,
    "mesh.turn": "call",
    "mesh.outcome": "ok",
  });
  t.is(serve2.attributes["mesh.actor.id"], "r2");

  // A local call: the turn goes straight under the caller's span; the handler's own spans under the turn.
  const local = await tracer.startActiveSpan("local", async (span) => {
    await back.call({ actor: Worker, id: "w1", capability: "back" });
    span.end();
    return span.spanContext().traceId;
  });
  const ls = await traceWith(local, ["local", "call Worker", "turn Worker", "db query", "http call"]);
  t.is(parentOf(one(ls, "call Worker")), one(ls, "local").spanContext().spanId);
  t.is(one(ls, "call Worker").attributes["mesh.remote"], false);
  t.is(parentOf(one(ls, "turn Worker")), one(ls, "call Worker").spanContext().spanId);
  t.is(parentOf(one(ls, "db query")), one(ls, "turn Worker").spanContext().spanId);
  t.is(parentOf(one(ls, "http call")), one(ls, "turn Worker").spanContext().spanId);
  t.is(ls.filter((s) => s.name.startsWith("serve")).length, 0, "no remote hop for a local call");
});

test("an ingress request with a traceparent header continues that trace, from a plain NATS client", async (t) => {
  const prefix = "trace2";
  const owner = await startNode(t, { prefix, nodeId: nodeId("owner"), actors: [Relay, Worker], capabilities: ["front"] });
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const clientSpan = "00f067aa0ba902b7";
  const h = headers();
  h.set("traceparent", `00-${traceId}-${clientSpan}-01`);
  h.set("tracestate", "vendor=opaque");
  const reply = await nc.request(`${prefix}.call.front`, new TextEncoder().encode(JSON.stringify({ actor: "Worker", id: "w1" })), {
    timeout: 5000,
    headers: h,
  });
  t.like(JSON.parse(new TextDecoder().decode(reply.data)), { ok: true, result: "w1" });

  const spans = await traceWith(traceId, ["ingress call", "call Worker", "turn Worker", "db query"]);
  const ingress = one(spans, "ingress call");
  t.is(ingress.kind, SpanKind.SERVER);
  t.is(parentOf(ingress), clientSpan);
  t.is(ingress.attributes["messaging.destination.name"], `${prefix}.call.front`);
  t.is(parentOf(one(spans, "call Worker")), ingress.spanContext().spanId);
  t.is(one(spans, "turn Worker").spanContext().traceState?.get("vendor"), "opaque");
  t.is(one(spans, "turn Worker").attributes["mesh.node"], owner.nodeId);

  // A malformed header starts a new trace; the call still succeeds.
  const bad = headers();
  bad.set("traceparent", "00-not-a-trace");
  const again = await nc.request(`${prefix}.call.front`, new TextEncoder().encode(JSON.stringify({ actor: "Worker", id: "w2" })), {
    timeout: 5000,
    headers: bad,
  });
  t.like(JSON.parse(new TextDecoder().decode(again.data)), { ok: true, result: "w2" });
  await eventually(
    () => exporter.getFinishedSpans().some((s) => s.name === "turn Worker" && s.attributes["mesh.actor.id"] === "w2"),
    "the turn of w2",
  );
  const w2 = exporter.getFinishedSpans().find((s) => s.name === "turn Worker" && s.attributes["mesh.actor.id"] === "w2")!;
  t.not(w2.spanContext().traceId, traceId);
});

test("a crashing turn records ACTOR_CRASHED, on the turn (with the exception) and on the caller's span, local and remote", async (t) => {
  const prefix = "trace3";
  const owner = await startNode(t, { prefix, nodeId: nodeId("owner"), actors: [Crasher], capabilities: ["crash"] });
  const caller = await startNode(t, { prefix, nodeId: nodeId("caller"), capabilities: [] });
  await eventually(() => caller.nodesFor("crash").length === 1, "the caller to see the owner");
  for (const [where, node] of [
    ["remote", caller],
    ["local", owner],
  ] as const) {
    const traceId = await tracer.startActiveSpan(where, async (span) => {
      const err = await t.throwsAsync(node.call({ actor: Crasher, id: `c-${where}`, capability: "crash", payload: { action: "crash" } }), {
        instanceOf: MeshError,
      });
      t.is(err?.code, "ACTOR_CRASHED");
      span.end();
      return span.spanContext().traceId;
    });
    const spans = await traceWith(traceId, ["call Crasher", "turn Crasher"]);
    const turn = one(spans, "turn Crasher");
    t.like(turn.attributes, { "mesh.outcome": "error", "mesh.error.code": "ACTOR_CRASHED" }, where);
    t.is(turn.status.code, SpanStatusCode.ERROR);
    t.true(
      turn.events.some((e) => e.name === "exception" && e.attributes?.["exception.message"] === "boom!"),
      where,
    );
    t.like(one(spans, "call Crasher").attributes, { "mesh.outcome": "error", "mesh.error.code": "ACTOR_CRASHED" }, where);
  }
  // A call that fails before any turn: its span says why.
  const traceId = await tracer.startActiveSpan("no-node", async (span) => {
    await t.throwsAsync(caller.call({ actor: "Crasher", id: "x", capability: "nowhere" }), { instanceOf: MeshError });
    span.end();
    return span.spanContext().traceId;
  });
  t.like(one(await traceWith(traceId, ["call Crasher"]), "call Crasher").attributes, { "mesh.error.code": "NO_NODES" });
});

test("a durable turn's commit, a timer's turn, and a published event handled by another actor: their spans and the traceparent header", async (t) => {
  const prefix = "trace4";
  const stream = "TRC";
  const { EventLedger } = eventActors(stream);
  /** Publishes one event into the stream the ledger reads. */
  class Producer {
    static actorType = "Producer";
    handleCall(p: { to: string }, ctx: CallContext): string {
      ctx.publish(`${stream}.in.${p.to}`, { n: 5 });
      return "sent";
    }
  }
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  await setUpStreams(nc, stream);
  const node = await startNode(t, {
    prefix,
    nodeId: nodeId("d"),
    actors: [DurableCounter, Ticker, Producer, EventLedger],
    capabilities: ["ev"],
  });

  // The commit: under the turn whose state it stores.
  const durable = await tracer.startActiveSpan("durable", async (span) => {
    await node.call({ actor: DurableCounter, id: "d1", capability: "ev" });
    span.end();
    return span.spanContext().traceId;
  });
  const ds = await traceWith(durable, ["turn DurableCounter", "commit DurableCounter"]);
  const commit = one(ds, "commit DurableCounter");
  t.is(parentOf(commit), one(ds, "turn DurableCounter").spanContext().spanId);
  t.like(commit.attributes, { "mesh.state.key": "ev.DurableCounter.d1", "mesh.commit.turns": 1, "mesh.outcome": "ok" });
  t.is(typeof commit.attributes["mesh.revision"], "number");

  // A timer's turn starts a trace of its own.
  await node.call({ actor: Ticker, id: "t1", capability: "ev", payload: { set: { name: "beat", ms: 1 } } });
  await eventually(() => exporter.getFinishedSpans().some((s) => s.name === "timer Ticker"), "the timer's turn span");
  const timer = exporter.getFinishedSpans().find((s) => s.name === "timer Ticker")!;
  t.is(parentOf(timer), undefined);
  t.like(timer.attributes, { "mesh.turn": "timer", "mesh.timer": "beat", "mesh.actor.id": "t1" });

  // A message a turn publishes carries the trace; the event's turn continues it.
  const published = await tracer.startActiveSpan("publish", async (span) => {
    await node.call({ actor: Producer, id: "p1", capability: "ev", payload: { to: "acct" } });
    span.end();
    return span.spanContext().traceId;
  });
  const es = await traceWith(published, ["turn Producer", `create ${stream}.in.acct`, "event EventLedger", `create ${stream}.out.acct`]);
  const created = one(es, `create ${stream}.in.acct`);
  t.is(created.kind, SpanKind.PRODUCER);
  t.is(parentOf(created), one(es, "turn Producer").spanContext().spanId);
  const event = one(es, "event EventLedger");
  t.is(event.kind, SpanKind.CONSUMER);
  t.is(parentOf(event), created.spanContext().spanId);
  t.like(event.attributes, { "messaging.destination.name": `${stream}.in.acct`, "mesh.event.seq": 1, "mesh.outcome": "ok" });
  const out = one(es, `create ${stream}.out.acct`);
  t.is(parentOf(out), event.spanContext().spanId);
  const [message] = await readStream(nc, `${stream}_OUT`, 1);
  t.is(message?.headers.traceparent, `00-${published}-${out.spanContext().spanId}-01`);
  t.is(message?.headers["Event-Seq"], "1", "the handler's own headers are kept");
});

test("a remote cast is a producer span, a consumer serve span and a cast turn; a reminder's turn starts a trace of its own", async (t) => {
  const prefix = "trace6";
  const owner = await startNode(t, { prefix, nodeId: nodeId("owner"), actors: [Counter, Alarm], capabilities: ["c"] });
  const caller = await startNode(t, { prefix, nodeId: nodeId("caller"), capabilities: [] });
  await eventually(() => caller.nodesFor("c").length === 1, "the caller to see the owner");
  const traceId = await tracer.startActiveSpan("cast", async (span) => {
    await caller.cast({ actor: "Counter", id: "k1", capability: "c", payload: { action: "increment" } });
    span.end();
    return span.spanContext().traceId;
  });
  const spans = await traceWith(traceId, ["cast Counter", "serve Counter", "turn Counter"]);
  const cast = one(spans, "cast Counter");
  const serve = one(spans, "serve Counter");
  const turn = one(spans, "turn Counter");
  t.is(cast.kind, SpanKind.PRODUCER);
  t.is(serve.kind, SpanKind.CONSUMER);
  t.is(parentOf(serve), cast.spanContext().spanId);
  t.is(parentOf(turn), serve.spanContext().spanId);
  t.like(turn.attributes, { "mesh.turn": "cast", "mesh.node": owner.nodeId });

  await owner.call({ actor: Alarm, id: "a1", capability: "c", payload: { remind: { name: "wake", afterMs: 1 } } });
  await eventually(() => exporter.getFinishedSpans().some((s) => s.name === "reminder Alarm"), "the reminder's turn span", 20_000);
  const reminder = exporter.getFinishedSpans().find((s) => s.name === "reminder Alarm")!;
  t.is(parentOf(reminder), undefined);
  t.like(reminder.attributes, { "mesh.turn": "reminder", "mesh.reminder": "wake", "mesh.actor.id": "a1", "mesh.outcome": "ok" });
  // Its commit (the reminder's turn changed the state) goes under it.
  await eventually(() => spansOf(reminder.spanContext().traceId).some((s) => s.name === "commit Alarm"), "the reminder turn's commit");
  t.is(parentOf(one(spansOf(reminder.spanContext().traceId), "commit Alarm")), reminder.spanContext().spanId);
});

test("an event whose actor lives on another node than the stream's dispatcher: its serve span goes under the message's context, its turn under the serve span", async (t) => {
  const prefix = "trace7";
  const stream = "TRC7";
  const { EventTally } = eventActors(stream);
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  await setUpStreams(nc, stream);
  const a = await startNode(t, { prefix, nodeId: nodeId("a"), actors: [EventTally], capabilities: ["ev"] });
  const b = await startNode(t, { prefix, nodeId: nodeId("b"), actors: [EventTally], capabilities: ["ev"] });
  await eventually(() => a.nodesFor("ev").length === 2 && b.nodesFor("ev").length === 2, "both nodes in view");
  const runs = (m: typeof a) => m.metrics().events.some((r) => r.dispatchers.length > 0);
  await eventually(() => runs(a) !== runs(b), "one dispatcher");
  const [dispatcher, other] = runs(a) ? [a, b] : [b, a];
  // An id the other node owns.
  const id = Array.from({ length: 64 }, (_, i) => `k${i}`).find(
    (k) => dispatcher.ownerNode(dispatcher.shardFor(k), "ev") === other.nodeId,
  )!;
  const traceId = "0af7651916cd43dd8448eb211c80319c";
  const h = headers();
  h.set("traceparent", `00-${traceId}-b7ad6b7169203331-01`);
  await nc.jetstream().publish(`${stream}.in.${id}`, new TextEncoder().encode(JSON.stringify({ n: 1 })), { headers: h });
  const spans = await traceWith(traceId, ["serve EventTally", "event EventTally"]);
  const serve = one(spans, "serve EventTally");
  const event = one(spans, "event EventTally");
  t.is(serve.attributes["mesh.node"], other.nodeId);
  t.is(serve.kind, SpanKind.CONSUMER);
  t.is(parentOf(serve), "b7ad6b7169203331");
  t.is(parentOf(event), serve.spanContext().spanId);
  t.like(event.attributes, { "mesh.node": other.nodeId, "mesh.actor.id": id, "mesh.turn": "event", "mesh.outcome": "ok" });
});

test("turns of three actors interleaved across awaits: each handler's spans go under its own turn", async (t) => {
  const prefix = "trace5";
  const node = await startNode(t, { prefix, nodeId: nodeId("n"), actors: [Worker], capabilities: ["w"] });
  const traces = await Promise.all(
    ["a", "b", "c"].map((id) =>
      tracer.startActiveSpan(`req-${id}`, async (span) => {
        await node.call({ actor: Worker, id, capability: "w" });
        span.end();
        return span.spanContext().traceId;
      }),
    ),
  );
  for (const traceId of traces) {
    const spans = await traceWith(traceId, ["turn Worker", "db query", "http call"]);
    const turn = one(spans, "turn Worker").spanContext().spanId;
    t.is(parentOf(one(spans, "db query")), turn);
    t.is(parentOf(one(spans, "http call")), turn);
  }
});
