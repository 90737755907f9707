// Strings on the wire are the strings that were sent: a leading byte order
// mark is kept (in ids, actor types and values, short or long), and an id that
// arrives on a node subject is checked as every entry point checks it.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import { decode, encode } from "@msgpack/msgpack";
import {
  Kind,
  MalformedValue,
  decodeReply,
  decodeRequest,
  decodeStrict,
  decodeValue,
  encodeRequest,
  encodeResult,
} from "@mesh/core/internal";
import { MeshError } from "@mesh/runtime";
import type { Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { msgpackRequest } from "./helpers/foreign.js";

class Echo {
  static actorType = "Echo";
  constructor(readonly id: string) {}
  handleCall(payload: unknown): unknown {
    return { id: this.id, payload };
  }
}

/** What arrived: a string's length and first code unit (a client's own msgpack library may drop a mark it reads back). */
class Measure {
  static actorType = "Measure";
  handleCall(p: { text: string }): [number, number] {
    return [p.text.length, p.text.charCodeAt(0)];
  }
}

type Ctx = ClusterContext & { owner: Mesh; caller: Mesh };
const test = anyTest as TestFn<Ctx>;
const CAP = "strings";
useNatsServer(test, async (t) => {
  t.context.owner = await startNode(t, { nodeId: nodeId("owner"), actors: [Echo, Measure], capabilities: [CAP] });
  t.context.caller = await startNode(t, { nodeId: nodeId("caller") });
  await eventually(() => t.context.caller.nodesFor(CAP).length === 1, "the caller to see the owner");
});

const BOM = "\uFEFF";
const where = (t: ExecutionContext<Ctx>) =>
  [
    ["local", t.context.owner],
    ["remote", t.context.caller],
  ] as const;

test("an id that begins with a byte order mark names its own actor, locally and remotely", async (t) => {
  for (const [how, node] of where(t)) {
    const { pid, result } = await node.call({ actor: "Echo", id: `${BOM}bob`, payload: 1, capability: CAP });
    t.deepEqual(result, { id: `${BOM}bob`, payload: 1 }, how);
    t.true(pid.includes(`/Echo/${BOM}bob#`), `${how}: ${pid}`);
  }
  const plain = await t.context.caller.call({ actor: "Echo", id: "bob", payload: 1, capability: CAP });
  t.deepEqual(plain.result, { id: "bob", payload: 1 });
});

test("an actor type that begins with a byte order mark is not the type without it", async (t) => {
  for (const [how, node] of where(t)) {
    const err = await t.throwsAsync(node.call({ actor: `${BOM}Echo`, id: "x", capability: CAP }), { instanceOf: MeshError });
    t.is(err?.code, "UNKNOWN_ACTOR_TYPE", how);
  }
});

test("a string value that begins with a byte order mark keeps it, short or long, both ways", async (t) => {
  for (const [how, node] of where(t)) {
    for (const text of [`${BOM}short`, `${BOM}${"x".repeat(300)}`, `${BOM}${"é".repeat(20_000)}`]) {
      const { result } = await node.call<{ payload: { text: string } }>({
        actor: "Echo",
        id: "values",
        payload: { text },
        capability: CAP,
      });
      t.is(result.payload.text, text, `${how}, ${text.length} characters`);
    }
  }
});

test("an id that arrives on a node subject too long, or as malformed UTF-8, is BAD_REQUEST", async (t) => {
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const subject = `mesh.node.${t.context.owner.nodeId}`;
  const ask = async (bytes: Uint8Array) => decode((await nc.request(subject, bytes, { timeout: 2000 })).data) as unknown[];
  const envelope = (id: string, initArg: unknown = null) => encode([1, 0, CAP, "Echo", id, 1000, 0, initArg, 1]);
  // Through the fast path (no initArg) and through the generic one (an initArg).
  for (const initArg of [null, { with: "initArg" }]) {
    const long = await ask(envelope("x".repeat(1025), initArg));
    t.deepEqual(long.slice(0, 3), [1, 1, "BAD_REQUEST"]);
    t.regex(String(long[3]), /1025 characters long/);
    // ED A0 80: a lone surrogate in CESU-8, which UTF-8 forbids.
    const bytes = envelope("XYZ", initArg);
    const at = bytes.findIndex((_, i) => bytes[i] === 0x58 && bytes[i + 1] === 0x59 && bytes[i + 2] === 0x5a);
    bytes.set([0xed, 0xa0, 0x80], at);
    const surrogate = await ask(bytes);
    t.deepEqual(surrogate.slice(0, 3), [1, 1, "BAD_REQUEST"]);
    t.regex(String(surrogate[3]), /well-formed/);
    // At the limit, it is served.
    const ok = await ask(envelope("y".repeat(1024), initArg));
    t.deepEqual([ok[0], ok[1]], [1, 0]);
  }
});

test("a long string that begins with a byte order mark keeps it in a request with an initArg, and from a foreign msgpack client", async (t) => {
  const text = `${BOM}${"x".repeat(300)}`;
  for (const [how, node] of where(t)) {
    const { result } = await node.call({ actor: "Measure", id: "m", payload: { text }, initArg: { any: 1 }, capability: CAP });
    t.deepEqual(result, [301, 0xfeff], how);
  }
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const { reply } = await msgpackRequest(nc, `mesh.call.${CAP}`, { actor: "Measure", id: "m", payload: { text } });
  t.deepEqual(reply, { ok: true, pid: reply.ok ? reply.pid : "", result: [301, 0xfeff] });
});

test("strings read from the wire are the strings written, at every length around the readers' thresholds, ASCII or not, from a Buffer or a plain Uint8Array", (t) => {
  // The readers build short ASCII strings by hand, read longer ASCII ones as latin1 (viewing a plain Uint8Array as a
  // Buffer), and decode the rest as UTF-8. Each encoding is read from a Buffer, from a plain Uint8Array, and from a plain
  // view that starts past its buffer's first byte.
  const views = (bytes: Uint8Array) => {
    const wider = new Uint8Array(bytes.length + 7);
    wider.set(bytes, 5);
    return [Buffer.from(bytes), new Uint8Array(bytes), wider.subarray(5, 5 + bytes.length)];
  };
  let checked = 0;
  for (let len = 0; len <= 80; len++) {
    const ascii = Array.from({ length: len }, (_, i) => String.fromCharCode(32 + ((i * 7) % 95))).join("");
    const texts = [ascii];
    for (const at of new Set([0, len >> 1, len - 1])) if (at >= 0 && at < len) texts.push(`${ascii.slice(0, at)}é${ascii.slice(at + 1)}`);
    for (const text of texts) {
      for (const bytes of views(encode({ [text]: [text, 1] }))) t.deepEqual(decodeValue(bytes), { [text]: [text, 1] });
      for (const bytes of views(encodeResult(`N${text}`, text)))
        t.deepEqual(decodeReply(bytes), { ok: true, pid: `N${text}`, result: text });
      const request = encodeRequest({
        kind: Kind.CALL,
        capability: "c",
        actorType: "T",
        id: `i${text}`,
        payload: text,
        initArg: undefined,
        timeoutMs: 1000,
        hops: 0,
      });
      for (const bytes of views(request)) {
        const decoded = decodeRequest(bytes);
        t.is(decoded.id, `i${text}`);
        t.is(decoded.payload, text);
      }
      checked++;
    }
    // A byte that is not ASCII and cannot begin a UTF-8 character (a stray continuation byte) is refused, not read as latin1.
    if (len === 0) continue;
    for (const stray of [0x80, 0xbf]) {
      const bytes = Buffer.from(encode(ascii));
      bytes[bytes.length - 1 - (len >> 1)] = stray;
      for (const view of views(bytes))
        t.throws(() => decodeStrict(view), { instanceOf: MalformedValue }, `${len} bytes, 0x${stray.toString(16)}`);
    }
  }
  t.true(checked > 300);
});
