import test from "ava";
import { decode, encode } from "@msgpack/msgpack";
import { ErrorCode, MeshError } from "@mesh/core";
import {
  Kind,
  decodeAnnouncement,
  decodeReply,
  decodeRequest,
  encodeError,
  encodeJson,
  encodeRequest,
  encodeResult,
} from "@mesh/core/internal";

const request = {
  kind: Kind.CALL,
  capability: "game",
  actorType: "GameActor",
  id: "player_1",
  payload: { action: "x", n: [1, 2] },
  initArg: { starting_level: 3 },
  timeoutMs: 5000,
  hops: 0,
};

test("a request survives encoding and decoding", (t) => {
  t.deepEqual(decodeRequest(encodeRequest(request)), request);
  const noInit = { ...request, initArg: undefined };
  t.deepEqual(decodeRequest(encodeRequest(noInit)), noInit);
});

test("envelopes are plain msgpack arrays in the documented order, both ways", (t) => {
  // What we write, any msgpack library reads as the documented array.
  t.deepEqual(decode(encodeRequest(request)), [
    1,
    0,
    "game",
    "GameActor",
    "player_1",
    5000,
    0,
    { starting_level: 3 },
    { action: "x", n: [1, 2] },
  ]);
  t.deepEqual(decode(encodeResult("p#1", [1, "two"])), [1, 0, "p#1", [1, "two"]]);
  t.deepEqual(decode(encodeError(new MeshError("TIMEOUT", "late"))), [1, 1, "TIMEOUT", "late"]);
  // What any msgpack library writes, we read: other integer and string widths, long and non-ASCII strings.
  const long = "l".repeat(300);
  const cases: unknown[][] = [
    [1, 1, "chat", "Room", "ünïcødé-🚀", 70_000, 3, null, "hi"],
    [1, 0, long, long, long, 300, 200, { x: 1 }, null],
    [1, 0, "c", "T", "", 0, 0, null, undefined],
  ];
  for (const c of cases) {
    const decoded = decodeRequest(encode(c));
    t.deepEqual(
      [
        decoded.kind,
        decoded.capability,
        decoded.actorType,
        decoded.id,
        decoded.timeoutMs,
        decoded.hops,
        decoded.initArg ?? null,
        decoded.payload,
      ],
      [c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8] ?? null],
    );
    t.deepEqual(decodeRequest(encodeRequest(decoded)), decoded);
  }
  t.deepEqual(decodeReply(encode([1, 0, "ü/p#1", { r: true }])), { ok: true, pid: "ü/p#1", result: { r: true } });
});

test("a traced request carries its traceparent (and tracestate) after the chain or nil; an untraced one is not a byte longer", (t) => {
  const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const traced = { ...request, trace: parent };
  t.deepEqual(decode(encodeRequest(traced)), [
    1,
    0,
    "game",
    "GameActor",
    "player_1",
    5000,
    0,
    { starting_level: 3 },
    { action: "x", n: [1, 2] },
    null,
    parent,
  ]);
  t.deepEqual(decodeRequest(encodeRequest(traced)), traced);
  const full = { ...request, chain: ["c/A/1"], trace: parent, traceState: "vendor=x" };
  t.deepEqual((decode(encodeRequest(full)) as unknown[]).slice(9), [["c/A/1"], parent, "vendor=x"]);
  t.deepEqual(decodeRequest(encodeRequest(full)), full);
  t.is(encodeRequest({ ...request, trace: undefined, traceState: undefined }).length, encodeRequest(request).length);
});

test("random requests survive the round trip", (t) => {
  let seed = 7;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const chars = [..."aZ9_-é€😀"];
  const str = () => Array.from({ length: Math.floor(random() * 40) }, () => chars[Math.floor(random() * chars.length)]).join("");
  for (let i = 0; i < 500; i++) {
    const r = {
      kind: random() < 0.5 ? Kind.CALL : Kind.CAST,
      capability: str(),
      actorType: str() || "T",
      id: str(),
      payload: random() < 0.2 ? null : { s: str(), n: random() },
      initArg: random() < 0.5 ? undefined : [str()],
      timeoutMs: Math.floor(random() * 2 ** 32),
      hops: Math.floor(random() * 300),
    };
    t.deepEqual(decodeRequest(encodeRequest(r)), r);
  }
});

test("replies carry a pid and result, or an error code and message", (t) => {
  t.deepEqual(decodeReply(encodeResult("a/GameActor/player_1#1", { ok: 1 })), {
    ok: true,
    pid: "a/GameActor/player_1#1",
    result: { ok: 1 },
  });
  for (const code of Object.values(ErrorCode)) {
    t.deepEqual(decodeReply(encodeError(new MeshError(code, "why"))), { ok: false, code, message: "why" });
  }
  t.deepEqual(decodeReply(encodeError(new Error("plain"))), { ok: false, code: "INTERNAL", message: "plain" });
});

test("a payload msgpack cannot encode is BAD_REQUEST; a reply that cannot be encoded is BAD_REPLY", (t) => {
  t.throws(() => encodeRequest({ ...request, payload: { f: () => 1 } }), {
    instanceOf: MeshError,
    message: "payload cannot be encoded: a function at f is not carried across an actor boundary",
  });
  t.throws(() => encodeRequest({ ...request, initArg: { m: new Map() } }), {
    instanceOf: MeshError,
    message: /^initArg cannot be encoded: a Map \(use a plain object or an array of pairs\) at m/,
  });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.is((t.throws(() => encodeRequest({ ...request, payload: cyclic })) as MeshError).code, "BAD_REQUEST");
  t.is((t.throws(() => encodeResult("p", Symbol("s"))) as MeshError).code, "BAD_REPLY");
});

test("malformed request envelopes are BAD_REQUEST with the reason", (t) => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([0xc1, 0xff, 0x00]), /not msgpack/],
    [new TextEncoder().encode("hello"), /msgpack array|not msgpack/],
    [encode({ a: 1 }), /expected a msgpack array/],
    [encode([2, 0, "c", "T", "i", 1, 0, null, null]), /unsupported envelope version/],
    [encode([1, 0, "c"]), /9 to 12 elements/],
    [encode([1, 7, "c", "T", "i", 1, 0, null, null]), /unknown kind/],
    [encode([1, 0, "c", "", "i", 1, 0, null, null]), /actor type/],
    [encode([1, 0, "c", "T", 42, 1, 0, null, null]), /id must be a string/],
    [encode([1, 0, "c", "T", "i", -1, 0, null, null]), /timeoutMs/],
    [encode([1, 0, "c", "T", "i", 1, 0, null]), /9 to 12 elements/],
    [encode([1, 0, "c", "T", "i", 1, 0, null, null, [1, 2]]), /chain must be an array of strings/],
    [encode([1, 0, "c", "T", "i", 1, 0, null, null, null, 42]), /trace context must be strings/],
    [encode([1, 0, "c", "T", "i", 1, 0, null, null, null, "00-x", ["s"]]), /trace context must be strings/],
    [encode([1, 0, "c", "T", "i", 1, 0, null, null, null, "00-x", "s", 1]), /9 to 12 elements/],
  ];
  for (const [bytes, message] of cases) {
    const err = t.throws(() => decodeRequest(bytes), { instanceOf: MeshError, message });
    t.is(err?.code, "BAD_REQUEST");
  }
});

test("announcements are checked field by field", (t) => {
  const good = {
    v: 1,
    node: "a",
    instance: "x",
    capabilities: ["game"],
    actorTypes: ["T"],
    shards: 4096,
    strategy: "rendezvous",
    version: "0.1.0",
    heartbeatMs: 1000,
  };
  t.deepEqual(decodeAnnouncement(encodeJson(good)), good);
  t.throws(() => decodeAnnouncement(encodeJson({ ...good, capabilities: "game" })), { message: /"capabilities"/ });
  t.throws(() => decodeAnnouncement(new TextEncoder().encode("{nope")), { message: /not JSON/ });
});
