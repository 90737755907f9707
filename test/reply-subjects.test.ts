// A request's reply subject is where a node writes its answer, with the node's
// permissions (and, under the secure config's allow_responses, on any reply
// subject at all). Nodes answer only on inboxes: a client or the operator that
// names `$JS.API…`, `$KV…`, a stream's subject or a node's subject as its
// reply gets nothing run and nothing written (docs/security.md).
import type { TestFn } from "ava";
import anyTest from "ava";
import { connect, headers } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";
import { encode } from "@msgpack/msgpack";
import { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import { NATS_CONF, eventually, nodeId } from "./helpers/cluster.js";
import { Counter, Echo, Ledger } from "./helpers/actors.js";
import { jsonRequest } from "./helpers/foreign.js";
import { useSecureServer } from "./helpers/secure.js";
import type { SecureContext } from "./helpers/secure.js";

const test = anyTest as TestFn<SecureContext>;
useSecureServer(test);

async function connectAs(t: { context: SecureContext }, options: Partial<ConnectionOptions>): Promise<NatsConnection> {
  const nc = await connect({ servers: t.context.secure.server.url, ...options });
  t.context.conns.push(nc);
  return nc;
}

const utf8 = new TextEncoder();

test.serial(
  "a client or the operator naming JetStream, KV, a stream or a node subject as its reply subject makes no node write there, and nothing runs",
  async (t) => {
    const { client: clientCreds, payments: paymentsCreds, operator: operatorCreds, node: creds } = t.context.secure;
    const id = nodeId("host");
    const host = await Mesh.start({
      servers: t.context.secure.server.url,
      nats: creds,
      nodeId: id,
      heartbeatMs: 200,
      actors: [Counter, Echo, Ledger],
      capabilities: ["counter", "payments"],
    });
    t.context.nodes.push(host);
    const pay = await connectAs(t, paymentsCreds);
    t.like(
      await jsonRequest(pay, "mesh.call.payments", { actor: "ledger", id: "acct-1", payload: { set: { balance: 250, owner: "bob" } } }),
      {
        ok: true,
      },
    );
    const operator = await connectAs(t, operatorCreds);
    const jsm = await operator.jetstreamManager();
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    const stored = async (stream: string) => (await jsm.streams.info(stream)).state.messages;
    const before = await stored("KV_mesh_state");
    t.true(before > 0, `KV_mesh_state holds ${before} messages`);
    const live = host.actorCount;

    const client = await connectAs(t, clientCreds);
    const echo = utf8.encode(JSON.stringify({ actor: "Echo", id: "deputy", payload: { balance: 1e9 } }));
    const msgpack = headers();
    msgpack.set("Content-Type", "application/msgpack");
    const replies = [
      "$JS.API.STREAM.PURGE.KV_mesh_state", // the error answer `{"ok":false,…}` is a valid purge request
      "$JS.API.STREAM.PURGE.KV_mesh_reminders",
      "$KV.mesh_state.payments.ledger.acct-1", // the answer would be the ledger's stored bytes
      "orders.new", // a stream only the operator may publish to
      "mesh.node.x",
      "_INBOX.*",
    ];
    for (const reply of replies) {
      client.publish("mesh.call.counter", utf8.encode("not json"), { reply });
      client.publish("mesh.call.counter", echo, { reply });
      client.publish("mesh.cast.counter", echo, { reply });
      client.publish("mesh.call.counter", encode({ actor: "Echo", id: "deputy", payload: 1 }), { reply, headers: msgpack });
      operator.publish("mesh.cluster.forget", utf8.encode(JSON.stringify({ capability: "counter", actorType: "Counter", id: "x" })), {
        reply,
      });
      operator.publish(`mesh.status.${id}`, new Uint8Array(0), { reply });
    }
    // A round trip from each after what they sent: every message above was handled by now.
    t.like(await jsonRequest(client, "mesh.call.counter", { actor: "Counter", id: "after", payload: {} }), { ok: true });
    t.like(await jsonRequest(operator, "mesh.call.counter", { actor: "Counter", id: "after", payload: {} }), { ok: true });
    const status = await operator.request(`mesh.status.${id}`, new Uint8Array(0), { timeout: 5000 });
    t.true(status.data.length > 0, "the status endpoint still answers an inbox");

    t.is(await stored("KV_mesh_state"), before, "the state bucket was not purged");
    t.is(await stored("ORDERS"), 0, "nothing was published to the orders stream");
    t.is(host.actorCount, live + 1, "only the round trip's counter was activated: no Echo ran");
    t.like(await jsonRequest(pay, "mesh.call.payments", { actor: "ledger", id: "acct-1" }), {
      ok: true,
      result: { balance: 250, owner: "bob" },
    });
    await eventually(async () => (await stored("KV_mesh_state")) === before, "the bucket to stay as it was");
  },
);

test("inboxPrefixes: a node answers on the prefixes it is given, and refuses a list that is not subject tokens", async (t) => {
  const { node: creds } = t.context.secure;
  const bad = await t.throwsAsync(Mesh.start({ servers: t.context.secure.server.url, nats: creds, inboxPrefixes: ["$JS.API"] }));
  t.is((bad as { code?: string }).code, "BAD_REQUEST");
  t.regex(bad!.message, /inboxPrefixes/);
  const host = await Mesh.start({
    servers: t.context.secure.server.url,
    nats: creds,
    nodeId: nodeId("own"),
    heartbeatMs: 200,
    actors: [Counter],
    capabilities: ["counter"],
    inboxPrefixes: ["_INBOX_client"],
  });
  t.context.nodes.push(host);
  const client = await connectAs(t, t.context.secure.client);
  t.like(await jsonRequest(client, "mesh.call.counter", { actor: "Counter", id: "c", payload: {} }), { ok: true });
  const operator = await connectAs(t, t.context.secure.operator);
  await t.throwsAsync(
    operator.request("mesh.call.counter", utf8.encode(JSON.stringify({ actor: "Counter", id: "c" })), { timeout: 1000 }),
    {
      code: "TIMEOUT",
    },
  );
});

test("nodes with inbox prefixes of their own answer each other: what only nodes send is not held to inboxPrefixes", async (t) => {
  const server = await startNatsServer({ config: NATS_CONF });
  t.teardown(() => server.stop());
  const start = (name: string) =>
    Mesh.start({
      servers: server.url,
      nodeId: nodeId(name),
      heartbeatMs: 200,
      actors: [Counter],
      capabilities: ["counter"],
      nats: { inboxPrefix: `custom.${name}` },
    });
  const a = await start("a");
  t.context.nodes.push(a);
  const b = await start("b");
  t.context.nodes.push(b);
  await eventually(() => a.nodesFor("counter").length === 2 && b.nodesFor("counter").length === 2, "both nodes to see both");
  const ids = Array.from({ length: 40 }, (_, i) => `n-${i}`);
  const owners = new Set<string>();
  for (const id of ids) {
    const { pid } = await a.call({ actor: Counter, id, capability: "counter", timeoutMs: 3000 });
    owners.add(pid.split("/")[0]!);
  }
  t.is(owners.size, 2, "calls reached both nodes, the other one through its node subject");
  await b.cast({ actor: Counter, id: "n-0", capability: "counter" });
  await eventually(
    async () => (await b.call<{ ok: number }>({ actor: Counter, id: "n-0", capability: "counter" })).result.ok >= 3,
    "the cast to arrive",
  );
});
