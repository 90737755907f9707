// Reading the `mesh` command line: its options, the checks on their values (a
// UsageError exits with 2), and the NATS connection the flags and environment describe.
import { readFileSync } from "node:fs";
import { connect, credsAuthenticator } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";
import { credentialsFromEnv, withoutSecrets } from "@mesh/transport";

/** A one-line error for the user; the exit code says what kind. */
export class UsageError extends Error {}

export const options = {
  server: { type: "string", short: "s" },
  prefix: { type: "string", short: "p", default: "mesh" },
  help: { type: "boolean", short: "h", default: false },
  actors: { type: "string" },
  capabilities: { type: "string", default: "" },
  "node-id": { type: "string" },
  "app-version": { type: "string" },
  "standby-ms": { type: "string" },
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
  interval: { type: "string", default: "1000" },
  count: { type: "string" },
  hot: { type: "string", default: "10" },
  port: { type: "string", default: "8080" },
  host: { type: "string", default: "127.0.0.1" },
} as const;

export function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON: ${text}`);
  }
}

export function number(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${what} must be a positive number, got ${text}`);
  return n;
}

/** Credentials and TLS from the flags, over what the environment gives (credentialsFromEnv). */
export function natsAuth(user: string | undefined, creds: string | undefined, tlsCa: string | undefined): Partial<ConnectionOptions> {
  const auth: Partial<ConnectionOptions> = { ...credentialsFromEnv() };
  if (creds) auth.authenticator = credsAuthenticator(readFileSync(creds));
  if (user) Object.assign(auth, { user, pass: process.env.NATS_PASSWORD ?? "" });
  if (tlsCa) auth.tls = { caFile: tlsCa };
  return auth;
}

export async function connected(
  server: string,
  auth: Partial<ConnectionOptions>,
  run: (nc: NatsConnection) => Promise<number>,
): Promise<number> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: server, reconnect: false, timeout: 3000, name: "mesh-cli", ...auth });
  } catch (err) {
    throw new Error(`cannot connect to ${withoutSecrets(server)}: ${(err as Error).message}`);
  }
  try {
    return await run(nc);
  } finally {
    await nc.close();
  }
}
