// A message alone is written at once (packages/transport/src/prompt-write.ts):
// a lone call is handed to the socket before call() returns, not at the end of
// the tick; a second prompt write before the microtasks queued so far have run
// leaves its message for nats.js's flush; order is kept either way. What waits
// to be written is read from nats.js's own buffer (`protocol.outbound`), the
// one thing that tells "now" from "at the end of the tick" without a clock.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { Msg, NatsConnection } from "nats";
import { MeshError } from "@mesh/core";
import { encodeResult } from "@mesh/core/internal";
import { Requests, promptWrite } from "@mesh/transport";
import { pending } from "./helpers/pending-request.js";
import { eventually, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

/** Bytes nats.js holds for the socket and has not written yet. */
function unwritten(nc: NatsConnection): number {
  return (nc as unknown as { protocol: { outbound: { size(): number } } }).protocol.outbound.size();
}

// Serial: the write is once per connection until the microtasks queued before it ran, and these share one.
test.serial("a lone call is handed to the socket before call() returns; the call after it in the tick follows, in order", async (t) => {
  const { nc } = t.context;
  const seen: Msg[] = [];
  const sub = nc.subscribe("prompt.node.a", { callback: (_err, msg) => seen.push(msg) });
  await nc.flush();
  const requests = new Requests(nc);
  const first = pending();
  const second = pending();
  const outcomes = Promise.allSettled([first.result, second.result]);
  try {
    requests.call("prompt.node.a", new Uint8Array([0x91, 0x01]), first.p, { actorType: "A", id: "1" });
    t.is(unwritten(nc), 0, "the lone call was written at once");
    requests.call("prompt.node.a", new Uint8Array([0x91, 0x02]), second.p, { actorType: "A", id: "2" });
    await eventually(() => seen.length === 2, "both calls to arrive");
    t.deepEqual(
      seen.map((m) => [...m.data]),
      [
        [0x91, 0x01],
        [0x91, 0x02],
      ],
      "in order (the second, alone in the batcher at the end of the tick, went plain too)",
    );
    seen[0]!.respond(encodeResult("a/A/1#1", 1));
    t.deepEqual(await first.result, { ok: true, pid: "a/A/1#1", result: 1 });
  } finally {
    requests.close(new MeshError("STOPPED", "test over"));
    sub.unsubscribe();
  }
  const [, unanswered] = await outcomes;
  t.like(unanswered, { status: "rejected", reason: { code: "STOPPED" } }, "the unanswered call failed when the requests closed");
});

test.serial(
  "a prompt write writes once until the microtasks queued before it ran: a second message alone leaves with nats.js's flush, in order",
  async (t) => {
    const { nc } = t.context;
    const seen: string[] = [];
    const sub = nc.subscribe("prompt.order", { callback: (_err, msg) => seen.push(new TextDecoder().decode(msg.data)) });
    try {
      await nc.flush();
      const write = promptWrite(nc);
      t.is(promptWrite(nc), write, "one per connection");
      nc.publish("prompt.order", new TextEncoder().encode("1"));
      write();
      t.is(unwritten(nc), 0, "the first message was written at once");
      nc.publish("prompt.order", new TextEncoder().encode("2"));
      write();
      t.true(unwritten(nc) > 0, "the second, before any microtask ran, waits for nats.js's flush");
      await new Promise<void>((resolve) => setImmediate(resolve));
      t.is(unwritten(nc), 0, "nats.js's flush wrote it");
      nc.publish("prompt.order", new TextEncoder().encode("3"));
      write();
      t.is(unwritten(nc), 0, "a new tick: written at once again");
      await eventually(() => seen.length === 3, "every message to arrive");
      t.deepEqual(seen, ["1", "2", "3"]);
    } finally {
      sub.unsubscribe();
    }
  },
);
