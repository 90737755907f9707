// Calls during a rolling deploy (docs/deploying.md): three nodes of appVersion
// "1" in this process are replaced one at a time by nodes of "2" (each new one
// started, then an old one stopped), while a caller node keeps 128 calls in
// flight on 1,000 plain counters. Calls per second during the roll against
// the same cluster steady, measured right before it, in each round.
import { Mesh } from "@mesh/runtime";

class Count {
  static actorType = "Count";
  n = 0;
  handleCall(): number {
    return ++this.n;
  }
}

export interface RollFigures {
  /** Median calls/s steady, and during the roll. */
  steady: number;
  rolling: number;
  /** Calls that failed during every roll (should be 0). */
  failed: number;
  /** Median roll time, ms. */
  rollMs: number;
}

const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const IN_FLIGHT = 128;
const IDS = Array.from({ length: 1000 }, (_, i) => `c${i}`);

/** Keeps IN_FLIGHT calls going until stopped; counts answers and failures. */
function load(caller: Mesh) {
  const counts = { done: 0, failed: 0 };
  let running = true;
  const worker = async (w: number) => {
    for (let i = w; running; i += IN_FLIGHT) {
      try {
        await caller.call({ actor: "Count", id: IDS[i % IDS.length]!, capability: "roll", timeoutMs: 10_000 });
        counts.done++;
      } catch {
        counts.failed++;
      }
    }
  };
  const all = Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => worker(w)));
  return { counts, stop: () => ((running = false), all) };
}

async function round(url: string, r: number): Promise<{ steady: number; rolling: number; failed: number; ms: number }> {
  const prefix = `benchroll${r}`;
  const options = (v: string, i: number) => ({
    servers: url,
    prefix,
    actors: [Count],
    capabilities: ["roll"],
    appVersion: v,
    nodeId: `bench-roll-${r}-v${v}-${i}`,
    heartbeatMs: 200,
  });
  const nodes: Mesh[] = [];
  for (let i = 0; i < 3; i++) nodes.push(await Mesh.start(options("1", i)));
  const caller = await Mesh.start({ servers: url, prefix, nodeId: `bench-roll-${r}-caller`, heartbeatMs: 200 });
  const fresh: Mesh[] = [];
  try {
    while (caller.nodesFor("roll").length < 3) await new Promise((res) => setTimeout(res, 20));
    const l = load(caller);
    await new Promise((res) => setTimeout(res, 500)); // warm: every actor active
    const steadyStart = l.counts.done;
    const t0 = performance.now();
    await new Promise((res) => setTimeout(res, 2000));
    const steady = ((l.counts.done - steadyStart) * 1000) / (performance.now() - t0);
    const failedBefore = l.counts.failed;
    const rollStart = l.counts.done;
    const t1 = performance.now();
    for (let i = 0; i < 3; i++) {
      fresh.push(await Mesh.start(options("2", i)));
      await nodes[i]!.stop();
    }
    const ms = performance.now() - t1;
    const rolling = ((l.counts.done - rollStart) * 1000) / ms;
    await l.stop();
    return { steady, rolling, failed: l.counts.failed - failedBefore, ms };
  } finally {
    for (const m of [...nodes, ...fresh, caller]) await m.stop();
  }
}

export async function roll(url: string, rounds: number): Promise<RollFigures> {
  console.log(
    `\nCalls during a rolling deploy of 3 nodes (in this process), ${IN_FLIGHT} in flight on ${IDS.length} plain actors, ${rounds} rounds`,
  );
  const steady: number[] = [];
  const rolling: number[] = [];
  const ms: number[] = [];
  let failed = 0;
  for (let r = 0; r < rounds; r++) {
    const f = await round(url, r);
    steady.push(f.steady);
    rolling.push(f.rolling);
    ms.push(f.ms);
    failed += f.failed;
    console.log(
      `  round ${r + 1}: steady ${Math.round(f.steady).toLocaleString("en-US")}/s, during the roll ${Math.round(f.rolling).toLocaleString("en-US")}/s (${(f.rolling / f.steady).toFixed(2)}x) over ${Math.round(f.ms)} ms, ${f.failed} failed`,
    );
  }
  return { steady: mid(steady), rolling: mid(rolling), failed, rollMs: mid(ms) };
}
