// A subscription's stream deleted and made again (docs/events.md "A stream made
// again"): its sequences start over at 1, below the floor the dispatchers
// stored and below what each actor applied. Every event of the new stream must
// still reach its actor, once and in order per key, whether the node ran
// through the recreation or was stopped meanwhile. And a stream restored from
// a snapshot on a NATS cluster, which gets another creation time but keeps its
// sequences: read on, no event applied twice.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import { startNatsCluster } from "@mesh/runtime/testing";
import type { StreamEvent } from "@mesh/runtime";
import { NATS_CONF, eventually, nodeId, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { setUpStreams, snapshotAndRestore } from "./helpers/streams.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

const KEYS = 10;

/** The numbers whose events fail: dead-lettered (sequences 5 and 105 of each stream). */
const failing = (n: number) => n % 100 === 4;

/** A durable ledger of the numbers its events carry (unique across both streams); those `failing` names throw. */
function ledgerClass(stream: string) {
  return class RecLedger {
    static actorType = "RecLedger";
    static durable = true;
    static capability = "ev";
    static events = {
      stream,
      name: "ledger",
      subject: `${stream}.in.>`,
      key: { token: 2 },
      backoffMs: 10,
      maxDeliveries: 2,
      deadLetter: `${stream}.dead`,
    };
    state = { ns: [] as number[] };
    handleCall(): { ns: number[] } {
      return this.state;
    }
    handleEvent(event: StreamEvent): void {
      const { n } = event.json<{ n: number }>();
      if (failing(n)) throw new Error(`event ${n} fails`);
      this.state.ns.push(n);
    }
  };
}

/** `to - from` events, round robin over the keys, each carrying its number. */
function publisher(nc: NatsConnection, stream: string) {
  const js = nc.jetstream();
  return (from: number, to: number) =>
    Promise.all(
      Array.from({ length: to - from }, (_, i) => js.publish(`${stream}.in.k${(from + i) % KEYS}`, JSON.stringify({ n: from + i }))),
    );
}

/** Polls until every key's ledger holds its numbers below `to` (but the failing ones), then checks each holds exactly those, in order. */
async function allApplied(t: ExecutionContext, node: Mesh, to: number): Promise<void> {
  const expected = (k: number) => Array.from({ length: to }, (_, n) => n).filter((n) => n % KEYS === k && !failing(n));
  const ledger = (k: number) => node.call<{ ns: number[] }>({ actor: "RecLedger", id: `k${k}`, capability: "ev" }).then((r) => r.result.ns);
  for (let k = 0; k < KEYS; k++)
    await eventually(async () => (await ledger(k)).length >= expected(k).length, `k${k}'s events up to ${to}`, 20_000);
  for (let k = 0; k < KEYS; k++) t.deepEqual(await ledger(k), expected(k), `k${k}: every event once, in order`);
}

for (const running of [true, false])
  test.serial(
    `a stream deleted and made again ${running ? "under a running node" : "while its node was stopped"}: every event of the new one is applied, once, in order per key`,
    async (t) => {
      const stream = running ? "RECRUN" : "RECSTOP";
      await setUpStreams(t.context.nc, stream);
      const options = {
        servers: t.context.server.url,
        heartbeatMs: 200,
        nodeId: nodeId("rec"),
        prefix: stream.toLowerCase(),
        actors: [ledgerClass(stream)],
        capabilities: ["ev"],
      };
      const publish = publisher(t.context.nc, stream);
      let node = await Mesh.start(options);
      try {
        await publish(0, 200);
        await allApplied(t, node, 200);
        const jsm = await t.context.nc.jetstreamManager();
        const dead = async () => (await jsm.streams.info(`${stream}_DEAD`)).state.messages;
        await eventually(async () => (await dead()) === 2, "the old stream's failing events to be dead-lettered");
        if (!running) {
          await node.stop();
          // A new stream's server whose clock is behind the old one's (simulated: the floor's stored time moved on).
          const kv = await t.context.nc.jetstream().views.kv(`${options.prefix}_events`);
          const floor = (await kv.get("ev.RecLedger.ledger.0"))!.json<{ t: number }>();
          await kv.put("ev.RecLedger.ledger.0", JSON.stringify({ ...floor, t: floor.t + 3_600_000 }));
        }
        await jsm.streams.delete(stream);
        await jsm.streams.add({ name: stream, subjects: [`${stream}.in.>`] });
        // Running, fewer than before: every sequence of the new stream is below the old floor. Stopped, more: the
        // new stream has a message at the old floor, another one.
        const to = running ? 300 : 500;
        await publish(200, to);
        if (!running) node = await Mesh.start(options);
        await allApplied(t, node, to);
        // The new stream's failing events have the sequences of the old one's: dead-lettered all the same.
        await eventually(async () => (await dead()) === (running ? 3 : 5), "the new stream's failing events to be dead-lettered");
      } finally {
        await node.stop();
      }
    },
  );

test.serial(
  "a stream restored from a snapshot on a NATS cluster (another creation time, the same sequences), its message at the floor kept or deleted: read on, no event applied twice",
  async (t) => {
    const cluster = await startNatsCluster(3, { config: NATS_CONF });
    const nc = await connect({ servers: cluster.urls });
    let node: Mesh | undefined;
    try {
      for (const deleted of [false, true]) {
        const stream = deleted ? "RECDEL" : "RECREST";
        const prefix = stream.toLowerCase();
        // The cluster's JetStream elects its meta leader first.
        await eventually(
          async () => {
            const jsm = await nc.jetstreamManager().catch(() => undefined);
            if (jsm === undefined) return false;
            const made = (name: string, subjects: string[]) =>
              jsm.streams.add({ name, subjects, num_replicas: 3 }).then(
                () => true,
                () => false,
              );
            return (await made(stream, [`${stream}.in.>`])) && (await made(`${stream}_DEAD`, [`${stream}.dead`]));
          },
          "the streams to be made on the cluster",
          30_000,
        );
        const options = {
          servers: cluster.urls,
          heartbeatMs: 200,
          nodeId: nodeId("rest"),
          prefix,
          actors: [ledgerClass(stream)],
          capabilities: ["ev"],
          storage: { replicas: 3 },
        };
        await eventually(
          async () => (node = await Mesh.start(options).catch(() => undefined)) !== undefined,
          "the node to start on the cluster",
          30_000,
        );
        const publish = publisher(nc, stream);
        await publish(0, 200);
        await allApplied(t, node!, 200);
        await eventually(async () => {
          const e = await (await nc.jetstream().views.kv(`${prefix}_events`)).get("ev.RecLedger.ledger.0");
          return e !== null && e.json<{ seq: number }>().seq === 200;
        }, "the floor to be stored at the stream's end");
        const jsm = await nc.jetstreamManager();
        // Deleted: the stream has no message at the floor any more (a delete, a per-subject limit).
        if (deleted) await jsm.streams.deleteMessage(stream, 200);
        const before = (await jsm.streams.info(stream)).created;
        await snapshotAndRestore(nc, stream);
        t.not((await jsm.streams.info(stream)).created, before, "the premise: the restored stream has another creation time");
        await publish(200, 300);
        await allApplied(t, node!, 300);
        await node!.stop();
        node = undefined;
      }
    } finally {
      await node?.stop();
      await nc.close();
      await cluster.stop();
    }
  },
);
