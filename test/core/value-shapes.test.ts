// Plain objects are copied by a function made for their shape once one of
// that shape was copied (core/value-shapes.ts). Each case copies its object
// several times: the first copy is the general one, the next ones the
// shape's, and all must be the same, refusals and their messages included.
// These use few shapes, so that every one gets its function (the many-shape
// cases, which fill the table, are in value-shapes-many.test).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import test from "ava";
import fc from "fast-check";
import { MAX_SHAPE_KEYS, copyValue } from "@mesh/core/internal";
import { copies, shaped } from "../helpers/copies.js";

test("objects of one shape, whatever their values, are copied the same the first time and every time after (property, seeded)", (t) => {
  const keys = Array.from({ length: 12 }, (_, i) => `p${i}`);
  const anyValue = fc.anything({
    maxDepth: 2,
    withMap: true,
    withBigInt: true,
    withDate: true,
    withTypedArray: true,
    stringUnit: "binary",
  });
  fc.assert(
    fc.property(fc.array(anyValue, { minLength: 12, maxLength: 12 }), (values) => {
      const [first, ...after] = copies(Object.fromEntries(keys.map((k, i) => [k, values[i]])));
      for (const outcome of after) t.deepEqual(outcome, first);
    }),
    { seed: 37, numRuns: 500 },
  );
});

test("an object of a known shape still has its symbol keys dropped, its undefined values left out, -0 as 0 and its nested values copied", (t) => {
  const known = shaped("s");
  copyValue(known); // its shape is remembered: the next copy makes its function and takes it
  const symbol = Symbol("s");
  t.deepEqual(Reflect.ownKeys(copyValue({ ...known, [symbol]: 1 }) as object), Object.keys(known));
  t.deepEqual(copyValue({ ...known, s3: undefined }), (({ s3: _, ...rest }) => rest)(known));
  t.true(Object.is((copyValue({ ...known, s0: -0 }) as { s0: number }).s0, 0));
  const inner = { deep: [1, { x: "y" }] };
  const copied = copyValue({ ...known, s1: inner }) as { s1: typeof inner };
  t.deepEqual(copied.s1, inner);
  t.not(copied.s1, inner);
  t.not(copied.s1.deep[1], inner.deep[1]);
  const copy = copyValue(known) as Record<string, unknown>;
  t.deepEqual(copy, known);
  t.not(copy, known);
  t.is(Object.getPrototypeOf(copy), Object.prototype);
});

test("a refusal inside an object of a known shape is placed as the first time: the key, then the path below it", (t) => {
  const known = shaped("r");
  copyValue(known);
  const cases: [Record<string, unknown>, string][] = [
    [{ r2: { f: () => 1 } }, "a function at r2.f is not carried across an actor boundary"],
    [{ r4: [1, new Map()] }, "a Map (use a plain object or an array of pairs) at r4[1] is not carried across an actor boundary"],
    [{ r5: "x\uD800" }, "an ill-formed string (a lone surrogate) at r5 is not carried across an actor boundary"],
    [{ r6: 10n }, "a bigint (send it as a string) at r6 is not carried across an actor boundary"],
    [{ r7: Symbol("v") }, "a symbol at r7 is not carried across an actor boundary"],
  ];
  for (const [extra, message] of cases) t.deepEqual(copies({ ...known, ...extra }), Array(3).fill({ refused: message }));
});

test("an object whose keys differ from a known shape's (one more, one less, another order) is copied as it is", (t) => {
  const known = shaped("d");
  copyValue(known);
  const more = { ...known, extra: "e" };
  const { d9: _, ...less } = known;
  const reordered = Object.fromEntries(Object.entries(known).reverse());
  const swapped = { d0: 0, d2: 2, d1: "v1", ...known };
  for (const value of [more, less, reordered, swapped]) {
    const copy = copyValue(value) as object;
    t.deepEqual(copy, value);
    t.deepEqual(Object.keys(copy), Object.keys(value));
  }
});

test('"__proto__" keys and ill-formed keys make no shape: they are refused every time, and no copy gets another prototype', (t) => {
  const keys = Object.keys(shaped("q"));
  const withProto = JSON.parse(`{${keys.map((k) => `"${k}":1`).join(",")},"__proto__":{"polluted":true}}`) as object;
  t.deepEqual(copies(withProto), Array(3).fill({ refused: 'a "__proto__" key is not carried across an actor boundary' }));
  const illFormed = { ...shaped("w"), ["\uDC00"]: 1 };
  t.deepEqual(copies(illFormed), Array(3).fill({ refused: "a key that is an ill-formed string is not carried across an actor boundary" }));
  const copy = copyValue(shaped("q")) as Record<string, unknown>;
  t.is(Object.getPrototypeOf(copy), Object.prototype);
  t.is(copy.polluted, undefined);
});

test("keys that look like indexes, or that need escaping in code, are copied as they are and in their order", (t) => {
  const odd = { 2: "a", 1: "b", 0: "c", 'quote"': 1, "back\\slash": 2, "new\nline": 3, "\u2028": 4, "${x}": 5, "`": 6, "');": 7 };
  for (const outcome of copies(odd)) {
    t.deepEqual(outcome, { copy: odd });
    t.deepEqual(Object.keys((outcome as { copy: object }).copy), Object.keys(odd));
  }
});

test(`an object of more than ${MAX_SHAPE_KEYS} keys is copied as it is, every time`, (t) => {
  const big = shaped("b", {}, MAX_SHAPE_KEYS + 36);
  for (const outcome of copies(big)) t.deepEqual(outcome, { copy: big });
  t.deepEqual(copies({ ...big, b1: undefined }, 2), Array(2).fill({ copy: (({ b1: _, ...rest }) => rest)(big) }));
});

test("a nested value is read once per copy, even when a value after it is undefined (no copy is made twice)", (t) => {
  let reads = 0;
  const leaf = {
    get counted() {
      reads++;
      return 1;
    },
  };
  let tree: object = leaf;
  for (let i = 0; i < 12; i++) tree = { ...shaped(`n${i}_`, {}, 8), child: tree, after: undefined };
  for (let copy = 1; copy <= 3; copy++) {
    copyValue(tree);
    t.is(reads, copy);
  }
});

test("where code cannot be made from strings, objects of many keys are copied as they are anywhere else", (t) => {
  const value = require.resolve("@mesh/core/internal");
  const script = `
    const { copyValue } = await import(${JSON.stringify(value)});
    const o = Object.fromEntries(Array.from({ length: 12 }, (_, i) => ["k" + i, i]));
    const out = [copyValue(o), copyValue(o), copyValue({ ...o, k1: -0, [Symbol("s")]: 1 })];
    process.stdout.write(JSON.stringify(out.map((c) => [Object.keys(c).length, Object.is(c.k1, 0), Reflect.ownKeys(c).length])));`;
  const run = spawnSync(process.execPath, ["--disallow-code-generation-from-strings", "--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  t.is(run.stderr, "");
  t.deepEqual(JSON.parse(run.stdout), [
    [12, false, 12],
    [12, false, 12],
    [12, true, 12],
  ]);
});

const require = createRequire(import.meta.url);
