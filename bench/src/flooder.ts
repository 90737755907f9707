// The flooding process of the flood section (flood.ts): `node lib/flooder.js <url> <prefix>`.
// A node that hosts nothing. Once it sees the owner of capability "flood" and
// has warmed up (a flood meets compiled code) it prints "ready". Sent { ms }
// over IPC, it casts to Slow/hot in 256 loops, each awaiting its cast, for
// that long, while it calls Echo on the same owner one at a time, then answers
// with a FloodReport. Exits on SIGTERM, or when the bench goes.
import { Mesh, MeshError } from "@mesh/runtime";
import { measured, sequential } from "./load.js";
import type { Measured } from "./load.js";

/** What the flooder saw during one flood. */
export interface FloodReport {
  /** Casts tried, and how they ended: OVERLOADED (all of them here, unsent) or another failure. */
  attempted: number;
  overloaded: number;
  otherFailures: number;
  /** Casts refused at once because the owner had said it refuses them (overload notices). */
  refusedAtSender: number;
  /** Casts refused by the backlog: no room within their time, or too many waiting. */
  refusedUnsent: number;
  noticesReceived: number;
  /** Its own calls to Echo during the flood, and how many failed. */
  calls: Measured;
  callsFailed: number;
  rss: { beforeMiB: number; peakMiB: number };
}

const LOOPS = 256;
const [url, prefix] = process.argv.slice(2);
const mesh = await Mesh.start({ servers: url, prefix, nodeId: "bench-flooder" });
while (mesh.nodesFor("flood").length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
const body = { action: "ping", n: 1 };
const call = (i: number) => mesh.call({ actor: "Echo", id: `flooder_${i % 100}`, payload: body, capability: "flood", timeoutMs: 5000 });
for (let i = 0; i < 2000; i++) await call(i);
await Promise.all(Array.from({ length: 200 }, (_, i) => mesh.cast({ actor: "Slow", id: `warm_${i % 50}`, capability: "flood" })));

/** The counters a flood moves, as numbers (copied out of the metrics). */
function counters() {
  const m = mesh.metrics();
  return { refusedAtSender: m.castsRefusedAtSender, refusedUnsent: m.outbound.refused.cast, noticesReceived: m.overloadNotices.received };
}

async function flood(ms: number): Promise<FloodReport> {
  const before = counters();
  const mib = () => process.memoryUsage.rss() / 1024 / 1024;
  const rss = { beforeMiB: mib(), peakMiB: mib() };
  const sampler = setInterval(() => (rss.peakMiB = Math.max(rss.peakMiB, mib())), 20);
  const end = performance.now() + ms;
  const over = () => performance.now() >= end;
  const counts = { attempted: 0, overloaded: 0, otherFailures: 0 };
  const hot = { actor: "Slow", id: "hot", capability: "flood" };
  const failed = (err: unknown) => (err instanceof MeshError && err.code === "OVERLOADED" ? counts.overloaded++ : counts.otherFailures++);
  const loop = async () => {
    while (!over()) {
      counts.attempted++;
      await mesh.cast(hot).catch(failed);
    }
  };
  const [, own] = await Promise.all([Promise.all(Array.from({ length: LOOPS }, loop)), sequential(call, over)]);
  clearInterval(sampler);
  const after = counters();
  return {
    ...counts,
    refusedAtSender: after.refusedAtSender - before.refusedAtSender,
    refusedUnsent: after.refusedUnsent - before.refusedUnsent,
    noticesReceived: after.noticesReceived - before.noticesReceived,
    calls: measured(own.ms, own.seconds),
    callsFailed: own.failed,
    rss,
  };
}

const stop = () => void mesh.stop().then(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("disconnect", stop);
process.on("message", (m: { ms: number }) => void flood(m.ms).then((report) => process.send?.(report)));
process.stdout.write("ready\n");
