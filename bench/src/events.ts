// The events section of `npm run bench` (docs/events.md): raw nats.js consuming
// a stream (a durable pull consumer, acknowledging with AckAll) against events
// into Mesh actors on two nodes (this process and a peer process), into durable
// actors (against raw KV compare-and-set at 128 in flight), with a publish from
// each turn, and the time to catch up after the peer node is killed. In every
// case the stream holds all its events first; the rate counts from the first
// event consumed (raw), or from when both Mesh nodes are warm (after a third of
// the events handled; the nodes' start is not timed), to the last.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { AckPolicy, connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import { EvDurable, EvDurableSolo, EvPlain, EvPublish } from "./actors.js";
import { rawCas } from "./durable.js";
import type { Record } from "./durable.js";
import type { Measured } from "./load.js";

export interface EventFigures {
  raw: Measured;
  rawCas128: Measured;
  plain: Measured;
  /** Durable actors on one node (this process), as the durable section measures its local owner. */
  durableOne: Measured;
  durable: Measured;
  publish: Measured;
  /** Seconds from the peer's SIGKILL until every event was handled. */
  recoverySeconds: number;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const KEYS = 1000;

async function publishAll(nc: NatsConnection, prefix: string, total: number): Promise<void> {
  const js = nc.jetstream();
  const data = new TextEncoder().encode('{"n":1}');
  for (let i = 0; i < total; i += 1000) {
    const acks = [];
    for (let j = i; j < Math.min(total, i + 1000); j++) acks.push(js.publish(`${prefix}.k${j % KEYS}`, data));
    await Promise.all(acks);
  }
}

function spawnEventsPeer(url: string, prefix: string, cls: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [here("./peer.js"), "mesh-events", url, prefix, cls], {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve(child));
    child.once("exit", (code) => reject(new Error(`events peer exited with ${code}`)));
  });
}

/** What the peer's dispatchers handled, and how many run there. */
function stateOf(child: ChildProcess): Promise<{ handled: number; dispatchers: number }> {
  return new Promise((resolve) => {
    child.once("message", resolve);
    child.send("handled");
  });
}

type EventClass = typeof EvPlain | typeof EvDurable | typeof EvDurableSolo | typeof EvPublish;

/** Polls `done` every 5 ms; fails after two minutes (a bench that cannot finish says so). */
async function until(done: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 120_000;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error("events bench: timed out waiting for the nodes");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Raw: a durable pull consumer with AckAll (every 100th message, and the last) consuming a stream that holds `total` messages. */
async function raw(nc: NatsConnection, total: number): Promise<Measured> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: "EVB_RAW", subjects: ["evb.raw.>"] });
  await jsm.consumers.add("EVB_RAW", { durable_name: "raw", ack_policy: AckPolicy.All, max_ack_pending: 20_000 });
  await publishAll(nc, "evb.raw", total);
  const consumer = await nc.jetstream().consumers.get("EVB_RAW", "raw");
  const started = performance.now();
  const messages = await consumer.consume({ max_messages: 1000 });
  let seen = 0;
  for await (const m of messages) {
    if (++seen % 100 === 0 || seen === total) m.ack();
    if (seen === total) break;
  }
  const seconds = (performance.now() - started) / 1000;
  await jsm.streams.delete("EVB_RAW");
  return { ops: total, seconds, perSecond: total / seconds };
}

/**
 * Events into actors of `cls` on this node and a peer (`nodes` 2) or on this
 * node alone, from a stream that holds them all: `total` timed, after half as
 * many more to warm up. `kill`: SIGKILL the peer halfway (no warm-up), and time
 * the catch-up.
 */
async function intoActors(
  url: string,
  nc: NatsConnection,
  cls: EventClass,
  prefix: string,
  total: number,
  nodes: 1 | 2,
  kill = false,
): Promise<{ m: Measured; recoverySeconds: number }> {
  const stream = cls.events.stream;
  const subject = stream.toLowerCase().replace("_", ".");
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  const warmup = kill ? 0 : Math.floor(total / 2);
  await publishAll(nc, subject, total + warmup);
  const peer = nodes === 2 ? await spawnEventsPeer(url, prefix, cls.name) : undefined;
  const peerState = async () => (peer === undefined ? { handled: 0, dispatchers: 0 } : await stateOf(peer));
  const peerHandled = async () => (await peerState()).handled;
  const mesh = await Mesh.start({
    servers: url,
    nodeId: `bench-events-${prefix}-local`,
    prefix,
    actors: [cls],
    capabilities: ["evb"],
    heartbeatMs: 200,
    nodeTimeoutMs: 1000,
  });
  let recoverySeconds = 0;
  try {
    const local = () => mesh.metrics().events.reduce((a, r) => a + r.handled, 0);
    // The peer starts reading alone; the rate counts once the view holds both nodes and each partition's dispatcher runs once (here or there).
    const dispatchers = () => mesh.metrics().events.reduce((a, r) => a + r.dispatchers.length, 0);
    await until(
      async () =>
        mesh.nodesFor("evb").length === nodes &&
        dispatchers() + (await peerState()).dispatchers === ((cls.events as { partitions?: number }).partitions ?? 1),
    );
    // The clock starts once both nodes are warm: a process just started runs its first events several
    // times slower (JIT, heap growth), and the peer is started for each run.
    if (warmup > 0) await until(async () => local() + (await peerHandled()) >= warmup);
    const first = local() + (await peerHandled());
    const started = performance.now();
    if (kill) {
      await until(async () => local() + (await peerHandled()) >= total / 2);
      const killedAt = performance.now();
      peer!.kill("SIGKILL");
      // Caught up: this node's dispatcher (the peer's moves here) is past the stream's last event.
      const floor = () => Math.max(0, ...mesh.metrics().events.flatMap((r) => r.dispatchers.map((d) => d.floor)));
      await until(async () => floor() >= total);
      recoverySeconds = (performance.now() - killedAt) / 1000;
    } else {
      await until(async () => local() + (await peerHandled()) >= total + warmup);
    }
    const seconds = (performance.now() - started) / 1000;
    const ops = total + warmup - first;
    return { m: { ops, seconds, perSecond: ops / seconds }, recoverySeconds };
  } finally {
    if (peer !== undefined && peer.exitCode === null && peer.signalCode === null) {
      peer.kill("SIGTERM");
      await new Promise((r) => peer.once("exit", r));
    }
    await mesh.stop();
    await jsm.streams.delete(stream);
  }
}

/** The (baseline, Mesh) pair of the round whose ratio Mesh / baseline is the median. */
function medianPair(baseline: Measured[], mesh: Measured[]): [Measured, Measured] {
  const order = baseline
    .map((_, i) => i)
    .sort((a, b) => mesh[a]!.perSecond / baseline[a]!.perSecond - mesh[b]!.perSecond / baseline[b]!.perSecond);
  const i = order[Math.floor(order.length / 2)]!;
  return [baseline[i]!, mesh[i]!];
}

/** Rounds of the targeted pairs (raw consumer and plain actors, raw KV CAS and durable actors on one node), alternated; the round with the median ratio is reported. */
const ROUNDS = 5;

export async function events(url: string, n: (count: number) => number, record: Record): Promise<EventFigures> {
  console.log(
    `\nEvents: raw nats.js (durable pull consumer, AckAll every 100; KV update with revision, 1,000 keys, 128 in flight) against Mesh (1,000 actor ids; two nodes: this process and a peer), in ${ROUNDS} alternating rounds`,
  );
  const nc = await connect({ servers: url, noAsyncTraces: true });
  try {
    const total = n(100_000);
    const kv = await nc.jetstream().views.kv("bench_events_raw", { history: 1 });
    const rounds = { raw: [] as Measured[], plain: [] as Measured[], cas: [] as Measured[], durableOne: [] as Measured[] };
    for (let r = 0; r < ROUNDS; r++) {
      rounds.raw.push(await raw(nc, total));
      rounds.plain.push((await intoActors(url, nc, EvPlain, `evb1r${r}`, total, 2)).m);
      rounds.cas.push(await rawCas(kv, 1000, 128, n(50_000)));
      rounds.durableOne.push((await intoActors(url, nc, EvDurableSolo, `evb5r${r}`, n(30_000), 1)).m);
    }
    // Each pair from the round whose ratio is the median: the machine's speed drifts between rounds, a pair's two runs are close in time.
    const [rawRound, plainRound] = medianPair(rounds.raw, rounds.plain);
    const [casRound, durableRound] = medianPair(rounds.cas, rounds.durableOne);
    const ratios = (base: Measured[], mesh: Measured[]) => mesh.map((m, i) => (m.perSecond / base[i]!.perSecond).toFixed(2)).join(", ");
    console.log(`  ratios by round: plain ${ratios(rounds.raw, rounds.plain)}; durable, 1 node ${ratios(rounds.cas, rounds.durableOne)}`);
    const rawFig = record("events", "raw consumer, 100,000 events", rawRound);
    const plain = record("events", "into plain actors, 2 nodes, 1 dispatcher", plainRound);
    const rawCas128 = record("events", "raw KV update with revision, 128 in flight", casRound);
    const durableOne = record("events", "into durable actors, 1 node, 128 in flight", durableRound);
    const durable = record(
      "events",
      "into durable actors, 2 nodes, 128 in flight",
      (await intoActors(url, nc, EvDurable, "evb2", n(30_000), 2)).m,
    );
    await (await nc.jetstreamManager()).streams.add({ name: "EVB_OUT", subjects: ["evb.out.>"] });
    const publish = record(
      "events",
      "durable, one publish per event, 2 nodes",
      (await intoActors(url, nc, EvPublish, "evb3", n(20_000), 2)).m,
    );
    const recovery = await intoActors(url, nc, EvPlain, "evb4", total, 2, true);
    console.log(`  ${"catch-up after the peer node is killed halfway".padEnd(52)} ${recovery.recoverySeconds.toFixed(2).padStart(11)} s`);
    return { raw: rawFig, rawCas128, plain, durableOne, durable, publish, recoverySeconds: recovery.recoverySeconds };
  } finally {
    await nc.close();
  }
}
