// Events under faults (docs/events.md): node processes killed with SIGKILL and
// restarted, or the dispatcher's node frozen with SIGSTOP past the node timeout
// and resumed, while events flow into durable actors. Every event is applied
// exactly once and in stream order per key, and every message a committed turn
// published is in the output stream exactly once.
import anyTest from "ava";
import type { TestFn, ExecutionContext } from "ava";
import { connect } from "nats";
import type { MeshOptions } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import { meshCli } from "./helpers/cli.js";
import type { ClusterContext } from "./helpers/cluster.js";
import type { LedgerState } from "./helpers/event-actors.js";
import { killAllNodeProcesses, startNodeProcess } from "./helpers/processes.js";
import type { NodeProcess } from "./helpers/processes.js";
import { setUpStreams } from "./helpers/streams.js";
import { checkApplied } from "./helpers/event-checks.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);
test.after.always(() => killAllNodeProcesses());

const KEYS = 40;
const EVENTS = 3000;

test.serial("SIGKILLed nodes under a stream of events: each applied once, in order per key, and published once", async (t) => {
  t.timeout(180_000);
  const stream = "CHAOS";
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  await setUpStreams(nc, stream);
  const options = {
    servers: t.context.server.url,
    prefix: "evf",
    capabilities: ["ev"],
    heartbeatMs: 200,
    nodeTimeoutMs: 1000,
    callTimeoutMs: 2000,
    eventStream: stream,
  } as MeshOptions;
  const names = ["e1", "e2", "e3"].map(nodeId);
  const nodes = new Map<string, NodeProcess>();
  for (const name of names) nodes.set(name, await startNodeProcess(name, options));
  const caller = await startNode(t, { nodeId: nodeId("caller"), prefix: "evf", heartbeatMs: 200, nodeTimeoutMs: 1000 });
  await eventually(() => caller.nodesFor("ev").length === 3, "the caller to see three nodes");

  // Events go out in 30 rounds; after every 6th round a node is killed and restarted.
  const js = nc.jetstream();
  const sent: { key: string; seq: number; n: number }[] = [];
  let kills = 0;
  for (let round = 0; round < 30; round++) {
    const acks = [];
    for (let i = 0; i < EVENTS / 30; i++) {
      const key = `k${(round * 7 + i) % KEYS}`;
      const n = round * 1000 + i;
      acks.push(js.publish(`${stream}.in.${key}`, JSON.stringify({ n })).then((ack) => sent.push({ key, seq: ack.seq, n })));
    }
    await Promise.all(acks);
    if (round % 6 === 5) {
      const name = names[kills % names.length]!;
      await nodes.get(name)!.kill();
      kills++;
      nodes.set(name, await startNodeProcess(name, options));
    }
  }
  t.is(kills, 5);

  await checkApplied(t, nc, caller, stream, sent);
  for (const [name, node] of nodes) t.false(/UNHANDLED|UNCAUGHT/.test(node.stderr), `${name}: ${node.stderr}`);

  // mesh events counts what is stored: every event once, however many nodes died; and right after one more SIGKILL.
  const stored = async () => {
    const cli = await meshCli("events", "--json", "-p", "evf", "-s", t.context.server.url);
    const [sub] = (JSON.parse(cli.stdout) as { subscriptions: { stored?: { applied: number; deadLetters: number } }[] }).subscriptions;
    return sub?.stored;
  };
  await eventually(async () => (await stored())?.applied === EVENTS, "the stored floor to pass every event", 15_000);
  await nodes.get(names[0]!)!.kill();
  t.deepEqual(await stored(), { applied: EVENTS, deadLetters: 0, floors: [{ partition: 0, floor: EVENTS }] });
});

/**
 * Two node processes reading `stream` (prefix `prefix`), a caller, and what the tests do with them:
 * the node that runs the dispatcher, publishing events (recorded in `sent`), and counting what the ledgers applied.
 */
async function twoNodes(t: ExecutionContext<ClusterContext>, stream: string, prefix: string, callTimeoutMs: number) {
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  await setUpStreams(nc, stream);
  const options = {
    servers: t.context.server.url,
    prefix,
    capabilities: ["ev"],
    heartbeatMs: 200,
    nodeTimeoutMs: 1000,
    callTimeoutMs,
    eventStream: stream,
  } as MeshOptions;
  const nodes = await Promise.all(["a", "b"].map((name) => startNodeProcess(nodeId(`${prefix}-${name}`), options)));
  const caller = await startNode(t, { nodeId: nodeId(`${prefix}-caller`), prefix, heartbeatMs: 200, nodeTimeoutMs: 1000 });
  await eventually(() => caller.nodesFor("ev").length === 2, "the caller to see both nodes");
  const js = nc.jetstream();
  const sent: { key: string; seq: number; n: number }[] = [];
  let n = 0;
  return {
    nc,
    nodes,
    caller,
    sent,
    dispatcherNode: () => caller.ownerNode(caller.shardFor("ev.EventLedger.ledger#0"), "ev"),
    /** Publishes `count` more events, round robin over the keys. */
    async publish(count: number): Promise<void> {
      const acks = [];
      for (let i = 0; i < count; i++, n++) {
        const key = `k${n % KEYS}`;
        const v = n;
        acks.push(js.publish(`${stream}.in.${key}`, JSON.stringify({ n: v })).then((ack) => sent.push({ key, seq: ack.seq, n: v })));
      }
      await Promise.all(acks);
    },
    /** Events the ledgers applied, as far as they answer now. */
    async applied(): Promise<number> {
      let total = 0;
      for (let k = 0; k < KEYS; k++)
        total +=
          (await caller.call<LedgerState>({ actor: "EventLedger", id: `k${k}`, capability: "ev", timeoutMs: 5000 }).catch(() => undefined))
            ?.result.seqs.length ?? 0;
      return total;
    },
  };
}

test.serial(
  "the dispatcher's node frozen with SIGSTOP past the node timeout and resumed: the other node reads on, and each event is still applied once, in order per key",
  async (t) => {
    t.timeout(180_000);
    const { nc, nodes, caller, sent, dispatcherNode, publish, applied } = await twoNodes(t, "FROZEN", "evs", 2000);
    const frozen = nodes.find((n) => n.nodeId === dispatcherNode())!;
    const other = nodes.find((n) => n !== frozen)!;
    t.truthy(frozen, "one of the two nodes runs the dispatcher");

    await publish(500);
    await eventually(async () => (await applied()) >= 300, "events to flow before the freeze", 30_000);
    process.kill(frozen.pid, "SIGSTOP");
    try {
      await eventually(() => !caller.nodesFor("ev").includes(frozen.nodeId), "the caller to drop the frozen node", 10_000);
      t.is(dispatcherNode(), other.nodeId, "the dispatcher's shard moved to the other node");
      await publish(500);
      await eventually(
        async () => (await applied()) >= 1000,
        "the other node to read on and apply every event while the first is frozen",
        60_000,
      );
    } finally {
      process.kill(frozen.pid, "SIGCONT");
    }
    await eventually(() => caller.nodesFor("ev").includes(frozen.nodeId), "the caller to see the resumed node again", 15_000);
    await publish(500);
    await checkApplied(t, nc, caller, "FROZEN", sent);
    for (const node of nodes) t.false(/UNHANDLED|UNCAUGHT/.test(node.stderr), `${node.nodeId}: ${node.stderr}`);
  },
);

test.serial("events in flight to a SIGKILLed node go again as soon as it leaves the view, not when their calls time out", async (t) => {
  t.timeout(120_000);
  // A call timeout far beyond the deadline below: only the view change can free the events sent to the dead node.
  const { nc, nodes, caller, sent, dispatcherNode, publish, applied } = await twoNodes(t, "GONE", "evg", 120_000);
  const victim = nodes.find((n) => n.nodeId !== dispatcherNode())!;
  await publish(2000);
  // Killed while the dispatcher has events out to it.
  t.true(
    [...Array(KEYS).keys()].some((k) => caller.ownerNode(caller.shardFor(`k${k}`), "ev") === victim.nodeId),
    "the victim owns some keys",
  );
  await victim.kill();
  await eventually(() => !caller.nodesFor("ev").includes(victim.nodeId), "the caller to drop the dead node", 10_000);
  await eventually(async () => (await applied()) === sent.length, "every event applied, well before the 120 s call timeout", 30_000);
  await checkApplied(t, nc, caller, "GONE", sent);
});

test.serial(
  "the dispatcher's consumer deleted under it, then the NATS server restarted, while events flow: it reads on from where it was, and each event is applied once, in order per key",
  async (t) => {
    t.timeout(180_000);
    const { nc, caller, sent, publish, applied } = await twoNodes(t, "REREAD", "evr", 5000);
    await publish(500);
    await eventually(async () => (await applied()) >= 200, "events to flow", 30_000);
    const jsm = await nc.jetstreamManager();
    const consumers = await jsm.consumers.list("REREAD").next();
    t.true(consumers.length > 0, "the dispatcher reads through a consumer");
    for (const c of consumers) await jsm.consumers.delete("REREAD", c.name);
    await publish(500);
    await eventually(async () => (await applied()) >= 1000, "the dispatcher to read on after its consumer was deleted", 30_000);

    await t.context.server.restart();
    await eventually(
      async () => (await jsm.streams.info("REREAD").catch(() => undefined)) !== undefined,
      "JetStream to answer again",
      20_000,
    );
    await publish(500);
    await checkApplied(t, nc, caller, "REREAD", sent);
  },
);
