// The value reader (core/value-reader.ts) must decode every msgpack value exactly
// as @msgpack/msgpack's Decoder does, and refuse whatever the library refuses;
// with two departures: a string's leading byte order mark, which the library
// drops from strings past 200 bytes and the reader keeps at every length, and
// nesting past 512 levels, which the reader refuses. Bytes that are not one
// value are refused by the reader itself (MalformedValue), never handed to the
// library, whose arrays are made at the size they claim.
import test from "ava";
import fc from "fast-check";
import { Decoder, Encoder, ExtData, encode } from "@msgpack/msgpack";
import { MalformedValue, decodeStrict, decodeValue } from "@mesh/core/internal";

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

/** The library's outcome as the reader must match it: the same value, or an error (its message may differ). */
function asReader(outcome: { value?: unknown; error?: string }): { value?: unknown; error?: true } {
  return "error" in outcome ? { error: true } : { value: outcome.value };
}

test("on bytes that are broken, truncated or padded the reader fails (or not) as the library does (property, seeded)", (t) => {
  fc.assert(
    fc.property(broken, (bytes) => {
      t.deepEqual(asReader(ours(bytes)), asReader(theirs(bytes)));
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
      t.deepEqual(asReader(inPlace(whole, before.length, before.length + bytes.length)), asReader(theirs(bytes)));
    }),
    { numRuns: 5000, seed: 20261205 },
  );
  // An end past the buffer's is the buffer's end: nothing past it is read as zeros.
  const one = encode(0x1234);
  t.deepEqual(inPlace(one, 0, one.length + 8), theirs(one));
  t.deepEqual(asReader(inPlace(one.subarray(0, 2), 0, 3)), asReader(theirs(one.subarray(0, 2))));
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
    new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), // an array that claims 4 G elements
    encode({ b: new Uint8Array([1, 2, 3]), s: "x".repeat(300), u: "ü".repeat(120) }),
  ];
  for (const [i, bytes] of cases.entries()) t.deepEqual(asReader(ours(bytes)), asReader(theirs(bytes)), `case ${i}`);
  // The one departure: a leading byte order mark is part of the string, short or long (the library's TextDecoder drops it).
  for (const text of ["\uFEFFbom", `\uFEFF${"é".repeat(150)}`, `\uFEFF${"x".repeat(70_000)}`])
    t.is(decodeValue(encode(text)), text, `${text.length} characters`);
  const bin = decodeValue(Buffer.from(encode({ b: new Uint8Array([7]) }))) as { b: Uint8Array };
  t.true(Buffer.isBuffer(bin.b), "a binary read from a Buffer is a Buffer, as the library returns it");
});

test("bytes that claim more than they hold are refused by the reader, without the library: nested array32 headers, deep nesting, after an extension", (t) => {
  const claim = [0xdd, 0x00, 0xff, 0xff, 0xff]; // an array of 16,777,215 elements: 134 MB in the library, at once
  const ext = [0xd4, 0x05, 0x01]; // a fixed extension: the reader hands such a value to the library
  const cases: Array<[string, Uint8Array]> = [
    ["8 nested array32 headers (65 bytes)", new Uint8Array([0x83, 0xa1, 0x61, ...Array.from({ length: 8 }, () => claim).flat()])],
    ["a map32 that claims 2^32 - 1 pairs", new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01])],
    ["100,000 nested arrays of one element", new Uint8Array([...Array(100_000).fill(0x91), 0xc0])],
    ["600 nested arrays", new Uint8Array([...Array(600).fill(0x91), 0xc0])],
    ["an extension, then nested array32 headers", new Uint8Array([0x92, ...ext, ...claim, ...claim, ...claim])],
    ["an extension, then a string past the end", new Uint8Array([0x92, ...ext, 0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61])],
    ["an extension whose length goes past the end", new Uint8Array([0xc9, 0x7f, 0xff, 0xff, 0xff, 0x05, 0x01])],
    ["a key that is not a string, then extra bytes", new Uint8Array([0x81, 0x01, 0xc0, 0xc0])],
    ["an unused type byte", new Uint8Array([0x91, 0xc1])],
  ];
  for (const [what, bytes] of cases) {
    const err = t.throws(() => decodeValue(bytes), undefined, what);
    t.true(err instanceof MalformedValue, `${what}: ${String(err)}`);
  }
  // What the library reads, once the bytes hold one value, is still the library's.
  t.deepEqual(decodeValue(new Uint8Array([0x92, ...ext, 0x91, 0x07])), [new ExtData(5, new Uint8Array([1])), [7]]);
  t.deepEqual(decodeValue(new Uint8Array([0x81, 0x01, 0xc0])), { 1: null });
});

test("decodeStrict (the ingress's) refuses what the library reads leniently: a string that is not UTF-8, a key that is not a string", (t) => {
  const ext = [0xd4, 0x05, 0x01]; // read by the library: what follows it is checked by the walk before
  for (const bytes of [
    new Uint8Array([0xa2, 0xff, 0xfe]), // read by the library as "ÿþ"
    new Uint8Array([0x81, 0x01, 0xa1, 0x61]), // { 1: "a" }, read as { "1": "a" }
    new Uint8Array([0x92, ...ext, 0xa2, 0xff, 0xfe]),
    new Uint8Array([0x92, ...ext, 0x81, 0x01, 0xc0]),
    new Uint8Array([0xd9, 40, ...Array(39).fill(0x61), 0xff]), // past the short-string path
  ]) {
    t.true(decodeValue(bytes) !== undefined, "the lenient reader takes it");
    t.throws(() => decodeStrict(bytes), { instanceOf: MalformedValue });
  }
  for (const value of [{ id: "ÿþ", n: [1, "é", { k: "\uFEFFv" }] }, "x".repeat(300), [new Date(0)]])
    t.deepEqual(decodeStrict(encode(value)), decodeValue(encode(value)));
});
