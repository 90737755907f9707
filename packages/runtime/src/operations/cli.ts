#!/usr/bin/env node
// The `mesh` command: run a node, look at the cluster, call an actor. This entry
// reads the command line, runs `mesh node` itself and hands every other command
// to its own file (cli-status.ts, cli-call.ts, cli-state.ts (also `mesh actor`),
// cli-reminders.ts, cli-events.ts).
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import type { ConnectionOptions, NatsConnection } from "nats";
import { checkToken } from "@mesh/core/internal";
import { bucketName, inboxPrefixFromEnv } from "@mesh/transport";
import { Mesh } from "../mesh.js";
import { reminderBucket } from "../timers/reminders.js";
import type { ActorClass } from "../types.js";
import { eventsReport } from "./cli-events.js";
import { UsageError, connected, json, natsAuth, number, options } from "./cli-arguments.js";
import { request } from "./cli-call.js";
import { HELP } from "./cli-help.js";
import { listReminders } from "./cli-reminders.js";
import { deleteState, getState, resetActor } from "./cli-state.js";
import { status } from "./cli-status.js";
import { top } from "./cli-top.js";
import { serveConsole } from "./cli-console.js";

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
  const toolInbox =
    inboxPrefix ??
    inboxPrefixFromEnv() ??
    ((values.user ?? process.env.NATS_USER) ? `_INBOX_${values.user ?? process.env.NATS_USER}` : undefined);
  const withConnection = (run: (nc: NatsConnection) => Promise<number>) =>
    connected(server, toolInbox ? { ...auth, inboxPrefix: toolInbox } : auth, run);
  switch (command) {
    case "node":
      return runNode(server, inboxPrefix ? { ...auth, inboxPrefix } : auth, values.prefix, values.actors, values.capabilities, {
        nodeId: values["node-id"],
        appVersion: values["app-version"],
        standbyMs: values["standby-ms"] === undefined ? undefined : Number(values["standby-ms"]),
      });
    case "status":
      return withConnection((nc) => status(nc, values.prefix, values.json, number(values.wait, "--wait")));
    case "top":
      return withConnection((nc) =>
        top(nc, values.prefix, {
          json: values.json,
          intervalMs: number(values.interval, "--interval"),
          count: values.count === undefined ? undefined : number(values.count, "--count"),
          waitMs: number(values.wait, "--wait"),
          hot: number(values.hot, "--hot"),
        }),
      );
    case "console": {
      const port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`--port must be a port number (0: any free one), got ${values.port}`);
      const bucket = values.bucket ?? bucketName(values.prefix, "state");
      return withConnection((nc) =>
        serveConsole(nc, values.prefix, { port, host: values.host, waitMs: number(values.wait, "--wait"), bucket }),
      );
    }
    case "events":
      return withConnection((nc) => eventsReport(nc, values.prefix, values.json, number(values.wait, "--wait")));
    case "call":
    case "cast": {
      const [capability, actor, id, payload] = positionals;
      if (!capability || !actor || id === undefined)
        throw new UsageError(`mesh ${command} needs <capability> <actor> <id>; run "mesh ${command} --help"`);
      const body = {
        actor,
        id,
        payload: payload === undefined ? {} : json(payload, "the payload"),
        ...(values.init ? { initArg: json(values.init, "--init") } : {}),
        ...(command === "call" ? { timeoutMs: number(values.timeout, "--timeout") } : {}),
      };
      return withConnection((nc) =>
        request(nc, `${values.prefix}.${command}.${capability}`, body, command === "call", number(values.timeout, "--timeout")),
      );
    }
    case "reminders": {
      if (positionals[0] !== "list") throw new UsageError(`mesh reminders needs list; run "mesh reminders --help"`);
      return withConnection((nc) => listReminders(nc, reminderBucket(values.prefix), values.actor, values.id, values.json));
    }
    case "actor": {
      const [verb, capability, actorType, id] = positionals;
      if (verb !== "reset" || !capability || !actorType || id === undefined)
        throw new UsageError(`mesh actor needs reset <capability> <actorType> <id>; run "mesh actor --help"`);
      const actor = { capability: checkToken(capability, "capability"), actorType, id };
      return withConnection((nc) => resetActor(nc, values.prefix, actor, number(values.wait, "--wait")));
    }
    case "state": {
      const [verb, capability, actorType, id] = positionals;
      if ((verb !== "get" && verb !== "delete") || !capability || !actorType || id === undefined)
        throw new UsageError(`mesh state needs get|delete <capability> <actorType> <id>; run "mesh state --help"`);
      const actor = { capability: checkToken(capability, "capability"), actorType, id };
      const bucket = values.bucket ?? bucketName(values.prefix, "state");
      return withConnection((nc) =>
        verb === "get" ? getState(nc, bucket, actor) : deleteState(nc, bucket, values.prefix, actor, number(values.wait, "--wait")),
      );
    }
  }
  return 2;
}

/** The process that started this one, read as this module loads: a parent gone before the node serves is seen too. */
const parent = process.ppid;

/** Runs a node until SIGINT or SIGTERM, or until its parent process is gone. It stays in the entry: a module that fails to load is reported "imported from …/cli.js". */
async function runNode(
  server: string,
  auth: Partial<ConnectionOptions>,
  prefix: string,
  actorsModule: string | undefined,
  capabilities: string,
  ids: { nodeId: string | undefined; appVersion: string | undefined; standbyMs: number | undefined },
): Promise<number> {
  if (!actorsModule) throw new UsageError(`mesh node needs --actors <module.js>; run "mesh node --help"`);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(resolve(actorsModule)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot load ${actorsModule}: ${(err as Error).message}`);
  }
  const actors = Object.values(exports).filter(
    (v): v is ActorClass =>
      typeof v === "function" && typeof (v as { prototype?: { handleCall?: unknown } }).prototype?.handleCall === "function",
  );
  if (actors.length === 0) throw new Error(`${actorsModule} exports no actor class (a class with a handleCall method)`);
  const mesh = await Mesh.start({
    servers: server,
    prefix,
    actors,
    capabilities: capabilities.split(",").filter(Boolean),
    nats: auth,
    ...(ids.nodeId ? { nodeId: ids.nodeId } : {}),
    ...(ids.appVersion ? { appVersion: ids.appVersion } : {}),
    ...(ids.standbyMs === undefined ? {} : { standbyMs: ids.standbyMs }),
  });
  // The signal handlers go in before the line that says the node serves: a signal sent on seeing it is handled.
  // Orphaned counts as a signal: `npx mesh node` runs it under a shell, and a SIGTERM to npx ends npx and the
  // shell but does not reach this process, whose parent then changes (`npm run mesh` execs it: the signal arrives).
  let orphanWatch: ReturnType<typeof setInterval> | undefined;
  const signalled = new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    const orphaned = () => process.ppid !== parent && done();
    orphanWatch = setInterval(orphaned, 500);
    orphanWatch.unref();
    orphaned();
  });
  process.stdout.write(
    `mesh: node ${mesh.nodeId} serving ${actors.map((a) => a.actorType ?? a.name).join(", ")}; capabilities: ${capabilities || "none"}\n`,
  );
  await signalled;
  clearInterval(orphanWatch);
  await mesh.stop();
  process.stdout.write(`mesh: node ${mesh.nodeId} stopped\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`mesh: ${err.message.split("\n")[0]}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
