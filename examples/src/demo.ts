// The demo: a three-node cluster as separate processes, calls from a fourth
// node that hosts nothing, and where every actor turned out to live.
//
// Uses the NATS server at $NATS_URL when one answers and has JetStream (the
// carts are durable), with the credentials of the environment; otherwise
// starts a local nats-server with authorization on (the shipped
// nats-secure.conf, a fresh password per role) and stops it at the end.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import { Mesh } from "@mesh/runtime";
import type { MeshRequest } from "@mesh/runtime";
import { startSecureNatsServer } from "@mesh/runtime/testing";
import type { Credentials, NatsServer } from "@mesh/runtime/testing";

const NODES = [
  { id: "node-a", capabilities: ["counter", "game", "cart"] },
  { id: "node-b", capabilities: ["counter", "chat", "cart"] },
  { id: "node-c", capabilities: ["counter", "game", "chat", "cart"] },
];

const children = new Map<string, ChildProcess>();
let server: NatsServer | undefined;
/** The roles' credentials when the demo runs its own server (else the environment's are used). */
let roles: { node: Credentials; client: Credentials; operator: Credentials } | undefined;

/** Environment variables that carry a role's credentials to a node process or the CLI. */
const envFor = (c: Credentials | undefined): NodeJS.ProcessEnv => (c ? { NATS_USER: c.user, NATS_PASSWORD: c.pass } : {});

async function natsUrl(): Promise<string> {
  const url = process.env.NATS_URL || "nats://127.0.0.1:4222";
  try {
    const nc = await connect({ servers: url, reconnect: false, timeout: 1000 });
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
    console.log("  (nats-secure.conf: nodes as user node, callers as client, the CLI as operator; passwords made for this run)");
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
      console.log(`  ${label.padEnd(36)} shard ${String(client.shardFor(request.id)).padStart(4)} → ${owner}  ${pid.padEnd(30)} ${JSON.stringify(result)}`);
    };

    console.log("\nCounters (created on first call, state kept across calls):");
    for (const id of ["counter_1", "counter_2", "counter_3", "counter_4"]) {
      await call({ actor: "counter", id, capability: "counter" }, `call ${id}`);
      await call({ actor: "counter", id, capability: "counter" }, `call ${id} again`);
    }
    await client.cast({ actor: "counter", id: "counter_1", payload: { action: "reset" }, capability: "counter" });
    await call({ actor: "counter", id: "counter_1", capability: "counter" }, "call counter_1 after a reset cast");

    console.log("\nGame sessions (initArg only on first activation):");
    await call({ actor: "game", id: "player_123", payload: { action: "get_state" }, initArg: { starting_level: 10 }, capability: "game" }, "player_123 with starting_level 10");
    await call({ actor: "game", id: "player_123", payload: { action: "score", points: 5 }, initArg: { starting_level: 99 }, capability: "game" }, "player_123 scores (initArg ignored)");
    await call({ actor: "game", id: "player_456", payload: { action: "get_state" }, capability: "game" }, "player_456 with the default level");

    console.log("\nChat rooms (only on nodes with the chat capability):");
    await call({ actor: "chat", id: "lobby", payload: { say: "hello" }, capability: "chat" }, "lobby: hello");
    await call({ actor: "chat", id: "lobby", payload: { say: "anyone here?" }, capability: "chat" }, "lobby: anyone here?");
    await call({ actor: "chat", id: "support", payload: { say: "help" }, capability: "chat" }, "support: help");

    console.log("\nA durable cart (its state is stored in JetStream KV before each reply):");
    await call({ actor: "cart", id: "cart-1", payload: { add: "book" }, capability: "cart" }, "cart-1: add book");
    await call({ actor: "cart", id: "cart-1", payload: { add: "lamp" }, capability: "cart" }, "cart-1: add lamp");
    const owner = client.ownerNode(client.shardFor("cart-1"), "cart");
    console.log(`  killing ${owner}, the cart's node, with SIGKILL…`);
    await kill(owner);
    await call({ actor: "cart", id: "cart-1", payload: { add: "pen" }, capability: "cart" }, "cart-1: add pen (re-routed)");
    placed.delete(owner);
    console.log("  mesh state get cart cart cart-1:");
    await cli(url, "state", "get", "cart", "cart", "cart-1");

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
      const refused = await nc.flush().then(() => nc.request("mesh.node.node-b", "{}", { timeout: 1000 }).catch((err: Error) => err.message));
      console.log(`  request mesh.node.node-b (acting as a node) → ${String(refused)}`);
      await nc.close();
    }

    console.log("\nAn error, as callers get it:");
    await client.call({ actor: "counter", id: "x", capability: "payments" }).catch((err: Error & { code?: string }) => console.log(`  call with capability "payments": ${err.code}: ${err.message}`));

    console.log("\nThe cluster as operators see it (mesh status):\n");
    await cli(url, "status");
  } finally {
    await client.stop();
  }
}

/** Runs the `mesh` CLI of @mesh/runtime against the demo's server. */
function cli(url: string, ...args: string[]): Promise<void> {
  const bin = fileURLToPath(new URL("../../packages/runtime/lib/operations/cli.js", import.meta.url));
  const child = spawn(process.execPath, [bin, ...args, "--server", url], { stdio: "inherit", env: { ...process.env, ...envFor(roles?.operator) } });
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Kills a node's process with SIGKILL, as a crash would, and waits for it to be gone. */
function kill(id: string): Promise<void> {
  const child = children.get(id)!;
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
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
