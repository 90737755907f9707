// What the turn bookkeeping costs a call (maxTurnMs, docs/behaviour.md
// "Timeouts"). Every turn whose handler returns a promise is kept while it
// runs (actors/turn-deadline.ts: a set and a delete in a SlotTable, an integer
// in its letter), whatever its class's maxTurnMs: a TIMEOUT then says what the
// actor was busy with, and `mesh actor reset` can abandon the turn. No public
// switch turns that off, so the cost is measured as its two parts, in one run:
// the bookkeeping alone (TurnDeadlines.start and end on fresh letters, 128 at a
// time, less the same loop without them), and the CPU of an async local call
// (1,024 ids, 128 in flight), the smallest call it rides on. Their ratio is
// the share of a call the bookkeeping takes; a remote call costs its owner
// three times a local one, so its share is a third of that.
import { Mesh } from "@mesh/runtime";
import { Letter } from "../../packages/runtime/lib/actors/letter.js";
import { TurnDeadlines } from "../../packages/runtime/lib/actors/turn-deadline.js";
import type { DeadlineHost } from "../../packages/runtime/lib/actors/turn-deadline.js";
import type { Activation } from "../../packages/runtime/lib/actors/activation.js";
import { DeadlineEcho } from "./actors.js";
import { load } from "./load.js";
import type { Measured } from "./load.js";

export interface DeadlineFigures {
  calls: Measured;
  /** CPU of this process per async local call, ns (median of the rounds). */
  callNs: number;
  /** The bookkeeping's ns per turn (median of the rounds). */
  bookkeepingNs: number;
}

const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** ns per turn of `turns` letters made and let go 128 at a time, with (`keep`) or without start and end. */
function letters(deadlines: TurnDeadlines, act: Activation, turns: number, keep: boolean): number {
  const ring: Letter[] = [];
  const started = performance.now();
  for (let i = 0; i < turns; i++) {
    const letter = Letter.cast({ payload: i, initArg: undefined });
    letter.waitsOn = act; // as Turns.watched does before every turn that goes async
    if (keep) deadlines.start(letter, started);
    ring.push(letter);
    if (ring.length === 128) {
      const done = ring.shift()!;
      if (keep) deadlines.end(done);
    }
  }
  if (keep) for (const letter of ring) deadlines.end(letter);
  return ((performance.now() - started) * 1e6) / turns;
}

export async function deadline(url: string, n: (count: number) => number, rounds: number): Promise<DeadlineFigures> {
  console.log(`\nTurn bookkeeping on async handlers: the bookkeeping alone against an async local call's CPU, ${rounds} rounds`);
  const node = await Mesh.start({ servers: url, nodeId: "bench-deadline", actors: [DeadlineEcho], capabilities: ["dlocal"] });
  const host: DeadlineHost = {
    metrics: undefined as never, // never used: no turn here reaches its deadline
    log: undefined as never,
    host: { crashed: () => {}, checkIdle: () => {} },
    settle: () => {},
  };
  const deadlines = new TurnDeadlines(10_000, host);
  const act = { instance: new DeadlineEcho() } as unknown as Activation;
  try {
    const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
    const call = (i: number) => node.call({ actor: DeadlineEcho, id: ids[i & 1023]!, payload: i, capability: "dlocal" });
    await load(call, { inFlight: 128, total: n(200_000) });
    letters(deadlines, act, n(2_000_000), true);
    letters(deadlines, act, n(2_000_000), false);
    const callNs: number[] = [];
    const keptNs: number[] = [];
    let calls: Measured | undefined;
    for (let r = 0; r < rounds; r++) {
      const before = process.cpuUsage();
      const m = await load(call, { inFlight: 128, total: n(300_000), warmup: 0 });
      const used = process.cpuUsage(before);
      callNs.push(((used.user + used.system) * 1000) / m.ops);
      if (calls === undefined || m.perSecond > calls.perSecond) calls = m;
      // ABBA within the round: a drift costs both alike.
      const a = letters(deadlines, act, n(1_000_000), true);
      const b = letters(deadlines, act, n(1_000_000), false);
      const c = letters(deadlines, act, n(1_000_000), false);
      const d = letters(deadlines, act, n(1_000_000), true);
      keptNs.push(Math.max(0, (a + d - b - c) / 2));
    }
    const figures = { calls: calls!, callNs: mid(callNs), bookkeepingNs: mid(keptNs) };
    console.log(
      `  by round: bookkeeping ${keptNs.map((x) => x.toFixed(1)).join(", ")} ns per turn; async local call ${callNs.map((x) => Math.round(x)).join(", ")} ns CPU`,
    );
    console.log(
      `  median: ${figures.bookkeepingNs.toFixed(1)} ns of ${Math.round(figures.callNs)} ns, ${((100 * figures.bookkeepingNs) / figures.callNs).toFixed(2)} % of an async local call`,
    );
    return figures;
  } finally {
    await node.stop();
  }
}
