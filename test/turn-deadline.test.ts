// A turn's deadline (maxTurnMs): a handler that never returns ends at the
// deadline with TURN_TIMEOUT, its activation is dropped, nothing of the turn
// is stored, and the next message runs on a fresh activation. A TIMEOUT says
// what its actor was busy with; `mesh actor reset` drops a hung activation.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { CallContext, Mesh, StreamEvent } from "@mesh/runtime";
import { MeshError } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import { meshCli } from "./helpers/cli.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { readStream, setUpStreams } from "./helpers/streams.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** Promises that never settle, kept so that nothing collects them. */
const hung: Promise<never>[] = [];
const never = () => {
  const p = new Promise<never>(() => undefined);
  hung.push(p);
  return p;
};

type Order = { hang?: true; timer?: true } | undefined;

/** Hangs on request, in a call, a cast or a timer turn; answers its pid otherwise. */
class Stuck {
  static actorType = "Stuck";
  static maxTurnMs = 300;
  async handleCall(p: Order, ctx: CallContext): Promise<string> {
    if (p?.timer) ctx.setTimer("t", 1);
    if (p?.hang) await never();
    return ctx.pid;
  }
  async handleCast(p: Order): Promise<void> {
    if (p?.hang) await never();
  }
  async handleTimer(): Promise<void> {
    await never();
  }
}

/** A durable counter that may hang after it counted. */
class StuckCounter {
  static actorType = "StuckCounter";
  static durable = true;
  static maxTurnMs = 300;
  state = { n: 0 };
  async handleCall(p: Order): Promise<number> {
    this.state.n += 1;
    if (p?.hang) await never();
    return this.state.n;
  }
}

const options = { actors: [Stuck, StuckCounter], capabilities: ["s"] };
const call = <R>(mesh: Mesh, actor: string, id: string, payload?: Order) =>
  mesh.call<R>({ actor, id, payload, capability: "s", timeoutMs: 5000 });

test.serial(
  "a hung call ends at the deadline with TURN_TIMEOUT, locally and from another node; the next call runs on a fresh activation",
  async (t) => {
    const a = await startNode(t, { ...options, prefix: "tdcall", nodeId: nodeId("ta") });
    const b = await startNode(t, { ...options, prefix: "tdcall", nodeId: nodeId("tb"), capabilities: [] });
    await eventually(() => b.nodesFor("s").length === 1, "b to see a");
    for (const [caller, id] of [
      [a, "local"],
      [b, "remote"],
    ] as const) {
      const first = (await call<string>(caller, "Stuck", id)).result;
      const started = performance.now();
      const err = await t.throwsAsync(call(caller, "Stuck", id, { hang: true }), { instanceOf: MeshError });
      t.is(err?.code, "TURN_TIMEOUT", `${id}: ${err?.message}`);
      t.regex(err!.message, /ran over 300 ms \(maxTurnMs\)/);
      t.true(performance.now() - started < 4000, "long before the call's own timeout");
      const fresh = (await call<string>(caller, "Stuck", id)).result;
      t.not(fresh, first, `${id}: a fresh activation`);
    }
    t.is(a.metrics().turnTimeouts, 2);
    t.is(a.metrics().errors.TURN_TIMEOUT, 2);
  },
);

test.serial("a hung cast and a hung timer turn end at the deadline: calls queued behind them run on a fresh activation", async (t) => {
  const mesh = await startNode(t, { ...options, prefix: "tdcast", nodeId: nodeId("tc") });
  const first = (await call<string>(mesh, "Stuck", "c")).result;
  await mesh.cast({ actor: "Stuck", id: "c", payload: { hang: true }, capability: "s" });
  const behind = (await call<string>(mesh, "Stuck", "c")).result;
  t.not(behind, first, "the call queued behind the hung cast ran on a fresh activation");
  // A timer turn that hangs: the call queued behind it runs on a fresh activation too.
  const timed = (await call<string>(mesh, "Stuck", "tm", { timer: true })).result;
  await eventually(() => mesh.metrics().turnTimeouts === 2, "the timer turn to reach its deadline", 5000);
  t.not((await call<string>(mesh, "Stuck", "tm")).result, timed);
});

test.serial("a durable turn that hangs commits nothing: the fresh activation reads the state its last finished turn stored", async (t) => {
  const mesh = await startNode(t, { ...options, prefix: "tddur", nodeId: nodeId("td") });
  t.is((await call<number>(mesh, "StuckCounter", "d")).result, 1);
  t.is((await call<number>(mesh, "StuckCounter", "d")).result, 2);
  const err = await t.throwsAsync(call(mesh, "StuckCounter", "d", { hang: true }), { instanceOf: MeshError });
  t.is(err?.code, "TURN_TIMEOUT");
  t.is((await call<number>(mesh, "StuckCounter", "d")).result, 3, "the hung turn's increment was not stored");
});

test.serial("maxTurnMs: 0 turns the deadline off; a bad maxTurnMs is refused at start", async (t) => {
  const mesh = await startNode(t, {
    ...options,
    prefix: "tdoff",
    nodeId: nodeId("to"),
    maxTurnMs: 0,
    actors: [
      class Off extends Stuck {
        static override actorType = "Off";
        static override maxTurnMs = 0;
      },
    ],
  });
  const err = await t.throwsAsync(mesh.call({ actor: "Off", id: "o", payload: { hang: true }, capability: "s", timeoutMs: 800 }), {
    instanceOf: MeshError,
  });
  t.is(err?.code, "TIMEOUT");
  t.is(mesh.metrics().turnTimeouts, 0);
  for (const bad of [-1, 1.5, Number.NaN]) {
    const refused = await t.throwsAsync(startNode(t, { ...options, prefix: "tdbad", nodeId: nodeId("tx"), maxTurnMs: bad }), {
      instanceOf: MeshError,
    });
    t.is(refused?.code, "BAD_REQUEST");
    t.regex(refused!.message, /maxTurnMs/);
  }
});

test.serial(
  "a TIMEOUT whose actor is busy says so, locally and from another node; mesh actor reset drops the hung turn, and the next call runs on a fresh activation",
  async (t) => {
    class NoLimit extends Stuck {
      static override actorType = "NoLimit";
      static override maxTurnMs = 0;
    }
    const opts = { ...options, actors: [NoLimit], prefix: "tdreset" };
    const a = await startNode(t, { ...opts, nodeId: nodeId("ra") });
    const b = await startNode(t, { ...opts, nodeId: nodeId("rb"), capabilities: [] });
    await eventually(() => b.nodesFor("s").length === 1, "b to see a");
    const first = (await a.call<string>({ actor: "NoLimit", id: "r", capability: "s" })).result;
    const hung = a.call({ actor: "NoLimit", id: "r", payload: { hang: true }, capability: "s", timeoutMs: 60_000 });
    for (const [caller, where] of [
      [a, "local"],
      [b, "remote"],
    ] as const) {
      const err = await t.throwsAsync(caller.call({ actor: "NoLimit", id: "r", capability: "s", timeoutMs: 2000 }), {
        instanceOf: MeshError,
      });
      t.is(err?.code, "TIMEOUT", where);
      t.regex(err!.message, /NoLimit.* was busy: its call turn had run for \d+ ms \(no maxTurnMs\), with \d+ messages? waiting/, where);
    }
    const reset = await meshCli("actor", "reset", "s", "NoLimit", "r", "--prefix", "tdreset", "-s", t.context.server.url);
    t.is(reset.code, 0, reset.stderr);
    t.regex(reset.stdout, new RegExp(`reset NoLimit "r": its live activation on ${a.nodeId} ended \\(2 nodes answered\\)`));
    const dropped = await t.throwsAsync(hung, { instanceOf: MeshError });
    t.is(dropped?.code, "ACTOR_CRASHED");
    t.regex(dropped!.message, /reset by an operator \(mesh actor reset\) in its call turn/);
    t.not((await b.call<string>({ actor: "NoLimit", id: "r", capability: "s" })).result, first, "a fresh activation");
    const idle = await meshCli("actor", "reset", "s", "NoLimit", "r", "--prefix", "tdreset", "-s", t.context.server.url);
    t.regex(idle.stdout, /its live activation on .* ended/, "an idle activation is reset too");
    const none = await meshCli("actor", "reset", "s", "NoLimit", "nobody", "--prefix", "tdreset", "-s", t.context.server.url);
    t.regex(none.stdout, /no node had it live \(2 nodes answered\)/);
    const bad = await meshCli("actor", "reset", "s", "NoLimit", "--prefix", "tdreset", "-s", t.context.server.url);
    t.is(bad.code, 2, "a missing id is a usage error");
  },
);

test.serial(
  "a hung handleEvent ends at the deadline each time it is delivered: it is dead-lettered, and the events after it for that id are applied",
  async (t) => {
    t.timeout(90_000);
    const stream = "HANGEV";
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    await setUpStreams(nc, stream);
    class HangEv {
      static actorType = "HangEv";
      static capability = "s";
      static maxTurnMs = 300;
      static events = { stream, subject: `${stream}.in.>`, key: { token: 2 }, deadLetter: `${stream}.dead`, maxDeliveries: 3 };
      seen: number[] = [];
      handleCall(): number[] {
        return this.seen;
      }
      async handleEvent(e: StreamEvent): Promise<void> {
        if (e.json<{ hang?: boolean }>().hang) await never();
        this.seen.push(e.json<{ n: number }>().n);
      }
    }
    const mesh = await startNode(t, { prefix: "tdev", nodeId: nodeId("tv"), actors: [HangEv], capabilities: ["s"] });
    const js = nc.jetstream();
    await js.publish(`${stream}.in.k1`, JSON.stringify({ hang: true }));
    for (const n of [1, 2, 3]) await js.publish(`${stream}.in.k1`, JSON.stringify({ n }));
    const seen = async () => (await mesh.call<number[]>({ actor: "HangEv", id: "k1", capability: "s" })).result;
    await eventually(async () => (await seen()).length === 3, "the three events after the hung one to be applied", 60_000);
    t.deepEqual(await seen(), [1, 2, 3]);
    const dead = await readStream(nc, `${stream}_DEAD`, 1);
    t.is(dead.length, 1, "only the hung event is dead-lettered");
    t.deepEqual(dead[0]!.json, { hang: true });
    t.true(mesh.metrics().turnTimeouts >= 3, `each delivery of the hung event ended at the deadline (${mesh.metrics().turnTimeouts})`);
  },
);
