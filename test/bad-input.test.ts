// Bad input gets a clear MeshError code, never a crash or a hang, and the node keeps serving.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import { decode, encode } from "@msgpack/msgpack";
import { Mesh, MeshError } from "@mesh/runtime";
import type { ErrorCode, MeshRequest } from "@mesh/runtime";
import { BadReply, Counter, Crasher, FailingActivate, FailingConstructor } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

class CastCrasher {
  handleCall() {
    return "alive";
  }
  handleCast() {
    throw new Error("cast went wrong");
  }
}

const warnings: string[] = [];
const logger = {
  debug() {},
  info() {},
  warn: (_f: object, m: string) => warnings.push(m),
  error: (_f: object, m: string) => warnings.push(m),
};
const actors = [Counter, Crasher, FailingConstructor, FailingActivate, BadReply, CastCrasher];

const test = anyTest as TestFn<ClusterContext & { owner: Mesh; caller: Mesh }>;
useNatsServer(test, async (t) => {
  t.context.owner = await startNode(t, { nodeId: nodeId("owner"), actors, capabilities: ["bad"], maxPayloadBytes: 4096, logger });
  t.context.caller = await startNode(t, { nodeId: nodeId("caller"), maxPayloadBytes: 4096 });
});

type Ctx = ExecutionContext<ClusterContext & { owner: Mesh; caller: Mesh }>;

async function rejects(t: Ctx, promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<MeshError> {
  const error = await t.throwsAsync(promise, { instanceOf: MeshError, ...(message ? { message } : {}) });
  t.is(error?.code, code, error?.message);
  return error!;
}

async function stillServing(t: Ctx): Promise<void> {
  for (const node of [t.context.owner, t.context.caller]) {
    const { result } = await node.call({ actor: Counter, id: `alive-${Math.random()}`, capability: "bad" });
    t.deepEqual(result, { ok: 1 });
  }
}

const nodes = (t: Ctx) =>
  [
    ["local", t.context.owner],
    ["remote", t.context.caller],
  ] as const;

test("a capability no node registered is NO_NODES, for calls and casts", async (t) => {
  for (const [, node] of nodes(t)) {
    await rejects(t, node.call({ actor: Counter, id: "x", capability: "nobody" }), "NO_NODES", /"nobody"/);
    await rejects(t, node.cast({ actor: Counter, id: "x", capability: "nobody" }), "NO_NODES");
    t.throws(() => node.ownerNode(0, "nobody"), { instanceOf: MeshError, message: /no node has registered/ });
  }
  await stillServing(t);
});

test("an unknown actor type is UNKNOWN_ACTOR_TYPE, from the owner itself and from another node", async (t) => {
  for (const [, node] of nodes(t)) {
    await rejects(t, node.call({ actor: "Ghost", id: "x", capability: "bad" }), "UNKNOWN_ACTOR_TYPE", /does not host actor type "Ghost"/);
  }
  await rejects(t, t.context.owner.cast({ actor: "Ghost", id: "x", capability: "bad" }), "UNKNOWN_ACTOR_TYPE");
  await stillServing(t);
});

test("a missing, non-string or too long id, a bad actor or a bad capability is BAD_REQUEST", async (t) => {
  const bad: [Partial<MeshRequest> | null, RegExp][] = [
    [{ actor: Counter, capability: "bad" }, /id must be a string, got undefined/],
    [{ actor: Counter, id: 42 as never, capability: "bad" }, /id must be a string, got number/],
    [{ actor: Counter, id: null as never, capability: "bad" }, /id must be a string, got null/],
    [{ actor: Counter, id: "x".repeat(1025), capability: "bad" }, /limit is 1024/],
    [{ id: "x", capability: "bad" }, /actor must be an actor class/],
    [{ actor: "", id: "x", capability: "bad" }, /actor must be/],
    [{ actor: {} as never, id: "x", capability: "bad" }, /actor must be/],
    [{ actor: Counter, id: "x", capability: "a.b" }, /capability must be/],
    [{ actor: Counter, id: "x", capability: "" }, /capability must be/],
    [{ actor: Counter, id: "x", capability: 7 as never }, /capability must be/],
    [{ actor: Counter, id: "x", capability: "bad", timeoutMs: -5 }, /timeoutMs/],
    [{ actor: Counter, id: "x", capability: "bad", timeoutMs: "5000" as never }, /timeoutMs must be a number/],
    [{ actor: Counter, id: "x", capability: "bad", timeoutMs: true as never }, /timeoutMs must be a number/],
    [
      { actor: Counter, id: "x", capability: "bad", timeoutMs: Infinity },
      /timeoutMs must be a number of milliseconds from 1 to 2147483647/,
    ],
    [{ actor: Counter, id: "x", capability: "bad", timeoutMs: NaN }, /timeoutMs/],
    [null, /must be an object/],
  ];
  for (const [, node] of nodes(t)) {
    for (const [request, message] of bad) await rejects(t, node.call(request as MeshRequest), "BAD_REQUEST", message);
    await rejects(t, node.cast(null as never), "BAD_REQUEST");
  }
  t.throws(() => t.context.owner.shardFor(5 as never), { instanceOf: MeshError, message: /id must be a string/ });
  t.throws(() => t.context.owner.ownerNode(4096, "bad"), { instanceOf: MeshError, message: /shard must be an integer/ });
  await t.throwsAsync(t.context.owner.registerCapabilities(["ok", "not ok"]), { instanceOf: MeshError, message: /capability must be/ });
  t.deepEqual(t.context.caller.nodesFor("bad"), [t.context.owner.nodeId]);
  await stillServing(t);
});

test("a throwing constructor is ACTIVATION_FAILED, caches nothing, and the next call tries again", async (t) => {
  for (const [where, node] of nodes(t)) {
    FailingConstructor.fail = true;
    const before = FailingConstructor.attempts;
    const id = `fc-${where}`;
    await rejects(t, node.call({ actor: "FailingConstructor", id, capability: "bad" }), "ACTIVATION_FAILED", /cannot start/);
    await rejects(t, node.call({ actor: "FailingConstructor", id, capability: "bad" }), "ACTIVATION_FAILED");
    t.is(FailingConstructor.attempts, before + 2);
    FailingConstructor.fail = false;
    t.is((await node.call({ actor: "FailingConstructor", id, capability: "bad" })).result, "started");
  }
  await stillServing(t);
});

test("an onActivate that rejects is ACTIVATION_FAILED for every call that waited on it", async (t) => {
  for (const [where, node] of nodes(t)) {
    const calls = Array.from({ length: 3 }, () => node.call({ actor: FailingActivate, id: `fa-${where}`, capability: "bad" }));
    for (const call of calls) await rejects(t, call, "ACTIVATION_FAILED", /not today/);
  }
  await stillServing(t);
});

test("a payload msgpack cannot encode is BAD_REQUEST when it must cross the wire", async (t) => {
  const { caller } = t.context;
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (const payload of [{ fn: () => 1 }, cyclic, Symbol("s"), 10n]) {
    // The type name, not the class: these payloads are what Counter's types refuse.
    await rejects(t, caller.call({ actor: "Counter", id: "enc", payload, capability: "bad" }), "BAD_REQUEST", /cannot be encoded/);
    await rejects(t, caller.cast({ actor: "Counter", id: "enc", payload, capability: "bad" }), "BAD_REQUEST");
  }
  await rejects(t, caller.call({ actor: Counter, id: "enc", initArg: { fn: () => 1 }, capability: "bad" }), "BAD_REQUEST");
  await stillServing(t);
});

test("a reply msgpack cannot encode is BAD_REPLY for a remote caller", async (t) => {
  await rejects(t, t.context.caller.call({ actor: BadReply, id: "br", capability: "bad" }), "BAD_REPLY", /cannot be encoded/);
  await stillServing(t);
});

test("a payload above maxPayloadBytes is PAYLOAD_TOO_LARGE, on the way out and on the way in", async (t) => {
  const { caller, owner } = t.context;
  await rejects(
    t,
    caller.call({ actor: Counter, id: "big", payload: "x".repeat(5000), capability: "bad" }),
    "PAYLOAD_TOO_LARGE",
    /limit is 4096/,
  );
  await rejects(t, caller.cast({ actor: "Counter", id: "big", payload: "x".repeat(5000), capability: "bad" }), "PAYLOAD_TOO_LARGE");
  // A caller with a larger limit: the owner refuses what it receives.
  const generous = await startNode(t, { nodeId: nodeId("generous"), maxPayloadBytes: 100_000 });
  await rejects(
    t,
    generous.call({ actor: Counter, id: "big", payload: "x".repeat(5000), capability: "bad" }),
    "PAYLOAD_TOO_LARGE",
    /limit is 4096/,
  );
  // And one above the NATS server's max_payload (1 MB in nats.conf).
  await rejects(t, generous.call({ actor: Counter, id: "huge", payload: "x".repeat(2_000_000), capability: "bad" }), "PAYLOAD_TOO_LARGE");
  t.is(owner.state, "RUNNING");
  await stillServing(t);
});

test("garbage published to a node subject gets BAD_REQUEST when a reply is possible, and the node keeps serving", async (t) => {
  const { owner } = t.context;
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const subject = `mesh.node.${owner.nodeId}`;
  const garbage = [new Uint8Array([0xc1]), new TextEncoder().encode('{"actor":"Counter"}'), encode({ a: 1 }), encode([1, 0, "bad"])];
  for (const bytes of garbage) {
    nc.publish(subject, bytes); // no reply subject: dropped, logged
    const reply = decode((await nc.request(subject, bytes, { timeout: 2000 })).data) as unknown[];
    t.deepEqual(reply.slice(0, 3), [1, 1, "BAD_REQUEST"]);
    t.regex(String(reply[3]), /malformed request (envelope|batch)/);
  }
  // An empty request is the presence probe of a starting node (PROTOCOL.md): answered empty.
  t.is((await nc.request(subject, new Uint8Array(0), { timeout: 2000 })).data.length, 0);
  // A well-formed envelope from a stranger is served like any other call.
  const ok = decode(
    (await nc.request(subject, encode([1, 0, "bad", "Counter", "stranger", 1000, 0, null, {}]), { timeout: 2000 })).data,
  ) as unknown[];
  t.deepEqual([ok[0], ok[1], ok[3]], [1, 0, { ok: 1 }]);
  const big = decode((await nc.request(subject, new Uint8Array(5000), { timeout: 2000 })).data) as unknown[];
  t.deepEqual(big.slice(0, 3), [1, 1, "PAYLOAD_TOO_LARGE"]);
  t.true(warnings.some((w) => w.includes("refused a message on the node subject")));
  await stillServing(t);
});

test("a malformed stream event (kind 2) is BAD_REQUEST, one without a reply subject is refused, and an event for a class without handleEvent crashes that turn only", async (t) => {
  const { owner } = t.context;
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const subject = `mesh.node.${owner.nodeId}`;
  const event = (payload: unknown) => encode([1, 2, "bad", "Counter", "evt", 1000, 0, null, payload]);
  const good = ["orders", null, 7, "orders.evt", new Uint8Array([1]), null, Date.now()];
  const malformed = [
    null,
    "x",
    [],
    [...good.slice(0, 6)],
    ["bad name", ...good.slice(1)],
    [good[0], "bad stream!", ...good.slice(2)],
    [...good.slice(0, 2), 0, ...good.slice(3)],
    [...good.slice(0, 4), "not bytes", ...good.slice(5)],
    [...good.slice(0, 5), { h: 1 }, good[6]],
  ];
  for (const payload of malformed) {
    const reply = decode((await nc.request(subject, event(payload), { timeout: 2000 })).data) as unknown[];
    t.deepEqual(reply.slice(0, 3), [1, 1, "BAD_REQUEST"], JSON.stringify(payload));
    t.regex(String(reply[3]), /malformed event/);
  }
  nc.publish(subject, event(good));
  await eventually(
    () => warnings.some((w) => w.includes("refused an event without a reply subject")),
    "the event without a reply subject to be refused",
  );
  const crashed = decode((await nc.request(subject, event(good), { timeout: 2000 })).data) as unknown[];
  t.deepEqual(crashed.slice(0, 3), [1, 1, "ACTOR_CRASHED"]);
  t.regex(String(crashed[3]), /no handleEvent/);
  await stillServing(t);
});

test("a cast handler that throws crashes the actor quietly: logged, and the next call gets a new pid", async (t) => {
  for (const [where, node] of nodes(t)) {
    const id = `cc-${where}`;
    const first = await node.call({ actor: CastCrasher, id, capability: "bad" });
    await node.cast({ actor: CastCrasher, id, capability: "bad" });
    await eventually(
      async () => (await node.call({ actor: CastCrasher, id, capability: "bad" })).pid !== first.pid,
      "a fresh activation after the cast crash",
    );
  }
  t.true(warnings.some((w) => w.includes("actor crashed")));
  await stillServing(t);
});

test("bad options are BAD_REQUEST before anything connects", async (t) => {
  const url = t.context.server.url;
  const bad: [object, RegExp][] = [
    [{ nodeId: "a.b" }, /nodeId must be/],
    [{ appVersion: "" }, /appVersion must be 1-64 printable/],
    [{ appVersion: "x".repeat(65) }, /appVersion must be 1-64 printable/],
    [{ appVersion: "1.0\n" }, /appVersion must be 1-64 printable/],
    [{ appVersion: 2 }, /appVersion must be 1-64 printable/],
    [{ standbyMs: -1 }, /standbyMs must be/],
    [{ standbyMs: Number.NaN }, /standbyMs must be/],
    [{ shards: 0 }, /shards must be/],
    [{ callTimeoutMs: -1 }, /callTimeoutMs must be/],
    [{ callTimeoutMs: Infinity }, /callTimeoutMs must be/],
    [{ heartbeatMs: "1000" }, /heartbeatMs must be/],
    [{ actors: [{}] }, /actors must be classes/],
    [{ actors: [class NoHandler {}] }, /actors must be classes with a handleCall/],
    [
      {
        actors: [
          Counter,
          class Counter2 {
            static actorType = "Counter";
            handleCall() {}
          },
        ],
      },
      /share the actor type "Counter"/,
    ],
    [{ strategy: "random" }, /unknown placement strategy/],
    [{ capabilities: ["a b"] }, /capability must be/],
    [{ prefix: "a..b" }, /prefix must be/],
    [{ maxPayloadBytes: -1 }, /maxPayloadBytes/],
    [{ metricsPort: 70000 }, /metricsPort must be/],
  ];
  for (const [options, message] of bad) {
    const error = await t.throwsAsync(Mesh.start({ servers: url, ...options }), { instanceOf: MeshError, message });
    t.is(error?.code, "BAD_REQUEST");
  }
});

test("a stopped node refuses calls with STOPPED", async (t) => {
  const node = await startNode(t, { nodeId: nodeId("stopping"), actors: [Counter], capabilities: ["gone"] });
  await node.stop();
  await rejects(t, node.call({ actor: Counter, id: "x", capability: "gone" }), "STOPPED");
  await rejects(t, node.cast({ actor: Counter, id: "x", capability: "gone" }), "STOPPED");
  await t.throwsAsync(node.registerCapabilities(["x"]), { instanceOf: MeshError, message: /stopped/ });
  await node.stop();
  await stillServing(t);
});
