// The lease granted by the quorum (docs/faults.md): a node that stores state
// in JetStream renews its lease by writing its record into a replicated
// bucket. Cut off from the JetStream quorum, it can still hear its own
// heartbeats through its server, but it cannot renew: its turns stop, reads
// from memory and local calls included, until the quorum takes its record again.
import test from "ava";
import { Mesh, MeshError } from "@mesh/runtime";
import { startNatsCluster } from "@mesh/runtime/testing";
import { NATS_CONF, eventually, nodeId } from "./helpers/cluster.js";

/** A durable register. */
class Stored {
  static durable = true;
  state = { value: 0 };
  handleCall(p: { write?: number }): number {
    if (p.write !== undefined) this.state = { value: p.write };
    return this.state.value;
  }
}

/** The same in memory. */
class Kept {
  value = 0;
  handleCall(p: { write?: number }): number {
    if (p.write !== undefined) this.value = p.write;
    return this.value;
  }
}

test("a node whose server loses the JetStream quorum stops serving turns, from memory and local ones included, and serves again once the quorum is back", async (t) => {
  const cluster = await startNatsCluster(3, { config: NATS_CONF });
  let node: Mesh | undefined;
  t.teardown(async () => {
    await node?.stop();
    await cluster.stop();
  });
  // The node knows only server 0: it stays connected there when the two others go.
  const options = { servers: [cluster.urls[0]!], nodeId: nodeId("q"), actors: [Stored, Kept], capabilities: ["q"], heartbeatMs: 200 };
  await eventually(
    async () => (node = await Mesh.start({ ...options, storage: { replicas: 3 } }).catch(() => undefined)) !== undefined,
    "the node to start once the cluster's JetStream is up",
    30_000,
  );
  const mesh = node!;
  const call = (actor: typeof Stored | typeof Kept, payload: { write?: number }, timeoutMs = 300) =>
    mesh.call({ actor, id: "x", payload, capability: "q", timeoutMs }).then(
      (r) => r.result as number,
      (err: unknown) => (err instanceof MeshError ? err.code : "ERROR"),
    );
  t.is(await call(Stored, { write: 1 }, 5000), 1);
  t.is(await call(Kept, { write: 1 }, 5000), 1);

  await Promise.all([cluster.servers[1]!.kill(), cluster.servers[2]!.kill()]);
  // Its own server still relays its heartbeats, but no write reaches a quorum: the lease runs out.
  await eventually(async () => (await call(Kept, {})) === "TIMEOUT", "a read from memory to wait for the lease", 15_000);
  t.is(await call(Kept, {}), "TIMEOUT", "the plain actor's state is not served");
  t.is(await call(Stored, {}), "TIMEOUT", "nor the durable actor's");
  t.true(mesh.metrics().leaseLapses >= 1);

  await Promise.all([cluster.servers[1]!.restart(), cluster.servers[2]!.restart()]);
  await eventually(async () => (await call(Kept, {}, 2000)) === 1, "the node to serve again once the quorum is back", 60_000);
  t.is(await call(Stored, {}, 5000), 1, "the durable state is as acknowledged");
  t.true(mesh.metrics().leaseRevalidations >= 1);
});
