// Any NATS client calls an actor: the ingress, exercised with a client that imports nothing of Mesh.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import type { Mesh } from "@mesh/runtime";
import { BadReply, Counter, Crasher, FailingConstructor, GameActor, Hung } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { jsonRequest, msgpackRequest } from "./helpers/foreign.js";

/** Replies with something JSON cannot encode. */
class BigNumber {
  handleCall() {
    return { big: 10n };
  }
}

/** Replies with what JSON would change without a word: NaN, a binary; msgpack carries them. */
class JsonShy {
  handleCall(p: { kind?: string }): unknown {
    return p?.kind === "bytes" ? { b: new Uint8Array([1, 2]) } : { n: Number.NaN };
  }
}

/** Replies with more than the nodes' maxPayloadBytes. */
class Huge {
  handleCall() {
    return "x".repeat(5000);
  }
}

const test = anyTest as TestFn<ClusterContext & { a: Mesh; b: Mesh; caller: Mesh; nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  const actors = [Counter, GameActor, Crasher, FailingConstructor, Hung, BadReply, BigNumber, Huge, JsonShy];
  t.context.a = await startNode(t, { nodeId: nodeId("ia"), actors, capabilities: ["counter", "game"], maxPayloadBytes: 4096 });
  t.context.b = await startNode(t, { nodeId: nodeId("ib"), actors, capabilities: ["counter", "game"], maxPayloadBytes: 4096 });
  t.context.caller = await startNode(t, { nodeId: nodeId("icaller") });
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always((t) => t.context.nc?.close());

test("a JSON call creates the actor on its owner; a Mesh call then reaches the same activation", async (t) => {
  const { nc, caller } = t.context;
  const first = await jsonRequest(nc, "mesh.call.counter", { actor: "Counter", id: "counter_1", payload: {} });
  t.like(first, { ok: true, result: { ok: 1 } });
  const pid = (first as { pid: string }).pid;
  t.true(pid.startsWith(`${caller.ownerNode(caller.shardFor("counter_1"), "counter")}/Counter/counter_1#`));
  const second = await caller.call({ actor: Counter, id: "counter_1", capability: "counter" });
  t.is(second.pid, pid);
  t.deepEqual(second.result, { ok: 2 });
});

test("initArg from a foreign client is used on first activation", async (t) => {
  const reply = await jsonRequest(t.context.nc, "mesh.call.game", {
    actor: "GameActor",
    id: "player_9",
    payload: { action: "get_state" },
    initArg: { starting_level: 10 },
  });
  t.like(reply, { ok: true, result: { ok: { level: 10 } } });
});

test("msgpack in, msgpack out, when the request carries Content-Type: application/msgpack", async (t) => {
  const { reply, contentType } = await msgpackRequest(t.context.nc, "mesh.call.counter", {
    actor: "Counter",
    id: "mp_1",
    payload: { x: 1 },
  });
  t.is(contentType, "application/msgpack");
  t.like(reply, { ok: true, result: { ok: 1 } });
});

test("a cast without a reply subject is applied; with one, it is acknowledged once routed", async (t) => {
  const { nc, caller } = t.context;
  await caller.call({ actor: Counter, id: "cast_1", capability: "counter" });
  await caller.call({ actor: Counter, id: "cast_1", capability: "counter" });
  nc.publish("mesh.cast.counter", JSON.stringify({ actor: "Counter", id: "cast_1", payload: { action: "reset" } }));
  await eventually(
    async () => (await caller.call<{ ok: number }>({ actor: Counter, id: "cast_1", capability: "counter" })).result.ok === 1,
    "the foreign cast to be applied",
  );
  t.deepEqual(await jsonRequest(nc, "mesh.cast.counter", { actor: "Counter", id: "cast_1", payload: { action: "reset" } }), { ok: true });
  t.like(await jsonRequest(nc, "mesh.cast.nobody", { actor: "Counter", id: "x" }), { ok: false, error: { code: "NO_NODES" } });
});

test("every error code a foreign client can meet comes back as { ok: false, error: { code, message } }", async (t) => {
  const { nc } = t.context;
  const cases: [string, unknown, string][] = [
    ["mesh.call.nobody", { actor: "Counter", id: "x" }, "NO_NODES"],
    ["mesh.call.counter", { actor: "Ghost", id: "x" }, "UNKNOWN_ACTOR_TYPE"],
    ["mesh.call.counter", { actor: "FailingConstructor", id: "x" }, "ACTIVATION_FAILED"],
    ["mesh.call.counter", { actor: "Hung", id: "hung_1", payload: { hang: true }, timeoutMs: 200 }, "TIMEOUT"],
    ["mesh.call.counter", { actor: "BadReply", id: "x" }, "BAD_REPLY"],
    ["mesh.call.counter", { actor: "BigNumber", id: "x" }, "BAD_REPLY"],
    ["mesh.call.counter", { actor: "JsonShy", id: "x", payload: { kind: "nan" } }, "BAD_REPLY"],
    ["mesh.call.counter", { actor: "JsonShy", id: "x", payload: { kind: "bytes" } }, "BAD_REPLY"],
    ["mesh.call.counter", { actor: "Counter", id: "big", payload: "x".repeat(5000) }, "PAYLOAD_TOO_LARGE"],
    ["mesh.call.counter", { actor: "Huge", id: "huge" }, "PAYLOAD_TOO_LARGE"],
    ["mesh.call.counter", "{not json", "BAD_REQUEST"],
    ["mesh.call.counter", "[1,2]", "BAD_REQUEST"],
    ["mesh.call.counter", { id: "x" }, "BAD_REQUEST"],
    ["mesh.call.counter", { actor: "Counter", id: 42 }, "BAD_REQUEST"],
    ["mesh.call.counter", { actor: "Counter", id: "x", timeoutMs: "soon" }, "BAD_REQUEST"],
    ["mesh.call.counter.extra", { actor: "Counter", id: "x" }, "BAD_REQUEST"],
  ];
  for (const [subject, body, code] of cases) {
    const reply = await jsonRequest(nc, subject, body);
    t.false(reply.ok, `${subject} ${JSON.stringify(body).slice(0, 60)}`);
    if (!reply.ok) {
      t.is(reply.error.code, code, reply.error.message);
      t.true(reply.error.message.length > 0);
    }
  }
  // A crash: the first call crashes the actor, the reply says so.
  t.like(await jsonRequest(nc, "mesh.call.counter", { actor: "Crasher", id: "c", payload: { action: "crash" } }), {
    ok: false,
    error: { code: "ACTOR_CRASHED" },
  });
  // Garbage msgpack is BAD_REQUEST in msgpack.
  const { reply } = await msgpackRequest(nc, "mesh.call.counter", new Uint8Array([0xc1, 0xff]));
  t.like(reply, { ok: false, error: { code: "BAD_REQUEST" } });
  // So is a 65-byte body whose arrays claim 16,777,215 elements each, nested: read by the library, it ran the node out of memory.
  const claim = [0xdd, 0x00, 0xff, 0xff, 0xff];
  const bomb = new Uint8Array([0x83, 0xa5, ...new TextEncoder().encode("actor"), 0xa4, ...new TextEncoder().encode("Echo")]);
  const oom = await msgpackRequest(
    nc,
    "mesh.call.counter",
    new Uint8Array([...bomb, 0xa7, ...new TextEncoder().encode("payload"), ...claim.concat(...Array(7).fill(claim))]),
  );
  t.like(oom.reply, { ok: false, error: { code: "BAD_REQUEST" } });
  t.regex(oom.reply.ok ? "" : oom.reply.error.message, /claims 16777215 items/);
  // What JSON cannot carry, msgpack does.
  const shy = await msgpackRequest(nc, "mesh.call.counter", { actor: "JsonShy", id: "x", payload: { kind: "bytes" } });
  t.like(shy.reply, { ok: true });
  t.deepEqual([...(shy.reply as { result: { b: Uint8Array } }).result.b], [1, 2]);
  // Strings that are not UTF-8 are refused, not read leniently (two byte strings would name one actor).
  const notUtf8 = await msgpackRequest(
    nc,
    "mesh.call.counter",
    new Uint8Array([
      0x82,
      0xa5,
      ...new TextEncoder().encode("actor"),
      0xa7,
      ...new TextEncoder().encode("Counter"),
      0xa2,
      0x69,
      0x64,
      0xa2,
      0xff,
      0xfe,
    ]),
  );
  t.like(notUtf8.reply, { ok: false, error: { code: "BAD_REQUEST" } });
  const jsonNotUtf8 = await nc.request(
    "mesh.call.counter",
    new Uint8Array([...new TextEncoder().encode('{"actor":"Counter","id":"'), 0xff, ...new TextEncoder().encode('"}')]),
    { timeout: 5000 },
  );
  t.like(JSON.parse(new TextDecoder().decode(jsonNotUtf8.data)), { ok: false, error: { code: "BAD_REQUEST" } });
  // And the nodes keep serving.
  t.like(await jsonRequest(nc, "mesh.call.counter", { actor: "Counter", id: "after_errors" }), { ok: true, result: { ok: 1 } });
});

test("exactly one node takes each ingress request: none is handled twice", async (t) => {
  const { nc, a, b } = t.context;
  const replies = await Promise.all(
    Array.from({ length: 50 }, (_, i) => jsonRequest(nc, "mesh.call.counter", { actor: "Counter", id: `once_${i}` })),
  );
  t.true(replies.every((r) => r.ok && [a.nodeId, b.nodeId].includes(r.pid!.split("/")[0]!)));
  // Each counter was called once: had any request been handled twice, its count would be past 1 now.
  for (let i = 0; i < 50; i++)
    t.deepEqual((await t.context.caller.call({ actor: Counter, id: `once_${i}`, capability: "counter" })).result, { ok: 2 });
});
