// Objects of many shapes, copied several times each: the first copy is the
// general one (core/value.ts), the next ones by the shape's function
// (core/value-shapes.ts) while the table of shapes has room, the general one
// again after that. Every copy must be the same. A file of its own: these fill
// the table that value-shapes.test needs room in.
import test from "ava";
import fc from "fast-check";
import { MAX_SHAPES, copyValue } from "@mesh/core/internal";
import { copies, shaped } from "../helpers/copies.js";

test("objects of many keys of any shape are copied the same the first time and every time after (property, seeded)", (t) => {
  const anyObject = fc.dictionary(
    fc.string({ maxLength: 3, unit: "binary" }),
    fc.anything({ maxDepth: 2, withMap: true, withBigInt: true, withNullPrototype: true, stringUnit: "binary" }),
    { minKeys: 8, maxKeys: 20 },
  );
  fc.assert(
    fc.property(anyObject, (value) => {
      const [first, ...after] = copies(value);
      for (const outcome of after) t.deepEqual(outcome, first);
    }),
    { seed: 41, numRuns: 300 },
  );
});

test("objects of few keys, nested in arrays and objects, are copied the same the first time and every time after (property, seeded)", (t) => {
  const small = fc.dictionary(
    fc.constantFrom("id", "type", "x", "y", "n", "action", "", "0", "1", "__proto__", "\uD800"),
    fc.anything({ maxDepth: 1, withMap: true, withBigInt: true, stringUnit: "binary" }),
    { minKeys: 0, maxKeys: 7 },
  );
  fc.assert(
    fc.property(fc.array(small, { maxLength: 5 }), fc.object({ maxDepth: 2 }), (list, other) => {
      const [first, ...after] = copies({ list, other, last: list[0] });
      for (const outcome of after) t.deepEqual(outcome, first);
    }),
    { seed: 43, numRuns: 300 },
  );
});

test(`more shapes than the ${MAX_SHAPES} remembered are copied as well, and so are the known ones after them`, (t) => {
  const many = Array.from({ length: MAX_SHAPES + 50 }, (_, i) => shaped(`m${i}_`));
  for (let round = 0; round < 2; round++) for (const value of many) t.deepEqual(copyValue(value), value);
});
