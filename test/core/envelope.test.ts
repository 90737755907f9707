import test from "ava";
import { encode } from "@msgpack/msgpack";
import { ErrorCode, MeshError } from "@mesh/core";
import { Kind, decodeAnnouncement, decodeReply, decodeRequest, encodeError, encodeJson, encodeRequest, encodeResult } from "@mesh/core/internal";

const request = { kind: Kind.CALL, capability: "game", actorType: "GameActor", id: "player_1", payload: { action: "x", n: [1, 2] }, initArg: { starting_level: 3 }, timeoutMs: 5000, hops: 0 };

test("a request survives encoding and decoding", (t) => {
  t.deepEqual(decodeRequest(encodeRequest(request)), request);
  const noInit = { ...request, initArg: undefined };
  t.deepEqual(decodeRequest(encodeRequest(noInit)), noInit);
});

test("replies carry a pid and result, or an error code and message", (t) => {
  t.deepEqual(decodeReply(encodeResult("a/GameActor/player_1#1", { ok: 1 })), { ok: true, pid: "a/GameActor/player_1#1", result: { ok: 1 } });
  for (const code of Object.values(ErrorCode)) {
    t.deepEqual(decodeReply(encodeError(new MeshError(code, "why"))), { ok: false, code, message: "why" });
  }
  t.deepEqual(decodeReply(encodeError(new Error("plain"))), { ok: false, code: "INTERNAL", message: "plain" });
});

test("a payload msgpack cannot encode is BAD_REQUEST; a reply that cannot be encoded is BAD_REPLY", (t) => {
  t.throws(() => encodeRequest({ ...request, payload: { f: () => 1 } }), { instanceOf: MeshError, message: /payload or initArg cannot be encoded/ });
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
    [encode([2, 0, "c", "T", "i", null, null, 1, 0]), /unsupported envelope version/],
    [encode([1, 0, "c"]), /9 elements/],
    [encode([1, 7, "c", "T", "i", null, null, 1, 0]), /unknown kind/],
    [encode([1, 0, "c", "", "i", null, null, 1, 0]), /actor type/],
    [encode([1, 0, "c", "T", 42, null, null, 1, 0]), /id must be a string/],
    [encode([1, 0, "c", "T", "i", null, null, -1, 0]), /timeoutMs/],
  ];
  for (const [bytes, message] of cases) {
    const err = t.throws(() => decodeRequest(bytes), { instanceOf: MeshError, message });
    t.is(err?.code, "BAD_REQUEST");
  }
});

test("announcements are checked field by field", (t) => {
  const good = { v: 1, node: "a", instance: "x", capabilities: ["game"], actorTypes: ["T"], shards: 4096, strategy: "rendezvous", version: "0.1.0", heartbeatMs: 1000 };
  t.deepEqual(decodeAnnouncement(encodeJson(good)), good);
  t.throws(() => decodeAnnouncement(encodeJson({ ...good, capabilities: "game" })), { message: /"capabilities"/ });
  t.throws(() => decodeAnnouncement(new TextEncoder().encode("{nope")), { message: /not JSON/ });
});
