// The wire side of flow control (docs/PROTOCOL.md "Flow control") against a
// stand-in node made of plain nats.js: casts carry the reply subject `_o`; a
// node of an older Mesh that sends a batch of replies there still answers the
// calls; probes follow the frames they were sent after; a malformed notice is
// ignored and the node keeps working.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { Msg, NatsConnection } from "nats";
import { MeshError } from "@mesh/core";
import { encodeResult, isBatch, readBatch, writeBatch } from "@mesh/core/internal";
import { Requests } from "@mesh/transport";
import { encode } from "@msgpack/msgpack";
import { Counter } from "./helpers/actors.js";
import { pending } from "./helpers/pending-request.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

const CAST = new Uint8Array([0x90]); // not read by the stand-in: only its reply subject matters

test("casts carry <inbox>._o; a batch of replies that an older node sends there answers the calls", async (t) => {
  const { nc } = t.context;
  const seen: Msg[] = [];
  const sub = nc.subscribe("standin.node.old", { callback: (_err, msg) => seen.push(msg) });
  await nc.flush();
  const requests = new Requests(nc, undefined, undefined, undefined, { maxBytes: 256 * 1024, castWaitMs: 1000 });
  try {
    t.is(requests.cast("standin.node.old", CAST, { actorType: "A", id: "1" }), undefined, "room: it went");
    await eventually(() => seen.length === 1, "the cast to arrive");
    t.regex(seen[0]!.reply ?? "", /\._o$/);
    const call = pending();
    requests.call("standin.node.old", new Uint8Array([0x91, 0x01]), call.p, { actorType: "A", id: "2" });
    await eventually(() => seen.some((m) => m.data.length > 0 && !m.reply?.endsWith("._o")), "the call to arrive");
    const callMsg = seen.find((m) => m.data.length > 0 && !m.reply?.endsWith("._o"))!;
    const id = parseInt(callMsg.reply!.slice(callMsg.reply!.lastIndexOf(".") + 1), 36);
    t.false(isBatch(callMsg.data), "a lone call goes as a plain envelope");
    // An older owner batches replies per caller to the latest reply subject it saw: the casts' `_o`.
    nc.publish(seen[0]!.reply!, writeBatch([id], [encodeResult("old/A/2#1", { ok: true })]));
    t.like(await call.result, { ok: true, pid: "old/A/2#1", result: { ok: true } });
  } finally {
    requests.close(new MeshError("STOPPED", "done"));
    sub.unsubscribe();
  }
});

test("a probe follows the frames sent before it, and its answer frees the window", async (t) => {
  const { nc } = t.context;
  const order: string[] = [];
  const sub = nc.subscribe("standin.node.probed", {
    callback: (_err, msg) => {
      if (msg.data.length === 0) {
        order.push("probe");
        msg.respond(new Uint8Array(0));
      } else if (isBatch(msg.data)) readBatch(msg.data, () => order.push("frame"));
      else order.push("frame");
    },
  });
  await nc.flush();
  const requests = new Requests(nc, undefined, undefined, undefined, { maxBytes: 4096, castWaitMs: 5000 });
  try {
    const big = new Uint8Array(1500).fill(0x90);
    const sent = [0, 1, 2, 3, 4].map((i) => requests.cast("standin.node.probed", big, { actorType: "A", id: String(i) }));
    t.is(sent.filter((s) => s === undefined).length, 2, "2 of 1,628 bytes fit in 4 KiB; the others wait");
    await Promise.all(sent);
    t.deepEqual(order.slice(0, 3), ["frame", "frame", "probe"], "the probe came after the frames it follows");
    await eventually(() => requests.outbound()!.bytes === 0, "every frame read, as the probes say");
    t.is(order.filter((o) => o === "frame").length, 5);
  } finally {
    requests.close(new MeshError("STOPPED", "done"));
    sub.unsubscribe();
  }
});

test("a sender reads an owner's notice on its _o subject and refuses casts to that actor at once; malformed notices are ignored", async (t) => {
  const { nc } = t.context;
  const owner = await startNode(t, { prefix: "notices", nodeId: nodeId("owner"), actors: [Counter], capabilities: ["c"] });
  const sender = await startNode(t, { prefix: "notices", nodeId: nodeId("sender") });
  await eventually(() => sender.nodesFor("c").length === 1, "the sender to see the owner");
  // A second subscriber on the owner's subject sees what the sender sends it, with its reply subject.
  const seen: Msg[] = [];
  const sub = nc.subscribe(`notices.node.${owner.nodeId}`, { callback: (_err, msg) => seen.push(msg) });
  await nc.flush();
  await sender.cast({ actor: Counter, id: "x", capability: "c" });
  await eventually(() => seen.some((m) => m.data.length > 0), "the cast on the owner's subject");
  const noticeSubject = seen.find((m) => m.data.length > 0)!.reply!;
  t.regex(noticeSubject, new RegExp(`^notices\\.inbox\\.${sender.nodeId}\\..*\\._o$`));
  for (const bad of [
    new Uint8Array([1, 2, 3]),
    encode(["overload", 1, owner.nodeId]),
    encode(["overload", 1, owner.nodeId, 500, false, [[1, 2]]]),
    // 200 bytes of nested array32 headers, each claiming 16,777,215 elements: read by the library, 134 MB apiece.
    new Uint8Array(Array.from({ length: 40 }, () => [0xdd, 0x00, 0xff, 0xff, 0xff]).flat()),
  ])
    nc.publish(noticeSubject, bad);
  nc.publish(noticeSubject, encode(["overload", 1, owner.nodeId, 60_000, false, [["c", "Counter", "x"]], "a later field"]));
  await nc.flush();
  await eventually(() => sender.metrics().overloadNotices.received === 1, "the one good notice to be read");
  const err = await t.throwsAsync(sender.cast({ actor: Counter, id: "x", capability: "c" }), { instanceOf: MeshError });
  t.is(err?.code, "OVERLOADED");
  t.is(sender.metrics().castsRefusedAtSender, 1);
  await sender.cast({ actor: Counter, id: "y", capability: "c" }); // another actor of the owner: sent
  t.is((await sender.call<{ ok: number }>({ actor: Counter, id: "x", capability: "c" })).result.ok, 1, "calls are not held");
  sub.unsubscribe();
});
