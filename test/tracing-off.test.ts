// Tracing off: no OpenTelemetry SDK is registered in this process (its own
// test file, so its own worker). Nothing is added: no trace element in the
// envelopes between nodes, not even for an ingress request that carries a
// traceparent, no traceparent header on published messages, and no span in
// a handler's context.
import anyTest from "ava";
import type { TestFn } from "ava";
import { trace } from "@opentelemetry/api";
import { decode } from "@msgpack/msgpack";
import { connect, headers } from "nats";
import { readBatch } from "@mesh/core/internal";
import type { CallContext } from "@mesh/runtime";
import { Relay } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { readStream, setUpStreams } from "./helpers/streams.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** Replies whether its context has a span, after publishing one message. */
class Probe {
  static actorType = "Probe";
  handleCall(_p: unknown, ctx: CallContext): { span: boolean } {
    ctx.publish(`OFF.in.${ctx.id}`, "hello", { Mine: "yes" });
    return { span: trace.getSpan(ctx.traceContext) !== undefined };
  }
}

test("with no SDK registered, envelopes carry no trace, published messages no traceparent, and a handler's context no span", async (t) => {
  const prefix = "off";
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  await setUpStreams(nc, "OFF");
  const front = await startNode(t, { prefix, nodeId: nodeId("front"), actors: [Relay, Probe], capabilities: ["front"] });
  const back = await startNode(t, { prefix, nodeId: nodeId("back"), actors: [Relay, Probe], capabilities: ["back"] });
  const caller = await startNode(t, { prefix, nodeId: nodeId("caller"), capabilities: [] });
  await eventually(() => caller.nodesFor("front").length === 1 && front.nodesFor("back").length === 1, "the nodes to see each other");

  // Every request envelope that reaches front and back, element by element.
  const envelopes: unknown[][] = [];
  for (const node of [front, back]) {
    nc.subscribe(`${prefix}.node.${node.nodeId}`, {
      callback: (_err, msg) => {
        if (msg.data[0] === 0xc1) readBatch(msg.data, (_id, env) => void envelopes.push(decode(env) as unknown[]));
        else if (msg.data.length > 0) envelopes.push(decode(msg.data) as unknown[]);
      },
    });
  }
  await nc.flush();

  const via = [{ actor: "Relay", id: "r2", capability: "back" }];
  t.deepEqual((await caller.call({ actor: Relay, id: "r1", capability: "front", payload: { via } })).result, [
    `${front.nodeId}:r1`,
    `${back.nodeId}:r2`,
  ]);
  // An ingress request with a traceparent: front takes it and calls back; nothing of the header goes on.
  const h = headers();
  h.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  const reply = await nc.request(
    `${prefix}.call.front`,
    new TextEncoder().encode(JSON.stringify({ actor: "Relay", id: "r3", payload: { via } })),
    { timeout: 5000, headers: h },
  );
  t.like(JSON.parse(new TextDecoder().decode(reply.data)), { ok: true });
  t.deepEqual((await caller.call({ actor: Probe, id: "p1", capability: "back" })).result, { span: false });
  t.deepEqual((await back.call({ actor: Probe, id: "p2", capability: "back" })).result, { span: false });

  // caller → front (9 elements: no chain), front → back twice (10: the chain), caller → back (9), and
  // the ingress request when back's ingress took it and sent it to front (9).
  await eventually(() => envelopes.filter((e) => e.length === 10).length === 2 && envelopes.length >= 4, "the envelopes to be seen");
  t.deepEqual(
    envelopes.filter((e) => e.length !== 9 && e.length !== 10),
    [],
  );
  const messages = await readStream(nc, "OFF", 2);
  t.is(messages.length, 2);
  for (const m of messages) t.deepEqual([m.headers.Mine, m.headers.traceparent, m.headers.tracestate], ["yes", undefined, undefined]);
});
