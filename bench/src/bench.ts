// npm run bench: a raw nats.js request/reply baseline, then Mesh, against one
// nats-server in the same run. Prints a table and writes bench/results/latest.json.
// A report, never a test: nothing here passes or fails.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { connect, createInbox } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import { Echo } from "./actors.js";
import { load } from "./load.js";
import type { Measured } from "./load.js";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const quick = process.env.BENCH_QUICK === "1"; // smaller counts, for a smoke run
const n = (count: number) => (quick ? Math.ceil(count / 10) : count);
const payload = new TextEncoder().encode(JSON.stringify({ action: "ping", n: 1 }));
const rows: { section: string; name: string; m: Measured; note?: string }[] = [];

function record(section: string, name: string, m: Measured, note?: string): Measured {
  rows.push({ section, name, m, ...(note ? { note } : {}) });
  const lat = m.p50 !== undefined ? `  p50 ${m.p50} µs  p95 ${m.p95} µs  p99 ${m.p99} µs` : "";
  console.log(`  ${name.padEnd(52)} ${Math.round(m.perSecond).toLocaleString("en-US").padStart(11)} /s${lat}`);
  return m;
}

async function peer(mode: string, url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [here("./peer.js"), mode, url], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`${mode} exited with ${code}`)));
  });
  return child;
}

function stopPeer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** Request/reply the fastest way nats.js allows: one reply subscription, our own correlation ids. */
function ownInbox(nc: NatsConnection): (subject: string, data: Uint8Array) => Promise<Uint8Array> {
  const inbox = `${createInbox()}.`;
  const pending = new Map<string, (data: Uint8Array) => void>();
  nc.subscribe(`${inbox}*`, {
    callback: (_err, msg) => {
      const id = msg.subject.slice(inbox.length);
      const resolve = pending.get(id);
      pending.delete(id);
      resolve?.(msg.data);
    },
  });
  let next = 0;
  return (subject, data) =>
    new Promise((resolve) => {
      const id = (next++).toString(36);
      pending.set(id, resolve);
      nc.publish(subject, data, { reply: inbox + id });
    });
}

async function raw(url: string): Promise<{ best128: Measured; seq: Measured; at: Record<number, Measured> }> {
  console.log("\nRaw nats.js request/reply (responder in another process)");
  const responder = await peer("raw-responder", url);
  try {
    const variants: [string, Partial<ConnectionOptions>][] = [
      ["nc.request() as shipped, 128 in flight", {}],
      ["nc.request() with noAsyncTraces, 128 in flight", { noAsyncTraces: true }],
    ];
    for (const [name, options] of variants) {
      const nc = await connect({ servers: url, ...options });
      record("raw", name, await load(() => nc.request("bench.echo", payload, { timeout: 10_000 }), { inFlight: 128, total: n(50_000) }));
      await nc.close();
    }
    const nc = await connect({ servers: url, noAsyncTraces: true });
    const request = ownInbox(nc);
    const at: Record<number, Measured> = {};
    for (const inFlight of [1, 16, 128]) {
      at[inFlight] = record("raw", `own reply subscription, ${inFlight} in flight`, await load(() => request("bench.echo", payload), { inFlight, total: n(inFlight === 1 ? 20_000 : 100_000) }));
    }
    const seq = record("raw", "own reply subscription, sequential latency", await load(() => request("bench.echo", payload), { inFlight: 1, total: n(10_000), latency: true }));
    await nc.close();
    return { best128: at[128]!, seq, at };
  } finally {
    await stopPeer(responder);
  }
}

async function remote(url: string): Promise<{ at: Record<number, Measured>; seq: Measured }> {
  console.log("\nMesh remote calls (owner node in another process)");
  const owner = await peer("mesh-owner", url);
  const caller = await Mesh.start({ servers: url, nodeId: "bench-caller" });
  try {
    const body = { action: "ping", n: 1 };
    const call = (i: number) => caller.call({ actor: "Echo", id: `echo_${i & 1023}`, payload: body, capability: "bench" });
    const at: Record<number, Measured> = {};
    for (const inFlight of [1, 16, 128]) {
      at[inFlight] = record("remote", `remote calls, ${inFlight} in flight`, await load(call, { inFlight, total: n(inFlight === 1 ? 20_000 : 100_000) }));
    }
    const seq = record("remote", "remote calls, sequential latency", await load(call, { inFlight: 1, total: n(10_000), latency: true }));
    record("remote", "10,000 calls to one hot actor, 128 in flight", await load(() => caller.call({ actor: "Echo", id: "hot", payload: body, capability: "bench" }), { inFlight: 128, total: 10_000, warmup: 1000 }));
    return { at, seq };
  } finally {
    await caller.stop();
    await stopPeer(owner);
  }
}

async function local(url: string): Promise<{ at128: Measured; creation: Measured }> {
  console.log("\nMesh local calls (caller and owner in one node: no NATS on the call path)");
  const mesh = await Mesh.start({ servers: url, nodeId: "bench-local", actors: [Echo], capabilities: ["local"] });
  try {
    const body = { action: "ping", n: 1 };
    const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
    const call = (i: number) => mesh.call({ actor: Echo, id: ids[i & 1023]!, payload: body, capability: "local" });
    record("local", "local calls, sequential", await load(call, { inFlight: 1, total: n(2_000_000) }));
    const at128 = record("local", "local calls, 128 in flight", await load(call, { inFlight: 128, total: n(2_000_000) }));
    record("local", "10,000 calls to one hot actor, 128 in flight", await load(() => mesh.call({ actor: Echo, id: "hot", payload: body, capability: "local" }), { inFlight: 128, total: 10_000, warmup: 1000 }));
    let round = 0;
    const fresh = (i: number) => mesh.call({ actor: Echo, id: `new_${round}_${i}`, payload: body, capability: "local" });
    round = 1;
    await load(fresh, { inFlight: 128, total: n(50_000), warmup: 0 }); // warm the creation path
    round = 2;
    const creation = record("local", "creation of 50,000 actors, 128 in flight", await load(fresh, { inFlight: 128, total: n(50_000), warmup: 0 }));
    return { at128, creation };
  } finally {
    await mesh.stop();
  }
}

async function memory(url: string): Promise<{ count: number; meshBytes: number; bareBytes: number; beyondFields: number }> {
  console.log("\nMemory per idle actor (own process, after GC)");
  const child = spawn(process.execPath, ["--expose-gc", here("./memory.js"), url, String(n(100_000))], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  await new Promise((resolve) => child.once("exit", resolve));
  const m = JSON.parse(out) as { count: number; meshBytes: number; bareBytes: number; beyondFields: number };
  console.log(`  ${m.count.toLocaleString("en-US")} actors: ${Math.round(m.meshBytes)} B each with Mesh, ${Math.round(m.bareBytes)} B for the bare instance, ${Math.round(m.beyondFields)} B beyond its own fields`);
  return m;
}

const server = await startNatsServer({ config: here("../../nats.conf") });
try {
  console.log(`Mesh benchmark: Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), nats-server at ${server.url}${quick ? " (BENCH_QUICK: small counts)" : ""}`);
  const r = await raw(server.url);
  const m = await remote(server.url);
  const l = await local(server.url);
  const mem = await memory(server.url);
  const summary = {
    "remote 128 in flight / raw own-inbox 128 in flight": m.at[128]!.perSecond / r.best128.perSecond,
    "remote 16 in flight / raw own-inbox 16 in flight": m.at[16]!.perSecond / r.at[16]!.perSecond,
    "remote 1 in flight / raw own-inbox 1 in flight": m.at[1]!.perSecond / r.at[1]!.perSecond,
    "remote p50 / raw p50": m.seq.p50! / r.seq.p50!,
    "local calls/s (128 in flight)": l.at128.perSecond,
    "actor creations/s": l.creation.perSecond,
    "bytes per idle actor beyond its fields": mem.beyondFields,
  };
  const targets: Record<string, string> = {
    "remote 128 in flight / raw own-inbox 128 in flight": ">= 0.8",
    "remote p50 / raw p50": "<= 1.2",
    "local calls/s (128 in flight)": ">= 1,000,000",
    "actor creations/s": ">= 200,000",
    "bytes per idle actor beyond its fields": "<= 512",
  };
  console.log("\nSummary");
  for (const [k, v] of Object.entries(summary)) {
    const shown = v < 10 ? v.toFixed(2) : Math.round(v).toLocaleString("en-US");
    console.log(`  ${k.padEnd(52)} ${shown.padStart(11)}   ${targets[k] ? `target ${targets[k]}` : ""}`);
  }
  const dir = here("../results");
  mkdirSync(dir, { recursive: true });
  const file = `${dir}/latest.json`;
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, quick, rows, memory: mem, summary }, null, 2)}\n`);
  console.log(`\nwrote bench/results/latest.json`);
} finally {
  await server.stop();
}
