// One figure of the speed section (speed.ts), measured on one build of Mesh in a process of its own:
//   node --expose-gc lib/figures.js <root> <url> <figure> [args…]
// `root` is a checkout with packages/runtime built (this one, or another commit's for the A/B mode): Mesh
// is imported from there, so both builds run the very same harness. Prints one JSON line.
//   local <ids> <number|object|echo>  calls/s, 128 in flight over <ids> plain actors (payload and reply copied):
//                                 a number, or a 20-field object, as payload and the count as reply; or
//                                 the object both ways (echo)
//   creation <count>              actors created/s: <count> first calls to new ids, 128 in flight; and the
//                                 floor, in the same process after Mesh stopped: the same calls, each a
//                                 look-up that misses, a new instance in a Map and its handler's reply
//   memory <count>                heap bytes per idle actor, its id and table entry included
//   remote                        calls/s at 128 in flight and sequential p50, each against raw nats.js
//   owner <prefix>                a Mesh node hosting the plain actor under "speed" (remote's other process)
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import { interleaved } from "./load.js";
import { ownInbox } from "./raw.js";

interface MeshLike {
  call(request: { actor: unknown; id: string; payload?: unknown; capability: string }): Promise<{ result: unknown }>;
  stop(): Promise<void>;
  readonly actorCount: number;
}
interface MeshModule {
  Mesh: { start(options: Record<string, unknown>): Promise<MeshLike> };
}

const [root, url, figure, ...args] = process.argv.slice(2) as [string, string, string, ...string[]];
const { Mesh } = (await import(`${root}/packages/runtime/lib/mod.js`)) as MeshModule;
const quick = process.env.BENCH_QUICK === "1";
const IN_FLIGHT = 128;

/** The plain actor every figure calls: a counter, whose reply is its count. */
class Counter {
  static actorType = "Counter";
  n = 0;
  handleCall(): number {
    return ++this.n;
  }
}

/** A plain actor whose reply is the payload it got (a copy each way). */
class Echo {
  static actorType = "Echo";
  handleCall(payload: unknown): unknown {
    return payload;
  }
}

/** A 20-field object, the "object payload". */
const object20 = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`field${i}`, i % 2 === 0 ? i : `value ${i}`]));

/** `total` calls of `op` with IN_FLIGHT workers; calls/s. */
async function drive(op: (i: number) => Promise<unknown>, total: number, inFlight = IN_FLIGHT): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = next++; i < total; i = next++) await op(i);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const start = (prefix: string) =>
  Mesh.start({ servers: url, nodeId: `speed-${prefix}`, prefix, actors: [Counter, Echo], capabilities: ["speed"] });

async function local(idCount: number, kind: string): Promise<Record<string, number>> {
  const mesh = await start(`local${process.pid}`);
  const ids = Array.from({ length: idCount }, (_, i) => `a${i}`);
  const payload = kind === "number" ? 1 : object20;
  const actor = kind === "echo" ? Echo : Counter;
  const call = (i: number) => mesh.call({ actor, id: ids[i % idCount]!, payload, capability: "speed" });
  const total = quick ? 200_000 : 2_000_000;
  await drive(call, Math.max(total / 2, idCount)); // every actor live, and the path warm
  const runs = [];
  for (let k = 0; k < 3; k++) runs.push(await drive(call, total));
  await mesh.stop();
  return { callsPerSecond: median(runs) };
}

async function creation(count: number): Promise<Record<string, number>> {
  const mesh = await start(`create${process.pid}`);
  let round = 0;
  const fresh = (i: number) => mesh.call({ actor: Counter, id: `r${round}_${i}`, payload: 1, capability: "speed" });
  await drive(fresh, count); // the creation path warm
  round = 1;
  const perSecond = await drive(fresh, count);
  await mesh.stop();
  // The floor: what any table of actors in this process does for a first call, and nothing else.
  const table = new Map<string, Counter>(); // kept from the warm round to the measured one, as Mesh's actors are
  const floor = (i: number) => {
    const id = `r${round}_${i}`;
    let actor = table.get(id);
    if (actor === undefined) table.set(id, (actor = new Counter()));
    return Promise.resolve({ pid: id, result: actor.handleCall() });
  };
  round = 0;
  await drive(floor, count);
  round = 1;
  const floorPerSecond = await drive(floor, count);
  return { perSecond, floorPerSecond, ratioToFloor: perSecond / floorPerSecond };
}

async function memory(count: number): Promise<Record<string, number>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const heap = () => (gc(), gc(), process.memoryUsage().heapUsed);
  const mesh = await start(`memory${process.pid}`);
  await mesh.call({ actor: Counter, id: "warm", capability: "speed" });
  const before = heap();
  for (let i = 0; i < count; i += 1000) {
    const batch = [];
    for (let j = i; j < i + 1000 && j < count; j++) batch.push(mesh.call({ actor: Counter, id: `actor_${j}`, capability: "speed" }));
    await Promise.all(batch);
  }
  const bytes = (heap() - before) / count; // the ids were made here: each actor's id is counted with it
  if (mesh.actorCount !== count + 1) throw new Error(`expected ${count + 1} actors, found ${mesh.actorCount}`);
  await mesh.stop();
  return { bytesPerActor: bytes };
}

/** The CPU seconds process `pid` has used (Linux /proc; 10 ms ticks). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function remote(): Promise<Record<string, number>> {
  const prefix = `remote${process.pid}`;
  // The owner runs this same file in its own process; the raw responder runs here, on its own connection.
  // BENCH_CPU_PROF=<dir>: the owner writes a V8 CPU profile there (run this file with --cpu-prof for the caller's).
  const prof = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const owner = spawn(process.execPath, [...prof, fileURLToPath(import.meta.url), root, url, "owner", prefix], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    owner.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    owner.once("exit", (code) => reject(new Error(`owner exited with ${code}`)));
  });
  const rawResponder = spawn(process.execPath, [fileURLToPath(import.meta.url), root, url, "raw-responder"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve) => rawResponder.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve()));
  const caller = await Mesh.start({ servers: url, nodeId: `speed-caller${process.pid}`, prefix });
  const nc = await connect({ servers: url, noAsyncTraces: true });
  const request = ownInbox(nc);
  const data = new TextEncoder().encode("1");
  const ids = Array.from({ length: 10_000 }, (_, i) => `a${i}`);
  const rawCall = () => request("speed.echo", data);
  const meshCall = (i: number) => caller.call({ actor: "Counter", id: ids[i % 10_000]!, payload: 1, capability: "speed" });
  const total = quick ? 20_000 : 200_000;
  await drive(rawCall, total);
  await drive(meshCall, Math.max(total, 20_000)); // every actor live
  const at128: number[] = [];
  const seq: number[] = [];
  const cpu = { caller: [] as number[], owner: [] as number[] };
  const perSecond: number[] = [];
  for (let k = 0; k < 3; k++) {
    const raw = await drive(rawCall, total);
    const [c0, o0] = [process.cpuUsage(), cpuOf(owner.pid!)];
    const calls = await drive(meshCall, total);
    at128.push(calls / raw);
    perSecond.push(calls);
    const c = process.cpuUsage(c0);
    cpu.caller.push((c.user + c.system) / total);
    cpu.owner.push(((cpuOf(owner.pid!) - o0) * 1e6) / total);
    const [rawSeq, meshSeq] = await interleaved(rawCall, meshCall, { total: quick ? 1000 : 5000, warmup: 100 });
    seq.push(meshSeq.p50! / rawSeq.p50!);
  }
  await caller.stop();
  await nc.close();
  owner.kill("SIGTERM");
  rawResponder.kill("SIGTERM");
  return {
    ratio128: median(at128),
    p50: median(seq),
    callerCpuUs: median(cpu.caller),
    ownerCpuUs: median(cpu.owner),
    perSecond: median(perSecond),
  };
}

async function serve(run: () => Promise<() => Promise<void>>): Promise<void> {
  const stop = await run();
  process.stdout.write("ready\n");
  process.once("SIGTERM", () => void stop().then(() => process.exit(0)));
}

const figures: Record<string, () => Promise<Record<string, number> | void>> = {
  local: () => local(Number(args[0] ?? 10_000), args[1] ?? "number"),
  creation: () => creation(Number(args[0] ?? 100_000)),
  memory: () => memory(Number(args[0] ?? 100_000)),
  remote,
  owner: () =>
    serve(async () => {
      const mesh = await Mesh.start({
        servers: url,
        nodeId: `speed-owner${process.pid}`,
        prefix: args[0],
        actors: [Counter],
        capabilities: ["speed"],
      });
      return () => mesh.stop();
    }),
  "raw-responder": () =>
    serve(async () => {
      const nc = await connect({ servers: url, noAsyncTraces: true });
      nc.subscribe("speed.echo", { callback: (_err, msg) => msg.respond(msg.data) });
      await nc.flush();
      return () => nc.close();
    }),
};
const run = figures[figure];
if (run === undefined) throw new Error(`unknown figure ${figure}`);
const out = await run();
if (out !== undefined) {
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}
