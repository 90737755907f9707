// A call means the same wherever its actor lives: one value model for what crosses an actor
// boundary, copies for local calls, well-formed ids, and root causes that survive hops.
// Every case runs twice: from the owner's node (local) and from another node (remote).
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import fc from "fast-check";
import { connect } from "nats";
import { MeshError } from "@mesh/runtime";
import type { CallContext, Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { jsonRequest } from "./helpers/foreign.js";

interface Context extends ClusterContext {
  owner: Mesh;
  other: Mesh;
}
const test = anyTest as TestFn<Context>;

/** Replies with what it received. */
class Mirror {
  static actorType = "mirror";
  static capabilities = ["v"];
  handleCall(payload: unknown): unknown {
    return payload;
  }
}

/** Keeps what it is given and hands out its own items, as the README's Cart does. */
class Keeper {
  static actorType = "keeper";
  static capabilities = ["v"];
  kept: unknown = null;
  items: string[] = ["a"];
  handleCall(p: { keep?: unknown; get?: true }): { kept: unknown; items: string[] } {
    if (p.keep !== undefined) this.kept = p.keep;
    return { kept: this.kept, items: this.items };
  }
}

/** A durable actor that stores whatever it is given and replies with its state's value. */
class Vault {
  static actorType = "vault";
  static capabilities = ["v"];
  static durable = true;
  state: { value: unknown; items: string[] } = { value: null, items: [] };
  handleCall(p: { put?: unknown; add?: string } | null): { value: unknown; items: string[] } {
    if (p && "put" in p) this.state.value = p.put;
    if (p?.add) this.state.items.push(p.add);
    return { value: this.state.value, items: this.state.items };
  }
}

/** Opts out of copies: callers and the actor share values. */
class Sharer {
  static actorType = "sharer";
  static capabilities = ["v"];
  static shareValues = true;
  kept: unknown;
  handleCall(p: { keep?: unknown }): unknown {
    if (p.keep !== undefined) this.kept = p.keep;
    return this.kept;
  }
}

/** Replies with a Map, which the value model refuses. */
class Mapper {
  static actorType = "mapper";
  static capabilities = ["v"];
  handleCall(): unknown {
    return { m: new Map([[1, 2]]) };
  }
}

/** Replies with its own pid, as its handler sees it. */
class Named {
  static actorType = "named";
  static capabilities = ["v"];
  handleCall(_: unknown, ctx: CallContext): string {
    return ctx.pid;
  }
}

/** Calls the next hop and lets any failure escape its handler (it crashes). */
class Hop {
  static actorType = "hop";
  async handleCall(p: { via: { id: string; capability: string }[] }, ctx: CallContext): Promise<unknown> {
    const [next, ...rest] = p.via;
    if (next === undefined) return "end";
    return (await ctx.call({ actor: "hop", id: next.id, capability: next.capability, payload: { via: rest } })).result;
  }
}

useNatsServer(test, async (t) => {
  // Only `owner` registers "v", so it owns every id: calls from it are local, from `other` remote.
  t.context.owner = await startNode(t as never, {
    prefix: "val",
    nodeId: nodeId("owner"),
    actors: [Mirror, Keeper, Vault, Sharer, Mapper, Named, Hop],
    capabilities: ["v", "left"],
  });
  t.context.other = await startNode(t as never, { prefix: "val", nodeId: nodeId("other"), actors: [Hop], capabilities: ["right"] });
  await eventually(() => t.context.other.nodesFor("v").length === 1 && t.context.owner.nodesFor("right").length === 1, "the two nodes");
});

type Outcome = { ok: true; result: unknown } | { ok: false; code: string; message: string };

async function outcome(p: Promise<{ result: unknown }>): Promise<Outcome> {
  try {
    return { ok: true, result: (await p).result };
  } catch (err) {
    return { ok: false, code: (err as MeshError).code, message: (err as Error).message };
  }
}

const sides = (t: ExecutionContext<Context>) =>
  [
    ["local", t.context.owner],
    ["remote", t.context.other],
  ] as const;

let unique = 0;
const fresh = (name: string) => `${name}-${unique++}`;

test("the value model: awkward values give the same result, or the same error, locally and remotely, echoed and stored (property, seeded)", async (t) => {
  const awkward = fc.oneof(
    fc.anything({
      maxDepth: 3,
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withBigInt: true,
      withDate: true,
      withTypedArray: true,
      withSparseArray: true,
      withObjectString: true,
      stringUnit: "binary",
    }),
    fc.constantFrom<unknown>(
      new Map([[1, 2]]),
      new Set([1]),
      new Date(0),
      new Date(Number.NaN),
      10n,
      JSON.parse('{"__proto__": {"polluted": true}}'),
      Buffer.from("bytes"),
      new Float64Array([1.5]),
      { a: undefined, b: [undefined, 1] },
      -0,
      Number.NaN,
      "\uD800",
      { "\uDC00": 1 },
      nested(200),
      nested(100),
      new (class Point {
        x = 1;
      })(),
      Object.create(null),
    ),
  );
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(awkward, async (value) => {
      runs++;
      const [local, remote] = await Promise.all(
        sides(t).map(([, node]) => outcome(node.call({ actor: Mirror, id: fresh("m"), payload: { value } }))),
      );
      t.deepEqual(local, remote, "echo");
      const [storedLocal, storedRemote] = await Promise.all(
        sides(t).map(([, node]) => outcome(node.call({ actor: Vault, id: fresh("s"), payload: { put: value } }))),
      );
      t.deepEqual(storedLocal, storedRemote, "store");
      // What was stored is what was echoed (undefined is left out of the payload, so the vault keeps its null).
      if (value !== undefined && local?.ok && storedLocal?.ok)
        t.deepEqual((storedLocal.result as { value: unknown }).value, (local.result as { value: unknown }).value);
      return true;
    }),
    { seed: 20261129, numRuns: 400 },
  );
  t.is(runs, 400);
});

/** `{ n: { n: … } }`, `depth` levels below the top. */
function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = { n: v };
  return v;
}

test("a caller that changes its payload after the call never changes the actor, locally or remotely", async (t) => {
  for (const [side, node] of sides(t)) {
    const id = fresh("keep");
    const payload = { keep: { n: 1, list: [1] } };
    await node.call({ actor: Keeper, id, payload });
    payload.keep.n = 99;
    payload.keep.list.push(99);
    t.deepEqual((await node.call({ actor: Keeper, id, payload: { get: true } })).result.kept, { n: 1, list: [1] }, side);
  }
});

test("a caller that changes the reply never changes the actor's state, plain or durable, locally or remotely", async (t) => {
  for (const [side, node] of sides(t)) {
    const id = fresh("reply");
    const first = (await node.call({ actor: Keeper, id, payload: { get: true } })).result;
    first.items.push("mine");
    t.deepEqual((await node.call({ actor: Keeper, id, payload: { get: true } })).result.items, ["a"], side);
    const vault = fresh("vault");
    const stored = (await node.call({ actor: Vault, id: vault, payload: { add: "book" } })).result;
    stored.items.push("stolen");
    t.deepEqual((await node.call({ actor: Vault, id: vault, payload: { add: "pen" } })).result.items, ["book", "pen"], side);
  }
});

test("each row of the table: Map, Set, BigInt, __proto__ and 200 levels are BAD_REQUEST, a Date and a Uint8Array arrive as they are, in both places", async (t) => {
  const refused: [string, unknown][] = [
    ["Map", new Map([[1, 2]])],
    ["Set", new Set([1])],
    ["BigInt", 10n],
    ["__proto__", JSON.parse('{"__proto__": 1}')],
    ["200 deep", nested(200)],
    [
      "class instance",
      new (class Point {
        x = 1;
      })(),
    ],
    ["lone surrogate", "\uD800"],
  ];
  for (const [side, node] of sides(t)) {
    for (const [what, value] of refused) {
      const err = await t.throwsAsync(
        node.call({ actor: Mirror, id: fresh("r"), payload: { value } }),
        { instanceOf: MeshError },
        `${what} ${side}`,
      );
      t.is(err?.code, "BAD_REQUEST", `${what} ${side}`);
      t.regex(err!.message, /^payload cannot be encoded: .* is not carried across an actor boundary$/, `${what} ${side}`);
      const cast = await t.throwsAsync(
        node.cast({ actor: Mirror, id: fresh("r"), payload: { value } }),
        { instanceOf: MeshError },
        `cast ${what} ${side}`,
      );
      t.is(cast?.code, "BAD_REQUEST");
    }
    const date = new Date(1_700_000_000_123);
    const { result } = await node.call({
      actor: Mirror,
      id: fresh("d"),
      payload: { date, bytes: new Uint8Array([1, 2]), gone: undefined },
    });
    const { bytes, ...rest } = result as { date: Date; bytes: Uint8Array };
    t.deepEqual(rest, { date }, side);
    t.true(rest.date instanceof Date, side);
    t.true(bytes instanceof Uint8Array, side);
    t.deepEqual([...bytes], [1, 2], side);
  }
});

test("a reply the value model refuses is BAD_REPLY with the same message in both places", async (t) => {
  const errors = [];
  for (const [side, node] of sides(t)) {
    const err = await t.throwsAsync(node.call({ actor: Mapper, id: "same-id", payload: 1 }), { instanceOf: MeshError }, side);
    t.is(err?.code, "BAD_REPLY", side);
    errors.push(err!.message.replace(/#\d+/, "#n"));
  }
  t.is(errors[0], errors[1]);
  t.regex(
    errors[0]!,
    /^the reply of .*\/mapper\/same-id#n cannot be encoded: a Map \(use a plain object or an array of pairs\) at m is not carried across an actor boundary$/,
  );
});

test("an actor's pid is the same from its first call on: every reply carries the one its handler sees, locally and remotely", async (t) => {
  for (const [side, node] of sides(t)) {
    const id = fresh("named");
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await node.call({ actor: Named, id }));
    for (const reply of replies) t.is(reply.pid, reply.result, side);
    t.is(new Set(replies.map((r) => r.pid)).size, 1, side);
    t.regex(replies[0]!.pid, new RegExp(`^${t.context.owner.nodeId}/named/${id}#\\d+$`), side);
  }
});

test("a class that shares values (static shareValues) skips the copies but not the check", async (t) => {
  for (const [side, node] of sides(t)) {
    const shared = { n: 1 };
    const id = fresh("share");
    await node.call({ actor: Sharer, id, payload: { keep: shared } });
    shared.n = 2;
    const back = (await node.call({ actor: Sharer, id, payload: {} })).result as { n: number };
    // Local: the very object (no copy); remote: the copy the wire made before the change.
    t.is(back.n, side === "local" ? 2 : 1, side);
    const err = await t.throwsAsync(node.call({ actor: Sharer, id: fresh("share"), payload: { keep: new Map() } }), {
      instanceOf: MeshError,
    });
    t.is(err?.code, "BAD_REQUEST", side);
  }
});

test("ids must be well-formed: lone surrogates are BAD_REQUEST from calls, casts, refs and the ingress, so no two ids alias", async (t) => {
  for (const [side, node] of sides(t)) {
    for (const id of ["\uD800", "\uDBFF", "\uDC00", "a\uD800b"]) {
      const err = await t.throwsAsync(node.call({ actor: Mirror, id, payload: 1 }), { instanceOf: MeshError });
      t.is(err?.code, "BAD_REQUEST", `${side} ${JSON.stringify(id)}`);
      t.regex(err!.message, /id must be a well-formed string/);
      t.is((await t.throwsAsync(node.cast({ actor: Mirror, id, payload: 1 }), { instanceOf: MeshError }))?.code, "BAD_REQUEST");
      t.is((await t.throwsAsync(node.ref(Mirror, id).call(1), { instanceOf: MeshError }))?.code, "BAD_REQUEST");
    }
  }
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const reply = await jsonRequest(nc, "val.call.v", '{"actor":"mirror","id":"\\uD800","payload":1}');
  t.like(reply, { ok: false, error: { code: "BAD_REQUEST" } });
  // Distinct well-formed ids stay distinct actors.
  const pids = await Promise.all(
    ["\uD83D\uDE00", "\uFFFD"].map(async (id) => (await t.context.other.call({ actor: Mirror, id, payload: 1 })).pid),
  );
  t.not(pids[0], pids[1]);
});

test("an uncaught CALL_CYCLE two actors deep reaches the first caller as ACTOR_CRASHED with rootCode CALL_CYCLE, locally, remotely and through the ingress", async (t) => {
  const { owner, other } = t.context;
  // Local: a → b → a, all on the owner. Remote: a on owner (left), b on other (right).
  const local = await t.throwsAsync(
    owner.call({
      actor: "hop",
      id: "la",
      capability: "left",
      payload: {
        via: [
          { id: "lb", capability: "left" },
          { id: "la", capability: "left" },
        ],
      },
    }),
    { instanceOf: MeshError },
  );
  const remote = await t.throwsAsync(
    other.call({
      actor: "hop",
      id: "ra",
      capability: "left",
      payload: {
        via: [
          { id: "rb", capability: "right" },
          { id: "ra", capability: "left" },
        ],
      },
    }),
    { instanceOf: MeshError },
  );
  for (const err of [local, remote]) {
    t.is(err?.code, "ACTOR_CRASHED");
    t.is(err?.rootCode, "CALL_CYCLE");
  }
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const reply = await jsonRequest(nc, "val.call.left", {
    actor: "hop",
    id: "ia",
    payload: {
      via: [
        { id: "ib", capability: "right" },
        { id: "ia", capability: "left" },
      ],
    },
  });
  t.like(reply, { ok: false, error: { code: "ACTOR_CRASHED", rootCode: "CALL_CYCLE" } });
  // An error with no deeper cause has its own code as root.
  const plain = await t.throwsAsync(other.call({ actor: Mirror, id: fresh("x"), payload: 1n }), { instanceOf: MeshError });
  t.is(plain?.rootCode, "BAD_REQUEST");
});
