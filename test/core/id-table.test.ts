// The actor table's values by id (core/id-table.ts) hold what a Map would, in a
// Map's order, through growth, shrinking, holes, colliding hashes and changes
// during a walk; a steady count of actors does not rebuild it at each new one.
import test from "ava";
import type { ExecutionContext } from "ava";
import fc from "fast-check";
import { xxh32 } from "@mesh/core";
import { IdTable } from "@mesh/core/internal";

interface Value {
  readonly id: string;
  readonly n: number;
}

/** The first `count` ids `<prefix><k>` whose XXH32 passes `keep`. */
function idsWhere(prefix: string, count: number, keep: (hash: number) => boolean): string[] {
  const ids: string[] = [];
  for (let k = 0; ids.length < count; k++) if (keep(xxh32(`${prefix}${k}`))) ids.push(`${prefix}${k}`);
  return ids;
}

/**
 * The ids of a run, and whether each call gives the table the id's hash: any ids, hashed by the caller or by the
 * table; and ids whose hashes share their low 8 bits, so that in an index of up to 256 slots all start at one slot.
 */
const MODES: Record<string, { ids: string[]; passHash: boolean | "either" }> = {
  "any ids": { ids: Array.from({ length: 64 }, (_, k) => `id${k}`), passHash: "either" },
  "ids whose hashes collide": { ids: idsWhere("c", 64, (h) => (h & 0xff) === 0), passHash: true },
};

type Change = { op: "set" | "delete"; id: number };
type Op = { op: "set" | "get" | "delete"; id: number } | { op: "walk"; during: Change[] };

const op = (ids: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ op: fc.constant("set" as const), id: fc.nat(ids - 1) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("get" as const), id: fc.nat(ids - 1) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant("delete" as const), id: fc.nat(ids - 1) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("walk" as const),
        during: fc.array(fc.record({ op: fc.constantFrom("set" as const, "delete" as const), id: fc.nat(ids - 1) }), {
          maxLength: 60,
          size: "max",
        }),
      }),
    },
  );

/** Runs `ops` on a table and on a Map, and checks that they agree after each. Returns how many walks saw 10 changes or more. */
function agree(t: ExecutionContext, ops: Op[], ids: string[], passHash: boolean): number {
  const table = new IdTable<Value>();
  const model = new Map<string, Value>();
  let made = 0;
  let busyWalks = 0;
  const hash = (id: string) => (passHash ? xxh32(id) : undefined);
  const apply = (o: { op: "set" | "get" | "delete"; id: number }) => {
    const id = ids[o.id]!;
    if (o.op === "set") {
      const value = { id, n: made++ };
      table.set(value, hash(id));
      model.set(id, value);
    } else if (o.op === "get") t.is(table.get(id, hash(id)), model.get(id));
    else t.is(table.delete(id, hash(id)), model.delete(id));
  };
  for (const o of ops) {
    if (o.op !== "walk") apply(o);
    else {
      // The walk yields what a Map's iterator yields under the same changes, step by step.
      const theirs = model.values();
      let k = 0;
      for (const value of table.values()) {
        const expected = theirs.next();
        t.false(expected.done, "the Map's walk has a value too");
        t.is(value as Value | undefined, expected.value, "the same value as the Map's walk");
        if (k < o.during.length) apply(o.during[k++]!);
      }
      if (k >= 10) busyWalks++;
      t.true(theirs.next().done, "the Map's walk ends where the table's does");
      while (k < o.during.length) apply(o.during[k++]!);
    }
    t.is(table.size, model.size);
  }
  t.deepEqual([...table.values()], [...model.values()], "the values, in the Map's order");
  const positions: Value[] = [];
  for (let i = 0; i < table.positions; i++) {
    const value = table.at(i);
    if (value !== undefined) positions.push(value);
  }
  t.deepEqual(positions, [...model.values()], "at(i) over every position reads the values in order");
  return busyWalks;
}

for (const [name, { ids, passHash }] of Object.entries(MODES)) {
  test(`the table holds what a Map holds, in its order: ${name} (property, seeded)`, (t) => {
    let busyWalks = 0;
    fc.assert(
      fc.property(fc.array(op(ids.length), { maxLength: 400, size: "max" }), fc.boolean(), (ops, given) => {
        busyWalks += agree(t, ops, ids, passHash === "either" ? given : passHash);
      }),
      { numRuns: 150, seed: 20261205 },
    );
    t.true(busyWalks > 100, `${busyWalks} walks saw 10 changes or more`);
  });
}

test("the table grows to many ids and shrinks back as they are deleted, and a look-up still finds each", (t) => {
  const table = new IdTable<Value>();
  const values = Array.from({ length: 20_000 }, (_, n) => ({ id: `actor_${n}`, n }));
  for (const value of values) table.set(value, xxh32(value.id));
  t.is(table.size, 20_000);
  for (const value of values) t.is(table.get(value.id), value);
  t.is(table.get("actor_20000"), undefined);
  for (const value of values.slice(0, 19_990)) t.true(table.delete(value.id));
  t.is(table.size, 10);
  t.true(table.positions < 100, `${table.positions} positions once shrunk: the holes are closed`);
  for (const value of values.slice(19_990)) t.is(table.get(value.id), value);
  t.deepEqual([...table.values()], values.slice(19_990));
  table.clear();
  t.is(table.size, 0);
  t.is(table.get("actor_19999"), undefined);
});

test("at a steady count of actors (one goes, one comes), the table is rebuilt once in many new ones, at any count", (t) => {
  for (const live of [1000, 1023, 1024, 1025, 4096]) {
    const table = new IdTable<Value>();
    for (let n = 0; n < live; n++) table.set({ id: `a${n}`, n });
    let rebuilds = 0;
    for (let n = 0; n < 5000; n++) {
      table.delete(`a${n}`);
      const positions = table.positions;
      table.set({ id: `a${live + n}`, n: live + n });
      if (table.positions <= positions) rebuilds++; // the holes were closed before it was added
    }
    t.is(table.size, live);
    t.true(rebuilds <= 5000 / 50, `${live} actors: ${rebuilds} rebuilds in 5,000 new ones`);
  }
});

test("the CLOCK hand follows its value when the holes are closed, and goes back to the start past the end", (t) => {
  const table = new IdTable<Value>();
  const values = Array.from({ length: 64 }, (_, n) => ({ id: `v${n}`, n }));
  for (const value of values) table.set(value);
  table.hand = 40;
  for (const value of values.slice(0, 56)) if (value.n !== 40 && value.n !== 50) table.delete(value.id); // it shrinks
  t.true(table.positions < 64, `${table.positions} positions: rebuilt`);
  t.is(table.at(table.hand), values[40], "the hand is where its value went");
  table.delete("v40");
  t.true(table.hand < table.positions);
  const next = table.at(table.hand);
  t.true(next === undefined || next.n > 40, "the hand is at a hole or a later value, not an earlier one");
  table.hand = table.positions - 1;
  for (const value of values.slice(56, 63)) table.delete(value.id);
  t.is(table.size, 2);
  t.is(table.at(table.hand), values[63], "the hand at the last value follows it");
});

test("a table filled and emptied over and over keeps its holes in check: a miss ends", (t) => {
  const table = new IdTable<Value>();
  for (let round = 0; round < 50; round++) {
    for (let n = 0; n < 10; n++) table.set({ id: `r${round}_${n}`, n });
    for (let n = 0; n < 10; n++) table.delete(`r${round}_${n}`);
  }
  t.is(table.size, 0);
  t.is(table.get("missing"), undefined);
  t.true(table.positions <= 64, `${table.positions} positions`);
});

test("a walk outlives the table's growing and the deletion of most values: it sees each value still there once, those added, and none deleted", (t) => {
  const table = new IdTable<Value>();
  const first = Array.from({ length: 100 }, (_, n) => ({ id: `a${n}`, n }));
  for (const value of first) table.set(value);
  const grown: Value[] = [];
  let walked = 0;
  for (const value of table.values()) {
    if (walked++ > 0) {
      t.is(table.get(value.id), value, `${value.id}, seen after the table grew, is there`);
      continue;
    }
    // The table grows under the walk, and every value it began with but this one goes.
    for (let n = 0; n < 1000; n++) grown.push({ id: `b${n}`, n: 100 + n });
    for (const v of grown) table.set(v);
    for (const v of first) if (v !== value) table.delete(v.id);
  }
  t.is(table.size, 1001);
  t.is(walked, 1001, "the values added under the walk were seen, as a Map's walk sees them");

  const kept = grown.slice(0, 10);
  const seen: Value[] = [];
  for (const value of table.values()) {
    if (seen.length === 0) for (const v of grown.slice(10)) table.delete(v.id); // it would shrink, after the walk
    seen.push(value);
  }
  t.is(table.size, 11);
  t.true(table.positions < 100, `${table.positions} positions: the holes left under the walk were closed at its end`);
  for (const v of kept) t.true(seen.includes(v), `${v.id}, there throughout, was seen`);
  t.true(
    seen.slice(1).every((v) => table.get(v.id) === v),
    "every value seen after the shrinking is still there",
  );

  // A value put in the place of another after a rebuild is the one a walk sees.
  const replaced = { id: kept[5]!.id, n: -1 };
  const again: Value[] = [];
  for (const value of table.values()) {
    if (again.length === 0) {
      for (let n = 0; n < 100; n++) table.set({ id: `c${n}`, n: 2000 + n }); // it grows
      table.set(replaced);
    }
    again.push(value);
  }
  t.true(again.includes(replaced), "the value put in place of another was seen");
  t.false(again.includes(kept[5]!), "the one it replaced was not");
});
