// Durable state under faults: nodes as OS processes, killed with SIGKILL or joined under load.
// The invariant, for every id: acknowledged <= stored count <= acknowledged + calls that ended in TIMEOUT.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";
import { stateKey } from "@mesh/core";
import type { Mesh } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import type { NodeProcess } from "./helpers/processes.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000, callTimeoutMs: 1000 };
const IDS = Array.from({ length: 200 }, (_, i) => `acct_${i}`);

/** Increments from several callers, counted per id: acknowledged, and ended in TIMEOUT (or STORAGE_UNAVAILABLE, as ambiguous). */
function increments(callers: Mesh[], capability: string) {
  let running = true;
  const acked = new Map<string, number>();
  const timedOut = new Map<string, number>();
  const failures = new Map<string, number>();
  const nodesSeen = new Set<string>();
  let total = 0;
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const worker = async (caller: Mesh, w: number) => {
    for (let i = w; running; i += 7) {
      await new Promise((resolve) => setImmediate(resolve));
      const id = IDS[i % IDS.length]!;
      try {
        const { pid } = await caller.call({ actor: "DurableCounter", id, payload: {}, capability });
        nodesSeen.add(pid.split("/")[0]!);
        add(acked, id);
        total++;
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err);
        add(failures, code);
        if (code === "TIMEOUT" || code === "STORAGE_UNAVAILABLE") add(timedOut, id); // ambiguous: the commit may have landed
      }
    }
  };
  const done = Promise.all(callers.flatMap((c) => Array.from({ length: 8 }, (_, w) => worker(c, w))));
  return {
    acked,
    timedOut,
    failures,
    nodesSeen,
    get total() {
      return total;
    },
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Every id's stored count, read from the bucket as any NATS client could. */
async function storedCounts(url: string, prefix: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: url });
  try {
    const kv = await nc.jetstream().views.kv(`${prefix}_state`, { bindOnly: true });
    const counts = new Map<string, number>();
    for (const id of IDS) {
      const e = await kv.get(stateKey("acct", "DurableCounter", id));
      counts.set(id, e?.operation === "PUT" ? (decode(e.value) as { count: number }).count : 0);
    }
    return counts;
  } finally {
    await nc.close();
  }
}

/** Checks the invariant for every id and prints the figures. */
function checkInvariant(t: ExecutionContext<ClusterContext>, load: ReturnType<typeof increments>, counts: Map<string, number>): void {
  let acknowledged = 0;
  let timeouts = 0;
  let final = 0;
  const broken: string[] = [];
  for (const id of IDS) {
    const a = load.acked.get(id) ?? 0;
    const to = load.timedOut.get(id) ?? 0;
    const c = counts.get(id) ?? 0;
    acknowledged += a;
    timeouts += to;
    final += c;
    if (c < a || c > a + to) broken.push(`${id}: acknowledged ${a}, stored ${c}, timeouts ${to}`);
  }
  t.log(`acknowledged ${acknowledged}, stored ${final}, TIMEOUT ${timeouts}; failures ${JSON.stringify([...load.failures])}`);
  t.deepEqual(broken, [], "acknowledged <= stored <= acknowledged + TIMEOUT, for every id");
}

async function cluster(
  t: ExecutionContext<ClusterContext>,
  prefix: string,
  names: string[],
): Promise<{ nodes: NodeProcess[]; callers: Mesh[] }> {
  const options = { servers: t.context.server.url, prefix, capabilities: ["acct"], ...timing };
  const nodes = await Promise.all(names.map((name) => startNodeProcess(nodeId(name), options)));
  const callers = await Promise.all(["c1", "c2"].map((name) => startNode(t, { prefix, nodeId: nodeId(name), ...timing })));
  for (const caller of callers) await eventually(() => caller.nodesFor("acct").length === names.length, "the callers to see every node");
  return { nodes, callers };
}

test.serial("the owner's SIGKILL during continuous increments from two callers loses no acknowledged increment", async (t) => {
  const { nodes, callers } = await cluster(t, "dkill", ["k1", "k2", "k3"]);
  const load = increments(callers, "acct");
  await eventually(() => load.total > 2000, "increments to flow", 20_000);
  const victim = nodes[0]!;
  await victim.kill();
  for (const caller of callers)
    await eventually(() => !caller.nodesFor("acct").includes(victim.nodeId), "the callers to drop the victim", 5000);
  const after = load.total;
  await eventually(() => load.total > after + 2000, "increments to flow after the kill", 20_000);
  await load.stop();
  for (const code of load.failures.keys())
    t.true(["TIMEOUT", "NODE_UNAVAILABLE", "STATE_CONFLICT", "STORAGE_UNAVAILABLE"].includes(code), `failure code ${code}`);
  checkInvariant(t, load, await storedCounts(t.context.server.url, "dkill"));
});

test.serial("a fourth node joining under continuous increments takes over actors with their counts intact", async (t) => {
  const { callers } = await cluster(t, "djoin", ["j1", "j2", "j3"]);
  const load = increments(callers, "acct");
  await eventually(() => load.total > 2000, "increments to flow", 20_000);
  const newcomer = await startNodeProcess(nodeId("j4"), {
    servers: t.context.server.url,
    prefix: "djoin",
    capabilities: ["acct"],
    ...timing,
  });
  for (const caller of callers) await eventually(() => caller.nodesFor("acct").length === 4, "the callers to see the newcomer", 5000);
  await eventually(() => load.nodesSeen.has(newcomer.nodeId), "the newcomer to serve some actors", 10_000);
  const after = load.total;
  await eventually(() => load.total > after + 2000, "increments to flow after the join", 20_000);
  await load.stop();
  for (const code of load.failures.keys()) t.true(["TIMEOUT", "STATE_CONFLICT"].includes(code), `failure code ${code}`);
  checkInvariant(t, load, await storedCounts(t.context.server.url, "djoin"));
});

test.serial(
  "a reminder whose owner is killed with SIGKILL fires on the new owner, within the node timeout and a scan of its due time",
  async (t) => {
    const options = { servers: t.context.server.url, prefix: "dremind", capabilities: ["acct"], ...timing, reminderScanMs: 500 };
    const nodes = await Promise.all(["w1", "w2"].map((name) => startNodeProcess(nodeId(name), options)));
    const caller = await startNode(t, { prefix: "dremind", nodeId: nodeId("wc"), ...timing });
    await eventually(() => caller.nodesFor("acct").length === 2, "the caller to see both nodes");
    // An actor on each node, so that one of them is the victim's whatever the hash says.
    const ids = Array.from({ length: 20 }, (_, i) => `alarm_${i}`);
    const victim = nodes[0]!;
    const id = ids.find((i) => caller.ownerNode(caller.shardFor(i), "acct") === victim.nodeId)!;
    const dueIn = 400;
    await caller.call({ actor: "Alarm", id, payload: { remind: { name: "wake", afterMs: dueIn } }, capability: "acct" });
    await victim.kill();
    const survivor = nodes[1]!.nodeId;
    let fired: { name: string; node: string; late: number }[] = [];
    await eventually(
      async () => {
        fired = (await caller.call<typeof fired>({ actor: "Alarm", id, capability: "acct" }).catch(() => ({ result: [] as typeof fired })))
          .result;
        return fired.some((f) => f.node === survivor);
      },
      "the reminder to fire on the survivor",
      15_000,
    );
    const onSurvivor = fired.find((f) => f.node === survivor)!;
    t.log(`fired on the survivor ${onSurvivor.late} ms after its due time (node timeout ${timing.nodeTimeoutMs} ms)`);
    t.true(onSurvivor.late <= timing.nodeTimeoutMs + 2000, `late ${onSurvivor.late} ms`);
  },
);

test.serial(
  "a durable actor's reminder whose node is SIGKILLed after the turn committed runs no second turn on the next owner",
  async (t) => {
    t.timeout(120_000);
    const options = { servers: t.context.server.url, prefix: "remkill", capabilities: ["a"], reminderScanMs: 500, ...timing };
    const first = await startNodeProcess(nodeId("rk1"), options);
    const caller = await startNode(t, { prefix: "remkill", nodeId: nodeId("rk-caller"), ...timing, callTimeoutMs: 5000 });
    await eventually(() => caller.nodesFor("a").length === 1, "the caller to see the node");
    // 2,000 reminders due over one second: when the node dies, some have run their turn and are not yet moved on.
    const ids = Array.from({ length: 2000 }, (_, i) => `rk_${i}`);
    // A long timeout: the new owner answers these while it catches up on the reminders (a loaded CI run took over 5 s).
    const fired = async (id: string) =>
      (await caller.call<{ name: string }[]>({ actor: "Alarm", id, capability: "a", timeoutMs: 30_000 })).result.filter(
        (f) => f.name === "once",
      ).length;
    const at = Date.now() + 5000;
    for (let i = 0; i < ids.length; i += 250)
      await Promise.all(
        ids
          .slice(i, i + 250)
          .map((id, k) =>
            caller.call({ actor: "Alarm", id, payload: { remind: { name: "once", at: at + ((i + k) % 1000) } }, capability: "a" }),
          ),
      );
    // Killed while they fire: as soon as one due halfway through has run.
    await eventually(async () => (await fired(ids[500]!)) > 0, "the reminders to be firing", 20_000);
    await first.kill();
    await startNodeProcess(nodeId("rk2"), options);
    const all = async () => {
      const counts: number[] = [];
      for (let i = 0; i < ids.length; i += 100) counts.push(...(await Promise.all(ids.slice(i, i + 100).map(fired))));
      return counts;
    };
    await eventually(async () => (await all()).every((n) => n >= 1), "every reminder to fire", 60_000);
    const counts = await all();
    t.deepEqual(
      counts.map((n, i) => [ids[i], n]).filter(([, n]) => n !== 1),
      [],
      "each reminder's turn ran once",
    );
  },
);
