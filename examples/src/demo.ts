// The demo: a three-node cluster as separate processes, calls from a fourth
// node that hosts nothing, and where every actor turned out to live; a stream
// of orders into durable order actors, with a node killed under that load.
//
// Uses the NATS server at $NATS_URL when one answers and has JetStream (the
// carts and orders are durable), with the credentials of the environment;
// otherwise starts a local nats-server with authorization on (the shipped
// nats-secure.conf, a fresh password per role) and stops it at the end. The
// demo's streams are created, and its orders published, with the operator's
// credentials on its own server (docs/security.md "Events"), else the
// environment's.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import type { MeshRequest } from "@mesh/runtime";
import { startSecureNatsServer } from "@mesh/runtime/testing";
import type { Credentials, NatsServer } from "@mesh/runtime/testing";
import { countShipments, planOrders, publishEvents, setUpStreams, waitForOrders } from "./orders.js";

const NODES = [
  { id: "node-a", capabilities: ["counter", "game", "cart", "order"] },
  { id: "node-b", capabilities: ["counter", "chat", "cart", "order"] },
  { id: "node-c", capabilities: ["counter", "game", "chat", "cart", "order"] },
];

const children = new Map<string, ChildProcess>();
let server: NatsServer | undefined;
/** The roles' credentials when the demo runs its own server (else the environment's are used). */
let roles: { node: Credentials; client: Credentials; operator: Credentials } | undefined;

/** Environment variables that carry a role's credentials to a node process or the CLI. */
const envFor = (c: Credentials | undefined): NodeJS.ProcessEnv => (c ? { NATS_USER: c.user, NATS_PASSWORD: c.pass } : {});

/** The environment's credentials, for the demo's own connections to a server it did not start. */
function envCredentials(): Partial<ConnectionOptions> {
  if (process.env.NATS_USER) return { user: process.env.NATS_USER, pass: process.env.NATS_PASSWORD ?? "" };
  return process.env.NATS_TOKEN ? { token: process.env.NATS_TOKEN } : {};
}

async function natsUrl(): Promise<string> {
  const url = process.env.NATS_URL || "nats://127.0.0.1:4222";
  try {
    const nc = await connect({ servers: url, reconnect: false, timeout: 1000, ...envCredentials() });
    try {
      await (await nc.jetstreamManager()).getAccountInfo();
    } finally {
      await nc.close();
    }
    console.log(`NATS: using the server at ${url}`);
    return url;
  } catch {
    const secure = await startSecureNatsServer();
    server = secure.server;
    roles = secure;
    console.log(`NATS: none with JetStream at ${url}; started nats-server at ${server.url} with authorization on`);
    console.log(
      "  (nats-secure.conf: nodes as user node, callers as client, the CLI and the order streams as operator; passwords made for this run)",
    );
    return server.url;
  }
}

function startNode(url: string, id: string, capabilities: string[]): Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./node.js", import.meta.url)), id, capabilities.join(",")], {
    env: { ...process.env, NATS_URL: url, ...envFor(roles?.node) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.set(id, child);
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`${id} exited with code ${code} before it was ready`)));
  });
}

async function main(): Promise<void> {
  const url = await natsUrl();
  // The streams exist before the order actors' nodes start: Mesh reads users' streams, it never creates them.
  const admin = await connect({ servers: url, ...(roles ? roles.operator : envCredentials()) });
  try {
    await setUpStreams(admin);
    await cluster(url, admin);
  } finally {
    await admin.close();
  }
}

async function cluster(url: string, admin: NatsConnection): Promise<void> {
  console.log(`starting ${NODES.length} nodes, each its own process…`);
  await Promise.all(NODES.map((n) => startNode(url, n.id, n.capabilities)));
  const client = await Mesh.start({ servers: url, nodeId: "demo-client", ...(roles ? { nats: roles.node } : {}) });
  try {
    console.log("\nThe cluster as the client sees it:");
    for (const capability of client.allCapabilities()) console.log(`  ${capability.padEnd(8)} → ${client.nodesFor(capability).join(", ")}`);

    const placed = new Map<string, Set<string>>();
    const call = async (request: MeshRequest & { capability: string }, label: string) => {
      const { pid, result } = await client.call(request);
      const node = pid.split("/")[0]!;
      placed.set(node, (placed.get(node) ?? new Set()).add(`${request.capability}:${request.id}`));
      const owner = client.ownerNode(client.shardFor(request.id), request.capability);
      console.log(
        `  ${label.padEnd(36)} shard ${String(client.shardFor(request.id)).padStart(4)} → ${owner}  ${pid.padEnd(30)} ${JSON.stringify(result)}`,
      );
    };

    console.log("\nCounters (created on first call, state kept across calls):");
    for (const id of ["counter_1", "counter_2", "counter_3", "counter_4"]) {
      await call({ actor: "counter", id, capability: "counter" }, `call ${id}`);
      await call({ actor: "counter", id, capability: "counter" }, `call ${id} again`);
    }
    await client.cast({ actor: "counter", id: "counter_1", payload: { action: "reset" }, capability: "counter" });
    await call({ actor: "counter", id: "counter_1", capability: "counter" }, "call counter_1 after a reset cast");

    console.log("\nGame sessions (initArg only on first activation):");
    await call(
      { actor: "game", id: "player_123", payload: { action: "get_state" }, initArg: { starting_level: 10 }, capability: "game" },
      "player_123 with starting_level 10",
    );
    await call(
      { actor: "game", id: "player_123", payload: { action: "score", points: 5 }, initArg: { starting_level: 99 }, capability: "game" },
      "player_123 scores (initArg ignored)",
    );
    await call(
      { actor: "game", id: "player_456", payload: { action: "get_state" }, capability: "game" },
      "player_456 with the default level",
    );

    console.log("\nChat rooms (only on nodes with the chat capability):");
    await call({ actor: "chat", id: "lobby", payload: { say: "hello" }, capability: "chat" }, "lobby: hello");
    await call({ actor: "chat", id: "lobby", payload: { say: "anyone here?" }, capability: "chat" }, "lobby: anyone here?");
    await call({ actor: "chat", id: "support", payload: { say: "help" }, capability: "chat" }, "support: help");

    console.log("\nA durable cart (its state is stored in JetStream KV before each reply):");
    await call({ actor: "cart", id: "cart-1", payload: { add: "book" }, capability: "cart" }, "cart-1: add book");
    await call({ actor: "cart", id: "cart-1", payload: { add: "lamp" }, capability: "cart" }, "cart-1: add lamp");
    const owner = client.ownerNode(client.shardFor("cart-1"), "cart");

    await orders(
      url,
      admin,
      client,
      async () => {
        await kill(owner, admin);
        // "No responders" on the dead node's subject: the call waits until the cluster drops the node (its record
        // unrenewed for nodeTimeoutMs, 3 s by default), then goes to the new owner; 10 s leaves room for that.
        await call(
          { actor: "cart", id: "cart-1", payload: { add: "pen" }, capability: "cart", timeoutMs: 10_000 },
          "cart-1: add pen (re-routed)",
        );
        placed.delete(owner);
        console.log("  mesh state get cart cart cart-1:");
        await cli(url, "state", "get", "cart", "cart", "cart-1");
      },
      owner,
    );

    console.log(`\nWhere the actors live (${owner} is gone):`);
    for (const [node, ids] of [...placed].sort()) console.log(`  ${node}: ${[...ids].sort().join(", ")}`);

    if (roles) {
      console.log("\nA plain NATS client with the client role (no Mesh code):");
      const nc = await connect({ servers: url, ...roles.client });
      const reply = await nc.request("mesh.call.counter", JSON.stringify({ actor: "counter", id: "counter_1", payload: {} }));
      console.log(`  request mesh.call.counter → ${new TextDecoder().decode(reply.data)}`);
      const wrong = await nc.request("mesh.call.counter", JSON.stringify({ actor: "cart", id: "cart-1", payload: { add: "stolen" } }));
      console.log(`  request mesh.call.counter for the cart, which is bound to "cart" → ${new TextDecoder().decode(wrong.data)}`);
      nc.publish("mesh.cluster.heartbeat", JSON.stringify({ node: "impostor" }));
      const refused = await nc
        .flush()
        .then(() => nc.request("mesh.node.node-b", "{}", { timeout: 1000 }).catch((err: Error) => err.message));
      console.log(`  request mesh.node.node-b (acting as a node) → ${String(refused)}`);
      await nc.close();
    }

    console.log("\nAn error, as callers get it:");
    await client
      .call({ actor: "counter", id: "x", capability: "payments" })
      .catch((err: Error & { code?: string }) => console.log(`  call with capability "payments": ${err.code}: ${err.message}`));

    console.log("\nThe cluster as operators see it (mesh status):\n");
    await cli(url, "status");
  } finally {
    await client.stop();
  }
}

/**
 * The orders: publishes a few thousand order events, calls `killNode` (which
 * kills `victim` and shows the cart re-routed) halfway through, then waits
 * for every order to be handled and checks what the order actors did: each
 * event applied once, one shipment per paid order.
 */
async function orders(url: string, admin: NatsConnection, client: Mesh, killNode: () => Promise<void>, victim: string): Promise<void> {
  const run = Date.now().toString(36);
  const { events, expected } = planOrders(run, 200);
  const paid = [...expected.values()].filter((o) => o.shipped).length;
  // Dispatcher p of a subscription runs where shard shardFor("<subscription>#<p>") of its capability is owned (docs/events.md).
  const dispatcher = client.ownerNode(client.shardFor("order.order.ORDERS#0"), "order");
  console.log("\nOrders: the stream ORDERS feeds durable order actors, which publish shipments.<id> (stream SHIPMENTS):");
  console.log(`  publishing ${events.length} events: ${expected.size} orders, their lines, and a payment for ${paid} of them`);
  const started = performance.now();
  const half = Math.floor(events.length / 2);
  await publishEvents(admin, events.slice(0, half));
  const what =
    victim === dispatcher
      ? "it holds cart-1 and runs the orders' dispatcher"
      : `it holds cart-1; the orders' dispatcher runs on ${dispatcher}`;
  console.log(`  killing ${victim} with SIGKILL under that load, ${half} events in (${what})…`);
  await Promise.all([killNode(), publishEvents(admin, events.slice(half))]);
  const { done, states } = await waitForOrders(client, expected, 60_000);
  const seen = (id: string) => states.get(id) ?? { lines: -1, total: -1, shipped: undefined };
  const handled = [...expected].filter(([id, want]) => seen(id).lines >= want.lines && seen(id).shipped === want.shipped).length;
  const exact = [...expected].filter(
    ([id, want]) => seen(id).lines === want.lines && seen(id).total === want.total && seen(id).shipped === want.shipped,
  ).length;
  console.log(
    `  ${handled} of ${expected.size} orders handled, ${((performance.now() - started) / 1000).toFixed(1)} s after the first event`,
  );
  console.log(`  exactly once: ${exact} of ${expected.size} orders hold the line count and total that were published`);
  const shipments = await countShipments(admin, run, paid, 10_000);
  console.log(`  shipments in SHIPMENTS: ${shipments.messages}, for ${shipments.orders} orders; ${paid} orders were paid`);
  if (!done || exact !== expected.size || shipments.orders !== paid || shipments.messages !== paid)
    throw new Error("the orders do not add up (above)");
  console.log(`  mesh events (APPLIED is stored, ${victim}'s share included; the starred counts of ${victim} died with it):`);
  await cli(url, "events");
}

/** Runs the `mesh` CLI of @mesh/runtime against the demo's server. */
function cli(url: string, ...args: string[]): Promise<void> {
  const bin = fileURLToPath(new URL("../../packages/runtime/lib/operations/cli.js", import.meta.url));
  const child = spawn(process.execPath, [bin, ...args, "--server", url], {
    stdio: "inherit",
    env: { ...process.env, ...envFor(roles?.operator) },
  });
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Kills a node's process with SIGKILL, as a crash would, and waits for it to be gone: the process, then its
 * subscriptions on the server (its status subject meets no responders). A call sent before the server noticed
 * would go to the dead connection and end in TIMEOUT (docs/faults.md); the demo shows the call re-routed.
 */
async function kill(id: string, nc: NatsConnection): Promise<void> {
  const child = children.get(id)!;
  await new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
  for (const until = Date.now() + 5_000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
    const gone = await nc.request(`mesh.status.${id}`, new Uint8Array(0), { timeout: 500 }).then(
      () => false,
      (err: { code?: string }) => err.code === "503",
    );
    if (gone) return;
  }
}

async function shutdown(): Promise<void> {
  await Promise.all(
    [...children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    ),
  );
  await server?.stop();
}

try {
  await main();
  console.log("\nstopping the nodes…");
} catch (err) {
  process.exitCode = 1;
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await shutdown();
  console.log("done.");
}
