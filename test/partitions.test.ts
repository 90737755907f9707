// The fault suite on a NATS cluster (docs/faults.md "A NATS cluster"): three
// nats-servers whose routes go through TCP proxies, an owner process and a
// caller on each server (and only that server), the buckets at three
// replicas. Through every caller, clients write and read durable and plain
// registers while a fault is injected and healed: a server cut off from the
// two others (its owner and caller with it), one that leads no stream and the
// one leading the state stream, two servers cut apart while both reach the
// third, the state stream's leader killed or paused, an owner frozen, killed,
// or joining. Then every durable key's history must be linearizable (nothing
// acknowledged lost, no stale read, on either side), every plain key must show
// one live activation at a time, and the far side must serve every key again.
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { Mesh } from "@mesh/runtime";
import { NATS_CONF, eventually, nodeId } from "./helpers/cluster.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import type { NodeProcess } from "./helpers/processes.js";
import { startPartitionableCluster } from "./helpers/partitions.js";
import type { PartitionableCluster } from "./helpers/partitions.js";
import { NOT_WRITTEN, PlainRegister, Register, codeOf, recorder } from "./helpers/registers.js";

/** The cluster, the owner processes (node i on server i), and the callers (caller i on server i, in this process, hosting nothing). */
interface Suite {
  cluster: PartitionableCluster;
  owners: NodeProcess[];
  callers: Mesh[];
}
const test = anyTest as TestFn<Suite>;

const HEARTBEAT_MS = 200;
const NODE_TIMEOUT_MS = 1000;
const CALL_TIMEOUT_MS = 1000;

/** A node on server `i` of `cluster`, and on no other: cut off with it. */
const onServer = (cluster: PartitionableCluster, i: number) => ({
  servers: [cluster.urls[i]!],
  nats: { noRandomize: true, ignoreClusterUpdates: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 },
  heartbeatMs: HEARTBEAT_MS,
  nodeTimeoutMs: NODE_TIMEOUT_MS,
  callTimeoutMs: CALL_TIMEOUT_MS,
  storage: { replicas: 3 },
});

/** Starts an owner process on server `i` (capability "reg": the registers). */
const startOwner = (cluster: PartitionableCluster, name: string, i: number) =>
  startNodeProcess(nodeId(name), { ...onServer(cluster, i), capabilities: ["reg"] });

test.beforeEach(async (t) => {
  const cluster = await startPartitionableCluster(3, { config: NATS_CONF });
  t.context = { cluster, owners: [], callers: [] };
  // The cluster's JetStream elects its meta leader first: Mesh.start waits for it (openBucket).
  t.context.owners.push(...(await Promise.all([0, 1, 2].map((i) => startOwner(cluster, `owner${i}`, i)))));
  t.context.callers.push(
    ...(await Promise.all([0, 1, 2].map((i) => Mesh.start({ ...onServer(cluster, i), nodeId: nodeId(`caller${i}`) })))),
  );
  await eventually(() => t.context.callers.every((n) => n.nodesFor("reg").length === 3), "every caller to see the three owners", 30_000);
});

test.afterEach.always(async (t) => {
  await Promise.all((t.context.callers ?? []).map((n) => n.stop()));
  await killAllNodeProcesses();
  await t.context.cluster?.stop();
});

/**
 * Runs clients on every key through every node while `fault` runs, then heals
 * with `heal`, waits for the three nodes to see each other and for every key
 * to answer through every node, and checks what the clients saw.
 */
async function underLoad(
  t: ExecutionContext<Suite>,
  fault: {
    inject: () => Promise<void>;
    heal: () => Promise<void>;
    /** The callers through which every key must be served again during the fault (asked once it was injected). */
    servedThrough: () => readonly number[];
    /** How many owners there are once healed. @default 3 */
    owners?: number;
    /** How long the fault lasts, from when it was injected. */
    holdMs: number;
  },
): Promise<void> {
  t.timeout(300_000);
  const nodes = t.context.callers;
  const durableKeys = Array.from({ length: 8 }, (_, i) => `d${i}`);
  const plainKeys = Array.from({ length: 8 }, (_, i) => `p${i}`);
  const durable = recorder(durableKeys);
  const plain = recorder(plainKeys);
  let running = true;
  let sequence = 0;
  const op = async (via: number, id: string, isDurable: boolean, write: boolean) => {
    const rec = isDurable ? durable : plain;
    const value = write ? `${via}:${++sequence}` : undefined;
    const call0 = performance.now();
    try {
      const { result, pid } = await nodes[via]!.call({
        actor: isDurable ? Register : PlainRegister,
        id,
        payload: write ? { write: value } : { read: true },
        capability: "reg",
      });
      rec.histories
        .get(id)!
        .push({ kind: write ? "write" : "read", value: write ? value : result, call: call0, ret: performance.now(), pid });
      return true;
    } catch (err) {
      rec.fail(codeOf(err));
      if (write && !NOT_WRITTEN.has(codeOf(err))) rec.histories.get(id)!.push({ kind: "write", value, call: call0, ret: Infinity });
      return codeOf(err);
    }
  };
  // One client per key and node; paced, so that histories stay small enough to check.
  const clients = [...durableKeys.map((id) => [id, true] as const), ...plainKeys.map((id) => [id, false] as const)].flatMap(
    ([id, isDurable]) =>
      nodes.map(async (_, via) => {
        while (running) {
          await op(via, id, isDurable, Math.random() < 0.5);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }),
  );
  try {
    await eventually(() => t.context.cluster.jetStreamWorks(), "the probe bucket to take writes before the fault", 30_000);
    await eventually(() => durable.reads() + plain.reads() >= 300, "the load to run before the fault");
    const injected = performance.now();
    await fault.inject();
    const servedThrough = fault.servedThrough();
    // The majority side serves every key again (durable and plain, through each of its nodes).
    const keys = [...durableKeys.map((id) => [id, true] as const), ...plainKeys.map((id) => [id, false] as const)];
    if (servedThrough.length > 0) {
      const through = `caller ${servedThrough.join(" and ")}`;
      let unserved: string[] = [];
      const served = async () => {
        const asked = servedThrough.flatMap((via) =>
          keys.map(async ([id, isDurable]) => [via, id, await op(via, id, isDurable, false)] as const),
        );
        unserved = (await Promise.all(asked))
          .filter(([, , outcome]) => outcome !== true)
          .map(([via, id, code]) => `${id} via ${via}: ${String(code)}`);
        return unserved.length === 0;
      };
      // Durable keys are served once JetStream elected the buckets' leaders on this side (with the state stream's leader killed:
      // 6 to 12.6 s in runs of this file alone, past 30 s once in a full CI run, where other files load the two cores).
      await eventually(served, `every key to be served through ${through} again`, 60_000).catch((err: unknown) => {
        t.log(`not served in the last round: ${unserved.join(", ")}`); // what a failure was waiting for
        throw err;
      });
      t.log(`every key was served through ${through} again ${Math.round(performance.now() - injected)} ms after the fault`);
    }
    // The fault lasts its time (a duration, not a synchronisation).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, fault.holdMs - (performance.now() - injected))));
    await fault.heal();
    const healed = performance.now();
    // nats-server 2.9.10's raft: the healed server, its term raised by the elections it called alone, unseats the streams'
    // leaders, and JetStream may answer nobody for a while (docs/faults.md). Mesh can renew no lease before.
    await eventually(() => t.context.cluster.jetStreamWorks(), "JetStream to take writes through every server after the heal", 120_000);
    t.log(`JetStream took writes through every server again ${Math.round(performance.now() - healed)} ms after the heal`);
    const led = performance.now();
    await eventually(
      () => nodes.every((n) => n.nodesFor("reg").length === (fault.owners ?? 3)),
      "every caller to see every owner again",
      60_000,
    );
    await eventually(
      async () =>
        (await Promise.all(nodes.flatMap((_, via) => keys.map(([id, isDurable]) => op(via, id, isDurable, false))))).every(
          (o) => o === true,
        ),
      "every key to answer through every node after the heal",
      60_000,
    );
    t.log(`every key answered through every caller ${Math.round(performance.now() - led)} ms after that`);
  } finally {
    running = false;
    await Promise.all(clients);
  }
  const bad = [...durable.check(), ...plain.checkPlain()];
  t.log(
    `durable: ${durable.reads()} reads, failures ${JSON.stringify([...durable.failures])}; ` +
      `plain: ${plain.reads()} reads, failures ${JSON.stringify([...plain.failures])}`,
  );
  t.deepEqual(bad, [], "every durable history is linearizable, and every plain key had one live activation at a time");
}

test.serial(
  "one server that leads no stream cut off from the other two past the node timeout, then healed: every history is linearizable",
  async (t) => {
    const { cluster } = t.context;
    // nats-server 2.9.10: a stream leader cut off keeps answering reads and refusing writes after the heal, until it steps
    // down; its reads and refusals are confirmed by writes (docs/faults.md), but JetStream may then have no leader for tens of
    // seconds. This cut leaves every leader on the majority side.
    let cut = 0;
    await underLoad(t, {
      inject: async () => {
        const leaders = [await leaderOfStream(cluster, "KV_mesh_state"), await leaderOfStream(cluster, "KV_mesh_nodes")];
        cut = [0, 1, 2].find((i) => !leaders.includes(i))!;
        await cluster.isolate(cut);
      },
      heal: () => cluster.heal(),
      servedThrough: () => others(cut),
      holdMs: 4000,
    });
  },
);

test.serial("two servers cut apart while both reach the third (a bridge), then healed: every history is linearizable", async (t) => {
  const { cluster } = t.context;
  // Servers 0 and 1 cannot reach each other. NATS does not relay across a third server, and JetStream's raft (nats-server
  // 2.9) may keep no stream leader while the bridge lasts: no availability is asked for during the cut, only safety.
  await underLoad(t, { inject: () => cluster.cut(0, 1), heal: () => cluster.heal(), servedThrough: () => [], holdMs: 5000 });
});

test.serial("the server leading the state stream cut off from the other two, then healed: every history is linearizable", async (t) => {
  const { cluster } = t.context;
  // Its owner and caller go with it; JetStream elects a leader on the majority side first.
  let cut = 0;
  await underLoad(t, {
    inject: async () => cluster.isolate((cut = await leaderOfStream(cluster, "KV_mesh_state"))),
    heal: () => cluster.heal(),
    servedThrough: () => others(cut),
    holdMs: 4000,
  });
});

test.serial("the server leading the state stream killed, then restarted: every history is linearizable", async (t) => {
  const { cluster } = t.context;
  // Its owner and caller lose their only server, and reconnect once it is back.
  let killed = 0;
  await underLoad(t, {
    inject: async () => cluster.servers[(killed = await leaderOfStream(cluster, "KV_mesh_state"))]!.kill(),
    heal: () => cluster.servers[killed]!.restart(),
    servedThrough: () => others(killed),
    holdMs: 4000,
  });
});

test.serial("the server leading the state stream paused with SIGSTOP, then resumed: every history is linearizable", async (t) => {
  const { cluster } = t.context;
  let paused: number | undefined;
  // A stopped server would not stop: resumed whatever happens.
  t.teardown(() => void (paused !== undefined && process.kill(cluster.servers[paused]!.pid, "SIGCONT")));
  await underLoad(t, {
    inject: async () => void process.kill(cluster.servers[(paused = await leaderOfStream(cluster, "KV_mesh_state"))]!.pid, "SIGSTOP"),
    heal: async () => void process.kill(cluster.servers[paused!]!.pid, "SIGCONT"),
    servedThrough: () => others(paused!),
    holdMs: 4000,
  });
});

/** The index of the server leading `stream` now. */
async function leaderOfStream(cluster: PartitionableCluster, stream: string): Promise<number> {
  let leader: number | undefined;
  await eventually(async () => (leader = await cluster.leaderOf(stream)) !== undefined, `${stream} to have a leader`);
  return leader!;
}

const others = (i: number) => [0, 1, 2].filter((j) => j !== i);

test.serial("an owner frozen with SIGSTOP past the node timeout, then resumed: every history is linearizable", async (t) => {
  const frozen = t.context.owners[2]!;
  await underLoad(t, {
    inject: async () => void process.kill(frozen.pid, "SIGSTOP"),
    heal: async () => void process.kill(frozen.pid, "SIGCONT"),
    servedThrough: () => [0, 1, 2],
    holdMs: 4000,
  });
});

test.serial("an owner killed with SIGKILL, then started again: every history is linearizable", async (t) => {
  const { cluster, owners } = t.context;
  await underLoad(t, {
    inject: () => owners[2]!.kill(),
    heal: async () => void (owners[2] = await startOwner(cluster, "owner2", 2)),
    servedThrough: () => [0, 1, 2],
    holdMs: 3000,
  });
});

test.serial("a fourth owner joins under load: every history is linearizable", async (t) => {
  const { cluster, owners } = t.context;
  await underLoad(t, {
    inject: async () => void owners.push(await startOwner(cluster, "owner3", 0)),
    heal: async () => {},
    servedThrough: () => [0, 1, 2],
    holdMs: 3000,
    owners: 4,
  });
});
