// Passivation: idle actors leave memory after idleTimeoutMs; maxActors caps the live actors.
import anyTest from "ava";
import type { TestFn } from "ava";
import type { Mesh } from "@mesh/runtime";
import { MeshError } from "@mesh/runtime";
import { eventually, holds, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Counter, DurableCounter } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** A durable counter that leaves memory after 200 ms without a message. */
class IdleCounter extends DurableCounter {
  static override actorType = "IdleCounter";
  static idleTimeoutMs = 200;
}

type State = { count: number };
const call = (mesh: Mesh, actor: string, id: string, capability: string, payload: unknown = {}) =>
  mesh.call<State>({ actor, id, payload, capability }).then((r) => r.result);

test.serial("an idle durable actor leaves memory after its idleTimeoutMs and comes back with its state", async (t) => {
  const mesh = await startNode(t, { prefix: "idle", nodeId: nodeId("idle"), actors: [IdleCounter, Counter], capabilities: ["p"] });
  const first = await mesh.call<State>({ actor: "IdleCounter", id: "sleepy", capability: "p", payload: {} });
  t.is(first.result.count, 1);
  t.is((await call(mesh, "IdleCounter", "sleepy", "p")).count, 2);
  await call(mesh, "Counter", "plain", "p");
  t.is(mesh.actorCount, 2);
  await eventually(() => mesh.actorCount === 1, "the idle durable actor to leave memory", 5000);
  t.true(DurableCounter.deactivations.includes("sleepy:idle"));
  t.is(mesh.metrics().passivations, 1);
  // The plain Counter has no idle timeout: it stays while the sweep runs.
  await holds(() => mesh.actorCount === 1, "the plain actor stays live", 600);
  const again = await mesh.call<State>({ actor: "IdleCounter", id: "sleepy", capability: "p", payload: {} });
  t.not(again.pid, first.pid, "a new activation");
  t.is(again.result.count, 3, "its state came back");
});

test.serial("an actor in the middle of a turn is not passivated, however long the turn takes", async (t) => {
  const mesh = await startNode(t, { prefix: "busy", nodeId: nodeId("busy"), actors: [IdleCounter], capabilities: ["p"] });
  const slow = call(mesh, "IdleCounter", "slow", "p", { delayMs: 800 });
  await holds(() => mesh.actorCount === 1, "the busy actor stays live", 600);
  t.is((await slow).count, 1);
});

test.serial("the node's idleTimeoutMs also passivates plain actors, which then start afresh", async (t) => {
  const mesh = await startNode(t, {
    prefix: "plainidle",
    nodeId: nodeId("plainidle"),
    actors: [Counter],
    capabilities: ["p"],
    idleTimeoutMs: 150,
  });
  t.deepEqual((await mesh.call({ actor: Counter, id: "c", capability: "p" })).result, { ok: 1 });
  await eventually(() => mesh.actorCount === 0, "the idle plain actor to leave", 5000);
  t.deepEqual((await mesh.call({ actor: Counter, id: "c", capability: "p" })).result, { ok: 1 }, "a plain actor's state is not kept");
});

test.serial(
  "with maxActors 1,000 and 20,000 ids called, the node never holds more than 1,000 live actors and every state is intact",
  async (t) => {
    t.timeout(120_000);
    const mesh = await startNode(t, {
      prefix: "cap",
      nodeId: nodeId("cap"),
      actors: [DurableCounter],
      capabilities: ["p"],
      maxActors: 1000,
    });
    const ids = Array.from({ length: 20_000 }, (_, i) => `cap-${i}`);
    let most = 0;
    const pass = async (expected: number) => {
      let next = 0;
      const worker = async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          const { count } = await call(mesh, "DurableCounter", id, "p");
          most = Math.max(most, mesh.actorCount);
          if (count !== expected) throw new Error(`${id} counted ${count}, expected ${expected}`);
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
    };
    await pass(1);
    await pass(2);
    t.log(`most live actors seen: ${most}; evictions ${mesh.metrics().evictions}; state loads ${mesh.metrics().stateLoads}`);
    t.true(most <= 1000, `at most 1,000 live actors, saw ${most}`);
    t.true(mesh.actorCount <= 1000);
    t.true(mesh.metrics().evictions >= 39_000);
  },
);

test("idleTimeoutMs and maxActors are checked", async (t) => {
  for (const options of [{ idleTimeoutMs: 0 }, { idleTimeoutMs: -1 }, { maxActors: 0 }, { maxActors: 1.5 }]) {
    const err = await t.throwsAsync(startNode(t, { prefix: "bad", ...options }), { instanceOf: MeshError });
    t.is(err?.code, "BAD_REQUEST");
  }
  class BadIdle extends Counter {
    static idleTimeoutMs = "soon";
  }
  const err = await t.throwsAsync(startNode(t, { prefix: "bad", actors: [BadIdle as never] }), { instanceOf: MeshError });
  t.regex(err!.message, /BadIdle\.idleTimeoutMs/);
});
