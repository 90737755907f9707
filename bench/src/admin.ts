// What watching a cluster costs its calls: remote calls, 128 in flight on
// 1,024 Echo actors of the remote section's owner (peer.ts mesh-owner, its
// helpers), with a poller that does once a second what one `mesh console`
// refresh does (admin-client.ts readCluster with 10 hot actors, then the
// console's shards, rates, subscriptions and reminders questions, as in
// cli-console.ts) against no poller, in alternating pairs (AB, BA, ...):
// calls/s and the owner's and the caller's CPU per call, polled / unpolled,
// and the time a refresh takes. With --wait 500 a refresh takes just over 1 s,
// so they run back to back: about twice the console page's rate (it waits 1 s
// between refreshes). Then, with no calls, the CPU one refresh costs the owner
// and this process, and the owner's CPU per answer to each question.
// The poller has its own connection in this process: its client work counts
// as the caller's. Refreshes run during the warm-up, so the owner's event-loop
// monitor (started by the first `node` question) runs in every phase.
import type { ChildProcess } from "node:child_process";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import { askNode, readCluster } from "../../packages/runtime/lib/operations/admin-client.js";
import { load, median } from "./load.js";
import type { Measured } from "./load.js";
import type { Peers } from "./flood.js";

type Record = (section: string, name: string, m: Measured) => Measured;

export interface AdminFigures {
  /** Medians over the pairs of polled / unpolled: calls/s, and the owner's and the caller's CPU per call. */
  callsRatio: number;
  ownerCpuRatio: number;
  callerCpuRatio: number;
  /** One refresh, median over the polled phases (ms): all of it, and its admin questions after the discovery. */
  refreshMs: number;
  questionsMs: number;
  /** CPU one refresh costs with no calls running (µs): the owner's, and this process's. */
  ownerCpuPerRefresh: number;
  benchCpuPerRefresh: number;
}

/** `mesh console`'s default `--wait`, ms: the services API's discovery waits this long, twice. */
const WAIT_MS = 500;
const PREFIX = "mesh";
const OWNER = "bench-owner";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The median (of an even count, the mean of the middle two). */
const mid = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
};
const body = { action: "ping", n: 1 };

/** One console refresh: its duration and that of its questions after the discovery (ms), and whether the owner answered. */
async function refresh(nc: NatsConnection): Promise<{ ms: number; questionsMs: number; owner: boolean }> {
  const t0 = performance.now();
  const view = await readCluster(nc, PREFIX, WAIT_MS, 10);
  const t1 = performance.now();
  const ask = (node: string, q: object) => askNode<unknown>(nc, PREFIX, node, q, WAIT_MS).catch(() => undefined);
  const capabilities = [...new Set(view.nodes.flatMap((n) => n.capabilities))];
  await Promise.all(capabilities.map((c) => ask(view.nodes.find((n) => n.capabilities.includes(c))!.node, { q: "shards", capability: c })));
  await Promise.all(
    view.nodes.map(async (n) => {
      await ask(n.node, { q: "rates" });
      await ask(n.node, { q: "subscriptions" });
      await ask(n.node, { q: "reminders", n: 20 });
    }),
  );
  const t2 = performance.now();
  // readCluster's node, types and top questions follow its two fixed waits.
  return { ms: t2 - t0, questionsMs: t2 - t1 + Math.max(0, t1 - t0 - 2 * WAIT_MS), owner: view.nodes.some((n) => n.node === OWNER) };
}

/** Once started, refreshes at once and then once a second (or right after a refresh that ran over) until halted. */
function poller(nc: NatsConnection) {
  const polls: { ms: number; questionsMs: number; owner: boolean }[] = [];
  let running = false;
  let wake = () => {};
  let loop = Promise.resolve();
  /** Starts no further refresh (the one under way goes on). */
  const halt = () => {
    running = false;
    wake();
  };
  return {
    polls,
    start: () => {
      running = true;
      loop = (async () => {
        while (running) {
          const next = performance.now() + 1000;
          polls.push(await refresh(nc));
          const wait = next - performance.now();
          if (running && wait > 0) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, wait)));
        }
      })();
    },
    halt,
    /** Halts, and waits for the refresh under way. */
    stop: async () => {
      halt();
      await loop;
      return polls;
    },
  };
}

export async function admin(url: string, quick: boolean, peers: Peers, record: Record): Promise<AdminFigures> {
  const [pairs, seconds] = quick ? [2, 1] : [6, 3];
  console.log(
    `\nThe admin API: remote calls, 128 in flight, with a \`mesh console\` refresh every second (--wait ${WAIT_MS}) against none, ${pairs} pairs`,
  );
  const owner: ChildProcess = await peers.start("mesh-owner");
  const caller = await Mesh.start({ servers: url, nodeId: "bench-admin-caller" });
  const nc = await connect({ servers: url, name: "bench-admin-poller" });
  try {
    while (caller.nodesFor("bench").length === 0) await sleep(20);
    const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
    const call = (i: number) => caller.call({ actor: "Echo", id: ids[i & 1023]!, payload: body, capability: "bench" });
    // Warmed up at full concurrency, polled (the admin path warms too), before anything is counted; it sets the count for a phase of `seconds`.
    const warming = poller(nc);
    warming.start();
    const warm = await load(call, { inFlight: 128, total: quick ? 20_000 : 200_000 });
    await warming.stop();
    const total = Math.max(10_000, Math.round((warm.perSecond * seconds) / 1000) * 1000);
    type Run = { m: Measured; caller: number; owner: number };
    const runs = { polled: [] as Run[], unpolled: [] as Run[] };
    const ratios = { calls: [] as number[], owner: [] as number[], caller: [] as number[] };
    const polls: { ms: number; questionsMs: number; owner: boolean }[] = [];
    for (let p = 0; p < pairs; p++) {
      const order = p % 2 === 0 ? (["polled", "unpolled"] as const) : (["unpolled", "polled"] as const);
      for (const k of order) {
        // The refresh under way when the calls end is counted in neither phase: the next starts once it is over.
        const poll = k === "polled" ? poller(nc) : undefined;
        const run = async () => {
          poll?.start();
          const m = await load(call, { inFlight: 128, total, warmup: 1000 });
          poll?.halt();
          return m;
        };
        runs[k].push(await peers.cpuPerCall(owner, total + 1000, run));
        if (poll) polls.push(...(await poll.stop()));
      }
      const [a, b] = [runs.polled[p]!, runs.unpolled[p]!];
      ratios.calls.push(a.m.perSecond / b.m.perSecond);
      ratios.owner.push(a.owner / b.owner);
      ratios.caller.push(a.caller / b.caller);
      const shown = (r: Run) =>
        `${Math.round(r.m.perSecond).toLocaleString("en-US")}/s, owner ${r.owner.toFixed(2)} µs, caller ${r.caller.toFixed(2)} µs`;
      console.log(
        `  pair ${p + 1} (${order[0]} first): polled ${shown(a)}; unpolled ${shown(b)}: ` +
          `calls/s ${ratios.calls[p]!.toFixed(3)}x, owner CPU ${ratios.owner[p]!.toFixed(3)}x, caller CPU ${ratios.caller[p]!.toFixed(3)}x`,
      );
    }
    const polledM = record("admin", "remote, 128 in flight, console refresh every second", median(runs.polled.map((r) => r.m)));
    record("admin", "remote, 128 in flight, no poller", median(runs.unpolled.map((r) => r.m)));
    const refreshMs = mid(polls.map((x) => x.ms));
    const questionsMs = mid(polls.map((x) => x.questionsMs));
    console.log(
      `  polled / unpolled, median of the pairs: calls/s ${mid(ratios.calls).toFixed(3)}x, owner CPU per call ${mid(ratios.owner).toFixed(3)}x, ` +
        `caller CPU per call ${mid(ratios.caller).toFixed(3)}x (${total.toLocaleString("en-US")} calls a phase)`,
    );
    console.log(
      `  a refresh under load: ${refreshMs.toFixed(0)} ms, median of ${polls.length} (its questions after the 2 x ${WAIT_MS} ms discovery waits: ` +
        `${questionsMs.toFixed(1)} ms); ${polls.filter((x) => !x.owner).length} missed the owner`,
    );
    // With no calls (the hot-actor tallies still hold the last minute): the CPU of a spell of refreshes against idle spells
    // before and after it, then the owner's CPU per answer to each question a refresh asks.
    // (cpuPerCall around a whole spell, as one "call", gives each side's CPU in µs.)
    const cpuOf = (run: () => Promise<unknown>) =>
      peers.cpuPerCall(owner, 1, async () => {
        await run();
        return { ops: 0, seconds: 0, perSecond: 0 };
      });
    await sleep(1000);
    const spell = async (polled: boolean) => {
      let n = 0;
      const t0 = performance.now();
      const { owner: o, caller: c } = await cpuOf(async () => {
        const poll = polled ? poller(nc) : undefined;
        poll?.start();
        await sleep(seconds * 1000);
        n = poll ? (await poll.stop()).length : 0;
      });
      return { owner: o, bench: c, ms: performance.now() - t0, n };
    };
    const before = await spell(false);
    const busy = await spell(true);
    const after = await spell(false);
    const perRefresh = (key: "owner" | "bench") =>
      Math.max(0, busy[key] - ((before[key] + after[key]) * busy.ms) / (before.ms + after.ms)) / busy.n;
    const ownerCpuPerRefresh = perRefresh("owner");
    const benchCpuPerRefresh = perRefresh("bench");
    const share = (100 * ownerCpuPerRefresh) / (polledM.perSecond * mid(runs.polled.map((r) => r.owner)));
    console.log(
      `  a refresh with no calls costs the owner ${(ownerCpuPerRefresh / 1000).toFixed(2)} ms CPU, this process ${(benchCpuPerRefresh / 1000).toFixed(2)} ms ` +
        `(${busy.n} refresh${busy.n === 1 ? "" : "es"} against idle spells): once a second, ${share.toFixed(1)} % of the owner's CPU at the polled calls/s`,
    );
    const status = `${PREFIX}.status.${OWNER}`;
    const questions: [string, () => Promise<unknown>][] = [
      ...(["node", "types", "rates", "subscriptions"] as const).map((q): [string, () => Promise<unknown>] => [
        q,
        () => askNode(nc, PREFIX, OWNER, { q }, 5000),
      ]),
      ["top 10", () => askNode(nc, PREFIX, OWNER, { q: "top", n: 10 }, 5000)],
      ["reminders 20", () => askNode(nc, PREFIX, OWNER, { q: "reminders", n: 20 }, 5000)],
      ["shards", () => askNode(nc, PREFIX, OWNER, { q: "shards", capability: "bench" }, 5000)],
      ["metrics (empty)", () => nc.request(status, new Uint8Array(), { timeout: 5000 })],
      ["$SRV.INFO", () => nc.request("$SRV.INFO.mesh", new Uint8Array(), { timeout: 5000 })],
      ["$SRV.STATS", () => nc.request("$SRV.STATS.mesh", new Uint8Array(), { timeout: 5000 })],
    ];
    const each = quick ? 5 : 20;
    const answers: string[] = [];
    for (const [name, ask] of questions) {
      const { owner: o } = await cpuOf(async () => {
        for (let i = 0; i < each; i++) await ask();
      });
      answers.push(`${name} ${(o / each / 1000).toFixed(2)}`);
    }
    console.log(`  the owner's CPU per answer, no calls (ms, ${each} of each): ${answers.join(", ")}`);
    return {
      callsRatio: mid(ratios.calls),
      ownerCpuRatio: mid(ratios.owner),
      callerCpuRatio: mid(ratios.caller),
      refreshMs,
      questionsMs,
      ownerCpuPerRefresh,
      benchCpuPerRefresh,
    };
  } finally {
    await nc.close();
    await caller.stop();
    await peers.stop(owner);
  }
}
