// NATS itself fails: the server restarts, or one server of a cluster dies.
import test from "ava";
import { Mesh } from "@mesh/runtime";
import type { MeshOptions } from "@mesh/runtime";
import { startNatsCluster, startNatsServer } from "@mesh/runtime/testing";
import { Counter } from "./helpers/actors.js";
import { NATS_CONF, eventually, nodeId } from "./helpers/cluster.js";
import { continuousCalls } from "./helpers/load.js";

const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000, callTimeoutMs: 1000 };
const IDS = Array.from({ length: 200 }, (_, i) => `nf_${i}`);

async function startAll(list: MeshOptions[]): Promise<Mesh[]> {
  const nodes: Mesh[] = [];
  for (const options of list) nodes.push(await Mesh.start({ ...timing, ...options }));
  return nodes;
}

/** Waits for a successful call after `since`, and says how long after `since` it came. */
async function firstSuccessAfter(load: { succeeded: number }, since: number, what: string): Promise<number> {
  const base = load.succeeded;
  await eventually(() => load.succeeded > base + 50, what, 15_000);
  return Date.now() - since;
}

test.serial(
  "the NATS server restarts under calls: calls resume within 5 s of it being back, and every view is complete and de-duplicated",
  async (t) => {
    const server = await startNatsServer({ config: NATS_CONF });
    const nodes = await startAll([
      ...["r1", "r2", "r3"].map((n) => ({ servers: server.url, nodeId: nodeId(n), actors: [Counter], capabilities: ["restart"] })),
      { servers: server.url, nodeId: nodeId("rcaller") },
    ]);
    t.teardown(async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await server.stop();
    });
    const caller = nodes[3]!;
    const members = nodes
      .slice(0, 3)
      .map((n) => n.nodeId)
      .sort();
    const load = continuousCalls(caller, "restart", IDS);
    await eventually(() => load.succeeded > 500, "calls to flow");
    await server.restart();
    const backAt = Date.now();
    const resumedAfter = await firstSuccessAfter(load, backAt, "calls to resume after the restart");
    t.log(`calls resumed ${resumedAfter} ms after the server was back; failures ${JSON.stringify([...load.failures])}`);
    t.true(resumedAfter <= 5000);
    await eventually(() => nodes.every((n) => n.nodesFor("restart").join() === members.join()), "every view to be complete again", 5_000);
    await load.stop();
    for (const n of nodes) t.deepEqual(n.nodesFor("restart"), members);
    for (const code of load.failures.keys()) t.true(["TIMEOUT", "NODE_UNAVAILABLE", "NO_NODES"].includes(code), code);
  },
);

test.serial(
  "one of three clustered nats-servers is killed: nodes attached to it move to another, calls resume, and no node is lost",
  async (t) => {
    const cluster = await startNatsCluster(3, { config: NATS_CONF });
    // Node i prefers server i, so the nodes are spread over the three servers.
    const prefer = (i: number) => ({ servers: [cluster.urls[i]!, ...cluster.urls.filter((_, j) => j !== i)], nats: { noRandomize: true } });
    const nodes = await startAll([
      ...[0, 1, 2].map((i) => ({ ...prefer(i), nodeId: nodeId(`c${i}`), actors: [Counter], capabilities: ["clustered"] })),
      { ...prefer(1), nodeId: nodeId("ccaller") },
    ]);
    t.teardown(async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await cluster.stop();
    });
    const caller = nodes[3]!;
    await eventually(() => caller.nodesFor("clustered").length === 3, "the caller to see the three nodes across the cluster");
    const load = continuousCalls(caller, "clustered", IDS);
    await eventually(() => load.succeeded > 500, "calls to flow");
    await cluster.servers[0]!.kill();
    const killedAt = Date.now();
    const resumedAfter = await firstSuccessAfter(load, killedAt, "calls to flow after the server died");
    // Every id answers again, including those of the node that was attached to the dead server.
    await eventually(
      async () =>
        (
          await Promise.all(
            IDS.map((id) =>
              caller.call({ actor: Counter, id, capability: "clustered" }).then(
                () => true,
                () => false,
              ),
            ),
          )
        ).every(Boolean),
      "every id to answer",
      // The nodes bucket's leader may have been on the dead server: until JetStream elects another, no lease is renewed (docs/faults.md).
      15_000,
    );
    const allBackAfter = Date.now() - killedAt;
    await load.stop();
    t.log(
      `calls flowing ${resumedAfter} ms, every id answering ${allBackAfter} ms after the kill; failures ${JSON.stringify([...load.failures])}`,
    );
    // The node on the dead server may have been removed while it reconnected (its record unrenewed past the node
    // timeout); then it wrote its record anew, and is back.
    const all = nodes
      .slice(0, 3)
      .map((n) => n.nodeId)
      .sort();
    await eventually(() => caller.nodesFor("clustered").join() === all.join(), "every node to be in the caller's view again");
    for (const code of load.failures.keys()) t.true(["TIMEOUT", "NODE_UNAVAILABLE"].includes(code), code);
  },
);
