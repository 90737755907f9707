// Starting a node, as a newcomer meets it: a server that is not there, credentials it
// refuses, a node id already in use, a capability nobody registered, and the testing
// helpers as the README shows them.
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import anyTest from "ava";
import type { TestFn } from "ava";
import { Mesh, MeshError } from "@mesh/runtime";
import type { CallContext } from "@mesh/runtime";
import { startNatsServer, startSecureNatsServer } from "@mesh/runtime/testing";
import { Counter, DurableCounter } from "./helpers/actors.js";
import { nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** A port nothing listens on: one the system gave out and that was closed again. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

test("no server at the URL is CONNECTION_FAILED naming the URL, not a raw NATS error", async (t) => {
  // A port closed a moment ago can be given to another test's server before the node connects: then try another.
  for (let attempt = 1; attempt <= 5; attempt++) {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const outcome = await Mesh.start({ servers: url, nats: { reconnect: false, timeout: 1000 } }).then(
      (mesh) => ({ mesh }),
      (err: unknown) => ({ err }),
    );
    if ("mesh" in outcome) {
      await outcome.mesh.stop();
      continue;
    }
    const err = outcome.err as MeshError;
    t.true(err instanceof MeshError, String(err));
    t.is(err.code, "CONNECTION_FAILED");
    t.true(err.message.includes(url), err.message);
    t.regex(err.message, /CONNECTION_REFUSED/);
    // A user and password in the URL are not in the message.
    const secret = url.replace("nats://", "nats://node:s3cretPass@");
    const refused = await t.throwsAsync(Mesh.start({ servers: secret, nats: { reconnect: false, timeout: 1000 } }), {
      instanceOf: MeshError,
    });
    t.true(refused!.message.includes(url.replace("nats://", "nats://***@")), refused!.message);
    t.false(refused!.message.includes("s3cretPass"), refused!.message);
    return;
  }
  t.fail("each closed port was taken by another server before the node connected");
});

test("credentials the server refuses are CONNECTION_FAILED with the server's reason", async (t) => {
  const secure = await startSecureNatsServer();
  t.teardown(() => secure.server.stop());
  const err = await t.throwsAsync(Mesh.start({ servers: secure.server.url, nats: { user: "node", pass: "wrong", reconnect: false } }), {
    instanceOf: MeshError,
  });
  t.is(err?.code, "CONNECTION_FAILED");
  t.true(err!.message.includes(secure.server.url), err!.message);
  t.regex(err!.message, /authoriz/i);
});

test("a node id that a live node uses is refused before the new node takes any call; once it stops, the id is free", async (t) => {
  const id = nodeId("twin");
  const first = await startNode(t, { prefix: "twin", nodeId: id, actors: [Counter], capabilities: ["twin"] });
  t.deepEqual((await first.call({ actor: Counter, id: "c", capability: "twin" })).result, { ok: 1 });
  const err = await t.throwsAsync(startNode(t, { prefix: "twin", nodeId: id, actors: [Counter], capabilities: ["twin"] }), {
    instanceOf: MeshError,
  });
  t.is(err?.code, "CONNECTION_FAILED");
  t.regex(err!.message, new RegExp(`another live node already uses the node id "${id}"`));
  // The refused twin never served: the one counter went on counting.
  t.deepEqual((await first.call({ actor: Counter, id: "c", capability: "twin" })).result, { ok: 2 });
  await first.stop();
  const again = await startNode(t, { prefix: "twin", nodeId: id, actors: [Counter], capabilities: ["twin"] });
  t.deepEqual((await again.call({ actor: Counter, id: "c", capability: "twin" })).result, { ok: 1 });
});

test("NO_NODES names the capabilities the cluster knows, and says when this node hosts the class but registered no such capability", async (t) => {
  const host = await startNode(t, { prefix: "nonodes", nodeId: nodeId("nonodes"), actors: [Counter], capabilities: ["counter", "game"] });
  const err = await t.throwsAsync(host.call({ actor: Counter, id: "x", capability: "countr" }), { instanceOf: MeshError });
  t.is(err?.code, "NO_NODES");
  t.regex(
    err!.message,
    /no node has registered the capability "countr" \(the cluster knows "counter", "game"\); this node hosts actor type "Counter" but registered no capability "countr" \(it registered "counter", "game"\)/,
  );
  // A node that does not host the class only lists what the cluster knows.
  const caller = await startNode(t, { prefix: "nonodes", nodeId: nodeId("caller") });
  const remote = await t.throwsAsync(caller.cast({ actor: "Counter", id: "x", capability: "countr" }), { instanceOf: MeshError });
  t.is(remote?.message, 'no node has registered the capability "countr" (the cluster knows "counter", "game")');
});

// The README's "Testing your own actors" snippet, as written there.
class Cart {
  static actorType = "cart";
  static durable = true;
  state = { items: [] as string[] };
  handleCall(p: { add?: string }, _ctx: CallContext) {
    if (p.add) this.state.items.push(p.add);
    return this.state.items;
  }
}

test("the README's testing snippet runs a durable actor on the default test server", async (t) => {
  const server = await startNatsServer(); // JetStream on by default
  const mesh = await Mesh.start({ servers: server.url, actors: [Cart], capabilities: ["cart"] });
  t.teardown(async () => {
    await mesh.stop();
    await server.stop();
  });
  t.deepEqual((await mesh.call({ actor: Cart, id: "c1", payload: { add: "book" }, capability: "cart" })).result, ["book"]);
  const result: string[] = (await mesh.call({ actor: Cart, id: "c1", payload: { add: "pen" }, capability: "cart" })).result;
  t.deepEqual(result, ["book", "pen"]);
});

test("startNatsServer({ jetstream: false }) starts a server without JetStream, which a durable node refuses", async (t) => {
  const plain = await startNatsServer({ jetstream: false });
  t.teardown(() => plain.stop());
  const err = await t.throwsAsync(Mesh.start({ servers: plain.url, actors: [DurableCounter] }), { instanceOf: MeshError });
  t.is(err?.code, "STORAGE_UNAVAILABLE");
});
