// Placement keys: a standby of newer code owns nothing; a leaving node's heir
// takes its key, so exactly the leaver's shards; a surge roll moves each shard
// once (rendezvous without keys: 1.5 times), and never to older code.
import test from "ava";
import { RoutingTable, compareVersions, rendezvous } from "@mesh/core";
import type { PlacedMember } from "@mesh/core";
import { heirFor } from "@mesh/core/internal";

const SHARDS = 4096;
const CAP = "game";

function owners(members: readonly PlacedMember[]): string[] {
  const routes = new RoutingTable(SHARDS, rendezvous);
  routes.setMembers(members);
  return Array.from({ length: SHARDS }, (_, s) => routes.owner(CAP, s)!);
}
const node = (name: string, app: string, more: Partial<PlacedMember> = {}): PlacedMember => ({
  node: name,
  capabilities: [CAP],
  app,
  keys: true,
  ...more,
});

test("versions compare part by part, numbers as numbers; unversioned before any", (t) => {
  const ordered = ["unversioned", "0.9", "1.2", "1.9.9", "1.10", "1.10.0", "1.10.0-rc1", "2", "v2", "v10"];
  for (let i = 0; i < ordered.length; i++)
    for (let j = 0; j < ordered.length; j++)
      t.is(compareVersions(ordered[i], ordered[j]), Math.sign(i - j), `${ordered[i]} vs ${ordered[j]}`);
  t.is(compareVersions(undefined, "unversioned"), 0);
  t.is(compareVersions("01", "1"), 1, "same number, longer text: after, so no two versions tie");
});

test("a standby owns nothing while a keyed member has the capability; alone, it places under its own id", (t) => {
  const before = owners([node("a", "1"), node("b", "1")]);
  const withStandby = owners([node("a", "1"), node("b", "1"), node("d", "2", { standby: true })]);
  t.deepEqual(withStandby, before);
  t.true(owners([node("d", "2", { standby: true })]).every((o) => o === "d"));
});

test("a leaver's heir takes its key: exactly the leaver's shards move, all to the heir, and stay when the leaver is gone", (t) => {
  const a = node("a", "1");
  const b = node("b", "1");
  const c = node("c", "1");
  const d = node("d", "2", { standby: true });
  const before = owners([a, b, c, d]);
  const leaving = owners([{ ...a, capabilities: [], heir: "d" }, b, c, d]);
  const adopted = owners([b, c, { ...d, standby: false, key: "a" }]);
  for (let s = 0; s < SHARDS; s++) t.is(leaving[s], before[s] === "a" ? "d" : before[s], `shard ${s}`);
  t.deepEqual(adopted, leaving, "the heir's own announcement of the key changes nothing");
});

test("on one key, the newest code holds it; on a tie, the first id", (t) => {
  t.true(owners([node("x", "1", { key: "k" }), node("y", "2", { key: "k" })]).every((o) => o === "y"));
  t.true(owners([node("y", "2", { key: "k" }), node("x", "2", { key: "k" })]).every((o) => o === "x"));
});

test("the heir is a standby no other leaver named, covering the leaver's capabilities, of the newest code, then the first id", (t) => {
  const leaver = node("a", "1");
  const members = [
    leaver,
    node("s1", "3", { standby: true, capabilities: ["other"] }),
    node("s2", "2", { standby: true }),
    node("s3", "3", { standby: true }),
    node("s4", "3", { standby: true }),
  ];
  t.is(heirFor(leaver, members), "s3");
  t.is(heirFor(leaver, [...members, { node: "b", capabilities: [], heir: "s3", keys: true }]), "s4");
  t.is(heirFor(leaver, [leaver, node("b", "1")]), undefined);
  t.is(heirFor({ ...leaver, capabilities: [] }, members), undefined, "a node that hosts nothing names no heir");
  t.is(heirFor(leaver, [...members, { node: "old", capabilities: [CAP] }]), undefined, "nor one beside a Mesh before placement keys");
});

test("while a member does not know placement keys, every member places under its node id: keys, standbys and heirs are ignored", (t) => {
  const before = { node: "old", capabilities: [CAP] }; // a Mesh before placement keys: no `keys`
  const members = [before, node("a", "1"), node("d", "2", { standby: true }), node("e", "2", { key: "a-gone" })];
  t.deepEqual(owners(members), owners(members.map((m) => ({ node: m.node, capabilities: m.capabilities, keys: true }))));
  t.true(owners(members).includes("d"), "the standby owns shards, as the older member sees it");
});

/** Moves per shard over a roll of `steps`, each a view; and whether a shard ever went from newer code to older. */
function roll(steps: PlacedMember[][]): { moves: number; backwards: number } {
  let moves = 0;
  let backwards = 0;
  let prev = owners(steps[0]!);
  let prevApps = new Map(steps[0]!.map((m) => [m.node, m.app]));
  for (const step of steps.slice(1)) {
    const next = owners(step);
    const apps = new Map(step.map((m) => [m.node, m.app]));
    for (let s = 0; s < SHARDS; s++)
      if (next[s] !== prev[s]) {
        moves++;
        if (compareVersions(apps.get(next[s]!), prevApps.get(prev[s]!)) < 0) backwards++;
      }
    prev = next;
    prevApps = apps;
  }
  return { moves: moves / SHARDS, backwards };
}

/** A surge roll of `n` nodes: each v2 node joins, then one v1 node leaves; `keys`: the v2 node joins as a standby and is named heir. */
function surge(n: number, keys: boolean): PlacedMember[][] {
  const old = Array.from({ length: n }, (_, i) => node(`old${i}`, "1"));
  let members: PlacedMember[] = [...old];
  const steps = [members];
  for (let i = 0; i < n; i++) {
    const fresh = node(`new${i}`, "2", keys ? { standby: true } : {});
    members = [...members, fresh];
    steps.push(members);
    const leaver = members.find((m) => m.node === `old${i}`)!;
    const heir = keys ? heirFor(leaver, members) : undefined;
    members = members.map((m) => (m === leaver ? { ...m, capabilities: [], ...(heir ? { heir } : {}) } : m));
    steps.push(members);
    members = members
      .filter((m) => m !== members.find((x) => x.node === leaver.node))
      .map((m) => (m.node === heir ? { ...m, standby: false, key: leaver.key ?? leaver.node } : m));
    steps.push(members);
  }
  return steps;
}

for (const n of [3, 5]) {
  test(`a surge roll of ${n} nodes with standbys moves every shard exactly once, never to older code; without, about 1.5 times`, (t) => {
    const withKeys = roll(surge(n, true));
    const without = roll(surge(n, false));
    t.is(withKeys.moves, 1);
    t.is(withKeys.backwards, 0);
    t.is(without.backwards, 0);
    t.true(without.moves > 1.3, `rendezvous alone: ${without.moves.toFixed(2)} moves per shard`);
    t.log(`moves per shard: ${withKeys.moves.toFixed(2)} with standbys, ${without.moves.toFixed(2)} without`);
  });
}

test("a shard a holder yields goes to the next key whose holder does not; when all yield, to the first choice; without keys, yields are ignored", (t) => {
  const plain = owners([node("a", "1"), node("b", "2"), node("c", "2")]);
  const s = plain.indexOf("a");
  const yielding = owners([node("a", "1", { yields: [`${CAP}/${s}`] }), node("b", "2"), node("c", "2")]);
  t.not(yielding[s], "a");
  for (let i = 0; i < SHARDS; i++) if (i !== s) t.is(yielding[i], plain[i], `shard ${i} stays`);
  const all = [node("a", "1"), node("b", "2"), node("c", "2")].map((m) => ({ ...m, yields: [`${CAP}/${s}`] }));
  t.is(owners(all)[s], "a");
  t.is(
    owners([{ node: "old", capabilities: [CAP] }, node("a", "1", { yields: [`${CAP}/${s}`] }), node("b", "2")])[s],
    owners([{ node: "old", capabilities: [CAP] }, node("a", "1"), node("b", "2")])[s],
  );
});
