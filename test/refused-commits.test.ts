// Durable commits refused on a replicated bucket (three servers, the state
// bucket at three replicas): what the caller is told must be what happened.
//
// A stale stream leader: nats-server 2.9's leader of the state stream, cut
// off from its quorum or paused, still answers until it steps down: it
// refuses writes (wrong last sequence) and answers reads with what it had,
// while the real leader stores the write. Here a client on the owner's server
// plays that stale leader for one key: it refuses every write of the key and
// answers every read of it with the value before. The routes between the
// servers are slow links (20 ms each way), so its answers come first and the
// real leader's, on another server, after them. The write lands; its caller
// must not be told STATE_CONFLICT, which says it did not.
//
// Two activations of one id at once (two clusters sharing one state bucket):
// the second to commit from the same revision writes the very bytes the first
// wrote. Its write did not land; its caller must be told STATE_CONFLICT.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection, Subscription } from "nats";
import { decode } from "@msgpack/msgpack";
import { stateKey } from "@mesh/core";
import { Mesh } from "@mesh/runtime";
import { NATS_CONF, eventually, nodeId } from "./helpers/cluster.js";
import { startPartitionableCluster } from "./helpers/partitions.js";
import type { PartitionableCluster } from "./helpers/partitions.js";
import { Register, codeOf } from "./helpers/registers.js";

const test = anyTest as TestFn<{ cluster: PartitionableCluster; node: Mesh; nc: NatsConnection; more: Mesh[] }>;

const STREAM = "KV_mesh_state";
const subjectOf = (id: string) => `$KV.mesh_state.${stateKey("reg", "Register", id)}`;
const text = new TextDecoder();

test.before(async (t) => {
  const cluster = await startPartitionableCluster(3, { config: NATS_CONF }, { delayMs: 20 });
  t.context.cluster = cluster;
  // The cluster's JetStream elects its meta leader first: until then, the state bucket cannot be made.
  let node: Mesh | undefined;
  await eventually(
    async () =>
      (node = await Mesh.start({
        servers: cluster.urls[0]!,
        nodeId: nodeId("stale"),
        actors: [Register],
        capabilities: ["reg"],
        heartbeatMs: 200,
        storage: { replicas: 3, timeoutMs: 3000 },
      }).catch(() => undefined)) !== undefined,
    "the node to start on the cluster",
    60_000,
  );
  t.context.node = node!;
  t.context.more = [];
  t.context.nc = await connect({ servers: cluster.urls[0]! });
});
test.after.always(async (t) => {
  await Promise.all((t.context.more ?? []).map((n) => n.stop()));
  await t.context.node?.stop();
  await t.context.nc?.close();
  await t.context.cluster?.stop();
});

/** What the real leader answers now to a read of register `id`'s key (a stream message get, as the node's reads ask it). */
async function readNow(nc: NatsConnection, id: string): Promise<Uint8Array> {
  const reply = await nc.request(`$JS.API.STREAM.MSG.GET.${STREAM}`, JSON.stringify({ last_by_subj: subjectOf(id) }), { timeout: 10_000 });
  if ((JSON.parse(text.decode(reply.data)) as { message?: unknown }).message === undefined)
    throw new Error(`the key is not stored: ${text.decode(reply.data)}`);
  return reply.data;
}

/** The value the real leader holds for register `id` (its state, msgpack), or "deleted" for a delete marker. */
async function storedValue(nc: NatsConnection, id: string): Promise<unknown> {
  const { message } = JSON.parse(text.decode(await readNow(nc, id))) as { message: { data?: string; hdrs?: string } };
  if (message.hdrs !== undefined && Buffer.from(message.hdrs, "base64").toString().includes("KV-Operation: DEL")) return "deleted";
  return (decode(Buffer.from(message.data!, "base64")) as { value?: unknown }).value;
}

/** Plays a stale leader of register `id`'s key: refuses its writes, and answers its reads with `before` (a message get's answer). */
function staleLeader(nc: NatsConnection, id: string, before: Uint8Array): Subscription[] {
  const subject = subjectOf(id);
  const refusal = new TextEncoder().encode(
    JSON.stringify({ error: { code: 400, err_code: 10071, description: "wrong last sequence: 1" } }),
  );
  return [
    nc.subscribe(subject, { callback: (_, msg) => void msg.respond(refusal) }),
    nc.subscribe(`$JS.API.STREAM.MSG.GET.${STREAM}`, {
      callback: (_, msg) => {
        if ((JSON.parse(text.decode(msg.data)) as { last_by_subj?: string }).last_by_subj === subject) msg.respond(before);
      },
    }),
  ];
}

for (const [id, op] of [
  ["r1", "write"],
  ["r2", "clear"],
] as const) {
  test.serial(
    `a ${op} that a stale leader refuses while the real leader stores it fails with STORAGE_UNAVAILABLE (or succeeds), never STATE_CONFLICT`,
    async (t) => {
      const { cluster, node, nc } = t.context;
      const call = (payload: object) => node.call({ actor: Register, id, payload, capability: "reg", timeoutMs: 20_000 });
      t.is((await call({ write: "v0" })).result, "v0");
      // The real leader on another server than the node's (the stale one answers from the node's server).
      await eventually(async () => {
        const leader = await cluster.leaderOf(STREAM);
        if (leader !== undefined && leader !== 0) return true;
        await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`, "", { timeout: 10_000 }).catch(() => undefined);
        return false;
      }, "the state stream's leader to be on another server than the node's");
      let before: Uint8Array | undefined;
      await eventually(async () => (before = await readNow(nc, id).catch(() => undefined)) !== undefined, "the new leader to answer reads");
      const subs = staleLeader(nc, id, before!);
      await nc.flush(); // its subscriptions are on the server
      const outcome = await call(op === "write" ? { write: "v1" } : { clear: true }).then(
        () => "stored",
        (err: unknown) => codeOf(err),
      );
      for (const sub of subs) sub.unsubscribe();
      await nc.flush();
      t.log(`the ${op}'s outcome: ${outcome}`);
      // STORAGE_UNAVAILABLE (unknown) while the stale leader answered every read, or stored once the real leader did;
      // STATE_CONFLICT would say it was not.
      t.true(outcome === "STORAGE_UNAVAILABLE" || outcome === "stored", `the caller of a stored ${op} was told ${outcome}`);
      // At once: the next activation (a refused commit's activation was dropped) loads what was stored, and its load overwrote nothing.
      t.is((await call({ read: true })).result, op === "write" ? "v1" : 0);
      t.is(await storedValue(nc, id), op === "write" ? "v1" : "deleted");
    },
  );
}

test.serial(
  "two activations of one id at once: the second commit from the same revision gets STATE_CONFLICT, even with the same bytes",
  async (t) => {
    const { cluster, more } = t.context;
    // Two clusters (two prefixes) sharing one state bucket: each hosts an activation of the same id.
    const start = (name: string, server: number) =>
      Mesh.start({
        servers: cluster.urls[server]!,
        prefix: name,
        nodeId: nodeId(name),
        actors: [Register],
        capabilities: ["reg"],
        heartbeatMs: 200,
        storage: { bucket: "split_state", replicas: 3, timeoutMs: 3000 },
      });
    const a = await start("split-a", 1);
    more.push(a);
    const b = await start("split-b", 2);
    more.push(b);
    const call = (node: Mesh, payload: object) => node.call({ actor: Register, id: "s1", payload, capability: "reg", timeoutMs: 20_000 });
    t.is((await call(a, { write: 5 })).result, 5);
    // b's activation starts from what a wrote (its load confirms it with a write of its own: a's revision is behind now).
    t.is((await call(b, { read: true })).result, 5);
    t.is((await call(b, { write: 6 })).result, 6);
    // a writes 6 too, from its revision before b's: the very bytes b stored, but not its write.
    const outcome = await call(a, { write: 6 }).then(
      () => "stored",
      (err: unknown) => codeOf(err),
    );
    t.is(outcome, "STATE_CONFLICT");
  },
);
