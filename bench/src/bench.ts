// npm run bench: a raw nats.js request/reply baseline, then Mesh, against one
// nats-server in the same run (the cluster section starts three of its own).
// Prints a table and writes bench/results/latest.json.
// A report, never a test: nothing here passes or fails.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import { Echo, SharedEcho } from "./actors.js";
import { interleaved, load, median } from "./load.js";
import { ownInbox } from "./raw.js";
import type { Measured } from "./load.js";
import { durable } from "./durable.js";
import { cluster } from "./cluster.js";
import { reminders } from "./reminders.js";
import { events } from "./events.js";
import { tracing } from "./tracing.js";
import { deadline } from "./deadline.js";
import { migration } from "./migration.js";
import { roll } from "./roll.js";
import { flood } from "./flood.js";
import { admin } from "./admin.js";
import { speed } from "./speed.js";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const quick = process.env.BENCH_QUICK === "1"; // smaller counts, for a smoke run
/** BENCH_ONLY=speed,remote,local,memory,durable,cluster,reminders,events,tracing,deadline,migration,roll,flood,admin runs only those sections (default: all). */
const only = new Set(
  (
    process.env.BENCH_ONLY ?? "speed,remote,local,memory,durable,cluster,reminders,events,tracing,deadline,migration,roll,flood,admin"
  ).split(","),
);
const n = (count: number) => (quick ? Math.ceil(count / 10) : count);
const payload = new TextEncoder().encode(JSON.stringify({ action: "ping", n: 1 }));
const rows: { section: string; name: string; m: Measured; note?: string }[] = [];

function record(section: string, name: string, m: Measured, note?: string): Measured {
  rows.push({ section, name, m, ...(note ? { note } : {}) });
  const lat = m.p50 !== undefined ? `  p50 ${m.p50} µs  p95 ${m.p95} µs  p99 ${m.p99} µs` : "";
  console.log(`  ${name.padEnd(52)} ${Math.round(m.perSecond).toLocaleString("en-US").padStart(11)} /s${lat}`);
  return m;
}

async function peer(mode: string, url: string, ...args: string[]): Promise<ChildProcess> {
  // BENCH_CPU_PROF=<dir>: the peer writes a V8 CPU profile there (run the bench itself with --cpu-prof for the other side).
  const prof = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, here("./peer.js"), mode, url, ...args], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`${mode} exited with ${code}`)));
  });
  return child;
}

/** The peer's CPU time so far, in µs (user + system), asked over its IPC channel. */
function peerCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once("message", (m: { user: number; system: number }) => resolve(m.user + m.system));
    child.send("cpu");
  });
}

/** CPU µs per call on each side of `run`'s calls: this process (the caller) and the peer (the owner). */
async function cpuPerCall(
  owner: ChildProcess,
  calls: number,
  run: () => Promise<Measured>,
): Promise<{ m: Measured; caller: number; owner: number }> {
  const o0 = await peerCpu(owner);
  const c0 = process.cpuUsage();
  const m = await run();
  const c = process.cpuUsage(c0);
  const o = (await peerCpu(owner)) - o0;
  return { m, caller: (c.user + c.system) / calls, owner: o / calls };
}

function stopPeer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/**
 * Raw nats.js and Mesh request/reply, measured in alternating rounds on the
 * same machine at the same time (this machine's throughput drifts by ±30 %
 * from one second to the next): both responders run side by side in their own
 * processes, and each figure is the median of its rounds.
 */
async function requestReply(
  url: string,
): Promise<{ raw: Record<string, Measured>; mesh: Record<string, Measured>; cpu: Record<string, { caller: number; owner: number }> }> {
  console.log("\nRaw nats.js request/reply (responder in another process)");
  const responder = await peer("raw-responder", url);
  const owner = await peer("mesh-owner", url);
  const conns: NatsConnection[] = [];
  const caller = await Mesh.start({ servers: url, nodeId: "bench-caller" });
  try {
    const variants: [string, Partial<ConnectionOptions>][] = [
      ["nc.request() as shipped, 128 in flight", {}],
      ["nc.request() with noAsyncTraces, 128 in flight", { noAsyncTraces: true }],
    ];
    for (const [name, options] of variants) {
      const nc = await connect({ servers: url, ...options });
      conns.push(nc);
      record("raw", name, await load(() => nc.request("bench.echo", payload, { timeout: 10_000 }), { inFlight: 128, total: n(50_000) }));
    }
    const nc = await connect({ servers: url, noAsyncTraces: true });
    conns.push(nc);
    const request = ownInbox(nc);
    const rawCall = () => request("bench.echo", payload);
    const body = { action: "ping", n: 1 };
    const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
    const meshCall = (i: number) => caller.call({ actor: "Echo", id: ids[i & 1023]!, payload: body, capability: "bench" });
    // Warm both paths up at full concurrency before anything is counted.
    await load(rawCall, { inFlight: 128, total: n(100_000) });
    await load(meshCall, { inFlight: 128, total: n(100_000) });

    const rounds = quick ? 1 : 5;
    const raw: Record<string, Measured> = {};
    const mesh: Record<string, Measured> = {};
    const cpu: Record<string, { caller: number; owner: number }> = {};
    const plan: [string, number, number][] = [
      ["1 in flight", 1, n(10_000)],
      ["16 in flight", 16, n(50_000)],
      ["128 in flight", 128, n(100_000)],
      ["1,024 in flight", 1024, n(100_000)],
    ];
    for (const [label, inFlight, total] of plan) {
      const r: Measured[] = [];
      const m: Measured[] = [];
      const c: { caller: number; owner: number }[] = [];
      for (let i = 0; i < rounds; i++) {
        r.push(await load(rawCall, { inFlight, total, warmup: 1000 }));
        const round = await cpuPerCall(owner, total + 1000, () => load(meshCall, { inFlight, total, warmup: 1000 }));
        m.push(round.m);
        c.push(round);
      }
      raw[label] = median(r);
      mesh[label] = median(m);
      const mid = (key: "caller" | "owner") => c.map((x) => x[key]).sort((a, b) => a - b)[Math.floor(c.length / 2)]!;
      cpu[label] = { caller: mid("caller"), owner: mid("owner") };
    }
    // Sequential latency: raw and Mesh call by call (load.ts, interleaved), so that each pair sees the same moment.
    const sequential = [];
    for (let i = 0; i < rounds; i++) sequential.push(await interleaved(rawCall, meshCall, { total: n(5_000), warmup: 1000 }));
    raw["sequential latency"] = median(sequential.map(([r]) => r));
    mesh["sequential latency"] = median(sequential.map(([, m]) => m));
    for (const label of Object.keys(raw)) record("raw", `own reply subscription, ${label}`, raw[label]!);
    console.log(
      "\nMesh remote calls (owner node in another process; rounds alternate with the raw ones above, sequential latency call by call)",
    );
    for (const label of Object.keys(mesh)) record("remote", `remote calls, ${label}`, mesh[label]!);
    for (const label of Object.keys(cpu))
      console.log(
        `  CPU per remote call, ${label.padEnd(26)} caller ${cpu[label]!.caller.toFixed(2)} µs, owner ${cpu[label]!.owner.toFixed(2)} µs`,
      );
    record(
      "remote",
      "10,000 calls to one hot actor, 128 in flight",
      await load(() => caller.call({ actor: "Echo", id: "hot", payload: body, capability: "bench" }), {
        inFlight: 128,
        total: 10_000,
        warmup: 1000,
      }),
    );
    return { raw, mesh, cpu };
  } finally {
    await caller.stop();
    await Promise.all(conns.map((c) => c.close()));
    await Promise.all([stopPeer(responder), stopPeer(owner)]);
  }
}

async function local(url: string): Promise<{ at128: Measured; primitive128: Measured; shared128: Measured; creation: Measured }> {
  console.log("\nMesh local calls (caller and owner in one node: no NATS on the call path; payload and reply copied)");
  const mesh = await Mesh.start({ servers: url, nodeId: "bench-local", actors: [Echo, SharedEcho], capabilities: ["local"] });
  try {
    const body = { action: "ping", n: 1 };
    const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
    const call = (i: number) => mesh.call({ actor: Echo, id: ids[i & 1023]!, payload: body, capability: "local" });
    record("local", "local calls, sequential", await load(call, { inFlight: 1, total: n(2_000_000) }));
    const at128 = record("local", "local calls, 128 in flight", await load(call, { inFlight: 128, total: n(2_000_000) }));
    const primitive128 = record(
      "local",
      "local calls, number payload and reply, 128 in flight",
      await load((i) => mesh.call({ actor: Echo, id: ids[i & 1023]!, payload: i, capability: "local" }), {
        inFlight: 128,
        total: n(2_000_000),
      }),
    );
    const shared128 = record(
      "local",
      "local calls, static shareValues (no copies), 128 in flight",
      await load((i) => mesh.call({ actor: SharedEcho, id: ids[i & 1023]!, payload: body, capability: "local" }), {
        inFlight: 128,
        total: n(2_000_000),
      }),
    );
    record(
      "local",
      "10,000 calls to one hot actor, 128 in flight",
      await load(() => mesh.call({ actor: Echo, id: "hot", payload: body, capability: "local" }), {
        inFlight: 128,
        total: 10_000,
        warmup: 1000,
      }),
    );
    let round = 0;
    const fresh = (i: number) => mesh.call({ actor: Echo, id: `new_${round}_${i}`, payload: body, capability: "local" });
    round = 1;
    await load(fresh, { inFlight: 128, total: n(50_000), warmup: 0 }); // warm the creation path
    round = 2;
    const creation = record(
      "local",
      "creation of 50,000 actors, 128 in flight",
      await load(fresh, { inFlight: 128, total: n(50_000), warmup: 0 }),
    );
    return { at128, primitive128, shared128, creation };
  } finally {
    await mesh.stop();
  }
}

async function memory(url: string): Promise<{ count: number; meshBytes: number; bareBytes: number; beyondFields: number }> {
  console.log("\nMemory per idle actor (own process, after GC)");
  const child = spawn(process.execPath, ["--expose-gc", here("./memory.js"), url, String(n(100_000))], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  await new Promise((resolve) => child.once("exit", resolve));
  const m = JSON.parse(out) as { count: number; meshBytes: number; bareBytes: number; beyondFields: number };
  console.log(
    `  ${m.count.toLocaleString("en-US")} actors: ${Math.round(m.meshBytes)} B each with Mesh, ${Math.round(m.bareBytes)} B for the bare instance, ${Math.round(m.beyondFields)} B beyond its own fields`,
  );
  return m;
}

const server = await startNatsServer({ config: here("../../nats.conf") });
try {
  console.log(
    `Mesh benchmark: Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), nats-server at ${server.url}${quick ? " (BENCH_QUICK: small counts)" : ""}`,
  );
  const summary: Record<string, number> = {};
  const targets: Record<string, string> = {};
  const target = (name: string, value: number, goal?: string) => {
    summary[name] = value;
    if (goal) targets[name] = goal;
  };
  let mem: Awaited<ReturnType<typeof memory>> | undefined;
  let d: Awaited<ReturnType<typeof durable>> | undefined;
  if (only.has("speed"))
    for (const f of await speed(server.url, quick)) {
      target(`speed: ${f.name}`, f.value, f.goal);
      if (f.base !== undefined)
        target(`speed: ${f.name}, this / base (median pair)`, f.pairs!.sort((a, b) => a - b)[f.pairs!.length >> 1]!);
    }
  if (only.has("remote")) {
    const { raw: r, mesh: m, cpu } = await requestReply(server.url);
    target("CPU per remote call at 128 in flight, caller (µs)", cpu["128 in flight"]!.caller);
    target("CPU per remote call at 128 in flight, owner (µs)", cpu["128 in flight"]!.owner);
    const ratio = (label: string) => m[label]!.perSecond / r[label]!.perSecond;
    target("remote 1,024 in flight / raw own-inbox 1,024", ratio("1,024 in flight"), ">= 1.2");
    target("remote 128 in flight / raw own-inbox 128", ratio("128 in flight"), ">= 2.0");
    target("remote 16 in flight / raw own-inbox 16", ratio("16 in flight"), ">= 1.3");
    target("remote 1 in flight / raw own-inbox 1", ratio("1 in flight"));
    target("remote p50 / raw p50", m["sequential latency"]!.p50! / r["sequential latency"]!.p50!, "<= 1.1");
    target("remote p99 / raw p99", m["sequential latency"]!.p99! / r["sequential latency"]!.p99!);
  }
  if (only.has("local")) {
    const l = await local(server.url);
    target("local calls/s (128 in flight; object payload and reply, both copied)", l.at128.perSecond, ">= 1,000,000");
    target("local calls/s (128 in flight; number payload and reply)", l.primitive128.perSecond, ">= 2,500,000");
    target("copy's share of a local call (1 - copied / shared)", 1 - l.at128.perSecond / l.shared128.perSecond);
    target("actor creations/s", l.creation.perSecond, ">= 200,000");
  }
  if (only.has("memory")) {
    mem = await memory(server.url);
    target("bytes per idle actor beyond its fields", mem.beyondFields, "<= 250");
  }
  if (only.has("durable")) {
    d = await durable(server.url, n, record);
    target("durable calls local, 128 / raw KV CAS, 128", d.local128.perSecond / d.rawCas128.perSecond, ">= 0.8");
    target("durable calls remote, 128 / raw KV CAS, 128", d.remote128.perSecond / d.rawCas128.perSecond);
    target("hot durable actor, 128 / raw KV CAS, sequential", d.hot128.perSecond / d.rawCas1.perSecond, ">= 3");
    target("re-activations / raw KV get from the stream leader, 128", d.reactivation.perSecond / d.rawLeaderGet128.perSecond);
    target("re-activations / raw KV Direct Get, 128", d.reactivation.perSecond / d.rawGet128.perSecond);
    target("RSS growth, last tenth of pass-through (MiB)", d.rss.at(-1)!.rssMiB - d.rss.at(-2)!.rssMiB, "flat");
  }
  if (only.has("cluster")) {
    const c = await cluster(n, record);
    target("cluster: durable calls, 128 / raw KV CAS, 128", c.calls128.perSecond / c.rawCas128.perSecond);
    target("cluster: re-activations / raw KV get from the stream leader, 128", c.reactivation.perSecond / c.rawLeaderGet128.perSecond);
    target("cluster: re-activations / raw KV Direct Get, 128", c.reactivation.perSecond / c.rawGet128.perSecond);
    target("cluster: re-activations / raw leader get then CAS, 128", c.reactivation.perSecond / c.rawConfirmed128.perSecond);
  }
  if (only.has("reminders")) {
    const r = await reminders(server.url, n, record);
    target("reminders: set on 2 nodes / raw KV CAS, 128", r.setPerSecond / r.rawCasPerSecond);
    target(`reminders: ${r.count} due at once on 2 nodes, all fired within (s)`, r.allFiredSeconds, "<= 5");
    target("reminder lateness p50 (ms)", r.lateP50);
    target("reminder lateness p99 (ms)", r.lateP99);
    target("reminders missed in an outage: all fired within (s)", r.missedSeconds);
    target("calls during that catch-up: p99 / p99 after (ms)", r.callP99During / r.callP99After);
    target("reminders stored, none due: CPU per node (% of a core)", r.idleCpuPercent, "< 1");
    target("no reminders stored: CPU per node (% of a core)", r.idleCpuEmptyPercent);
    target("reminders stored, none due: RSS per node (MiB)", r.idleRssMiB);
  }
  if (only.has("events")) {
    const e = await events(server.url, n, record);
    target("events into plain actors, 2 nodes / raw consumer", e.plain.perSecond / e.raw.perSecond, ">= 0.5");
    target("events into durable actors, 1 node, 128 / raw KV CAS, 128", e.durableOne.perSecond / e.rawCas128.perSecond, ">= 0.8");
    target("events into durable actors, 2 nodes, 128 / raw KV CAS, 128", e.durable.perSecond / e.rawCas128.perSecond);
    target("events with a publish per turn / raw KV CAS, 128", e.publish.perSecond / e.rawCas128.perSecond);
    target("catch-up after a node's death (s, node timeout 1 s)", e.recoverySeconds);
  }
  if (only.has("tracing")) {
    const startPeer = async (mode: string) => {
      const child = await peer(mode, server.url);
      return { stop: () => stopPeer(child) };
    };
    const tr = await tracing(server.url, n, quick ? 1 : 3, startPeer, record);
    target("local calls, tracing off (no SDK), 128 in flight (/s)", tr.localOff.perSecond);
    target("remote calls, tracing off (no SDK), 128 in flight (/s)", tr.remoteOff.perSecond);
    target("local calls, SDK always on / off", tr.localOn.perSecond / tr.localOff.perSecond);
    target("remote calls, SDK always on / off", tr.remoteOn.perSecond / tr.remoteOff.perSecond);
  }
  if (only.has("deadline")) {
    const dl = await deadline(server.url, n, quick ? 3 : 7);
    record("deadline", "async local calls, 128 in flight", dl.calls);
    target("turn bookkeeping / async local call CPU", dl.bookkeepingNs / dl.callNs, "<= 0.02");
  }
  if (only.has("migration")) {
    const mg = await migration(server.url, n, quick ? 1 : 3);
    target(`stop handing over ${mg.actors} idle actors, moving (ms)`, mg.moving);
    target(`stop handing over ${mg.actors} idle actors, opting out (ms)`, mg.staying);
    target("bytes per moved idle actor", mg.bytesEach);
    target("moved durable actors' first calls, records / reads", mg.durableHanded / mg.durableRead);
  }
  if (only.has("roll")) {
    const rl = await roll(server.url, quick ? 1 : 3);
    target("calls/s during a roll / steady", rl.rolling / rl.steady);
    target("calls failed during the rolls", rl.failed, "0");
  }
  /** The remote section's helpers, for the flood and admin sections. */
  const peers = { start: (mode: string, ...args: string[]) => peer(mode, server.url, ...args), stop: stopPeer, cpuPerCall };
  if (only.has("flood")) {
    const fl = await flood(server.url, quick, peers, record);
    target("flood: third process's call p50, flooded / unloaded", fl.flooded.p50! / fl.unloaded.p50!);
    target("flood: third process's call p99, flooded / unloaded", fl.flooded.p99! / fl.unloaded.p99!);
    target("flood: the flooder's own call p99 (ms)", fl.flooder.calls.p99! / 1000);
    target("flood: the flooder's RSS growth (MiB)", fl.flooder.rss.peakMiB - fl.flooder.rss.beforeMiB);
    target("flood: casts refused at the sender / tried", fl.flooder.refusedAtSender / fl.flooder.attempted);
    target("maxOutboundBytes default / Infinity: calls/s", fl.callsRatio);
    target("maxOutboundBytes default / Infinity: caller CPU", fl.cpuRatio);
  }
  if (only.has("admin")) {
    const ad = await admin(server.url, quick, peers, record);
    target("admin: calls/s, console refresh every second / none", ad.callsRatio, ">= 0.98");
    target("admin: owner CPU per call, polled / unpolled", ad.ownerCpuRatio);
    target("admin: caller CPU per call, polled / unpolled", ad.callerCpuRatio);
    target("admin: one console refresh under load (ms)", ad.refreshMs);
    target("admin: its questions after the discovery waits (ms)", ad.questionsMs);
    target("admin: owner CPU per refresh, no calls (ms)", ad.ownerCpuPerRefresh / 1000);
  }
  console.log("\nSummary");
  for (const [k, v] of Object.entries(summary)) {
    const shown = v < 10 ? v.toFixed(2) : Math.round(v).toLocaleString("en-US");
    console.log(`  ${k.padEnd(52)} ${shown.padStart(11)}   ${targets[k] ? `target ${targets[k]}` : ""}`);
  }
  const dir = here("../results");
  mkdirSync(dir, { recursive: true });
  const file = `${dir}/latest.json`;
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, quick, rows, memory: mem, passThrough: d?.rss, summary }, null, 2)}\n`,
  );
  console.log(`\nwrote bench/results/latest.json`);
} finally {
  await server.stop();
}
