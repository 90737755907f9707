import { connect } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";

/** The NATS URL used when none is given: `$NATS_URL`, else 127.0.0.1:4222. */
export function defaultServers(): string {
  return process.env.NATS_URL || "nats://127.0.0.1:4222";
}

/**
 * Opens the node's one NATS connection. `noAsyncTraces` is on (it doubles
 * request throughput); reconnects never give up, so a restarted server is
 * found again. `options` (auth, TLS, …) override these defaults.
 */
export function connectNats(servers: string | string[], name: string, options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  return connect({
    servers,
    name,
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
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
    return await Promise.race([promise.then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}
