// A request's capability and actor type are read through a small cache of the
// names read last (msgpack-head.ts, `name`): these check that it never gives a
// name other than the one the bytes hold.
import test from "ava";
import fc from "fast-check";
import { encode } from "@msgpack/msgpack";
import { Kind, decodeRequest, encodeRequest } from "@mesh/core/internal";

const names = [
  "game",
  "Game",
  "games",
  "gamf",
  "é",
  "ünïcødé",
  "a",
  "b",
  "c",
  "d",
  "e",
  "f",
  "g",
  "h",
  "x".repeat(31),
  "x".repeat(30) + "y",
];

test("capabilities and actor types decode to what was encoded, whatever came before (more names than the cache holds, non-ASCII, near misses)", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...names), fc.constantFrom(...names)), { minLength: 1, maxLength: 60 }), (pairs) => {
        for (const [capability, actorType] of pairs) {
          const request = { kind: Kind.CALL, capability, actorType, id: "i", payload: 1, initArg: undefined, timeoutMs: 100, hops: 0 };
          const back = decodeRequest(encodeRequest(request));
          if (back.capability !== capability || back.actorType !== actorType) return false;
        }
        return true;
      }),
      { seed: 37, numRuns: 300 },
    ),
  );
});

test("a name whose bytes are not UTF-8 decodes the same after a cached name of the same length as before it", (t) => {
  // A request whose actor type is the lone byte 0xe9: not UTF-8.
  const raw = (actorType: Uint8Array) => {
    const valid = encode([1, Kind.CALL, "cap", "T", "i", 100, 0, null, 1]);
    const at = valid.indexOf(0xa1, 6); // fixstr "T"
    return new Uint8Array([...valid.subarray(0, at), 0xa0 | actorType.length, ...actorType, ...valid.subarray(at + 2)]);
  };
  const outcome = (bytes: Uint8Array) => {
    try {
      return JSON.stringify(decodeRequest(bytes));
    } catch (err) {
      return (err as Error).message;
    }
  };
  const invalid = raw(new Uint8Array([0xe9]));
  const first = outcome(invalid);
  decodeRequest(
    encodeRequest({ kind: Kind.CALL, capability: "cap", actorType: "é", id: "i", payload: 1, initArg: undefined, timeoutMs: 100, hops: 0 }),
  );
  decodeRequest(
    encodeRequest({ kind: Kind.CALL, capability: "cap", actorType: "Z", id: "i", payload: 1, initArg: undefined, timeoutMs: 100, hops: 0 }),
  );
  t.is(outcome(invalid), first);
  t.not(outcome(raw(new Uint8Array([0x5a]))), first, "the byte Z is the name Z");
});
