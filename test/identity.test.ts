// One actor, one identity, one access rule: an actor is (capability, type, id), and a
// class bound to its capabilities is refused under any other, before anything activates.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";
import { MeshError, stateKey } from "@mesh/core";
import type { CallContext } from "@mesh/runtime";
import { Ledger, OpenLedger } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { jsonRequest } from "./helpers/foreign.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** A stored state, read from the bucket as any NATS client could. */
async function stored(url: string, prefix: string, capability: string, actorType: string, id: string): Promise<unknown> {
  const nc = await connect({ servers: url });
  try {
    const kv = await nc.jetstream().views.kv(`${prefix}_state`, { bindOnly: true });
    const entry = await kv.get(stateKey(capability, actorType, id));
    return entry?.operation === "PUT" ? decode(entry.value) : undefined;
  } finally {
    await nc.close();
  }
}

const mallory = { set: { balance: 0, owner: "mallory" } };

test("a bound type is refused under another capability with WRONG_CAPABILITY, locally, remotely and through the ingress; nothing activates and its state is untouched", async (t) => {
  const prefix = "bound";
  const owner = await startNode(t, { prefix, nodeId: nodeId("owner"), actors: [Ledger], capabilities: ["counter", "payments"] });
  const caller = await startNode(t, { prefix, nodeId: nodeId("caller") });
  // Discovery answers can come after a loaded node's start: the caller learns of the owner by then at the latest.
  await eventually(
    () => caller.nodesFor("payments").length === 1 && caller.nodesFor("counter").length === 1,
    "the caller to see the owner",
  );
  // The legitimate write: through payments, capability left out (the class declares it).
  const alice = { set: { balance: 90, owner: "alice" } };
  t.deepEqual((await owner.call({ actor: Ledger, id: "acct-1", payload: alice })).result, { balance: 90, owner: "alice" });
  const live = owner.actorCount;

  // The class at hand: refused before anything is sent.
  const local = await t.throwsAsync(caller.call({ actor: Ledger, id: "acct-1", payload: mallory, capability: "counter" }), {
    instanceOf: MeshError,
  });
  t.is(local?.code, "WRONG_CAPABILITY");
  t.is(local?.message, 'actor type "ledger" is bound to the capability "payments"; it cannot be reached through "counter"');
  // Only the type name: the owner refuses it, for calls and casts.
  const remote = await t.throwsAsync(caller.call({ actor: "ledger", id: "acct-1", payload: mallory, capability: "counter" }), {
    instanceOf: MeshError,
  });
  t.is(remote?.code, "WRONG_CAPABILITY");
  const onOwner = await t.throwsAsync(owner.call({ actor: "ledger", id: "acct-1", payload: mallory, capability: "counter" }), {
    instanceOf: MeshError,
  });
  t.is(onOwner?.code, "WRONG_CAPABILITY");
  await caller.cast({ actor: "ledger", id: "acct-1", payload: mallory, capability: "counter" });
  // A foreign client through the ingress of another capability.
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const reply = await jsonRequest(nc, `${prefix}.call.counter`, { actor: "ledger", id: "acct-1", payload: mallory });
  t.like(reply, { ok: false, error: { code: "WRONG_CAPABILITY" } });

  t.is(owner.actorCount, live, "nothing was activated");
  t.deepEqual(await stored(t.context.server.url, prefix, "payments", "ledger", "acct-1"), { balance: 90, owner: "alice" });
  t.is(await stored(t.context.server.url, prefix, "counter", "ledger", "acct-1"), undefined);
  t.deepEqual((await caller.call({ actor: Ledger, id: "acct-1" })).result, { balance: 90, owner: "alice" });
});

test("an unbound type reached through two capabilities is two actors: two states, two activations, no STATE_CONFLICT", async (t) => {
  const prefix = "unbound";
  const a = await startNode(t, { prefix, nodeId: nodeId("a"), actors: [OpenLedger], capabilities: ["counter", "payments"] });
  const b = await startNode(t, { prefix, nodeId: nodeId("b"), actors: [OpenLedger], capabilities: ["payments"] });
  const caller = await startNode(t, { prefix, nodeId: nodeId("caller") });
  await eventually(
    () => caller.nodesFor("payments").length === 2 && caller.nodesFor("counter").length === 1,
    "the caller to see both nodes",
  );
  const viaPayments = await caller.call({
    actor: OpenLedger,
    id: "acct-1",
    payload: { set: { balance: 90, owner: "alice" } },
    capability: "payments",
  });
  const viaCounter = await caller.call({ actor: OpenLedger, id: "acct-1", payload: mallory, capability: "counter" });
  t.deepEqual(viaCounter.result, { balance: 0, owner: "mallory" });
  t.not(viaCounter.pid, viaPayments.pid);
  // Each keeps its own state, turn after turn, whichever node owns each.
  for (let i = 0; i < 3; i++) {
    t.deepEqual((await caller.call({ actor: OpenLedger, id: "acct-1", capability: "payments" })).result, { balance: 90, owner: "alice" });
    t.deepEqual((await caller.call({ actor: OpenLedger, id: "acct-1", capability: "counter" })).result, { balance: 0, owner: "mallory" });
  }
  t.deepEqual(await stored(t.context.server.url, prefix, "payments", "open-ledger", "acct-1"), { balance: 90, owner: "alice" });
  t.deepEqual(await stored(t.context.server.url, prefix, "counter", "open-ledger", "acct-1"), { balance: 0, owner: "mallory" });
  t.is(a.metrics().stateConflicts + b.metrics().stateConflicts, 0);
});

class Teller {
  static actorType = "teller";
  static capabilities = ["payments"];
  async handleCall(p: { account: string }, ctx: CallContext) {
    // ctx.ref with the capability left out: the bound class's own.
    return ctx.ref(Ledger, p.account).call(undefined);
  }
}

test("a bound class may be called with no capability: mesh.call, mesh.ref and ctx.ref use the first it declares", async (t) => {
  const node = await startNode(t, { prefix: "omit", nodeId: nodeId("omit"), actors: [Ledger, Teller], capabilities: ["payments"] });
  t.deepEqual(await node.ref(Ledger, "acct-2").call({ set: { balance: 7, owner: "bob" } }), { balance: 7, owner: "bob" });
  t.deepEqual((await node.call({ actor: Teller, id: "t", payload: { account: "acct-2" } })).result, { balance: 7, owner: "bob" });
  // A type name or an unbound class still needs one.
  const err = await t.throwsAsync(node.call({ actor: OpenLedger, id: "x" }), { instanceOf: MeshError });
  t.is(err?.code, "BAD_REQUEST");
  t.regex(err!.message, /capability is required: open-ledger declares none/);
});

test("a class bound to no capability, or to names that are not capabilities, is refused at start", async (t) => {
  for (const capabilities of [[], ["has space"], [""]]) {
    class Bad {
      static capabilities = capabilities;
      handleCall() {}
    }
    const err = await t.throwsAsync(startNode(t, { prefix: "badbind", nodeId: nodeId("bad"), actors: [Bad] }), { instanceOf: MeshError });
    t.is(err?.code, "BAD_REQUEST");
    t.regex(err!.message, /Bad\.capabilities must be a non-empty list of capability names/);
  }
});
