// Coalescing: the calls and casts a node sends to the same node in one tick travel as one
// NATS message (a batch), and so do the replies an owner produces in one tick for one caller.
// A spy subscribed to the subjects counts what actually crossed NATS.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { MeshError } from "@mesh/runtime";
import type { Mesh } from "@mesh/runtime";
import { readBatch } from "@mesh/core/internal";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { BadReply, Counter, Crasher, Echo, Hung } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/**
 * Counts the messages on `subject` and the frames in each (0 for a plain envelope). JSON messages are not
 * counted: under a node's inbox they are JetStream's and membership's answers (its record's renewals, say).
 */
async function spy(url: string, subject: string): Promise<{ nc: NatsConnection; messages: { bytes: number; frames: number }[] }> {
  const nc = await connect({ servers: url });
  const messages: { bytes: number; frames: number }[] = [];
  nc.subscribe(subject, {
    callback: (_err, msg) => {
      if (msg.data[0] === 0x7b) return; // "{"
      let frames = 0;
      if (msg.data[0] === 0xc1) readBatch(msg.data, () => frames++);
      messages.push({ bytes: msg.data.length, frames });
    },
  });
  await nc.flush();
  return { nc, messages };
}

/** A caller and an owner that hosts every test actor; the caller hosts nothing, so every call is remote. */
async function pair(t: { context: ClusterContext }, prefix: string, callerOptions = {}): Promise<{ caller: Mesh; owner: Mesh }> {
  const owner = await startNode(t as never, {
    prefix,
    nodeId: nodeId("owner"),
    actors: [Counter, Echo, Crasher, Hung, BadReply],
    capabilities: ["b"],
  });
  const caller = await startNode(t as never, { prefix, nodeId: nodeId("caller"), ...callerOptions });
  await eventually(() => caller.nodesFor("b").length === 1, "the caller to see the owner");
  return { caller, owner };
}

test.serial("calls and casts issued in one tick to another node travel as one NATS message, and their replies as one", async (t) => {
  const { caller, owner } = await pair(t, "one");
  const toOwner = await spy(t.context.server.url, `one.node.${owner.nodeId}`);
  const replies = await spy(t.context.server.url, `one.inbox.${caller.nodeId}.>`);
  t.teardown(() => toOwner.nc.close());
  t.teardown(() => replies.nc.close());
  const ids = Array.from({ length: 100 }, (_, i) => `c_${i}`);
  const casts = ids.slice(0, 20).map((id) => caller.cast({ actor: Echo, id, payload: "cast first", capability: "b" }));
  const calls = ids.map((id) => caller.call<{ payload: string; seen: number }>({ actor: Echo, id, payload: `to ${id}`, capability: "b" }));
  await Promise.all(casts);
  const results = await Promise.all(calls);
  results.forEach(({ result }, i) => {
    t.is(result.payload, `to ${ids[i]}`);
    t.is(result.seen, i < 20 ? 2 : 1, "the cast sent before the call ran before it");
  });
  await toOwner.nc.flush();
  t.deepEqual(
    toOwner.messages.map((m) => m.frames),
    [120],
    "one message with 120 frames",
  );
  await eventually(() => replies.messages.length > 0, "the spy to see the replies");
  t.deepEqual(
    replies.messages.map((m) => m.frames),
    [100],
    "one message with the 100 replies",
  );
});

test.serial(
  "a call made with nothing in flight leaves at once, alone; what follows it in the same tick leaves in one batch, after it",
  async (t) => {
    const { caller, owner } = await pair(t, "lone");
    const toOwner = await spy(t.context.server.url, `lone.node.${owner.nodeId}`);
    t.teardown(() => toOwner.nc.close());
    const first = caller.call<{ seen: number }>({ actor: Echo, id: "l_0", payload: "first", capability: "b" });
    const cast = caller.cast({ actor: Echo, id: "l_0", payload: "then a cast", capability: "b" });
    const others = Array.from({ length: 10 }, (_, i) =>
      caller.call<{ seen: number }>({ actor: Echo, id: `l_${i}`, payload: "then", capability: "b" }),
    );
    await cast;
    t.is((await first).result.seen, 1, "the lone call ran first");
    t.deepEqual(
      (await Promise.all(others)).map(({ result }) => result.seen),
      [3, 1, 1, 1, 1, 1, 1, 1, 1, 1],
      "l_0 ran the lone call, the cast, then the batched call",
    );
    await toOwner.nc.flush();
    t.deepEqual(
      toOwner.messages.map((m) => m.frames),
      [0, 11],
      "a plain envelope, then one batch of the cast and the 10 calls",
    );
  },
);

test.serial(
  "with 128 calls or more in flight to a node, a caller sends them in two halves, and the owner answers each on its own",
  async (t) => {
    const { caller, owner } = await pair(t, "halves");
    const toOwner = await spy(t.context.server.url, `halves.node.${owner.nodeId}`);
    const replies = await spy(t.context.server.url, `halves.inbox.${caller.nodeId}.>`);
    t.teardown(() => toOwner.nc.close());
    t.teardown(() => replies.nc.close());
    const ids = Array.from({ length: 256 }, (_, i) => `h_${i}`);
    // Casts have no reply to overlap: they ride in the first message, uncounted.
    const casts = ids.slice(0, 100).map((id) => caller.cast({ actor: Echo, id, payload: "cast first", capability: "b" }));
    const calls = ids.map((id) =>
      caller.call<{ payload: string; seen: number }>({ actor: Echo, id, payload: `to ${id}`, capability: "b" }),
    );
    await Promise.all(casts);
    const results = await Promise.all(calls);
    results.forEach(({ result }, i) => {
      t.is(result.payload, `to ${ids[i]}`);
      t.is(result.seen, i < 100 ? 2 : 1, "the cast sent before the call ran before it");
    });
    await toOwner.nc.flush();
    t.deepEqual(
      toOwner.messages.map((m) => m.frames),
      [228, 128],
      "100 casts and 128 calls, then 128 calls",
    );
    // The owner read both together, served the first and sent its replies before it served the second (message-ticks.ts).
    await eventually(() => replies.messages.length >= 2, "the spy to see the replies");
    t.deepEqual(
      replies.messages.map((m) => m.frames),
      [128, 128],
      "one message of replies for each",
    );
  },
);

test.serial(
  "many concurrent calls mixed with casts to many actors on another node: every answer right, per-actor order kept",
  async (t) => {
    const { caller } = await pair(t, "mix");
    const ids = Array.from({ length: 200 }, (_, i) => `m_${i}`);
    const worker = async (id: string) => {
      const got: number[] = [];
      for (let n = 1; n <= 25; n++) {
        if (n % 5 === 0) await caller.cast({ actor: Echo, id, payload: n, capability: "b" });
        else got.push((await caller.call<{ seen: number }>({ actor: Echo, id, payload: n, capability: "b" })).result.seen);
      }
      return got;
    };
    const all = await Promise.all(ids.map(worker));
    // Echo counts every message it ran, casts included: call n sees n when everything ran in order.
    const expected = Array.from({ length: 25 }, (_, i) => i + 1).filter((n) => n % 5 !== 0);
    for (const got of all) t.deepEqual(got, expected);
  },
);

test.serial("in one batch, a call whose handler throws, hangs or returns something unencodable fails alone", async (t) => {
  const { caller } = await pair(t, "alone");
  const outcomes = await Promise.allSettled([
    caller.call({ actor: Echo, id: "ok-1", payload: 1, capability: "b" }),
    caller.call({ actor: Crasher, id: "crash", payload: { action: "crash" }, capability: "b" }),
    caller.call({ actor: Hung, id: "hang", payload: { hang: true }, capability: "b", timeoutMs: 300 }),
    caller.call({ actor: BadReply, id: "bad", capability: "b" }),
    caller.call({ actor: Echo, id: "ok-2", payload: 2, capability: "b" }),
  ]);
  const codes = outcomes.map((o) => (o.status === "fulfilled" ? "ok" : (o.reason as MeshError).code));
  t.deepEqual(codes, ["ok", "ACTOR_CRASHED", "TIMEOUT", "BAD_REPLY", "ok"]);
});

test.serial("frames for one node above the payload limit are split into several batches, each under it", async (t) => {
  const { caller, owner } = await pair(t, "split", { maxPayloadBytes: 8192 });
  const toOwner = await spy(t.context.server.url, `split.node.${owner.nodeId}`);
  t.teardown(() => toOwner.nc.close());
  const payload = "x".repeat(1000);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => caller.call<{ payload: string }>({ actor: Echo, id: `s_${i}`, payload, capability: "b" })),
  );
  t.true(results.every((r) => r.result.payload === payload));
  await toOwner.nc.flush();
  t.true(toOwner.messages.length >= 5, `${toOwner.messages.length} messages`);
  t.true(
    toOwner.messages.every((m) => m.bytes <= 8192),
    JSON.stringify(toOwner.messages),
  );
  t.is(
    toOwner.messages.reduce((n, m) => n + Math.max(1, m.frames), 0),
    40,
  );
});

test.serial("no responders on a batch sends every call in it again, to the next owner once the silent node is dropped", async (t) => {
  const real = await startNode(t, { nodeId: nodeId("real"), prefix: "ghostly", actors: [Counter], capabilities: ["b"] });
  // The ghost announced 200 ms heartbeats: silent for the caller's 1 s node timeout, it is dropped.
  const caller = await startNode(t, { nodeId: nodeId("caller"), prefix: "ghostly", nodeTimeoutMs: 1000 });
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  nc.publish(
    "ghostly.cluster.heartbeat",
    JSON.stringify({
      v: 1,
      node: "ghost",
      instance: "g",
      capabilities: ["b"],
      actorTypes: ["Counter"],
      shards: 4096,
      strategy: "rendezvous",
      version: "0",
      heartbeatMs: 200,
    }),
  );
  await eventually(() => caller.nodesFor("b").length === 2, "the caller to count the ghost in");
  const ids = Array.from({ length: 100 }, (_, i) => `g_${i}`);
  const haunted = ids.filter((id) => caller.ownerNode(caller.shardFor(id), "b") === "ghost");
  const results = await Promise.all(ids.map((id) => caller.call({ actor: Counter, id, capability: "b", timeoutMs: 10_000 })));
  t.true(results.every((r) => r.pid.startsWith(`${real.nodeId}/`)));
  // (No spy on the ghost's subject here: a subscriber there would be a responder.)
  t.true(haunted.length > 20);
  t.is(caller.metrics().retries, haunted.length, "each call of the ghost's batch was re-routed, once");
});

test("a batch whose framing is broken is refused whole with one BAD_REQUEST; a malformed envelope in a sound batch fails alone", async (t) => {
  const { owner } = await pair(t, "broken");
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const { encode, decode } = await import("@msgpack/msgpack");
  const { writeBatch } = await import("@mesh/core/internal");
  const good = encode([1, 0, "b", "Echo", "e1", 1000, 0, null, "hi"]);
  const whole = writeBatch([7], [good]);
  const broken = new Uint8Array([...whole, 0, 0, 0, 8, 0, 0, 0, 99, 1, 2]); // a second frame that claims 99 bytes
  const sub = nc.subscribe("_INBOX.broken.*", { max: 3 }); // nodes answer on inboxes only (subjects.ts)
  nc.publish(`broken.node.${owner.nodeId}`, broken, { reply: "_INBOX.broken.B1" });
  nc.publish(`broken.node.${owner.nodeId}`, writeBatch([8, 9], [good, encode({ not: "an envelope" })]), { reply: "_INBOX.broken.B2" });
  const got: unknown[] = [];
  for await (const m of sub) {
    // A reply envelope is [1, 0, pid, result] or [1, 1, code, message]: keep the outcome and the result or code.
    const outcome = (e: unknown[]) => [e[1], e[1] === 0 ? e[3] : e[2]];
    if (m.data[0] === 0xc1) readBatch(m.data, (id, env) => got.push([id, ...outcome(decode(env) as unknown[])]));
    else got.push([m.subject, ...outcome(decode(m.data) as unknown[])]);
  }
  // The broken batch ran nothing (Echo e1 saw one message in all); the sound one answered each frame,
  // the bad envelope at once and the (async) Echo call in the next tick's reply batch.
  t.deepEqual(got, [
    ["_INBOX.broken.B1", 1, "BAD_REQUEST"],
    [9, 1, "BAD_REQUEST"],
    [8, 0, { payload: "hi", seen: 1 }],
  ]);
});
