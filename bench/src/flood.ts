// Flow control (maxOutboundBytes, overload notices), in one run:
//   - a cast flood: an owner process hosts Slow (5 ms a message) and Echo; a
//     second process (flooder.ts) casts to Slow/hot in 256 awaited loops for
//     5 s while this process, the third, calls Echo on the same owner one at a
//     time, as it does just before and again once Slow/hot's mailbox has
//     drained: p50 and p99 flooded against unloaded (both unloaded phases
//     pooled). The flooder reports the p99 of its own calls to Echo meanwhile,
//     its RSS growth, and its casts refused at the sender against those sent;
//   - what the backlog's accounting costs calls that never meet its limit:
//     remote calls, 128 in flight on 1,024 Echo actors of the remote section's
//     owner (peer.ts mesh-owner, its helpers), from a node with the default
//     maxOutboundBytes and from one with Infinity, in alternating pairs (AB,
//     BA, ...): calls/s and the caller's CPU per call, default / Infinity.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Mesh, MeshError } from "@mesh/runtime";
import { load, measured, median, sequential } from "./load.js";
import type { Measured } from "./load.js";
import type { FloodReport } from "./flooder.js";

/** The remote section's helpers (bench.ts): peer processes, and CPU per call on each side. */
export interface Peers {
  start(mode: string, ...args: string[]): Promise<ChildProcess>;
  stop(child: ChildProcess): Promise<void>;
  cpuPerCall(owner: ChildProcess, calls: number, run: () => Promise<Measured>): Promise<{ m: Measured; caller: number; owner: number }>;
}

type Record = (section: string, name: string, m: Measured) => Measured;

export interface FloodFigures {
  /** The third process's calls: both unloaded phases pooled, and during the flood. */
  unloaded: Measured;
  flooded: Measured;
  flooder: FloodReport;
  /** Medians over the pairs of default / Infinity: calls/s, and the caller's CPU per call. */
  callsRatio: number;
  cpuRatio: number;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The median (of an even count, the mean of the middle two). */
const mid = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
};
const after = (ms: number) => {
  const end = performance.now() + ms;
  return () => performance.now() >= end;
};
const body = { action: "ping", n: 1 };
const us = (x: number | undefined) => `${((x ?? 0) / 1000).toFixed(2)} ms`;

/** The flooding process, ready once it has warmed up. */
async function startFlooder(url: string, prefix: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [here("./flooder.js"), url, prefix], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`flooder exited with ${code}`)));
  });
  return child;
}

function floodFor(flooder: ChildProcess, ms: number): Promise<FloodReport> {
  return new Promise((resolve) => {
    flooder.once("message", (m) => resolve(m as FloodReport));
    flooder.send({ ms });
  });
}

/** Waits until Slow/hot has worked through its mailbox (a call runs after the casts queued before it): ms. */
async function drained(node: Mesh): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      await node.call({ actor: "Slow", id: "hot", capability: "flood", timeoutMs: 30_000 });
      return performance.now() - started;
    } catch (err) {
      if (!(err instanceof MeshError && err.code === "OVERLOADED")) throw err;
      await sleep(100);
    }
  }
}

async function castFlood(url: string, quick: boolean, peers: Peers, record: Record) {
  const [calmMs, floodMs] = quick ? [1500, 2000] : [4000, 5000];
  console.log(
    `\nA cast flood (256 awaited loops, ${floodMs / 1000} s) at a 5 ms actor, from another process: calls to another actor of its node`,
  );
  const prefix = "benchflood";
  const owner = await peers.start("mesh-flood-owner", prefix);
  let flooder: ChildProcess | undefined;
  const third = await Mesh.start({ servers: url, prefix, nodeId: "bench-flood-third" });
  try {
    flooder = await startFlooder(url, prefix);
    while (third.nodesFor("flood").length === 0) await sleep(20);
    const call = (i: number) => third.call({ actor: "Echo", id: `third_${i % 100}`, payload: body, capability: "flood", timeoutMs: 5000 });
    await sequential(call, after(1000));
    const before = await sequential(call, after(calmMs));
    let flooding = true;
    const report = floodFor(flooder, floodMs).finally(() => (flooding = false));
    const during = await sequential(call, () => !flooding);
    const f = await report;
    const drainMs = await drained(third);
    const again = await sequential(call, after(calmMs));
    record("flood", "third process's calls, unloaded (before)", measured(before.ms, before.seconds));
    const flooded = record("flood", "third process's calls, during the flood", measured(during.ms, during.seconds));
    record("flood", "third process's calls, unloaded (after)", measured(again.ms, again.seconds));
    record("flood", "the flooder's own calls, during its flood", f.calls);
    const unloaded = measured([...before.ms, ...again.ms], before.seconds + again.seconds);
    const failed = before.failed + during.failed + again.failed;
    console.log(
      `  third process, flooded / unloaded (before and after pooled): p50 ${us(flooded.p50)} / ${us(unloaded.p50)} = ${(flooded.p50! / unloaded.p50!).toFixed(2)}x, ` +
        `p99 ${us(flooded.p99)} / ${us(unloaded.p99)} = ${(flooded.p99! / unloaded.p99!).toFixed(2)}x; ${failed} failed`,
    );
    const sent = f.attempted - f.refusedAtSender - f.refusedUnsent;
    const share = (x: number) => `${((100 * x) / f.attempted).toFixed(1)} %`;
    console.log(
      `  flooder: ${f.attempted.toLocaleString("en-US")} casts tried, ${f.refusedAtSender.toLocaleString("en-US")} (${share(f.refusedAtSender)}) refused at the sender, ` +
        `${f.refusedUnsent.toLocaleString("en-US")} refused unsent by the backlog, ${sent.toLocaleString("en-US")} (${share(sent)}) sent; ` +
        `${f.overloaded.toLocaleString("en-US")} OVERLOADED, ${f.otherFailures} other failures, ${f.noticesReceived} notices`,
    );
    console.log(
      `  flooder: own calls p50 ${us(f.calls.p50)}, p99 ${us(f.calls.p99)} (${f.callsFailed} failed); ` +
        `RSS ${f.rss.beforeMiB.toFixed(0)} -> ${f.rss.peakMiB.toFixed(0)} MiB (+${(f.rss.peakMiB - f.rss.beforeMiB).toFixed(1)}); Slow/hot drained ${Math.round(drainMs)} ms after`,
    );
    return { unloaded, flooded, flooder: f };
  } finally {
    await third.stop();
    if (flooder) await peers.stop(flooder);
    await peers.stop(owner);
  }
}

async function accounting(url: string, quick: boolean, peers: Peers, record: Record) {
  const [pairs, seconds] = quick ? [2, 1] : [4, 3];
  console.log(
    `\nThe backlog's accounting: remote calls, 128 in flight, maxOutboundBytes default (256 KiB) against Infinity, ${pairs} pairs`,
  );
  const owner = await peers.start("mesh-owner");
  const on = await Mesh.start({ servers: url, nodeId: "bench-flow-default" });
  const off = await Mesh.start({ servers: url, nodeId: "bench-flow-infinity", maxOutboundBytes: Infinity });
  try {
    while (on.nodesFor("bench").length === 0 || off.nodesFor("bench").length === 0) await sleep(20);
    const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
    const callFrom = (node: Mesh) => (i: number) => node.call({ actor: "Echo", id: ids[i & 1023]!, payload: body, capability: "bench" });
    // Both warmed up at full concurrency before anything is counted; the second sets the count for a phase of `seconds`.
    await load(callFrom(on), { inFlight: 128, total: quick ? 10_000 : 100_000 });
    const warm = await load(callFrom(off), { inFlight: 128, total: quick ? 10_000 : 100_000 });
    const total = Math.max(10_000, Math.round((warm.perSecond * seconds) / 1000) * 1000);
    const runs = {
      default: [] as { m: Measured; caller: number; owner: number }[],
      infinity: [] as { m: Measured; caller: number; owner: number }[],
    };
    const calls: number[] = [];
    const cpu: number[] = [];
    for (let p = 0; p < pairs; p++) {
      const order = p % 2 === 0 ? (["default", "infinity"] as const) : (["infinity", "default"] as const);
      for (const k of order) {
        const node = k === "default" ? on : off;
        runs[k].push(await peers.cpuPerCall(owner, total + 1000, () => load(callFrom(node), { inFlight: 128, total, warmup: 1000 })));
      }
      const [a, b] = [runs.default[p]!, runs.infinity[p]!];
      calls.push(a.m.perSecond / b.m.perSecond);
      cpu.push(a.caller / b.caller);
      const shown = (r: typeof a) =>
        `${Math.round(r.m.perSecond).toLocaleString("en-US")}/s, caller ${r.caller.toFixed(2)} µs, owner ${r.owner.toFixed(2)} µs`;
      console.log(
        `  pair ${p + 1} (${order[0]} first): default ${shown(a)}; Infinity ${shown(b)}: calls/s ${calls[p]!.toFixed(3)}x, caller CPU ${cpu[p]!.toFixed(3)}x`,
      );
    }
    record("flood", "remote, 128 in flight, maxOutboundBytes default", median(runs.default.map((r) => r.m)));
    record("flood", "remote, 128 in flight, maxOutboundBytes Infinity", median(runs.infinity.map((r) => r.m)));
    const waits = on.metrics().outbound.waits;
    console.log(
      `  default / Infinity, median of the pairs: calls/s ${mid(calls).toFixed(3)}x, caller CPU per call ${mid(cpu).toFixed(3)}x ` +
        `(${total.toLocaleString("en-US")} calls a phase; sends that waited for room: ${waits.call + waits.cast})`,
    );
    return { callsRatio: mid(calls), cpuRatio: mid(cpu) };
  } finally {
    await on.stop();
    await off.stop();
    await peers.stop(owner);
  }
}

export async function flood(url: string, quick: boolean, peers: Peers, record: Record): Promise<FloodFigures> {
  const f = await castFlood(url, quick, peers, record);
  const a = await accounting(url, quick, peers, record);
  return { ...f, ...a };
}
