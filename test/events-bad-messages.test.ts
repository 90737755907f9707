// Stream events that other clients stored and nats.js or the dead-letter
// stream would not take: a header name nats.js refuses, JetStream's own
// headers (Nats-Expected-Stream), an event near max_payload. Each is
// dead-lettered, its id goes on, and the node keeps reading NATS.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as tcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect, headers } from "nats";
import type { NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import type { CallContext, StreamEvent } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { readStream, setUpStreams } from "./helpers/streams.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

const applied = new Map<string, number[]>();

/** A plain class reading `<stream>.in.<id>`; its handler throws for the events `fails` names, and dead letters go at once. */
function reader(stream: string, fails: (seq: number) => boolean) {
  return class Reader {
    static capability = "ev";
    static actorType = stream;
    static events = { stream, subject: `${stream}.in.>`, key: { token: 2 }, backoffMs: 10, maxDeliveries: 1, deadLetter: `${stream}.dead` };
    handleCall(): string {
      return "here";
    }
    handleEvent(e: StreamEvent, ctx: CallContext): void {
      const key = `${stream}/${ctx.id}`;
      applied.set(key, [...(applied.get(key) ?? []), e.seq]);
      if (fails(e.seq)) throw new Error(`event ${e.seq} fails`);
    }
  };
}

/** Publishes over the raw protocol, as any client may: a header line `Bad Key: v`, which nats.js refuses to read. */
async function rawHpub(url: string, subject: string, reply = ""): Promise<void> {
  const u = new URL(url);
  const sock = tcp(Number(u.port), u.hostname);
  await new Promise((r) => sock.once("connect", r));
  const head = "NATS/1.0\r\nBad Key: v\r\n\r\n";
  const body = "{}";
  sock.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n');
  sock.write(`HPUB ${subject} ${reply} ${head.length} ${head.length + body.length}\r\n${head}${body}\r\nPING\r\n`);
  await new Promise<void>((r) => sock.on("data", (d) => d.toString().includes("PONG") && r()));
  sock.end();
}

test.serial(
  "an event whose header name nats.js refuses is dead-lettered with BAD_REQUEST, and the node reads on and answers",
  async (t) => {
    const stream = "BADHDR";
    await setUpStreams(t.context.nc, stream);
    const node = await startNode(t, { nodeId: nodeId("n"), prefix: "bh", actors: [reader(stream, () => false)], capabilities: ["ev"] });
    await rawHpub(t.context.server.url, `${stream}.in.a`);
    await t.context.nc.jetstream().publish(`${stream}.in.b`, "{}");
    await eventually(() => applied.get(`${stream}/b`)?.length === 1, "the next event to be applied");
    const [dead] = await readStream(t.context.nc, `${stream}_DEAD`, 1);
    t.is(dead!.headers["Mesh-Error-Code"], "BAD_REQUEST");
    t.regex(dead!.headers["Mesh-Error"]!, /headers cannot be read/);
    t.is(dead!.headers["Mesh-Stream-Seq"], "1");
    t.is(applied.get(`${stream}/a`), undefined, "the unreadable event never reached its actor");
    t.like(await node.call({ actor: stream, id: "z", capability: "ev" }), { result: "here" });

    // The ingress: the same header refused in the answer, and the node still answers.
    const answers: string[] = [];
    t.context.nc.subscribe("_INBOX.raw", { callback: (_e, m) => answers.push(new TextDecoder().decode(m.data)) });
    await t.context.nc.flush();
    await rawHpub(t.context.server.url, "bh.call.ev", "_INBOX.raw");
    await eventually(() => answers.length === 1, "the ingress to answer");
    t.like(JSON.parse(answers[0]!), { ok: false, error: { code: "BAD_REQUEST" } });
    t.regex(answers[0]!, /headers cannot be read/);
    t.like(await node.call({ actor: stream, id: "z", capability: "ev" }), { result: "here" });
  },
);

test.serial(
  "a dead letter leaves JetStream's headers of its event behind (Nats-Expected-Stream), keeps the others, and its id goes on",
  async (t) => {
    const stream = "EXPECT";
    await setUpStreams(t.context.nc, stream);
    await startNode(t, { nodeId: nodeId("n"), prefix: "ex", actors: [reader(stream, (seq) => seq === 1)], capabilities: ["ev"] });
    const js = t.context.nc.jetstream();
    const h = headers();
    h.set("Order-Source", "web");
    await js.publish(`${stream}.in.a`, "{}", { expect: { streamName: stream }, headers: h });
    await js.publish(`${stream}.in.a`, "{}");
    await eventually(() => applied.get(`${stream}/a`)?.length === 2, "the id's next event after the dead letter");
    const [dead] = await readStream(t.context.nc, `${stream}_DEAD`, 1);
    t.is(dead!.headers["Order-Source"], "web");
    t.is(dead!.headers["Nats-Expected-Stream"], undefined);
    t.is(dead!.headers["Mesh-Stream-Seq"], "1");
    t.deepEqual(applied.get(`${stream}/a`), [1, 2]);
  },
);

test.serial(
  "an event too large to be dead-lettered with Mesh's headers goes without its data, saying so, and its id goes on",
  async (t) => {
    const stream = "LARGE";
    await setUpStreams(t.context.nc, stream);
    await startNode(t, {
      nodeId: nodeId("n"),
      prefix: "lg",
      actors: [reader(stream, (seq) => seq === 1)],
      capabilities: ["ev"],
    });
    const size = t.context.nc.info!.max_payload - 200;
    const js = t.context.nc.jetstream();
    await js.publish(`${stream}.in.a`, new Uint8Array(size));
    await js.publish(`${stream}.in.a`, "{}");
    await eventually(() => applied.get(`${stream}/a`)?.length === 2, "the id's next event after the dead letter");
    const [dead] = await readStream(t.context.nc, `${stream}_DEAD`, 1);
    t.is(dead!.headers["Mesh-Data-Omitted"], String(size));
    t.is(dead!.headers["Mesh-Stream-Seq"], "1");
    t.is(dead!.json, undefined, "no data");
  },
);

test.serial(
  "a plain actor's message that JetStream did not store is published when its event comes again, not lost as a duplicate",
  async (t) => {
    const stream = "OUTFAIL";
    await setUpStreams(t.context.nc, stream);
    const runs: number[] = [];
    class Forwarder {
      static capability = "ev";
      static actorType = stream;
      static events = { stream, subject: `${stream}.in.>`, key: { token: 2 }, backoffMs: 50, deadLetter: `${stream}.dead` };
      handleCall(): null {
        return null;
      }
      handleEvent(e: StreamEvent, ctx: CallContext): void {
        runs.push(e.seq);
        ctx.publish(`${stream}X.out`, { seq: e.seq }); // no stream keeps it until the test adds one
      }
    }
    const node = await startNode(t, { nodeId: nodeId("n"), prefix: "of", actors: [Forwarder], capabilities: ["ev"] });
    await t.context.nc.jetstream().publish(`${stream}.in.a`, "{}");
    await eventually(() => runs.length >= 1, "the first turn, whose message no stream keeps");
    const jsm = await t.context.nc.jetstreamManager();
    await jsm.streams.add({ name: `${stream}X`, subjects: [`${stream}X.>`] });
    const [out] = await readStream(t.context.nc, `${stream}X`, 1);
    t.deepEqual(out!.json, { seq: 1 });
    await eventually(() => node.metrics().events[0]!.dispatchers[0]?.floor === 1, "the floor to pass the event");
    const r = node.metrics().events[0]!;
    t.is(r.handled, 1, "applied once, when its message was stored");
    t.is(r.duplicates, 0);
  },
);

test.serial("an event whose own headers leave no room for Mesh's within max_payload is dead-lettered without them", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "mesh-tight-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "nats.conf"), "max_payload: 4096\n");
  const server = await startNatsServer({ config: join(dir, "nats.conf") });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const stream = "TIGHT";
  await setUpStreams(nc, stream);
  const node = await Mesh.start({
    servers: server.url,
    nodeId: nodeId("n"),
    prefix: "tg",
    actors: [reader(stream, (seq) => seq === 1)],
    capabilities: ["ev"],
  });
  t.teardown(() => node.stop());
  const h = headers();
  h.set("Big", "x".repeat(3990)); // the event fits; with Mesh's seven headers, its dead letter would not
  await nc.jetstream().publish(`${stream}.in.a`, "{}", { headers: h });
  await nc.jetstream().publish(`${stream}.in.a`, "{}");
  await eventually(() => applied.get(`${stream}/a`)?.length === 2, "the id's next event after the dead letter");
  const [dead] = await readStream(nc, `${stream}_DEAD`, 1);
  t.is(dead!.headers["Mesh-Headers-Omitted"], "true");
  t.is(dead!.headers["Big"], undefined);
  t.is(dead!.headers["Mesh-Stream-Seq"], "1");
});
