// The value model's walks (core/value.ts) build no path as they go: a refusal
// collects where it sits as it unwinds. These pin the messages that gives.
import test from "ava";
import { ValueError, checkValue, copyValue } from "@mesh/core/internal";

const both = (v: unknown): string[] =>
  [copyValue, checkValue].map((walk) => {
    try {
      walk(v);
      return "carried";
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      return err.message;
    }
  });

test("a refusal names where it sits: keys and indexes, outermost first, the same for the copy and the check", (t) => {
  const cases: [unknown, string][] = [
    [new Map(), "a Map (use a plain object or an array of pairs) is not carried across an actor boundary"],
    [{ a: { b: [1, 2, { c: Symbol("s") }] } }, "a symbol at a.b[2].c is not carried across an actor boundary"],
    [[0, [1, "x\uD800"]], "an ill-formed string (a lone surrogate) at [1][1] is not carried across an actor boundary"],
    [{ list: [{ ok: 1 }, { ["\uDC00"]: 1 }] }, "a key that is an ill-formed string at list[1] is not carried across an actor boundary"],
    [{ when: new Date(NaN) }, "an invalid Date at when is not carried across an actor boundary"],
    [{ n: 10n }, "a bigint (send it as a string) at n is not carried across an actor boundary"],
  ];
  for (const [value, message] of cases) t.deepEqual(both(value), [message, message]);
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const [copied, checked] = both(cycle);
  t.is(copied, checked);
  t.regex(copied!, /^a value nested deeper than 100 levels \(or a cycle\) at self(\.self){100} is not carried/);
});

test("values the model carries are copied as before, and a refused walk leaves no path behind for the next", (t) => {
  t.deepEqual(copyValue({ a: [1, undefined, { b: undefined, c: "x" }], d: -0 }), { a: [1, null, { c: "x" }], d: 0 });
  t.throws(() => copyValue({ deep: { f: () => 1 } }), { message: /at deep\.f is not/ });
  t.throws(() => copyValue({ g: () => 1 }), { message: "a function at g is not carried across an actor boundary" });
});

test("an enumerable property added to Object.prototype is not copied, nor checked, as if it were the value's own", (t) => {
  const proto = Object.prototype as Record<string, unknown>;
  proto.polluted = Symbol("not carried"); // refused if a walk took it for the value's own
  try {
    t.deepEqual(copyValue({ a: 1, b: { c: "x" } }), { a: 1, b: { c: "x" } });
    t.false(Object.hasOwn(copyValue({ a: 1 }) as object, "polluted"));
    t.notThrows(() => checkValue({ a: [{ b: 1 }] }));
  } finally {
    delete proto.polluted;
  }
  t.deepEqual(Object.keys(copyValue({ a: 1 }) as object), ["a"]);
});

test("symbol keys are left out of a copy, as the wire leaves them out", (t) => {
  const copy = copyValue({ a: 1, [Symbol("s")]: 2 }) as object;
  t.deepEqual(Reflect.ownKeys(copy), ["a"]);
});

test("objects of many keys (copied by spreading them) are copied as small ones are: undefined left out, -0 as 0, nested copies, symbols dropped, refusals placed", (t) => {
  const many = (extra: Record<string, unknown>) => ({
    ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])),
    ...extra,
  });
  const base = many({});
  t.deepEqual(copyValue(many({ u: undefined })), base);
  const zero = copyValue(many({ z: -0 })) as Record<string, number>;
  t.true(Object.is(zero.z, 0));
  const inner = { deep: [1, { x: "y" }] };
  const copied = copyValue(many({ inner })) as Record<string, typeof inner>;
  t.deepEqual(copied.inner, inner);
  t.not(copied.inner, inner);
  t.not(copied.inner!.deep[1], inner.deep[1]);
  t.deepEqual(Reflect.ownKeys(copyValue({ ...base, [Symbol("s")]: 1 }) as object), Object.keys(base));
  t.throws(() => copyValue(many({ bad: { f: () => 1 } })), { message: "a function at bad.f is not carried across an actor boundary" });
  t.throws(
    () =>
      copyValue(
        JSON.parse(
          `{${Object.keys(base)
            .map((k) => `"${k}":1`)
            .join(",")},"__proto__":1}`,
        ),
      ),
    {
      message: 'a "__proto__" key is not carried across an actor boundary',
    },
  );
  const copy = copyValue(base) as Record<string, number>;
  copy.k0 = 99;
  t.is(base.k0, 0, "the copy is its own");
});
