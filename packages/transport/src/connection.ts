import { readFileSync } from "node:fs";
import { connect, credsAuthenticator } from "nats";
import { MeshError } from "@mesh/core";
import type { ConnectionOptions, NatsConnection } from "nats";

/** The NATS URL used when none is given: `$NATS_URL`, else 127.0.0.1:4222. */
export function defaultServers(): string {
  return process.env.NATS_URL || "nats://127.0.0.1:4222";
}

/**
 * The reply (inbox) prefix the environment names: `$NATS_INBOX_PREFIX`, else
 * undefined. Under a configuration where each principal has its own prefix
 * (nats-secure.conf), it must be the one the server lets this user read.
 */
export function inboxPrefixFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.NATS_INBOX_PREFIX || undefined;
}

/**
 * Credentials from the environment, so that none has to be written into code
 * or a repository: `$NATS_CREDS` (a creds file: JWT and nkey seed), else
 * `$NATS_USER` with `$NATS_PASSWORD`, else `$NATS_TOKEN`. Empty when none is set.
 */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ConnectionOptions> {
  if (env.NATS_CREDS) return { authenticator: credsAuthenticator(readFileSync(env.NATS_CREDS)) };
  if (env.NATS_USER) return { user: env.NATS_USER, pass: env.NATS_PASSWORD ?? "" };
  if (env.NATS_TOKEN) return { token: env.NATS_TOKEN };
  return {};
}

/**
 * Opens the node's one NATS connection. `noAsyncTraces` is on (it doubles
 * request throughput); reconnects never give up, so a restarted server is
 * found again; replies come under `inboxPrefix`. Credentials come from the
 * environment (credentialsFromEnv); `options` (auth, TLS, …) override all of
 * these defaults. Throws CONNECTION_FAILED naming the URLs tried and the
 * client's reason (refused, authorization, TLS).
 */
export async function connectNats(
  servers: string | string[],
  name: string,
  options: Partial<ConnectionOptions> = {},
  inboxPrefix?: string,
): Promise<NatsConnection> {
  try {
    return await openConnection(servers, name, options, inboxPrefix);
  } catch (err) {
    const tried = [options.servers ?? servers].flat().map(withoutSecrets).join(", ");
    const e = err as { code?: string; message?: string };
    const reason = e.code && e.message && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : (e.message ?? String(err));
    throw new MeshError("CONNECTION_FAILED", `cannot connect to NATS at ${tried}: ${reason}`, { cause: err });
  }
}

function openConnection(
  servers: string | string[],
  name: string,
  options: Partial<ConnectionOptions>,
  inboxPrefix: string | undefined,
): Promise<NatsConnection> {
  return connect({
    servers,
    name,
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
    ...(inboxPrefix ? { inboxPrefix } : {}),
    ...credentialsFromEnv(),
    ...options,
  });
}

/**
 * Waits for `promise` at most `ms`; true when it resolved in time. Rejections
 * count as settled (false). For shutdown steps that must not hang while the
 * server is unreachable.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => false,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A server URL as it may be shown: whatever comes before its last `@` (`nats://user:pass@host`; a password with
 * `@` or `/` in it too, as an unencoded one that fails to connect has) becomes `***`.
 */
export function withoutSecrets(url: string): string {
  const at = url.lastIndexOf("@");
  if (at < 0) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? "";
  return `${scheme}***${url.slice(at)}`;
}
