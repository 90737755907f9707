// Calls between actors: ctx.call carries the call chain; a cycle fails at once with CALL_CYCLE
// (on one node and across nodes), unless the class is reentrant.
import anyTest from "ava";
import type { TestFn } from "ava";
import type { Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { ReentrantRelay, Relay } from "./helpers/actors.js";
import type { Hop } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const relay = (mesh: Mesh, first: Hop, via: Hop[]) =>
  mesh.call<unknown>({ actor: first.actor, id: first.id, payload: { via }, capability: first.capability, timeoutMs: 10_000 });

test.serial("A calls B, B calls A: the inner call fails at once with CALL_CYCLE naming the chain, not after the timeout", async (t) => {
  const mesh = await startNode(t, { prefix: "cyc", nodeId: nodeId("cyc"), actors: [Relay, ReentrantRelay], capabilities: ["r"] });
  const a = { actor: "Relay", id: "a", capability: "r" };
  const b = { actor: "Relay", id: "b", capability: "r" };
  const c = { actor: "Relay", id: "c", capability: "r" };
  const started = Date.now();
  const { result } = await relay(mesh, a, [b, a]);
  t.like(result, { error: "CALL_CYCLE" });
  t.regex((result as { message: string }).message, /call cycle: r\/Relay\/a → r\/Relay\/b → r\/Relay\/a/);
  t.true(Date.now() - started < 5_000, "long before the 10 s timeout");
  // Through a third actor too, and a chain without a cycle still works.
  t.regex(
    ((await relay(mesh, a, [b, c, a])).result as { message: string }).message,
    /r\/Relay\/a → r\/Relay\/b → r\/Relay\/c → r\/Relay\/a/,
  );
  t.deepEqual((await relay(mesh, a, [b, c])).result, [`${mesh.nodeId}:a`, `${mesh.nodeId}:b`, `${mesh.nodeId}:c`]);
  t.is(mesh.metrics().errors.CALL_CYCLE, 2);
});

test.serial("a cycle across nodes fails with CALL_CYCLE too: the chain travels with the call", async (t) => {
  const one = await startNode(t, { prefix: "xcyc", nodeId: nodeId("one"), actors: [Relay], capabilities: ["left"] });
  const two = await startNode(t, { prefix: "xcyc", nodeId: nodeId("two"), actors: [Relay], capabilities: ["right"] });
  await eventually(() => one.nodesFor("right").length === 1 && two.nodesFor("left").length === 1, "the two nodes");
  const a = { actor: "Relay", id: "a", capability: "left" };
  const b = { actor: "Relay", id: "b", capability: "right" };
  const { result } = await relay(one, a, [b, a]);
  t.like(result, { error: "CALL_CYCLE" });
  t.regex((result as { message: string }).message, /left\/Relay\/a → right\/Relay\/b → left\/Relay\/a/);
  t.deepEqual((await relay(two, b, [a])).result, [`${two.nodeId}:b`, `${one.nodeId}:a`], "no cycle: the call went across");
});

test.serial("with static reentrant = true, the same chain completes: the call of its own chain runs at once", async (t) => {
  const one = await startNode(t, { prefix: "re", nodeId: nodeId("re1"), actors: [ReentrantRelay, Relay], capabilities: ["left"] });
  const two = await startNode(t, { prefix: "re", nodeId: nodeId("re2"), actors: [ReentrantRelay, Relay], capabilities: ["right"] });
  await eventually(() => one.nodesFor("right").length === 1 && two.nodesFor("left").length === 1, "the two nodes");
  const a = { actor: "ReentrantRelay", id: "a", capability: "left" };
  const b = { actor: "Relay", id: "b", capability: "right" };
  t.deepEqual((await relay(one, a, [b, a])).result, [`${one.nodeId}:a`, `${two.nodeId}:b`, `${one.nodeId}:a`]);
});
