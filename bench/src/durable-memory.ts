// Durable actors passing through one node: `node --expose-gc lib/durable-memory.js <url> <count> <maxActors>`.
// Each of `count` fresh ids is called once (its state is stored); the node keeps at most `maxActors` live.
// Prints one JSON array: RSS and heap after GC at every tenth of the run.
import { Mesh } from "@mesh/runtime";
import { Tally } from "./actors.js";

const [url, countArg, capArg] = process.argv.slice(2);
const count = Number(countArg);
const cap = Number(capArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

const mesh = await Mesh.start({
  servers: url,
  nodeId: "bench-passthrough",
  actors: [Tally],
  capabilities: ["tally"],
  storage: { bucket: "bench_passthrough" },
  maxActors: cap,
});
const samples: { actors: number; rssMiB: number; heapMiB: number; live: number }[] = [];
const step = count / 10;
let next = 0;
const worker = async () => {
  for (let i = next++; i < count; i = next++) {
    await mesh.call({ actor: Tally, id: `p${i}`, payload: {}, capability: "tally" });
    if ((i + 1) % step === 0) {
      gc();
      const m = process.memoryUsage();
      samples.push({ actors: i + 1, rssMiB: m.rss / 2 ** 20, heapMiB: m.heapUsed / 2 ** 20, live: mesh.actorCount });
    }
  }
};
await Promise.all(Array.from({ length: 128 }, worker));
await mesh.stop();
samples.sort((a, b) => a.actors - b.actors);
process.stdout.write(`${JSON.stringify(samples)}\n`);
