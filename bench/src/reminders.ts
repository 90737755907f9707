// The reminders section of `npm run bench`, on two nodes (this process and a
// peer process):
//   - set: ctx.remind on fresh durable actors through both nodes, 128 in
//     flight, against raw KV compare-and-set (128 in flight) in the same run;
//   - fired: all of them due at the same moment: the time until the last
//     fired, and how late each was;
//   - missed: reminders stored as pages, due over the minute before the
//     nodes start (an outage): the time until all fired, how many fired out of
//     due order, and calls to another actor meanwhile (p50, p99) against the
//     same calls before;
//   - stored, none due: pages of reminders due tomorrow written straight into
//     the bucket; each node's CPU (% of a core) and RSS over 20 s.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { encode } from "@msgpack/msgpack";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import { Beeper, Echo } from "./actors.js";
import { rawCas } from "./durable.js";
import type { Record } from "./durable.js";

export interface ReminderFigures {
  count: number;
  setPerSecond: number;
  rawCasPerSecond: number;
  allFiredSeconds: number;
  lateP50: number;
  lateP99: number;
  missedSeconds: number;
  missedOutOfOrder: number;
  callP99After: number;
  callP99During: number;
  idleCpuPercent: number;
  idleCpuEmptyPercent: number;
  idleRssMiB: number;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const SHARDS = 4096;
const SLOT_MS = 10_000;

/** A peer node hosting Beeper and Echo under `prefix`. */
async function peer(url: string, prefix: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [here("./peer.js"), "mesh-reminders", url, prefix], {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`reminders peer exited with ${code}`)));
  });
  return child;
}

interface PeerState {
  user: number;
  system: number;
  rss: number;
  lateness: number[];
  dues: number[];
  lastFiredAt: number;
}
const ask = (child: ChildProcess): Promise<PeerState> =>
  new Promise((resolve) => {
    child.once("message", (m) => resolve(m as PeerState));
    child.send("state");
  });
const stop = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** Both nodes, started under `prefix`: this process's and the peer's. */
/** Firings (on one node) that ran over a second after one due later than them. */
function outOfOrder(dues: readonly number[]): number {
  let latest = -Infinity;
  let n = 0;
  for (const due of dues) {
    if (due < latest - 1000) n++;
    latest = Math.max(latest, due);
  }
  return n;
}

interface Fired {
  late: number[];
  last: number;
  outOfOrder: number;
}

async function twoNodes(url: string, prefix: string): Promise<{ mesh: Mesh; child: ChildProcess; fired: () => Promise<Fired> }> {
  const child = await peer(url, prefix);
  const mesh = await Mesh.start({ servers: url, nodeId: `bench-rem-${prefix}`, prefix, actors: [Beeper, Echo], capabilities: ["beep"] });
  while (mesh.nodesFor("beep").length < 2) await new Promise((r) => setTimeout(r, 20));
  const fired = async () => {
    const p = await ask(child);
    return {
      late: [...Beeper.lateness, ...p.lateness],
      last: Math.max(Beeper.lastFiredAt, p.lastFiredAt),
      outOfOrder: outOfOrder(Beeper.dues) + outOfOrder(p.dues),
    };
  };
  return { mesh, child, fired };
}

async function until(done: () => Promise<boolean>, what: string, ms = 300_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`reminders bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Writes `count` Beeper reminders straight into the bucket as pages (and their directories, and the lowest slot), due between `from` and `to`. */
async function writePages(nc: NatsConnection, prefix: string, count: number, from: number, to: number, idPrefix: string): Promise<void> {
  // The lowest slot is written only for reminders already due (missed): for later ones, the nodes set it as they start.
  const bucket = `${prefix}_reminders`;
  const js = nc.jetstream();
  await js.views.kv(bucket, { history: 1 });
  const pages = new Map<string, { [id: string]: unknown[] }>();
  const dirs = new Map<number, Uint8Array>();
  // The bench's own XXH32 is not needed: ids are made per shard, the shard read back from a node (shardFor).
  const probe = await Mesh.start({
    servers: nc.getServer(),
    nodeId: `bench-rem-probe-${prefix}`,
    prefix: `${prefix}probe`,
    actors: [Echo],
    capabilities: [],
  });
  try {
    for (let i = 0; i < count; i++) {
      const id = `${idPrefix}${i}`;
      const shard = probe.shardFor(id);
      const due = Math.round(from + ((to - from) * i) / count);
      const slot = Math.floor(due / SLOT_MS);
      const key = `beep.${shard}.p${slot}`;
      let page = pages.get(key);
      if (page === undefined) pages.set(key, (page = {}));
      page[`Beeper.${id}.beep`] = ["Beeper", id, "beep", due, due, 0, 0, 0];
      let bits = dirs.get(slot);
      if (bits === undefined) dirs.set(slot, (bits = new Uint8Array(SHARDS / 8)));
      bits[shard >> 3]! |= 1 << (shard & 7);
    }
  } finally {
    await probe.stop();
  }
  let acks: Promise<unknown>[] = [];
  const put = async (key: string, value: Uint8Array) => {
    acks.push(js.publish(`$KV.${bucket}.${key}`, value));
    if (acks.length >= 1000) {
      await Promise.all(acks);
      acks = [];
    }
  };
  for (const [slot, bits] of dirs) await put(`beep.d${slot}`, bits);
  for (const [key, page] of pages) await put(key, encode(page));
  if (from < Date.now()) await put("beep.low", encode(Math.min(...dirs.keys())));
  await Promise.all(acks);
}

export async function reminders(url: string, n: (count: number) => number, record: Record): Promise<ReminderFigures> {
  const count = n(100_000);
  console.log(`\nDurable reminders, two nodes (one in another process): ${count.toLocaleString("en-US")} set, then all due at once`);
  const nc = await connect({ servers: url });
  try {
    const kv = await nc.jetstream().views.kv("bench_rem_raw", { history: 1 });
    const raw = record("reminders", "raw KV update with revision, 128 in flight", await rawCas(kv, 1000, 128, n(50_000)));

    // Set, then all due at once.
    let { mesh, child, fired } = await twoNodes(url, "benchrem");
    let setPerSecond = 0;
    let allFiredSeconds = 0;
    let late: number[] = [];
    try {
      Beeper.lateness = [];
      Beeper.dues = [];
      const at = Date.now() + 10_000 + count / 3; // after every reminder is stored
      const started = performance.now();
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < count; i = next++)
          await mesh.call({ actor: Beeper, id: `b${i}`, payload: { at }, capability: "beep", timeoutMs: 30_000 });
      };
      await Promise.all(Array.from({ length: 128 }, worker));
      setPerSecond = count / ((performance.now() - started) / 1000);
      record("reminders", "set (ctx.remind on fresh durable actors), 128 in flight", { perSecond: setPerSecond } as never);
      if (Date.now() >= at) console.log("  (storing took longer than planned: some were late already)");
      await until(async () => (await fired()).late.length >= count, "every reminder to fire");
      const f = await fired();
      allFiredSeconds = (f.last - at) / 1000;
      late = f.late.sort((a, b) => a - b);
      console.log(
        `  ${"fired, all due at once: the last after".padEnd(52)} ${allFiredSeconds.toFixed(2).padStart(11)} s   late p50 ${quantile(late, 0.5)} ms  p99 ${quantile(late, 0.99)} ms  max ${late.at(-1)} ms`,
      );
    } finally {
      await mesh.stop();
      await stop(child);
    }

    // Missed during an outage: due over the minute before the nodes start.
    const missed = n(50_000);
    await writePages(nc, "benchmiss", missed, Date.now() - 60_000, Date.now() - 1000, "m");
    Beeper.lateness = [];
    Beeper.dues = [];
    const callsAfter: number[] = [];
    const callsDuring: number[] = [];
    let missedSeconds = 0;
    let missedOutOfOrder = 0;
    ({ mesh, child, fired } = await twoNodes(url, "benchmiss"));
    const startedAt = Date.now();
    try {
      const sample = async (into: number[], more: () => Promise<boolean>) => {
        while (await more()) {
          const t0 = performance.now();
          await mesh.call({ actor: Echo, id: `e${into.length % 64}`, payload: 1, capability: "beep" });
          into.push(performance.now() - t0);
        }
      };
      await sample(callsDuring, async () => (await fired()).late.length < missed);
      const f = await fired();
      missedSeconds = (f.last - startedAt) / 1000;
      missedOutOfOrder = f.outOfOrder;
      await sample(callsAfter, async () => callsAfter.length < 2000);
    } finally {
      await mesh.stop();
      await stop(child);
    }
    const p99 = (xs: number[]) =>
      quantile(
        [...xs].sort((a, b) => a - b),
        0.99,
      );
    const p50 = (xs: number[]) =>
      quantile(
        [...xs].sort((a, b) => a - b),
        0.5,
      );
    console.log(
      `  ${`missed (${missed.toLocaleString("en-US")} due over the minute before start): all fired after`.padEnd(52)} ${missedSeconds.toFixed(2).padStart(11)} s   ${missedOutOfOrder} ran over 1 s after a later-due one`,
    );
    console.log(
      `  ${"calls meanwhile, p50 / p99 (ms)".padEnd(52)} ${p50(callsDuring).toFixed(2)} / ${p99(callsDuring).toFixed(2)}   after: ${p50(callsAfter).toFixed(2)} / ${p99(callsAfter).toFixed(2)}  (${callsDuring.length} calls meanwhile)`,
    );

    // Stored, none due: the peer node's CPU and RSS over 20 s, with none stored, then with `stored` due tomorrow.
    const stored = n(1_000_000);
    const idle = async (prefix: string) => {
      const nodes = await twoNodes(url, prefix);
      try {
        await new Promise((r) => setTimeout(r, 2000)); // past the start's scan
        const p0 = await ask(nodes.child);
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, 20_000));
        const p1 = await ask(nodes.child);
        const cpu = ((p1.user + p1.system - p0.user - p0.system) / 1000 / (performance.now() - t0)) * 100;
        return { cpu, rss: p1.rss / 2 ** 20, scan: nodes.mesh.metrics().reminderScan, held: nodes.mesh.metrics().remindersHeld };
      } finally {
        await nodes.mesh.stop();
        await stop(nodes.child);
      }
    };
    const empty = await idle("benchempty");
    await writePages(nc, "benchidle", stored, Date.now() + 86_400_000, Date.now() + 86_400_000 + 3_600_000, "s");
    const full = await idle("benchidle");
    console.log(
      `  ${`idle node: none stored / ${stored.toLocaleString("en-US")} stored, none due`.padEnd(52)} CPU ${empty.cpu.toFixed(2)} % / ${full.cpu.toFixed(2)} % of a core   RSS ${empty.rss.toFixed(0)} / ${full.rss.toFixed(0)} MiB   (held ${full.held}, last scan read ${JSON.stringify(full.scan)})`,
    );
    const idleCpuPercent = full.cpu;
    const idleCpuEmptyPercent = empty.cpu;
    const idleRssMiB = full.rss;
    return {
      count,
      setPerSecond,
      rawCasPerSecond: raw.perSecond,
      allFiredSeconds,
      lateP50: quantile(late, 0.5),
      lateP99: quantile(late, 0.99),
      missedSeconds,
      missedOutOfOrder,
      callP99After: p99(callsAfter),
      callP99During: p99(callsDuring),
      idleCpuPercent,
      idleCpuEmptyPercent,
      idleRssMiB,
    };
  } finally {
    await nc.close();
  }
}
