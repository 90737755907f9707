// Changing a subscription's partition count (docs/events.md "Changing
// partitions"): an id's partition depends on the count, so after a change no
// partition's own floor says what is done for its ids. Each case holds back
// the events of some ids (their handler fails) while the others run to the end
// of the stream, stops the node (the floors are stored apart), starts one with
// the new count, and checks that every id's durable ledger then holds all its
// events, once each and in stream order: none skipped.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh, shardFor } from "@mesh/runtime";
import type { MeshOptions, StreamEvent } from "@mesh/runtime";
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

const KEYS = 20;
const EVENTS = 200;
/** The stream sequences of id `k<k>`'s events: published round robin from sequence 1. */
const seqsOf = (k: number) => Array.from({ length: EVENTS / KEYS }, (_, j) => j * KEYS + k + 1);

/** A durable ledger of the stream sequences it applied; the events of ids `held` names fail. */
function ledgerClass(stream: string, partitions: number, start: "all" | "new", held: (id: string) => boolean) {
  return class PartLedger {
    static actorType = "PartLedger";
    static durable = true;
    static capability = "ev";
    static events = {
      stream,
      name: "ledger",
      subject: `${stream}.in.>`,
      key: { token: 2 },
      backoffMs: 10,
      maxDeliveries: 1000,
      deadLetter: `${stream}.dead`,
      partitions,
      start,
    };
    state = { seqs: [] as number[] };
    handleCall(): { seqs: number[] } {
      return this.state;
    }
    handleEvent(event: StreamEvent): void {
      if (held(event.subject.split(".")[2]!)) throw new Error("held back");
      this.state.seqs.push(event.seq);
    }
  };
}

/** Each case holds back ids whose events would be skipped: an old partition's floor stays below the end, and its ids go where a floor is at the end, or to a new partition. */
const cases = [
  { title: "from 2 partitions to 1", before: 2, after: 1, start: "all" as const, held: (id: string) => shardFor(id, 2) === 1 },
  { title: "from 1 partition to 2, start new", before: 1, after: 2, start: "new" as const, held: (id: string) => shardFor(id, 2) === 1 },
  { title: "from 3 partitions to 2", before: 3, after: 2, start: "all" as const, held: (id: string) => shardFor(id, 3) === 2 },
];

for (const [i, c] of cases.entries()) {
  test.serial(`changing partitions ${c.title} skips no event: each id's ledger holds all its events, once, in order`, async (t) => {
    const stream = `PARTS${i}`;
    const prefix = `parts${i}`;
    await setUpStreams(t.context.nc, stream);
    const held = c.held;
    const options = (actor: ReturnType<typeof ledgerClass>): MeshOptions => ({
      servers: t.context.server.url,
      heartbeatMs: 200,
      nodeId: nodeId("parts"),
      prefix,
      actors: [actor],
      capabilities: ["ev"],
    });
    const ledger = (node: Mesh, k: number) =>
      node.call<{ seqs: number[] }>({ actor: "PartLedger", id: `k${k}`, capability: "ev" }).then((r) => r.result.seqs);
    const keys = Array.from({ length: KEYS }, (_, k) => k);
    t.true(
      keys.some((k) => held(`k${k}`)),
      "some ids are held back",
    );

    const before = await Mesh.start(options(ledgerClass(stream, c.before, c.start, held)));
    try {
      const js = t.context.nc.jetstream();
      await Promise.all(Array.from({ length: EVENTS }, (_, n) => js.publish(`${stream}.in.k${n % KEYS}`, JSON.stringify({ n }))));
      for (const k of keys.filter((k) => !held(`k${k}`)))
        await eventually(async () => (await ledger(before, k)).length === seqsOf(k).length, `k${k}'s events before the change`);
    } finally {
      await before.stop();
    }
    // The premise: the old partitions' floors stored apart, some at the stream's end and some held below it.
    const kv = await t.context.nc.jetstream().views.kv(`${prefix}_events`);
    const floors = await Promise.all(
      Array.from({ length: c.before }, async (_, p) => {
        const e = await kv.get(`ev.PartLedger.ledger.${p}`);
        return e === null || e.length === 0 ? 0 : (JSON.parse(e.string()) as { seq: number }).seq;
      }),
    );
    t.true(Math.min(...floors) < EVENTS, `a floor held below the end (${floors.join(", ")})`);

    const after = await Mesh.start(options(ledgerClass(stream, c.after, c.start, () => false)));
    try {
      for (const k of keys)
        await eventually(async () => (await ledger(after, k)).length >= seqsOf(k).length, `k${k}'s events after the change`, 15_000);
      for (const k of keys) t.deepEqual(await ledger(after, k), seqsOf(k), `k${k}: every event once, in stream order`);
    } finally {
      await after.stop();
    }
  });
}

/** Records written by hand (as an older Mesh, a deleted layout or an operator left them), then a node with `partitions`. */
const stored = [
  {
    title: "records of a Mesh before layouts, one partition without any (it stored nothing before its floor first moved)",
    partitions: 2,
    values: { "0": '{"seq":200}' } as Record<string, string>,
    /** The floor below which every id's events count as done: partition 1 stored none, so it is at 0. */
    lowest: 0,
  },
  {
    title: "a deleted layout, with records of two generations and counts (one resumed by count alone would skip)",
    partitions: 3,
    values: { "0": '{"seq":100,"gen":2,"of":1}', "1": '{"seq":200,"gen":1,"of":2}', "2": '{"seq":200,"gen":1,"of":2}' } as Record<
      string,
      string
    >,
    lowest: 100,
  },
  {
    title: "a layout value that is not one",
    partitions: 2,
    values: { layout: "not a layout", "0": '{"seq":150,"gen":1,"of":2}', "1": "{}" } as Record<string, string>,
    lowest: 0,
  },
];

for (const [i, c] of stored.entries()) {
  test.serial(`${c.title}: no event above the lowest floor is skipped`, async (t) => {
    const stream = `PARTREC${i}`;
    const prefix = `partrec${i}`;
    await setUpStreams(t.context.nc, stream);
    const js = t.context.nc.jetstream();
    await Promise.all(Array.from({ length: EVENTS }, (_, n) => js.publish(`${stream}.in.k${n % KEYS}`, JSON.stringify({ n }))));
    const kv = await js.views.kv(`${prefix}_events`, { history: 1 });
    for (const [key, value] of Object.entries(c.values)) await kv.put(`ev.PartLedger.ledger.${key}`, value);
    const node = await Mesh.start({
      servers: t.context.server.url,
      heartbeatMs: 200,
      nodeId: nodeId("partrec"),
      prefix,
      actors: [ledgerClass(stream, c.partitions, "all", () => false)],
      capabilities: ["ev"],
    });
    try {
      const lowest = c.lowest;
      for (let k = 0; k < KEYS; k++) {
        const above = seqsOf(k).filter((s) => s > lowest);
        const ledger = async () =>
          (await node.call<{ seqs: number[] }>({ actor: "PartLedger", id: `k${k}`, capability: "ev" })).result.seqs;
        await eventually(
          async () => {
            const got = await ledger();
            return above.every((s) => got.includes(s));
          },
          `k${k}'s events above ${lowest}`,
          15_000,
        );
        const seqs = await ledger();
        t.deepEqual(
          seqs,
          [...new Set(seqs)].sort((a, b) => a - b),
          `k${k}: once each, in stream order`,
        );
      }
    } finally {
      await node.stop();
    }
  });
}
