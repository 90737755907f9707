// Every example of the Elixir library's "Implementing Processes" guide, ported.
import anyTest from "ava";
import type { TestFn } from "ava";
import { MeshError } from "@mesh/runtime";
import type { CallPayload, Mesh } from "@mesh/runtime";
import { Counter, Crasher, GameActor } from "./helpers/actors.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext & { mesh: Mesh }>;
useNatsServer(test, async (t) => {
  t.context.mesh = await startNode(t, { nodeId: nodeId("guide"), actors: [Counter, GameActor, Crasher] });
  // The guide registers its capabilities first.
  await t.context.mesh.registerCapabilities(["counter", "game", "crasher"]);
});

test("Counter: the first call creates it, later calls reuse the same pid and keep its state", async (t) => {
  const { mesh } = t.context;
  const first = await mesh.call({ actor: Counter, id: "counter_1", payload: {}, capability: "counter" });
  t.deepEqual(first.result, { ok: 1 });
  t.regex(first.pid, new RegExp(`^${mesh.nodeId}/Counter/counter_1#\\d+$`));
  const second = await mesh.call({ actor: Counter, id: "counter_1", payload: {}, capability: "counter" });
  t.is(second.pid, first.pid);
  t.deepEqual(second.result, { ok: 2 });
});

test("cast returns at once and is applied: reset sets the counter back", async (t) => {
  const { mesh } = t.context;
  const req = { actor: Counter, id: "counter_cast", payload: {}, capability: "counter" };
  await mesh.call(req);
  await mesh.call(req);
  t.is(await mesh.cast({ ...req, payload: { action: "reset" } }), undefined);
  // Casts are applied in order before the next call: one message at a time.
  t.deepEqual((await mesh.call(req)).result, { ok: 1 });
});

test("GameActor: initArg { starting_level: 10 } gives level 10, and is ignored once the actor exists", async (t) => {
  const { mesh } = t.context;
  const created = await mesh.call({
    actor: GameActor,
    id: "player_123",
    payload: { action: "get_state" },
    capability: "game",
    initArg: { starting_level: 10 },
  });
  t.like(created.result, { ok: { level: 10, score: 0 } });
  const again = await mesh.call({
    actor: GameActor,
    id: "player_123",
    payload: { action: "get_state" },
    capability: "game",
    initArg: { starting_level: 99 },
  });
  t.is(again.pid, created.pid);
  t.like(again.result, { ok: { level: 10 } });
  const defaulted = await mesh.call({ actor: GameActor, id: "player_456", payload: { action: "get_state" }, capability: "game" });
  t.like(defaulted.result, { ok: { level: 1 } });
});

test("Crasher: a crash raises ACTOR_CRASHED in the caller; the next call gets a new pid and fresh state", async (t) => {
  const { mesh } = t.context;
  const req = { actor: Crasher, id: "crasher_1", capability: "crasher" };
  const first = await mesh.call({ ...req, payload: {} });
  await mesh.call({ ...req, payload: {} });
  const error = await t.throwsAsync(mesh.call({ ...req, payload: { action: "crash" } }), { instanceOf: MeshError, message: /boom!/ });
  t.is(error?.code, "ACTOR_CRASHED");
  const next = await mesh.call({ ...req, payload: {} });
  t.not(next.pid, first.pid);
  t.deepEqual(next.result, { ok: 0 });
});

// The guide's own test module, case by case.
test("guide test: increments score", async (t) => {
  const { result } = await t.context.mesh.call({
    actor: GameActor,
    id: "test_game_1",
    payload: { action: "increment" },
    capability: "game",
  });
  t.deepEqual(result, { ok: 1 });
});

test("guide test: maintains state across calls", async (t) => {
  const req = (payload: CallPayload<GameActor>) => ({ actor: GameActor, id: "test_game_2", payload, capability: "game" });
  const one = await t.context.mesh.call(req({ action: "increment" }));
  const two = await t.context.mesh.call(req({ action: "increment" }));
  t.is(one.pid, two.pid);
  t.deepEqual(two.result, { ok: 2 });
});

test("guide test: custom initialization", async (t) => {
  const { result } = await t.context.mesh.call({
    actor: GameActor,
    id: "test_game_3",
    payload: { action: "get_state" },
    capability: "game",
    initArg: { starting_level: 10 },
  });
  t.like(result, { ok: { level: 10 } });
});

test("guide test: async cast", async (t) => {
  const { mesh } = t.context;
  await mesh.call({ actor: GameActor, id: "test_game_4", payload: { action: "get_state" }, capability: "game" });
  t.is(await mesh.cast({ actor: GameActor, id: "test_game_4", payload: { action: "log" }, capability: "game" }), undefined);
  const state = () =>
    mesh.call<{ ok: { log: string[] } }>({ actor: GameActor, id: "test_game_4", payload: { action: "get_state" }, capability: "game" });
  await eventually(async () => (await state()).result.ok.log.includes("log"), "the cast to be applied");
  t.deepEqual((await state()).result.ok.log, ["log"]);
});

test("an actor may be named by its type string as well as its class", async (t) => {
  const { mesh } = t.context;
  const byClass = await mesh.call({ actor: Counter, id: "by_name", capability: "counter" });
  const byName = await mesh.call({ actor: "Counter", id: "by_name", capability: "counter" });
  t.is(byName.pid, byClass.pid);
});
