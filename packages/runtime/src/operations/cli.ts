#!/usr/bin/env node
// The `mesh` command: run a node, look at the cluster, call an actor.
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { RoutingTable, resolveStrategy, stateKey } from "@mesh/core";
import { RequestStrategy, connect, credsAuthenticator } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";
import { checkToken } from "@mesh/core/internal";
import { Subjects, bucketName, classifyNatsError, credentialsFromEnv, inboxPrefixFromEnv } from "@mesh/transport";
import { Mesh } from "../mesh.js";
import { DEFAULT_STORAGE_TIMEOUT_MS } from "../options.js";
import { StateStore } from "../state/state-store.js";
import { Reminders, reminderBucket } from "../timers/reminders.js";
import { decodeState, readRecord } from "../state/group-commit.js";
import type { ActorClass } from "../types.js";
import { version } from "../version.js";
import { clusterStats, eventsReport } from "./cluster-stats.js";
import { encodeForget } from "./forget.js";
import type { Forget } from "./forget.js";

const COMMON = `Options for every command:
  -s, --server <url>   NATS server URL (default: $NATS_URL, else nats://127.0.0.1:4222)
  -p, --prefix <p>     Mesh subject prefix (default: mesh)
  --user <name>        NATS user (default: $NATS_USER; its password from $NATS_PASSWORD)
  --creds <file>       NATS creds file, JWT and seed (default: $NATS_CREDS)
  --tls-ca <file>      CA certificate to verify a TLS server with
  --inbox-prefix <p>   where replies come (default: $NATS_INBOX_PREFIX, else
                       _INBOX_<user> when a user is given, else _INBOX; a node:
                       <prefix>.inbox.<nodeId>). Under nats-secure.conf each
                       role may only read its own: _INBOX_operator for operator
  -h, --help           this help

Passwords are never taken on the command line (other users could read them):
set NATS_PASSWORD, or use a creds file.`;

const HELP: Record<string, string> = {
  mesh: `mesh ${version}: run and inspect a Mesh cluster

Usage: mesh <command> [options]

Commands:
  node     run a node hosting the actor classes a module exports
  status   show every node: capabilities, live actors, calls served, shards owned
  call     call an actor and print its reply
  cast     send a message to an actor
  state    print or delete a durable actor's stored state
  reminders list the stored reminders of durable actors
  events   show every event subscription: its dispatchers, lag, retries and dead letters

Run "mesh <command> --help" for a command's options.`,
  node: `Usage: mesh node --actors <module.js> [--capabilities a,b] [--node-id id]

Runs a node until SIGINT or SIGTERM, then stops it gracefully.
  --actors <module>       a JavaScript module; every exported class with a handleCall method is an actor type
  --capabilities <list>   capabilities to register, comma-separated
  --node-id <id>          this node's id (default: <host>-<pid>-<random>)

${COMMON}`,
  status: `Usage: mesh status [--json]

Prints every node of the cluster: its capabilities, live actors, calls served,
and how many shards of each capability it owns.
  --json               the same as JSON, for scripts
  --wait <ms>          how long to wait for nodes to answer (default: 500)

${COMMON}`,
  call: `Usage: mesh call <capability> <actor> <id> [json-payload] [--init <json>] [--timeout <ms>]

Calls an actor through the ingress (any node of the capability) and prints
{"pid": ..., "result": ...} as JSON.
  --init <json>        initArg, used if this call activates the actor
  --timeout <ms>       the call's timeout (default: 5000)

${COMMON}`,
  cast: `Usage: mesh cast <capability> <actor> <id> [json-payload]

Sends a message to an actor through the ingress and prints "ok" once a node has routed it.

${COMMON}`,
  reminders: `Usage: mesh reminders list [--actor <actorType>] [--id <id>] [--json]

Prints every stored reminder (or those of one actor type, or one actor): its
actor, name, when it is due, how often it repeats, and failed tries.
  --actor <type>       only this actor type
  --id <id>            only this actor id
  --json               one JSON object per line, for scripts

${COMMON}`,
  events: `Usage: mesh events [--json]

Prints every stream subscription of the cluster's classes (docs/events.md):
its stream, its lag (events not yet handled), events handled, repeated (an
actor had applied them already), retried and dead-lettered, and the node
and floor of each dispatcher.
  --json               the same as JSON, for scripts
  --wait <ms>          how long to wait for nodes to answer (default: 500)

${COMMON}`,
  state: `Usage: mesh state get <capability> <actorType> <id>
       mesh state delete <capability> <actorType> <id>

An actor is its capability, type and id (as in mesh call). get prints the
stored state of a durable actor as JSON (exit 1 when none is
stored). delete removes it; a live activation of the actor ends before its
next turn, and the next message starts from the class's initial state.
  --bucket <name>      the state bucket (default: <prefix>_state)
  --wait <ms>          delete: how long to wait for nodes to answer (default: 500)

${COMMON}`,
};

/** A one-line error for the user; the exit code says what kind. */
class UsageError extends Error {}

const options = {
  server: { type: "string", short: "s" },
  prefix: { type: "string", short: "p", default: "mesh" },
  help: { type: "boolean", short: "h", default: false },
  actors: { type: "string" },
  capabilities: { type: "string", default: "" },
  "node-id": { type: "string" },
  json: { type: "boolean", default: false },
  wait: { type: "string", default: "500" },
  init: { type: "string" },
  timeout: { type: "string", default: "5000" },
  bucket: { type: "string" },
  user: { type: "string" },
  creds: { type: "string" },
  "tls-ca": { type: "string" },
  "inbox-prefix": { type: "string" },
  actor: { type: "string" },
  id: { type: "string" },
} as const;

async function main(argv: string[]): Promise<number> {
  const [command = "", ...rest] = argv;
  if (command === "" || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(`${HELP.mesh}\n`);
    return command === "" ? 2 : 0;
  }
  if (!(command in HELP) || command === "mesh") throw new UsageError(`unknown command "${command}"; run "mesh --help"`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; run "mesh ${command} --help"`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${HELP[command]}\n`);
    return 0;
  }
  const server = values.server ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222";
  const auth = natsAuth(values.user, values.creds, values["tls-ca"]);
  const inboxPrefix = values["inbox-prefix"];
  const toolInbox = inboxPrefix ?? inboxPrefixFromEnv() ?? ((values.user ?? process.env.NATS_USER) ? `_INBOX_${values.user ?? process.env.NATS_USER}` : undefined);
  const withConnection = (run: (nc: NatsConnection) => Promise<number>) => connected(server, toolInbox ? { ...auth, inboxPrefix: toolInbox } : auth, run);
  switch (command) {
    case "node":
      return runNode(server, inboxPrefix ? { ...auth, inboxPrefix } : auth, values.prefix, values.actors, values.capabilities, values["node-id"]);
    case "status":
      return withConnection((nc) => status(nc, values.prefix, values.json, number(values.wait, "--wait")));
    case "events":
      return withConnection((nc) => eventsReport(nc, values.prefix, values.json, number(values.wait, "--wait")));
    case "call":
    case "cast": {
      const [capability, actor, id, payload] = positionals;
      if (!capability || !actor || id === undefined) throw new UsageError(`mesh ${command} needs <capability> <actor> <id>; run "mesh ${command} --help"`);
      const body = { actor, id, payload: payload === undefined ? {} : json(payload, "the payload"), ...(values.init ? { initArg: json(values.init, "--init") } : {}), ...(command === "call" ? { timeoutMs: number(values.timeout, "--timeout") } : {}) };
      return withConnection((nc) => request(nc, `${values.prefix}.${command}.${capability}`, body, command === "call", number(values.timeout, "--timeout")));
    }
    case "reminders": {
      if (positionals[0] !== "list") throw new UsageError(`mesh reminders needs list; run "mesh reminders --help"`);
      return withConnection((nc) => listReminders(nc, reminderBucket(values.prefix), values.actor, values.id, values.json));
    }
    case "state": {
      const [verb, capability, actorType, id] = positionals;
      if ((verb !== "get" && verb !== "delete") || !capability || !actorType || id === undefined) throw new UsageError(`mesh state needs get|delete <capability> <actorType> <id>; run "mesh state --help"`);
      const actor = { capability: checkToken(capability, "capability"), actorType, id };
      const bucket = values.bucket ?? bucketName(values.prefix, "state");
      return withConnection((nc) => (verb === "get" ? getState(nc, bucket, actor) : deleteState(nc, bucket, values.prefix, actor, number(values.wait, "--wait"))));
    }
  }
  return 2;
}

function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON: ${text}`);
  }
}

function number(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${what} must be a positive number, got ${text}`);
  return n;
}

/** Credentials and TLS from the flags, over what the environment gives (credentialsFromEnv). */
function natsAuth(user: string | undefined, creds: string | undefined, tlsCa: string | undefined): Partial<ConnectionOptions> {
  const auth: Partial<ConnectionOptions> = { ...credentialsFromEnv() };
  if (creds) auth.authenticator = credsAuthenticator(readFileSync(creds));
  if (user) Object.assign(auth, { user, pass: process.env.NATS_PASSWORD ?? "" });
  if (tlsCa) auth.tls = { caFile: tlsCa };
  return auth;
}

async function connected(server: string, auth: Partial<ConnectionOptions>, run: (nc: NatsConnection) => Promise<number>): Promise<number> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: server, reconnect: false, timeout: 3000, name: "mesh-cli", ...auth });
  } catch (err) {
    throw new Error(`cannot connect to ${server}: ${(err as Error).message}`);
  }
  try {
    return await run(nc);
  } finally {
    await nc.close();
  }
}

async function runNode(server: string, auth: Partial<ConnectionOptions>, prefix: string, actorsModule: string | undefined, capabilities: string, nodeId: string | undefined): Promise<number> {
  if (!actorsModule) throw new UsageError(`mesh node needs --actors <module.js>; run "mesh node --help"`);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(resolve(actorsModule)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot load ${actorsModule}: ${(err as Error).message}`);
  }
  const actors = Object.values(exports).filter((v): v is ActorClass => typeof v === "function" && typeof (v as { prototype?: { handleCall?: unknown } }).prototype?.handleCall === "function");
  if (actors.length === 0) throw new Error(`${actorsModule} exports no actor class (a class with a handleCall method)`);
  const mesh = await Mesh.start({ servers: server, prefix, actors, capabilities: capabilities.split(",").filter(Boolean), nats: auth, ...(nodeId ? { nodeId } : {}) });
  // The signal handlers go in before the line that says the node serves: a signal sent on seeing it is handled.
  const signalled = new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  process.stdout.write(`mesh: node ${mesh.nodeId} serving ${actors.map((a) => a.actorType ?? a.name).join(", ")}; capabilities: ${capabilities || "none"}\n`);
  await signalled;
  await mesh.stop();
  process.stdout.write(`mesh: node ${mesh.nodeId} stopped\n`);
  return 0;
}

interface NodeStatus {
  node: string;
  version: string;
  capabilities: string[];
  actors: number;
  callsServed: number;
  castsServed: number;
  crashes: number;
  /** Messages waiting in its mailboxes, the deepest mailbox, and calls and casts refused with OVERLOADED. */
  queued: number;
  deepestMailbox: number;
  overloaded: number;
  /** capability -> shards owned */
  shards: Record<string, number>;
}

async function status(nc: NatsConnection, prefix: string, asJson: boolean, waitMs: number): Promise<number> {
  const { infos, stats } = await clusterStats(nc, prefix, waitMs);
  const shardCount = Number(infos[0]?.metadata?.shards ?? 4096);
  const strategy = infos[0]?.metadata?.strategy ?? "rendezvous";
  const routes = strategy === "rendezvous" || strategy === "modulo" ? new RoutingTable(shardCount, resolveStrategy(strategy).fn) : undefined;
  routes?.setMembers(infos.map((i) => [i.metadata!.node!, splitList(i.metadata?.capabilities)] as const));
  const nodes: NodeStatus[] = infos
    .map((i) => {
      const node = i.metadata!.node!;
      const m = stats.get(node);
      const capabilities = splitList(i.metadata?.capabilities);
      const shards: Record<string, number> = {};
      for (const c of capabilities) shards[c] = routes?.table(c)?.shardCounts().get(node) ?? 0;
      return { node, version: i.version, capabilities, actors: m?.actors ?? 0, callsServed: m?.callsServed ?? 0, castsServed: m?.castsServed ?? 0, crashes: m?.crashes ?? 0, queued: m?.queuedLetters ?? 0, deepestMailbox: m?.deepestMailbox ?? 0, overloaded: Object.values(m?.overloaded ?? {}).reduce((a, b) => a + b, 0), shards };
    })
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ prefix, shards: shardCount, strategy, nodes }, null, 2)}\n`);
    return 0;
  }
  if (nodes.length === 0) {
    process.stdout.write(`no Mesh node answered on prefix "${prefix}"\n`);
    return 1;
  }
  const width = Math.max(4, ...nodes.map((n) => n.node.length));
  process.stdout.write(`${nodes.length} node${nodes.length === 1 ? "" : "s"}, prefix "${prefix}", ${shardCount} shards, ${strategy}\n\n`);
  process.stdout.write(`${"NODE".padEnd(width)}  ${"ACTORS".padStart(7)}  ${"CALLS".padStart(9)}  ${"QUEUED".padStart(7)}  ${"DEEPEST".padStart(7)}  ${"REFUSED".padStart(7)}  CAPABILITIES\n`);
  for (const n of nodes) {
    const cells = [n.actors, n.callsServed, n.queued, n.deepestMailbox, n.overloaded].map((v, i) => String(v).padStart(i === 1 ? 9 : 7));
    process.stdout.write(`${n.node.padEnd(width)}  ${cells.join("  ")}  ${n.capabilities.join(", ") || "-"}\n`);
  }
  const all = [...new Set(nodes.flatMap((n) => n.capabilities))].sort();
  for (const c of all) {
    process.stdout.write(`\nshards of "${c}"\n`);
    for (const n of nodes.filter((x) => x.capabilities.includes(c))) {
      const owned = n.shards[c] ?? 0;
      const bar = "█".repeat(Math.round((owned / shardCount) * 40));
      process.stdout.write(`  ${n.node.padEnd(width)}  ${bar.padEnd(40)} ${String(owned).padStart(5)} (${((owned / shardCount) * 100).toFixed(1)} %)\n`);
    }
  }
  return 0;
}

function splitList(text: string | undefined): string[] {
  return (text ?? "").split(",").filter(Boolean);
}

async function request(nc: NatsConnection, subject: string, body: object, isCall: boolean, timeoutMs: number): Promise<number> {
  let data: Uint8Array;
  try {
    data = (await nc.request(subject, JSON.stringify(body), { timeout: timeoutMs + 1000 })).data;
  } catch (err) {
    throw new Error(classifyNatsError(err) === "no-responders" ? `no node serves ${subject} (no Mesh node hosts any capability)` : `no answer on ${subject}: ${(err as Error).message}`);
  }
  const reply = JSON.parse(new TextDecoder().decode(data)) as { ok: boolean; pid?: string; result?: unknown; error?: { code: string; message: string } };
  if (!reply.ok) throw new Error(`${reply.error?.code}: ${reply.error?.message}`);
  process.stdout.write(isCall ? `${JSON.stringify({ pid: reply.pid, result: reply.result })}\n` : "ok\n");
  return 0;
}

async function listReminders(nc: NatsConnection, bucket: string, actorType: string | undefined, id: string | undefined, asJson: boolean): Promise<number> {
  const reminders = await Reminders.read(nc, bucket, DEFAULT_STORAGE_TIMEOUT_MS);
  const shown = reminders.filter((r) => (actorType === undefined || r.actorType === actorType) && (id === undefined || r.id === id)).sort((a, b) => a.runAt - b.runAt);
  if (asJson) {
    for (const r of shown) process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  if (shown.length === 0) {
    process.stdout.write("no reminders\n");
    return 0;
  }
  process.stdout.write(`${"DUE".padEnd(24)}  ${"EVERY".padStart(9)}  ${"FAILED".padStart(6)}  ACTOR / NAME\n`);
  for (const r of shown) {
    const every = r.every > 0 ? `${r.every} ms` : "once";
    process.stdout.write(`${new Date(r.runAt).toISOString().padEnd(24)}  ${every.padStart(9)}  ${String(r.failures).padStart(6)}  ${r.actorType} ${JSON.stringify(r.id)} / ${r.name}\n`);
  }
  return 0;
}

async function getState(nc: NatsConnection, bucket: string, { capability, actorType, id }: Forget): Promise<number> {
  const key = stateKey(capability, actorType, id);
  const stored = await (await StateStore.bind(nc, bucket, DEFAULT_STORAGE_TIMEOUT_MS)).load(key);
  if (stored.bytes === undefined) {
    process.stderr.write(`mesh: no state stored for ${actorType} ${JSON.stringify(id)} (key ${key} in bucket ${bucket})\n`);
    return 1;
  }
  const record = readRecord(stored.bytes, key);
  process.stdout.write(`${JSON.stringify(record.state === undefined ? null : decodeState(record.state, key), jsonValue)}\n`);
  return 0;
}

/** Deletes the stored state, then asks every node to end its live activation of the actor, and waits for their answers. */
async function deleteState(nc: NatsConnection, bucket: string, prefix: string, actor: Forget, waitMs: number): Promise<number> {
  const { capability, actorType, id } = actor;
  await (await StateStore.bind(nc, bucket, DEFAULT_STORAGE_TIMEOUT_MS)).delete(stateKey(capability, actorType, id));
  const ended: string[] = [];
  let nodes = 0;
  const replies = await nc.requestMany(new Subjects(prefix).forget, encodeForget(actor), { strategy: RequestStrategy.Timer, maxWait: waitMs });
  for await (const reply of replies) {
    const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { node?: string; ended?: boolean };
    nodes++;
    if (answer.ended && answer.node) ended.push(answer.node);
  }
  const live = ended.length > 0 ? `its live activation on ${ended.join(", ")} ended` : "no node had it live";
  process.stdout.write(`deleted the state of ${actorType} ${JSON.stringify(id)}; ${live} (${nodes} node${nodes === 1 ? "" : "s"} answered)\n`);
  return 0;
}

/** msgpack values JSON has no form for: bytes as base64, big integers as strings. */
function jsonValue(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString("base64") };
  if (typeof value === "bigint") return value.toString();
  return value;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`mesh: ${err.message.split("\n")[0]}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
