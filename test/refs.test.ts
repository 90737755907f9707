// Typed references: mesh.ref and ctx.ref take the payload type of the class's handlers and
// resolve to their reply type. The @ts-expect-error lines are the type-level test: if a wrong
// payload or reply type were accepted, this file would not compile and the test run would fail.
import anyTest from "ava";
import type { TestFn } from "ava";
import type { CallContext } from "@mesh/runtime";
import { nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

class Inventory {
  static actorType = "Inventory";
  stock = 10;
  handleCall(p: { reserve: number }): { left: number } {
    this.stock -= p.reserve;
    return { left: this.stock };
  }
}

class Basket {
  static actorType = "Basket";
  items: string[] = [];
  async handleCall(p: { add: string; sku?: string }, ctx: CallContext): Promise<{ items: string[]; left?: number }> {
    this.items.push(p.add);
    if (p.sku === undefined) return { items: this.items };
    const { left } = await ctx.ref(Inventory, p.sku, { capability: "shop" }).call({ reserve: 1 });
    return { items: this.items, left };
  }
  handleCast(p: { clear: true }): void {
    if (p.clear) this.items = [];
  }
}

test("mesh.ref and ctx.ref call and cast with the handlers' types", async (t) => {
  const mesh = await startNode(t, { prefix: "refs", nodeId: nodeId("refs"), actors: [Basket, Inventory], capabilities: ["shop"] });
  const basket = mesh.ref(Basket, "b1", { capability: "shop" });
  const first: { items: string[]; left?: number } = await basket.call({ add: "book" });
  t.deepEqual(first, { items: ["book"] });
  t.deepEqual(await basket.call({ add: "lamp", sku: "sku-1" }), { items: ["book", "lamp"], left: 9 });
  await basket.cast({ clear: true });
  t.deepEqual(await basket.call({ add: "pen" }), { items: ["pen"] });
  t.is(basket.id, "b1");

  // Type-level checks: never run, only compiled.
  const typeChecks = async () => {
    // @ts-expect-error a payload handleCall does not take
    await basket.call({ remove: "book" });
    // @ts-expect-error the reply is { items, left? }, not a number
    const n: number = await basket.call({ add: "x" });
    // @ts-expect-error a cast payload handleCast does not take
    await basket.cast({ add: "x" });
    // @ts-expect-error Inventory's payload is { reserve: number }
    await mesh.ref(Inventory, "i", { capability: "shop" }).call({ reserve: "one" });
    return n;
  };
  t.is(typeof typeChecks, "function");
});

test("mesh.call and mesh.cast with a class take its handlers' payload types and resolve to its reply type", async (t) => {
  const mesh = await startNode(t, {
    prefix: "refs-call",
    nodeId: nodeId("refs-call"),
    actors: [Basket, Inventory],
    capabilities: ["shop"],
  });
  const { result } = await mesh.call({ actor: Basket, id: "c1", payload: { add: "book" }, capability: "shop" });
  const items: string[] = result.items;
  t.deepEqual(items, ["book"]);
  await mesh.cast({ actor: Basket, id: "c1", payload: { clear: true }, capability: "shop" });
  t.deepEqual((await mesh.call({ actor: Basket, id: "c1", payload: { add: "pen" }, capability: "shop" })).result, { items: ["pen"] });
  // A type name: payload and reply are unknown, or the reply type is named.
  const named = await mesh.call<{ left: number }>({ actor: "Inventory", id: "i1", payload: { reserve: 2 }, capability: "shop" });
  t.is(named.result.left, 8);

  const typeChecks = async () => {
    // @ts-expect-error a payload Basket's handleCall does not take
    await mesh.call({ actor: Basket, id: "c1", payload: { remove: "book" }, capability: "shop" });
    // @ts-expect-error the reply is { items, left? }, not a number
    const n: number = (await mesh.call({ actor: Inventory, id: "i", payload: { reserve: 1 }, capability: "shop" })).result;
    // @ts-expect-error a cast payload handleCast does not take
    await mesh.cast({ actor: Basket, id: "c1", payload: { add: "x" }, capability: "shop" });
    // @ts-expect-error a type name's reply is unknown until named
    const m: number = (await mesh.call({ actor: "Inventory", id: "i", capability: "shop" })).result;
    return n + m;
  };
  t.is(typeof typeChecks, "function");
});
