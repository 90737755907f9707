// A subscription's stream deleted and made again (docs/events.md "A stream made
// again"): its sequences start over at 1, below the floor the dispatchers
// stored and below what each actor applied. Every event of the new stream must
// still reach its actor, once and in order per key, whether the node ran
// through the recreation or was stopped meanwhile.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import type { StreamEvent } from "@mesh/runtime";
import { eventually, nodeId, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { setUpStreams } from "./helpers/streams.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

const KEYS = 10;

/** A durable ledger of the numbers its events carry (unique across both streams). */
function ledgerClass(stream: string) {
  return class RecLedger {
    static actorType = "RecLedger";
    static durable = true;
    static capability = "ev";
    static events = { stream, name: "ledger", subject: `${stream}.in.>`, key: { token: 2 }, backoffMs: 10, deadLetter: `${stream}.dead` };
    state = { ns: [] as number[] };
    handleCall(): { ns: number[] } {
      return this.state;
    }
    handleEvent(event: StreamEvent): void {
      this.state.ns.push(event.json<{ n: number }>().n);
    }
  };
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
      const js = t.context.nc.jetstream();
      const publish = (from: number, to: number) =>
        Promise.all(
          Array.from({ length: to - from }, (_, i) => js.publish(`${stream}.in.k${(from + i) % KEYS}`, JSON.stringify({ n: from + i }))),
        );
      const expected = (k: number, to: number) => Array.from({ length: to }, (_, n) => n).filter((n) => n % KEYS === k);
      const ledger = (node: Mesh, k: number) =>
        node.call<{ ns: number[] }>({ actor: "RecLedger", id: `k${k}`, capability: "ev" }).then((r) => r.result.ns);
      const allApplied = async (node: Mesh, to: number) => {
        for (let k = 0; k < KEYS; k++)
          await eventually(async () => (await ledger(node, k)).length >= expected(k, to).length, `k${k}'s events up to ${to}`, 20_000);
        for (let k = 0; k < KEYS; k++) t.deepEqual(await ledger(node, k), expected(k, to), `k${k}: every event once, in order`);
      };
      let node = await Mesh.start(options);
      try {
        await publish(0, 200);
        await allApplied(node, 200);
        if (!running) await node.stop();
        const jsm = await t.context.nc.jetstreamManager();
        await jsm.streams.delete(stream);
        await jsm.streams.add({ name: stream, subjects: [`${stream}.in.>`] });
        // Fewer than before: every sequence of the new stream is below the old floor.
        await publish(200, 300);
        if (!running) node = await Mesh.start(options);
        await allApplied(node, 300);
      } finally {
        await node.stop();
      }
    },
  );
