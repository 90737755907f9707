// Durable state on a NATS cluster, read back by fresh activations: three
// nats-servers joined by routes, the state bucket at three replicas, one node
// on each server. Every read starts a fresh activation (the turn before it
// crashed the actor), so every read is a load from the store; and plain
// actors read and written through every node. Each key's history of writes
// and reads, as the clients saw them, must be linearizable.
import anyTest from "ava";
import type { TestFn } from "ava";
import { Mesh } from "@mesh/runtime";
import { startNatsCluster } from "@mesh/runtime/testing";
import { NATS_CONF, eventually, nodeId } from "./helpers/cluster.js";
import { NOT_WRITTEN, PlainRegister, Register, codeOf, recorder } from "./helpers/registers.js";

const test = anyTest as TestFn<{ nodes: Mesh[]; stop: () => Promise<void> }>;

test.before(async (t) => {
  const cluster = await startNatsCluster(3, { config: NATS_CONF });
  const nodes: Mesh[] = [];
  t.context.nodes = nodes;
  t.context.stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await cluster.stop();
  };
  // Node i prefers server i: the owner of a key and the callers sit on different servers.
  for (let i = 0; i < 3; i++) {
    const servers = [cluster.urls[i]!, ...cluster.urls.filter((_, j) => j !== i)];
    const options = {
      servers,
      nats: { noRandomize: true },
      nodeId: nodeId(`reg${i}`),
      actors: [Register, PlainRegister],
      capabilities: ["reg"],
    };
    // The cluster's JetStream elects its meta leader first: until then, the state bucket cannot be made.
    let node: Mesh | undefined;
    await eventually(
      async () =>
        (node = await Mesh.start({ ...options, heartbeatMs: 200, storage: { replicas: 3 } }).catch(() => undefined)) !== undefined,
      `node ${i} to start on the cluster`,
      30_000,
    );
    nodes.push(node!);
  }
  await eventually(() => nodes.every((n) => n.nodesFor("reg").length === 3), "every node to see the three nodes");
});
test.after.always(async (t) => t.context.stop?.());

test.serial(
  "no fault, every read a fresh activation: each key's history on a three-server cluster is linearizable, and no write meets STATE_CONFLICT",
  async (t) => {
    const { nodes } = t.context;
    const keys = Array.from({ length: 24 }, (_, i) => `r${i}`);
    const rounds = 60;
    const { histories, failures, fail, check, reads } = recorder(keys);
    const call = (via: number, id: string, payload: object) =>
      nodes[via]!.call({ actor: Register, id, payload, capability: "reg", timeoutMs: 5000 });

    // Write, crash and read through the owner itself: the read's load follows the write's commit by the least time.
    const owner = (id: string) => nodes.findIndex((n) => n.nodeId === nodes[0]!.ownerNode(nodes[0]!.shardFor(id), "reg"));
    await Promise.all(
      keys.map(async (id) => {
        const history = histories.get(id)!;
        const via = owner(id);
        for (let i = 1; i <= rounds; i++) {
          const value = `${id}:${i}`;
          const call0 = performance.now();
          try {
            await call(via, id, { write: value });
            history.push({ kind: "write", value, call: call0, ret: performance.now() });
          } catch (err) {
            fail(codeOf(err));
            if (!NOT_WRITTEN.has(codeOf(err))) history.push({ kind: "write", value, call: call0, ret: Infinity });
          }
          const crashed = call(via, id, { crash: true }).catch(() => {});
          const read0 = performance.now();
          try {
            const { result } = await call(via, id, { read: true });
            history.push({ kind: "read", value: result, call: read0, ret: performance.now() });
          } catch (err) {
            fail(codeOf(err)); // a failed read observed nothing
          }
          await crashed;
        }
      }),
    );

    const bad = check();
    t.log(`${keys.length} keys, ${reads()} reads, each by a fresh activation; failures ${JSON.stringify([...failures])}`);
    t.deepEqual(bad, [], "every key's history is linearizable");
    t.is(failures.get("STATE_CONFLICT") ?? 0, 0, "no write met a revision its activation did not load");
    t.true(reads() >= keys.length * rounds * 0.95, `${reads()} reads answered`);
  },
);

test.serial(
  "no fault, plain actors: a writer and two readers per key, each through another node, see a linearizable register",
  async (t) => {
    const { nodes } = t.context;
    const keys = Array.from({ length: 12 }, (_, i) => `p${i}`);
    const { histories, failures, fail, check, reads } = recorder(keys);
    const call = (via: number, id: string, payload: object) =>
      nodes[via]!.call({ actor: PlainRegister, id, payload, capability: "reg", timeoutMs: 5000 });
    const client = (id: string, via: number, write: boolean) => async () => {
      const history = histories.get(id)!;
      for (let i = 1; i <= 60; i++) {
        const value = write ? `${id}:${i}` : undefined;
        const call0 = performance.now();
        try {
          const { result } = await call(via, id, write ? { write: value } : { read: true });
          history.push({ kind: write ? "write" : "read", value: write ? value : result, call: call0, ret: performance.now() });
        } catch (err) {
          fail(codeOf(err));
          if (write && !NOT_WRITTEN.has(codeOf(err))) history.push({ kind: "write", value, call: call0, ret: Infinity });
        }
      }
    };
    await Promise.all(
      keys.flatMap((id, k) => [client(id, k % 3, true)(), client(id, (k + 1) % 3, false)(), client(id, (k + 2) % 3, false)()]),
    );
    const bad = check();
    t.log(`${keys.length} keys, ${reads()} reads by two readers each, beside one writer; failures ${JSON.stringify([...failures])}`);
    t.deepEqual(bad, [], "every key's history is linearizable");
    t.is(failures.size, 0);
  },
);
