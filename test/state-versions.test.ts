// State versions: a durable class's `static stateVersion` is stored with its
// state; v2 code migrates what v1 stored as it loads it, and v1 code never
// reads what v2 stored (STATE_TOO_NEW). The store is read straight from the
// bucket, as any NATS client could.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";
import { MeshError, stateKey } from "@mesh/core";
import type { CallContext, Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const CAP = "orders";

/** v1: a total. */
class CartV1 {
  static actorType = "Cart";
  static durable = true;
  state = { total: 0 };
  handleCall(p: { add?: number } | undefined): unknown {
    if (p?.add !== undefined) this.state.total += p.add;
    return { ...this.state, code: "v1" };
  }
}

/** v2: the total in cents and a count of additions; migrates v1's total. */
class CartV2 {
  static actorType = "Cart";
  static durable = true;
  static stateVersion = 2;
  static migrations = 0;
  static failMigration = false;
  static migrateState(stored: { total: number }, fromVersion: number): { cents: number; adds: number; from: number } {
    CartV2.migrations++;
    if (CartV2.failMigration) throw new Error("the v1 state has no total");
    return { cents: stored.total * 100, adds: 0, from: fromVersion };
  }
  state = { cents: 0, adds: 0, from: 2 };
  handleCall(p: { add?: number } | undefined): unknown {
    if (p?.add !== undefined) {
      this.state.cents += p.add * 100;
      this.state.adds++;
    }
    return { ...this.state, code: "v2" };
  }
}

/** The stored record of cart `id`: its state version and state, decoded as a foreign client would (docs/PROTOCOL.md "Durable state"). */
async function storedRecord(
  url: string,
  prefix: string,
  id: string,
): Promise<{ version: number; state: unknown; bytes: Uint8Array; applied?: object }> {
  const nc = await connect({ servers: url });
  try {
    const kv = await nc.jetstream().views.kv(`${prefix}_state`, { bindOnly: true });
    const entry = await kv.get(stateKey(CAP, "Cart", id));
    if (entry === null || entry.operation !== "PUT") throw new Error(`nothing stored for ${id}`);
    const bytes = entry.value;
    if (bytes[0] !== 0xc9 || bytes[5] !== 77) return { version: 1, state: decode(bytes), bytes };
    const body = decode(bytes.subarray(6)) as unknown[];
    const version = body[0] === 2 ? (body[4] as number) : 1;
    return { version, state: body[1] === null ? undefined : decode(body[1] as Uint8Array), bytes, applied: body[2] as object };
  } finally {
    await nc.close();
  }
}

const node = (t: { context: ClusterContext }, prefix: string, cls: typeof CartV1 | typeof CartV2): Promise<Mesh> =>
  startNode(t as never, { nodeId: nodeId(prefix), prefix, actors: [cls], capabilities: [CAP] });
const cart = (mesh: Mesh, id: string, add?: number) =>
  mesh.call<{ code: string }>({ actor: "Cart", id, payload: add === undefined ? {} : { add }, capability: CAP }).then((r) => r.result);

test.serial("v2 code migrates a v1 state as it loads it and stores it as version 2, even after a read-only turn", async (t) => {
  const v1 = await node(t, "sv1", CartV1);
  await cart(v1, "a", 3);
  await cart(v1, "b", 5);
  t.deepEqual((await storedRecord(t.context.server.url, "sv1", "a")).state, { total: 3 });
  t.is((await storedRecord(t.context.server.url, "sv1", "a")).version, 1, "v1 stores the bare state, as before state versions");
  await v1.stop();

  const v2 = await node(t, "sv1", CartV2);
  const before = CartV2.migrations;
  t.deepEqual(await cart(v2, "a", 1), { cents: 400, adds: 1, from: 1, code: "v2" }, "migrated, then the turn ran on the migrated state");
  t.deepEqual(await storedRecord(t.context.server.url, "sv1", "a").then((r) => [r.version, r.state]), [
    2,
    { cents: 400, adds: 1, from: 1 },
  ]);
  // A turn that changes nothing still stores the migrated state, at version 2.
  t.deepEqual(await cart(v2, "b"), { cents: 500, adds: 0, from: 1, code: "v2" });
  t.deepEqual(await storedRecord(t.context.server.url, "sv1", "b").then((r) => [r.version, r.state]), [
    2,
    { cents: 500, adds: 0, from: 1 },
  ]);
  t.is(CartV2.migrations - before, 2, "migrateState ran once per actor");
  // A fresh actor starts at version 2 with no migration.
  await cart(v2, "c", 2);
  t.is((await storedRecord(t.context.server.url, "sv1", "c")).version, 2);
  t.is(CartV2.migrations - before, 2);
});

test.serial("v1 code never reads a v2 record: STATE_TOO_NEW, nothing activated, the record untouched; v2 reads it again", async (t) => {
  const v2 = await node(t, "sv2", CartV2);
  await cart(v2, "a", 2);
  const written = await storedRecord(t.context.server.url, "sv2", "a");
  await v2.stop();

  const v1 = await node(t, "sv2", CartV1);
  for (const add of [undefined, 1]) {
    const err = await t.throwsAsync(cart(v1, "a", add), { instanceOf: MeshError });
    t.is(err?.code, "STATE_TOO_NEW");
    t.regex(err!.message, /stateVersion 2.*reads up to version 1/);
  }
  t.is(v1.actorCount, 0, "nothing activated");
  t.deepEqual((await storedRecord(t.context.server.url, "sv2", "a")).bytes, written.bytes, "the record is as v2 stored it");
  await v1.stop();

  const again = await node(t, "sv2", CartV2);
  t.deepEqual(await cart(again, "a", 1), { cents: 300, adds: 2, from: 2, code: "v2" });
});

test.serial("a migrateState that throws fails the activation with BAD_STATE and stores nothing; the next call tries again", async (t) => {
  const v1 = await node(t, "sv3", CartV1);
  await cart(v1, "a", 7);
  const written = await storedRecord(t.context.server.url, "sv3", "a");
  await v1.stop();

  const v2 = await node(t, "sv3", CartV2);
  CartV2.failMigration = true;
  try {
    const err = await t.throwsAsync(cart(v2, "a", 1), { instanceOf: MeshError });
    t.is(err?.code, "BAD_STATE");
    t.regex(err!.message, /Cart\.migrateState\(stored, 1\) failed .*the v1 state has no total/);
    t.deepEqual((await storedRecord(t.context.server.url, "sv3", "a")).bytes, written.bytes);
  } finally {
    CartV2.failMigration = false;
  }
  t.deepEqual(await cart(v2, "a", 1), { cents: 800, adds: 1, from: 1, code: "v2" });
});

test.serial(
  "a stateVersion that is not a positive integer, on a plain class, or above 1 with no migrateState, is refused at start",
  async (t) => {
    const bad = [
      class Zero extends CartV1 {
        static stateVersion = 0;
      },
      class Half extends CartV1 {
        static stateVersion = 1.5;
      },
      class Plain {
        static stateVersion = 1;
        handleCall(): void {}
      },
      class NoMigration extends CartV1 {
        static stateVersion = 2;
      },
    ];
    const messages = [
      /must be a positive integer, got 0/,
      /must be a positive integer, got 1.5/,
      /is for durable classes/,
      /needs a static migrateState/,
    ];
    for (const [i, cls] of bad.entries()) {
      const err = await t.throwsAsync(startNode(t, { nodeId: nodeId("sv4"), prefix: "sv4", actors: [cls as never], capabilities: [CAP] }), {
        instanceOf: MeshError,
      });
      t.is(err?.code, "BAD_REQUEST", cls.name);
      t.regex(err!.message, messages[i]!);
      t.true(err!.message.startsWith(`${cls.name}.stateVersion`));
    }
  },
);

/** v2 with reminders: the record keeps a reminder's ticket in its applied map beside the version. */
class ClockV2 {
  static actorType = "Cart";
  static durable = true;
  static stateVersion = 2;
  static migrateState(stored: { total: number }): { cents: number; fired: number } {
    return { cents: stored.total * 100, fired: 0 };
  }
  state = { cents: 0, fired: 0 };
  async handleCall(p: { afterMs?: number } | undefined, ctx: CallContext): Promise<unknown> {
    if (p?.afterMs !== undefined) await ctx.remind("ring", { afterMs: p.afterMs });
    return { ...this.state };
  }
  handleReminder(): void {
    this.state.fired++;
  }
}

test.serial("a versioned record keeps what the record holds besides the state: a reminder set, then fired", async (t) => {
  const v1 = await node(t, "sv5", CartV1);
  await cart(v1, "a", 2);
  await v1.stop();
  const v2 = await startNode(t, { nodeId: nodeId("sv5"), prefix: "sv5", actors: [ClockV2], capabilities: [CAP], reminderScanMs: 200 });
  await v2.call({ actor: "Cart", id: "a", payload: { afterMs: 300 }, capability: CAP });
  const set = await storedRecord(t.context.server.url, "sv5", "a");
  t.is(set.version, 2);
  t.deepEqual(set.state, { cents: 200, fired: 0 });
  t.deepEqual(Object.keys(set.applied ?? {}), ["⏰ring"], "the reminder's ticket is stored beside the version");
  await eventually(
    async () => ((await storedRecord(t.context.server.url, "sv5", "a")).state as { fired: number }).fired === 1,
    "the reminder to fire",
  );
  t.is((await storedRecord(t.context.server.url, "sv5", "a")).version, 2);
});

test.serial("older code that meets a newer record gives the shard up to a node of newer code, where the call is served", async (t) => {
  const v2 = await startNode(t, { nodeId: nodeId("sv6-new"), prefix: "sv6", appVersion: "2", actors: [CartV2], capabilities: [CAP] });
  const ids = Array.from({ length: 60 }, (_, i) => `c${i}`);
  for (const id of ids) await cart(v2, id, 1);
  // Older code joins (as in a rollback, or after a node of newer code died): it takes its share of the shards.
  const v1 = await startNode(t, { nodeId: nodeId("sv6-old"), prefix: "sv6", appVersion: "1", actors: [CartV1], capabilities: [CAP] });
  await eventually(() => v2.nodesFor(CAP).length === 2, "the nodes to meet");
  const moved = ids.filter((id) => v1.ownerNode(v1.shardFor(id), CAP) === v1.nodeId);
  t.true(moved.length > 0, "some of the stored carts now belong to the older node");
  // Each such call goes to the older node, which does not read the record: it gives the shard up, and the newer node serves it.
  for (const id of moved) t.deepEqual(await cart(v1, id, 1), { cents: 200, adds: 2, from: 2, code: "v2" }, id);
  for (const id of moved) t.is(v1.ownerNode(v1.shardFor(id), CAP), v2.nodeId, `${id}'s shard went to the newer node`);
  await eventually(() => moved.every((id) => v2.ownerNode(v2.shardFor(id), CAP) === v2.nodeId), "the newer node to own them too");
  t.is(v1.metrics().placement.standby, false);
  const owned = Array.from({ length: 4096 }, (_, shard) => v1.ownerNode(shard, CAP)).filter((o) => o === v1.nodeId).length;
  t.true(owned > 1000, `the older node keeps its other shards (${owned} of 4096)`);
});
