// The value writer (core/value-writer.ts) checks and encodes in one walk. It must
// write exactly the bytes @msgpack/msgpack writes for every value the model
// carries, and refuse exactly what the model refuses, with the same message.
import test from "ava";
import fc from "fast-check";
import { Decoder, Encoder } from "@msgpack/msgpack";
import { MeshError } from "@mesh/runtime";
import { copyAcross, encodeValue } from "@mesh/core/internal";

const library = new Encoder({ ignoreUndefined: true });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** The model's verdict on `v`: its copy, or the error a local call gives. */
function verdict(v: unknown): { ok: true } | { ok: false; message: string } {
  try {
    copyAcross(v, "BAD_REQUEST", "payload");
    return { ok: true };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

test("the writer writes the msgpack library's bytes for every value the model carries, and refuses the rest with the local call's message (property, seeded)", (t) => {
  const anything = fc.anything({
    withDate: true,
    withTypedArray: true,
    withNullPrototype: true,
    withSparseArray: true,
    withBigInt: true,
    withMap: true,
    withSet: true,
    withObjectString: true,
    withBoxedValues: true,
    withUnicodeString: true,
    maxDepth: 4,
  });
  let carried = 0;
  let refused = 0;
  fc.assert(
    fc.property(anything, (v) => {
      const expected = verdict(v);
      if (expected.ok) {
        t.is(hex(encodeValue(v, "BAD_REQUEST", "payload")), hex(library.encode(v)));
        carried++;
      } else {
        const err = t.throws(() => encodeValue(v, "BAD_REQUEST", "payload"), { instanceOf: MeshError });
        t.is(err?.code, "BAD_REQUEST");
        t.is(err?.message, expected.message);
        refused++;
      }
    }),
    { numRuns: 3000, seed: 20261129 },
  );
  t.true(carried > 500 && refused > 500, `${carried} carried, ${refused} refused`);
});

test("the writer's edges: every integer form, floats, long and non-ASCII strings, large maps with undefined, dates, binaries, lone surrogates", (t) => {
  const edges: unknown[] = [
    0,
    -0,
    1,
    127,
    128,
    255,
    256,
    65535,
    65536,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53 - 1,
    -1,
    -32,
    -33,
    -128,
    -129,
    -32768,
    -32769,
    -(2 ** 31),
    -(2 ** 31) - 1,
    -(2 ** 53 - 1),
    1.5,
    NaN,
    Infinity,
    -Infinity,
    2 ** 60,
    "a".repeat(31),
    "a".repeat(32),
    "é".repeat(10),
    "é".repeat(16),
    "é".repeat(200),
    "€".repeat(30_000),
    "x".repeat(70_000),
    new Date(0),
    new Date(-1),
    new Date(8.64e15),
    new Uint8Array(300),
    Buffer.alloc(70_000),
    Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i % 3 ? i : undefined])),
    { a: undefined },
    [undefined, null],
    Object.create(null),
  ];
  for (const [i, v] of edges.entries()) t.is(hex(encodeValue(v, "BAD_REQUEST", "payload")), hex(library.encode(v)), `edge ${i}`);
  const decoder = new Decoder();
  t.deepEqual(decoder.decode(encodeValue({ s: "é€😀", n: -(2 ** 40) }, "BAD_REQUEST", "payload")), { s: "é€😀", n: -(2 ** 40) });
  for (const bad of ["\uD800", { k: "a\uDC00b".repeat(20) }, { ["\uDBFF"]: 1 }, JSON.parse('{"__proto__": 1}') as unknown]) {
    const err = t.throws(() => encodeValue(bad, "BAD_STATE", "the state", "counter/7"), { instanceOf: MeshError });
    t.is(err?.code, "BAD_STATE");
    t.regex(err?.message ?? "", /^the state of counter\/7 cannot be encoded: /);
  }
});
