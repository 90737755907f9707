// Reminders kept by shard and time slot (docs/PROTOCOL.md "Reminders"): what a
// scan reads, an entry the actor's record does not name, and reminders stored
// one per key before pages.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import anyTest from "ava";
import type { TestFn } from "ava";
import { decode, encode } from "@msgpack/msgpack";
import { connect } from "nats";
import type { KV, NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import type { CallContext } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import { eventually, holds, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { Alarm } from "./helpers/actors.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always((t) => t.context.nc?.close());

type Fired = { name: string }[];
const alarm = (mesh: Mesh, id: string, payload?: object) =>
  mesh.call<Fired>({ actor: "Alarm", id, payload, capability: "a", timeoutMs: 10_000 }).then((r) => r.result);
const bucket = (t: { context: { nc: NatsConnection } }, prefix: string): Promise<KV> =>
  t.context.nc.jetstream().views.kv(`${prefix}_reminders`, { bindOnly: true });
/** Every key of a bucket with its value (a page's decoded), read with a watch as any NATS client could. */
async function stored(kv: KV): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  let done!: () => void;
  const read = new Promise<void>((resolve) => (done = resolve));
  const watch = await kv.watch({ key: ">", initializedFn: () => done() });
  void (async () => {
    for await (const e of watch) {
      if (e.operation === "PUT") out.set(e.key, /^[^.]+\.\d+\.p\d+$/.test(e.key) ? decode(e.value) : e.value);
      else out.delete(e.key);
    }
  })();
  await read;
  watch.stop();
  return out;
}

/** The pages of a bucket (`<capability>.<shard>.p<slot>`), each with what it holds. */
async function pages(kv: KV): Promise<Map<string, { [id: string]: unknown[] }>> {
  const all = await stored(kv);
  return new Map([...all].filter(([key]) => /^[^.]+\.\d+\.p\d+$/.test(key)) as [string, { [id: string]: unknown[] }][]);
}

test.serial("a scan reads the pages of its own shards only, and of them only the reminders due within its horizon (counted)", async (t) => {
  t.timeout(120_000);
  const o = { prefix: "pscan", actors: [Alarm], capabilities: ["a"], reminderScanMs: 3000 };
  const a = await startNode(t, { ...o, nodeId: nodeId("pa") });
  const b = await startNode(t, { ...o, nodeId: nodeId("pb") });
  await eventually(() => a.nodesFor("a").length === 2 && b.nodesFor("a").length === 2, "the two nodes to see each other");
  // 2,000 due in an hour (far), then 200 due within the horizon (twice reminderScanMs), set from both nodes.
  const far = Date.now() + 3_600_000;
  for (let i = 0; i < 2000; i += 250)
    await Promise.all(Array.from({ length: 250 }, (_, k) => alarm(k % 2 ? a : b, `far_${i + k}`, { remind: { name: "later", at: far } })));
  const nearIds = Array.from({ length: 200 }, (_, i) => `near_${i}`);
  const near = Date.now() + 4500;
  await Promise.all(nearIds.map((id, i) => alarm(i % 2 ? a : b, id, { remind: { name: "soon", at: near } })));
  const mine = (mesh: Mesh) => nearIds.filter((id) => mesh.ownerNode(mesh.shardFor(id), "a") === mesh.nodeId).length;
  // The next full scan of each node (a view change's reads only new shards): what it read is what it owns of the near ones.
  for (const mesh of [a, b]) {
    await eventually(
      () => mesh.metrics().reminderScan.entries === mine(mesh),
      `${mesh.nodeId}'s scan to read its ${mine(mesh)} near reminders`,
      10_000,
    );
    const scan = mesh.metrics().reminderScan;
    t.log(`${mesh.nodeId}: ${JSON.stringify(scan)}; owns ${mine(mesh)} of the 200 near`);
    t.true(scan.pages <= mine(mesh), "only pages of its own shards, with a near reminder in them");
    t.true(scan.dirs <= 20, "a directory per slot from the lowest to the horizon's");
  }
  t.is(mine(a) + mine(b), 200);
  await eventually(() => a.metrics().remindersFired + b.metrics().remindersFired === 200, "the near ones to fire", 20_000);
});

test.serial("an entry the actor's record does not name (replaced, forgotten) runs nothing and is removed from its page", async (t) => {
  t.timeout(60_000);
  const mesh = await startNode(t, { prefix: "pstale", nodeId: nodeId("ps"), actors: [Alarm], capabilities: ["a"], reminderScanMs: 300 });
  const kv = await bucket(t, "pstale");
  // Each one is set to fire in 2 s; its stored page is kept; then it is replaced (in an hour) or forgotten.
  await alarm(mesh, "replaced", { remind: { name: "r", afterMs: 2000 } });
  await alarm(mesh, "forgotten", { remind: { name: "f", afterMs: 2000 } });
  const before = await pages(kv);
  await alarm(mesh, "replaced", { remind: { name: "r", afterMs: 3_600_000 } });
  await alarm(mesh, "forgotten", { forget: "f" });
  // Both old entries are removed once the turns committed; put them back, as a node that died between its commit and the removal leaves them.
  const stale = async () =>
    [...(await pages(kv)).values()].some((p) =>
      Object.entries(p).some(([id, e]) => /\.(r|f)\.\d+$/.test(id) && (e[7] as number) < Date.now() + 60_000),
    );
  await eventually(async () => !(await stale()), "the old entries to go");
  for (const [key, entries] of before) await kv.put(key, encode(entries));
  t.true(await stale(), "the old entries are stored again");
  // They fall due: neither runs; each is removed from its page.
  await eventually(async () => !(await stale()), "the stale entries to be removed", 15_000);
  await holds(() => mesh.metrics().remindersFired === 0, "no reminder ran", 500);
  t.deepEqual(await alarm(mesh, "replaced"), []);
  t.deepEqual(await alarm(mesh, "forgotten"), []);
});

test.serial("reminders stored one per key (the layout before pages) are moved into pages and fire once", async (t) => {
  t.timeout(60_000);
  const o = { prefix: "plegacy", actors: [Alarm], capabilities: ["a"], reminderScanMs: 300 };
  // A node makes the bucket; then, with no node running, two reminders are stored as the old layout stored them.
  const first = await startNode(t, { ...o, nodeId: nodeId("pl1") });
  const shard = (id: string) => first.shardFor(id);
  await first.stop();
  const kv = await bucket(t, "plegacy");
  const due = Date.now() + 500;
  for (const [id, every] of [
    ["old1", 0],
    ["old2", 60_000],
  ] as const) {
    const value = { capability: "a", actorType: "Alarm", id, name: "legacy", due, runAt: due, every, failures: 0 };
    await kv.put(`a.${shard(id)}.Alarm.${id}.legacy`, encode(value));
  }
  const mesh = await startNode(t, { ...o, nodeId: nodeId("pl2") });
  await eventually(
    async () => (await alarm(mesh, "old1")).length === 1 && (await alarm(mesh, "old2")).length === 1,
    "both to fire",
    15_000,
  );
  // The repeating one moves on into a page, with a ticket (its next occurrence, in a minute); no key of the old layout is left.
  const entries = async () => [...(await pages(kv)).values()].flatMap((p) => Object.values(p)).map((e) => [e[1], e[7]]);
  const moved = JSON.stringify([["old2", due + 60_000]]);
  await eventually(async () => JSON.stringify(await entries()) === moved, "the repeating one to move on");
  t.deepEqual(
    [...(await stored(kv)).keys()].filter((k) => k.split(".").length === 5),
    [],
  );
  await holds(() => mesh.metrics().remindersFired === 2, "each fired once", 1000);
});

/** A durable actor that may crash its turn after setting a reminder. */
class Rash {
  static actorType = "Rash";
  static durable = true;
  state = { fired: [] as number[] };
  async handleCall(p: { at?: number; crash?: boolean } | undefined, ctx: CallContext): Promise<number[]> {
    if (p?.at !== undefined) await ctx.remind("r", { at: p.at });
    if (p?.crash) throw new Error("crash after remind, on purpose");
    return this.state.fired;
  }
  handleReminder(_name: string, info: { due: number }): void {
    this.state.fired.push(info.due);
  }
}

test.serial("a turn that crashes after remind leaves its reminders as they were: the one it replaced fires, its own never", async (t) => {
  t.timeout(30_000);
  const mesh = await startNode(t, { prefix: "pcrash", nodeId: nodeId("pc"), actors: [Rash], capabilities: ["a"], reminderScanMs: 300 });
  const call = (payload?: object) => mesh.call<number[]>({ actor: Rash, id: "x", payload, capability: "a" }).then((r) => r.result);
  const kept = Date.now() + 1500;
  await call({ at: kept });
  const err = await t.throwsAsync(call({ at: Date.now() + 300, crash: true }));
  t.is((err as { code?: string }).code, "ACTOR_CRASHED");
  await eventually(async () => (await call()).length > 0, "the kept reminder to fire", 10_000);
  await holds(() => mesh.metrics().remindersFired === 1, "nothing else fires", 500);
  t.deepEqual(await call(), [kept]);
});

test.serial(
  "a page past the server's max_payload refuses the reminder with PAYLOAD_TOO_LARGE; every reminder acknowledged fires",
  async (t) => {
    t.timeout(120_000);
    // A server of its own whose max_payload is 64 KiB, and one shard: every reminder due at the same time shares one page.
    const dir = mkdtempSync(join(tmpdir(), "mesh-pagefull-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, "nats.conf");
    writeFileSync(config, "max_payload: 65536\njetstream { max_memory_store: 64MB, max_file_store: 256MB }\n");
    const server = await startNatsServer({ config });
    t.teardown(() => server.stop());
    const mesh = await Mesh.start({
      servers: server.url,
      nodeId: nodeId("pf"),
      actors: [Alarm],
      capabilities: ["a"],
      shards: 1,
      reminderScanMs: 500,
    });
    t.teardown(() => mesh.stop());
    const at = Date.now() + 20_000;
    // 100 at a time: the page fills up batch by batch (a machine loaded by 1,500 commits at once timed some out).
    const outcomes: string[] = [];
    for (let i = 0; i < 1500; i += 100)
      outcomes.push(
        ...(await Promise.all(
          Array.from({ length: 100 }, (_, k) =>
            mesh
              .call({ actor: "Alarm", id: `pf_${i + k}`, payload: { remind: { name: "full", at } }, capability: "a", timeoutMs: 30_000 })
              .then(
                () => "stored",
                (err: { rootCode?: string; message: string }) => `${err.rootCode}: ${err.message}`,
              ),
          ),
        )),
      );
    const stored = outcomes.filter((o) => o === "stored").length;
    const refused = outcomes.filter((o) => o !== "stored");
    t.log(`${stored} stored, ${refused.length} refused: ${refused[0]}`);
    t.true(stored > 0 && refused.length > 0);
    for (const r of refused) t.regex(r, /^PAYLOAD_TOO_LARGE: .*too many reminders/);
    await eventually(() => mesh.metrics().remindersFired >= stored, "every stored reminder to fire", 60_000);
    await holds(() => mesh.metrics().remindersFired === stored, "none fires twice, none refused fires", 500);
  },
);

/** A durable actor that runs a list of reminder operations in one turn. */
class Ops {
  static actorType = "Ops";
  static durable = true;
  state = { fired: [] as number[] };
  async handleCall(ops: ({ remind: number } | { forget: true })[] | undefined, ctx: CallContext): Promise<number[]> {
    for (const op of ops ?? []) {
      if ("remind" in op) await ctx.remind("r", { at: op.remind });
      else await ctx.forget("r");
    }
    return this.state.fired;
  }
  handleReminder(_name: string, info: { due: number }): void {
    this.state.fired.push(info.due);
  }
}

test.serial("forget then remind at the same time, in one turn or in two whose commits overlap: the reminder fires once", async (t) => {
  t.timeout(30_000);
  const mesh = await startNode(t, { prefix: "preuse", nodeId: nodeId("pr"), actors: [Ops], capabilities: ["a"], reminderScanMs: 300 });
  const call = (id: string, ops?: object[]) => mesh.call<number[]>({ actor: Ops, id, payload: ops, capability: "a" }).then((r) => r.result);
  const at = Date.now() + 2000;
  await call("one", [{ remind: at }]);
  await call("one", [{ forget: true }, { remind: at }]);
  await call("two", [{ remind: at }]);
  // Two turns without waiting between them: the second sets the first's time again while the first's commit may be in flight.
  await Promise.all([call("two", [{ remind: at + 5000 }]), call("two", [{ remind: at }])]);
  await eventually(async () => (await call("one")).length === 1 && (await call("two")).length === 1, "both to fire", 10_000);
  await holds(() => mesh.metrics().remindersFired === 2, "each once", 500);
  t.deepEqual(await call("one"), [at]);
  t.deepEqual(await call("two"), [at]);
});

test.serial(
  "after a week-long outage of the whole cluster (the lowest slot a week behind), the first scan reads on in batches and a reminder fires",
  async (t) => {
    t.timeout(120_000);
    const o = { prefix: "pweek", actors: [Alarm], capabilities: ["a"], reminderScanMs: 1000 };
    const first = await Mesh.start({ servers: t.context.server.url, nodeId: nodeId("pweek0"), ...o });
    await alarm(first, "warm"); // the bucket exists
    await first.stop();
    // What the cluster stored before it went down: the lowest slot a week ago (10 s slots), and nothing since.
    const weekAgo = Math.floor(Date.now() / 10_000) - 60_480;
    const kv = await bucket(t, "pweek");
    await kv.put("a.low", encode(weekAgo));
    const node = await startNode(t, { ...o, nodeId: nodeId("pweek1") });
    const started = Date.now();
    const lowNow = async () => decode((await kv.get("a.low"))!.value) as number;
    await eventually(async () => (await lowNow()) >= Math.floor(Date.now() / 10_000) - 7, "the lowest slot to move up to now", 110_000);
    t.log(`caught up with a week in ${Date.now() - started} ms`);
    t.true((await lowNow()) > weekAgo + 60_000, "the scan read past the week");
    await alarm(node, "back", { remind: { name: "after", afterMs: 500 } });
    await eventually(async () => (await alarm(node, "back")).length === 1, "the reminder to fire", 60_000);
    t.is((await alarm(node, "back")).length, 1);
  },
);
