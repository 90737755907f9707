import test from "ava";
import { MeshError, OwnerTable, RoutingTable, modulo, rendezvous, resolveStrategy } from "@mesh/core";

const nodes = (n: number) => Array.from({ length: n }, (_, i) => `node-${i}`).sort();

test("rendezvous is deterministic and independent of the order nodes were learned in", (t) => {
  const a = new OwnerTable("game", ["n1", "n2", "n3"], 4096, rendezvous);
  const b = new OwnerTable("game", ["n1", "n2", "n3"], 4096, rendezvous);
  for (let s = 0; s < 4096; s++) t.is(a.owner(s), b.owner(s));
});

test("rendezvous spreads 4096 shards over 3 nodes within 10% of even", (t) => {
  const counts = new OwnerTable("c", nodes(3), 4096, rendezvous).shardCounts();
  for (const n of counts.values()) t.true(Math.abs(n - 4096 / 3) < 4096 / 30, `${n} shards`);
});

test("a join under rendezvous moves about 1/(N+1) of the shards; modulo moves most", (t) => {
  const moved = (fn: typeof rendezvous) => {
    const before = new OwnerTable("c", nodes(3), 4096, fn);
    const after = new OwnerTable("c", nodes(4), 4096, fn);
    let m = 0;
    for (let s = 0; s < 4096; s++) if (before.owner(s) !== after.owner(s)) m++;
    return m / 4096;
  };
  t.true(moved(rendezvous) < 0.25 * 1.15, `rendezvous moved ${moved(rendezvous)}`);
  t.true(moved(modulo) > 0.5, `modulo moved ${moved(modulo)}`);
});

test("modulo is the Elixir library's rule: nodes[shard % N]", (t) => {
  const table = new OwnerTable("c", ["a", "b", "c"], 4096, modulo);
  t.is(table.owner(0), "a");
  t.is(table.owner(1), "b");
  t.is(table.owner(5), "c");
});

test("a custom strategy is used as given, and one that names a stranger is refused", (t) => {
  const first = (_s: number, _c: string, ns: readonly string[]) => ns[0]!;
  t.is(new OwnerTable("c", ["a", "b"], 16, first).owner(9), "a");
  t.is(resolveStrategy(first).name, "custom:first");
  const error = t.throws(() => new OwnerTable("c", ["a", "b"], 16, () => "z"), { instanceOf: MeshError });
  t.is(error?.code, "INTERNAL");
  t.throws(() => resolveStrategy("random" as never), { instanceOf: MeshError, message: /unknown placement strategy/ });
});

test("the routing table lists nodes per capability and all capabilities, sorted and de-duplicated", (t) => {
  const routes = new RoutingTable(4096, rendezvous);
  routes.setMembers([
    { node: "c", capabilities: ["game", "chat", "payment"] },
    { node: "a", capabilities: ["game"] },
    { node: "b", capabilities: ["chat"] },
    { node: "d", capabilities: [] },
  ]);
  t.deepEqual(routes.nodesFor("game"), ["a", "c"]);
  t.deepEqual(routes.nodesFor("chat"), ["b", "c"]);
  t.deepEqual(routes.nodesFor("payment"), ["c"]);
  t.deepEqual(routes.nodesFor("nothing"), []);
  t.deepEqual(routes.allCapabilities(), ["chat", "game", "payment"]);
  t.is(routes.owner("nothing", 1), undefined);
  for (let s = 0; s < 4096; s += 97) t.true(["a", "c"].includes(routes.owner("game", s)!));
  routes.setMembers([{ node: "a", capabilities: ["game"] }]);
  t.deepEqual(routes.allCapabilities(), ["game"]);
  t.is(routes.owner("game", 7), "a");
});
