// The value reader (core/value-reader.ts) must decode every msgpack input exactly
// as @msgpack/msgpack's Decoder does: the same value, or the same error; with one
// exception, a string's leading byte order mark, which the library drops from
// strings past 200 bytes and the reader keeps at every length.
import test from "ava";
import fc from "fast-check";
import { Decoder, Encoder, ExtData, encode } from "@msgpack/msgpack";
import { decodeValue } from "@mesh/core/internal";

const library = new Decoder();
const encoder = new Encoder({ ignoreUndefined: true });

/** What the library makes of `bytes`: its value, or its error's message. */
function theirs(bytes: Uint8Array): { value?: unknown; error?: string } {
  try {
    return { value: library.decode(bytes) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function ours(bytes: Uint8Array): { value?: unknown; error?: string } {
  try {
    return { value: decodeValue(bytes) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

test("the reader decodes whatever the msgpack library encodes, to the same value (property, seeded)", (t) => {
  const anything = fc.anything({
    withDate: true,
    withTypedArray: true,
    withNullPrototype: true,
    withSparseArray: true,
    withUnicodeString: true,
    withObjectString: true,
    maxDepth: 5,
  });
  let read = 0;
  fc.assert(
    fc.property(anything, (v) => {
      let bytes: Uint8Array;
      try {
        bytes = encoder.encode(v);
      } catch {
        return; // not msgpack at all (a symbol, a function…)
      }
      t.deepEqual(ours(bytes), theirs(bytes));
      read++;
    }),
    { numRuns: 3000, seed: 20261129 },
  );
  t.true(read > 1000, `${read} values read`);
});

const valid = fc.anything({ maxDepth: 3, withUnicodeString: true }).map((v) => {
  try {
    return encoder.encode(v);
  } catch {
    return encode(null);
  }
});
/** Bytes that are a value, or broken, truncated or padded. */
const broken = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, i, x]) => {
    const c = b.slice();
    if (c.length > 0) c[i % c.length] = x;
    return c;
  }),
  fc.tuple(valid, fc.nat()).map(([b, n]) => b.subarray(0, n % (b.length + 1))),
  fc.tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([b, extra]) => new Uint8Array([...b, ...extra])),
);

test("on bytes that are broken, truncated or padded the reader fails (or not) exactly as the library does (property, seeded)", (t) => {
  fc.assert(
    fc.property(broken, (bytes) => {
      t.deepEqual(ours(bytes), theirs(bytes));
    }),
    { numRuns: 5000, seed: 20261129 },
  );
});

test("a value read in place, between other bytes, is read as its own bytes alone (property, seeded)", (t) => {
  const inPlace = (whole: Uint8Array, start: number, end: number): { value?: unknown; error?: string } => {
    try {
      return { value: decodeValue(whole, start, end) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
  const around = fc.uint8Array({ maxLength: 12 });
  fc.assert(
    fc.property(around, broken, around, (before, bytes, after) => {
      const whole = new Uint8Array([...before, ...bytes, ...after]);
      t.deepEqual(inPlace(whole, before.length, before.length + bytes.length), theirs(bytes));
    }),
    { numRuns: 5000, seed: 20261205 },
  );
  // An end past the buffer's is the buffer's end: nothing past it is read as zeros.
  const one = encode(0x1234);
  t.deepEqual(inPlace(one, 0, one.length + 8), theirs(one));
  t.deepEqual(inPlace(one.subarray(0, 2), 0, 3), theirs(one.subarray(0, 2)));
});

test("the reader's edges: every integer and float form, byte order marks, invalid UTF-8, extensions, integer and __proto__ keys, deep nesting", (t) => {
  const cases: Uint8Array[] = [
    ...[
      0,
      127,
      128,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 53 - 1,
      2 ** 60,
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
      -(2 ** 60),
      1.5,
      NaN,
      -Infinity,
    ].map((n) => encode(n)),
    new Uint8Array([0xca, 0x3f, 0xc0, 0x00, 0x00]), // float32 1.5
    new Uint8Array([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // uint64 max
    new Uint8Array([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]), // int64 min
    encode("\uFEFFbom"),
    new Uint8Array([0xa3, 0xff, 0xfe, 0x41]), // invalid UTF-8
    new Uint8Array([0xa2, 0xc3, 0x28]),
    encode(new Date(1_700_000_000_123)),
    encode(new ExtData(5, new Uint8Array([1, 2, 3]))),
    new Uint8Array([0x81, 0x01, 0xa1, 0x61]), // { 1: "a" }
    new Uint8Array([0x81, 0xc0, 0xa1, 0x61]), // a nil key
    new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01]),
    new Uint8Array([0xc1]),
    new Uint8Array([...Array(600).fill(0x91), 0xc0]), // 600 nested arrays
    new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), // an array that claims 4 G elements
    encode({ b: new Uint8Array([1, 2, 3]), s: "x".repeat(300), u: "ü".repeat(120) }),
  ];
  for (const [i, bytes] of cases.entries()) t.deepEqual(ours(bytes), theirs(bytes), `case ${i}`);
  // The one departure: a leading byte order mark is part of the string, short or long (the library's TextDecoder drops it).
  for (const text of ["\uFEFFbom", `\uFEFF${"é".repeat(150)}`, `\uFEFF${"x".repeat(70_000)}`])
    t.is(decodeValue(encode(text)), text, `${text.length} characters`);
  const bin = decodeValue(Buffer.from(encode({ b: new Uint8Array([7]) }))) as { b: Uint8Array };
  t.true(Buffer.isBuffer(bin.b), "a binary read from a Buffer is a Buffer, as the library returns it");
});
