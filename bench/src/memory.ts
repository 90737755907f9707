// Memory per idle actor, in its own process: `node --expose-gc lib/memory.js <url> <count>`.
// Prints one JSON line: bytes per actor with Mesh, bytes per bare instance, and the difference.
import { Mesh } from "@mesh/runtime";
import { Idle } from "./actors.js";

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

// The instances alone: what the actor's own fields cost.
const bareBefore = heap();
const bare: Idle[] = [];
for (let i = 0; i < count; i++) bare.push(new Idle());
const bareBytes = (heap() - bareBefore) / count;
bare.length = 0;

const mesh = await Mesh.start({ servers: url, nodeId: "bench-memory", actors: [Idle], capabilities: ["memory"] });
const ids = Array.from({ length: count }, (_, i) => `actor_${i}`); // the ids are the caller's, not Mesh's
const before = heap();
for (let i = 0; i < count; i += 1000) {
  const batch = [];
  for (let j = i; j < i + 1000 && j < count; j++) batch.push(mesh.call({ actor: Idle, id: ids[j]!, capability: "memory" }));
  await Promise.all(batch);
}
const meshBytes = (heap() - before) / count;
if (mesh.actorCount !== count) throw new Error(`expected ${count} actors, found ${mesh.actorCount}`);
await mesh.stop();
process.stdout.write(`${JSON.stringify({ count, meshBytes, bareBytes, beyondFields: meshBytes - bareBytes })}\n`);
