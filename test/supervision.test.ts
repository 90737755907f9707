// Supervision seen from a caller on the same node and from another node.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { decode, encode } from "@msgpack/msgpack";
import { Mesh, MeshError } from "@mesh/runtime";
import type { CallContext } from "@mesh/runtime";
import { nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const gates = new Map<string, () => void>();
const gate = (key: string) => new Promise<void>((resolve) => gates.set(key, resolve));
const open = (key: string) => gates.get(key)?.();

/** Counts its calls; { crashAfter: key } waits for the gate `key`, then throws. */
class Fragile {
  n = 0;
  async handleCall(payload: { crashAfter?: string; open?: string } | undefined, ctx: CallContext) {
    if (payload?.open) open(payload.open);
    if (payload?.crashAfter) {
      await gate(payload.crashAfter);
      throw new Error("fragile broke");
    }
    return { pid: ctx.pid, n: ++this.n };
  }
}

/** Its onActivate fails while `failures` > 0. */
class FlakyStart {
  static failures = 0;
  async onActivate() {
    await Promise.resolve();
    if (FlakyStart.failures-- > 0) throw new Error("flaky start");
  }
  handleCall() {
    return "up";
  }
}

/** Returns a thenable whose then() throws. */
class BadThenable {
  handleCall(payload: { bad?: boolean }) {
    if (payload?.bad)
      return {
        then() {
          throw new Error("then() exploded");
        },
      };
    return "fine";
  }
}

const actors = [Fragile, FlakyStart, BadThenable];
const test = anyTest as TestFn<ClusterContext & { owner: Mesh; caller: Mesh }>;
useNatsServer(test, async (t) => {
  t.context.owner = await startNode(t, { nodeId: nodeId("owner"), actors, capabilities: ["sup"] });
  t.context.caller = await startNode(t, { nodeId: nodeId("caller") });
});

const places = (t: { context: { owner: Mesh; caller: Mesh } }) =>
  [
    ["local", t.context.owner],
    ["remote", t.context.caller],
  ] as const;

test("a crash reaches a remote caller as ACTOR_CRASHED, and messages queued behind it go to a fresh instance, in order", async (t) => {
  for (const [where, node] of places(t)) {
    const id = `fragile-${where}`;
    const first = await node.call<{ pid: string }>({ actor: Fragile, id, capability: "sup" });
    const crashing = node.call({ actor: Fragile, id, payload: { crashAfter: `${where}-k` }, capability: "sup" });
    const queued = [1, 2, 3].map(() => node.call<{ pid: string; n: number }>({ actor: Fragile, id, payload: {}, capability: "sup" }));
    await node.call({ actor: Fragile, id: `${where}-opener`, payload: { open: `${where}-k` }, capability: "sup" });
    const error = await t.throwsAsync(crashing, { instanceOf: MeshError, message: /fragile broke/ });
    t.is(error?.code, "ACTOR_CRASHED");
    const after = await Promise.all(queued);
    t.deepEqual(
      after.map((r) => r.result.n),
      [1, 2, 3],
      "fresh state, one at a time, in arrival order",
    );
    t.is(new Set(after.map((r) => r.pid)).size, 1);
    t.not(after[0]!.pid, first.pid);
  }
});

test("an onActivate that fails caches nothing: the next call activates again", async (t) => {
  for (const [where, node] of places(t)) {
    FlakyStart.failures = 1;
    const error = await t.throwsAsync(node.call({ actor: FlakyStart, id: `flaky-${where}`, capability: "sup" }), {
      instanceOf: MeshError,
      message: /flaky start/,
    });
    t.is(error?.code, "ACTIVATION_FAILED");
    t.is((await node.call({ actor: FlakyStart, id: `flaky-${where}`, capability: "sup" })).result, "up");
  }
});

test("a handler returning a thenable whose then() throws crashes the actor, nothing else", async (t) => {
  for (const [where, node] of places(t)) {
    const id = `thenable-${where}`;
    const error = await t.throwsAsync(node.call({ actor: BadThenable, id, payload: { bad: true }, capability: "sup" }), {
      instanceOf: MeshError,
      message: /then\(\) exploded/,
    });
    t.is(error?.code, "ACTOR_CRASHED");
    t.is((await node.call({ actor: BadThenable, id, payload: {}, capability: "sup" })).result, "fine");
  }
});

test("a placement function that names a stranger gives INTERNAL, and the nodes keep serving", async (t) => {
  const broken = function brokenPlacement(shard: number, capability: string, nodes: readonly string[]) {
    return capability === "broken" ? "stranger" : nodes[shard % nodes.length]!;
  };
  const options = { prefix: "strange", strategy: broken, actors: [BadThenable] };
  const a = await startNode(t, { ...options, nodeId: nodeId("sa"), capabilities: ["broken", "fine"] });
  const b = await startNode(t, { ...options, nodeId: nodeId("sb"), capabilities: ["fine"] });
  const error = await t.throwsAsync(b.call({ actor: BadThenable, id: "x", capability: "broken" }), { instanceOf: MeshError });
  t.is(error?.code, "INTERNAL");
  // A foreign envelope for the broken capability reaches a's subject: a answers INTERNAL instead of dying.
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const reply = decode(
    (await nc.request(`strange.node.${a.nodeId}`, encode([1, 0, "broken", "BadThenable", "x", 1000, 0, null, {}]), { timeout: 2000 })).data,
  ) as unknown[];
  t.deepEqual(reply.slice(0, 3), [1, 1, "INTERNAL"]);
  // Both still serve, across NATS.
  for (let i = 0; i < 20; i++) t.is((await b.call({ actor: BadThenable, id: `ok-${i}`, capability: "fine" })).result, "fine");
  t.is(a.state, "RUNNING");
});

test("Mesh.start refuses when no NATS server answers, with the client's error", async (t) => {
  await t.throwsAsync(Mesh.start({ servers: "nats://127.0.0.1:1", nats: { reconnect: false, timeout: 1000 } }));
});
