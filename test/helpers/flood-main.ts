// A flooding node as its own OS process (flow-control.test.ts): options as JSON
// in $MESH_FLOOD. It starts a node that hosts nothing, waits to see the
// owner of capability `slow`, warms up (as a flood meets a running system),
// then floods Slow/hot with casts or calls for `durationMs` while it calls
// other actors of the owner one at a time (probes, each with a 1 s timeout).
// It prints one line `result <json>` and exits.
import { Mesh, MeshError } from "@mesh/runtime";

export interface FloodOptions {
  servers: string;
  prefix: string;
  nodeId: string;
  mode: "casts" | "calls";
  /** Loops (casts, each awaited) or calls in flight. */
  inFlight: number;
  durationMs: number;
}

/** What the flooder saw. */
export interface FloodResult {
  sent: number;
  /** OVERLOADED, by where it came from: refused here unsent, or by the owner. */
  overloaded: number;
  /** Other failures, by code. */
  failures: Record<string, number>;
  /** From the flood's start to its first OVERLOADED (-1: none). */
  firstOverloadedMs: number;
  probes: { answered: number; failed: string[]; slowestMs: number };
  rss: { beforeMiB: number; peakMiB: number };
  castsRefusedAtSender: number;
  noticesReceived: number;
}

const o = JSON.parse(process.env.MESH_FLOOD ?? "{}") as FloodOptions;
const mesh = await Mesh.start({ servers: o.servers, prefix: o.prefix, nodeId: o.nodeId });
const deadline = Date.now() + 10_000;
while (mesh.nodesFor("slow").length === 0) {
  if (Date.now() > deadline) throw new Error("the flooder never saw the owner");
  await new Promise((resolve) => setTimeout(resolve, 20));
}
// Warm-up: calls and casts at an ordinary pace, so that the flood meets compiled code.
for (let i = 0; i < 2000; i++) await mesh.call({ actor: "Counter", id: `warm_${i % 50}`, capability: "slow" });
// A burst past maxOutboundBytes: a running system has been through the waits before.
await Promise.all(Array.from({ length: 5000 }, (_, i) => mesh.call({ actor: "Counter", id: `warm_${i % 50}`, capability: "slow" })));
await Promise.all(Array.from({ length: 200 }, (_, i) => mesh.cast({ actor: "Counter", id: `warm_${i % 50}`, capability: "slow" })));

const mib = () => process.memoryUsage.rss() / 1024 / 1024;
const result: FloodResult = {
  sent: 0,
  overloaded: 0,
  failures: {},
  firstOverloadedMs: -1,
  probes: { answered: 0, failed: [], slowestMs: 0 },
  rss: { beforeMiB: mib(), peakMiB: mib() },
  castsRefusedAtSender: 0,
  noticesReceived: 0,
};
const sampler = setInterval(() => (result.rss.peakMiB = Math.max(result.rss.peakMiB, mib())), 20);
const start = performance.now();
const end = start + o.durationMs;
const failed = (err: unknown) => {
  const code = err instanceof MeshError ? err.code : String(err);
  if (code !== "OVERLOADED") result.failures[code] = (result.failures[code] ?? 0) + 1;
  else if (result.overloaded++ === 0) result.firstOverloadedMs = performance.now() - start;
};
const hot = { actor: "Slow", id: "hot", capability: "slow", payload: { ms: 5 } };
const loop = async () => {
  while (performance.now() < end) {
    result.sent++;
    // A call admitted to the full mailbox waits up to 1,000 x 5 ms: its timeout is past that.
    await (o.mode === "casts" ? mesh.cast(hot) : mesh.call({ ...hot, timeoutMs: 10_000 })).catch(failed);
  }
};
const probe = async () => {
  for (let i = 0; performance.now() < end; i++) {
    const sentAt = performance.now();
    try {
      await mesh.call({ actor: "Counter", id: `probe_${i % 100}`, capability: "slow", timeoutMs: 1000 });
      result.probes.answered++;
      result.probes.slowestMs = Math.max(result.probes.slowestMs, performance.now() - sentAt);
    } catch (err) {
      result.probes.failed.push(err instanceof MeshError ? `${err.code}: ${err.message}` : String(err));
    }
  }
};
await Promise.all([...Array.from({ length: o.inFlight }, loop), probe()]);
clearInterval(sampler);
result.castsRefusedAtSender = mesh.metrics().castsRefusedAtSender;
result.noticesReceived = mesh.metrics().overloadNotices.received;
process.stdout.write(`result ${JSON.stringify(result)}\n`);
await mesh.stop();
process.exit(0);
