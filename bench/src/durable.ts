// The durable section of `npm run bench`: raw JetStream KV (compare-and-set
// updates and gets, from nats.js) against Mesh durable actors, in one run on
// one nats-server.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import type { JetStreamManager, KV, StoredMsg } from "nats";
import { Mesh } from "@mesh/runtime";
import { Tally } from "./actors.js";
import { load } from "./load.js";
import type { Measured } from "./load.js";

export type Record = (section: string, name: string, m: Measured, note?: string) => Measured;

export interface DurableFigures {
  rawCas1: Measured;
  rawCas128: Measured;
  rawGet128: Measured;
  rawLeaderGet128: Measured;
  local128: Measured;
  remote128: Measured;
  hot128: Measured;
  reactivation: Measured;
  rss: { actors: number; rssMiB: number; heapMiB: number; live: number }[];
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** KV update with revision over `keys` keys, as a user of nats.js would write it. */
export async function rawCas(kv: KV, keys: number, inFlight: number, total: number): Promise<Measured> {
  const value = new Uint8Array([0x81, 0xa1, 0x6e, 0x01]); // {n: 1}
  const revisions: number[] = [];
  await load(async (k) => void (revisions[k] = await kv.put(`k${k}`, value)), { inFlight: 128, total: keys, warmup: 0 });
  // Consecutive operations take consecutive keys, so no two in flight share one.
  return load(
    async (i) => {
      const k = i % keys;
      revisions[k] = await kv.update(`k${k}`, value, revisions[k]!);
    },
    { inFlight, total },
  );
}

/** `key`'s newest message, from `bucket`'s stream leader (STREAM.MSG.GET, no Direct Get): what an activation's load is. */
export function leaderGet(jsm: JetStreamManager, bucket: string, key: string): Promise<StoredMsg> {
  return jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` });
}

/** leaderGet over keys k0…k<keys - 1>. */
export function rawLeaderGet(jsm: JetStreamManager, bucket: string, keys: number, inFlight: number, total: number): Promise<Measured> {
  return load((i) => leaderGet(jsm, bucket, `k${i % keys}`), { inFlight, total });
}

function spawnPeer(mode: string, url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [here("./peer.js"), mode, url], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve(child));
    child.once("exit", (code) => reject(new Error(`${mode} exited with ${code}`)));
  });
}

export async function durable(url: string, n: (count: number) => number, record: Record): Promise<DurableFigures> {
  console.log("\nRaw JetStream KV (nats.js, history 1, file storage)");
  const nc = await connect({ servers: url, noAsyncTraces: true });
  const mesh = await Mesh.start({
    servers: url,
    nodeId: "bench-durable",
    actors: [Tally],
    capabilities: ["tally"],
    storage: { bucket: "bench_state" },
  });
  const remoteCaller = await Mesh.start({ servers: url, nodeId: "bench-durable-caller", prefix: "remote" });
  const owner = await spawnPeer("mesh-durable-owner", url);
  try {
    const kv = await nc.jetstream().views.kv("bench_raw", { history: 1 });
    const rawCas1 = record("kv", "update with revision, 1,000 keys, 1 in flight", await rawCas(kv, 1000, 1, n(5_000)));
    const rawCas128 = record("kv", "update with revision, 1,000 keys, 128 in flight", await rawCas(kv, 1000, 128, n(50_000)));
    const rawGet128 = record(
      "kv",
      "get, 1,000 keys, 128 in flight",
      await load((i) => kv.get(`k${i % 1000}`), { inFlight: 128, total: n(50_000) }),
      "Direct Get: any replica answers",
    );
    const rawLeaderGet128 = record(
      "kv",
      "get from the stream leader, 1,000 keys, 128 in flight",
      await rawLeaderGet(await nc.jetstreamManager(), "bench_raw", 1000, 128, n(50_000)),
    );

    console.log("\nMesh durable actors (every call changes the state: one commit before each reply)");
    const ids = Array.from({ length: 10_000 }, (_, i) => `tally_${i}`);
    const call = (i: number) => mesh.call({ actor: Tally, id: ids[i % ids.length]!, payload: {}, capability: "tally" });
    await load(call, { inFlight: 128, total: ids.length, warmup: 0 }); // activates (and stores) all 10,000
    const local128 = record(
      "durable",
      "calls over 10,000 actors, local owner, 128 in flight",
      await load(call, { inFlight: 128, total: n(50_000) }),
    );
    while (remoteCaller.nodesFor("tally").length === 0) await new Promise((resolve) => setTimeout(resolve, 10)); // the owner process's announcement
    const remoteCall = (i: number) => remoteCaller.call({ actor: "Tally", id: ids[i % ids.length]!, payload: {}, capability: "tally" });
    await load(remoteCall, { inFlight: 128, total: ids.length, warmup: 0 });
    const remote128 = record(
      "durable",
      "calls over 10,000 actors, owner in another process, 128 in flight",
      await load(remoteCall, { inFlight: 128, total: n(50_000) }),
    );
    const hot128 = record(
      "durable",
      "10,000 calls to one hot actor, 128 in flight",
      await load(() => mesh.call({ actor: Tally, id: "hot", payload: {}, capability: "tally" }), {
        inFlight: 128,
        total: 10_000,
        warmup: 1000,
      }),
    );

    // Re-activation: a fresh node reads back the 10,000 states the first one stored.
    await mesh.stop();
    const fresh = await Mesh.start({
      servers: url,
      nodeId: "bench-durable-2",
      actors: [Tally],
      capabilities: ["tally"],
      storage: { bucket: "bench_state" },
    });
    const reactivation = record(
      "durable",
      "re-activation of 10,000 stored actors, 128 in flight",
      await load((i) => fresh.call({ actor: Tally, id: ids[i]!, payload: { read: true }, capability: "tally" }), {
        inFlight: 128,
        total: ids.length,
        warmup: 0,
      }),
    );
    await fresh.stop();

    const rss = await passThrough(url, n(1_000_000), n(100_000));
    return { rawCas1, rawCas128, rawGet128, rawLeaderGet128, local128, remote128, hot128, reactivation, rss };
  } finally {
    await mesh.stop();
    await remoteCaller.stop();
    owner.kill("SIGTERM");
    await nc.close();
  }
}

/** Runs durable-memory.js: `count` durable actors through a node capped at `cap`, RSS sampled along the way. */
async function passThrough(url: string, count: number, cap: number): Promise<DurableFigures["rss"]> {
  console.log(
    `\n${count.toLocaleString("en-US")} durable actors through a node with maxActors ${cap.toLocaleString("en-US")} (own process, after GC)`,
  );
  const child = spawn(process.execPath, ["--expose-gc", here("./durable-memory.js"), url, String(count), String(cap)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  await new Promise((resolve) => child.once("exit", resolve));
  const samples = JSON.parse(out) as DurableFigures["rss"];
  for (const s of samples)
    console.log(
      `  after ${s.actors.toLocaleString("en-US").padStart(9)} actors: RSS ${s.rssMiB.toFixed(0).padStart(4)} MiB, heap ${s.heapMiB.toFixed(0).padStart(4)} MiB, ${s.live.toLocaleString("en-US")} live`,
    );
  return samples;
}
