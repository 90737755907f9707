// Reading every entry of a KV bucket under a key once (the reminders' scan,
// the nodes' records at discovery): a watch that delivers what is stored and
// is stopped once it has.
import { MeshError } from "@mesh/core";
import type { KV, KvEntry, QueuedIterator } from "nats";

/**
 * Calls `each` with every stored (not deleted) entry under `key`, then
 * returns. The watch delivers what is stored, then calls initializedFn in
 * order after the last entry (at once, inside watch(), when there is none).
 * `started` learns of the watch once it is set up (to stop it from outside);
 * when it returns false the watch is stopped and nothing is read. Throws
 * STORAGE_UNAVAILABLE when the watch ends before it has delivered everything.
 */
export async function readAll(
  kv: KV,
  key: string,
  each: (e: KvEntry) => void,
  started: (watch: QueuedIterator<KvEntry>) => boolean = () => true,
): Promise<void> {
  let initialized = false;
  let watch: QueuedIterator<KvEntry> | undefined;
  try {
    watch = await kv.watch({
      key,
      initializedFn: () => {
        initialized = true;
        watch?.stop();
      },
    });
    releaseMonitorOnClose(watch);
    if (!started(watch)) return;
    if (initialized) watch.stop();
    for await (const e of watch) if (e.operation === "PUT") each(e);
    // Ended early (stopped from outside, or its subscription closed with the connection): what was read is not all.
    if (!initialized) throw new MeshError("STORAGE_UNAVAILABLE", `the watch of ${key} ended before it had read every entry`);
  } finally {
    watch?.stop();
  }
}

/**
 * Works around a leak in nats.js 2.29 (lib/jetstream/jsclient.js,
 * JetStreamClientImpl.subscribe, which kv.watch() uses): it makes the watch's
 * subscription, then creates the ordered consumer (a request to the server),
 * then starts the consumer's idle-heartbeat monitor, a ref'd 5 s setInterval.
 * The monitor is cancelled only by a `closed` callback the subscription
 * registered when it was made. When the subscription closes before the monitor
 * exists (the connection drains, as Mesh.stop() does, while the consumer's
 * reply is on its way in with the drain's PONG), that callback has run already
 * and found nothing, and the monitor runs for ever: an ordered consumer's
 * monitor does nothing while disconnected, but never stops, and the process
 * cannot exit. So: once the watch's subscription is closed, cancel its monitor
 * (again; cancel() is idempotent). `_data` (the subscription) and `monitor` are
 * nats.js internals; without them this does nothing (and test/exit.test.ts,
 * which catches the leak, fails).
 */
function releaseMonitorOnClose(watch: QueuedIterator<KvEntry>): void {
  const sub = (watch as { _data?: unknown })._data as { closed?: Promise<unknown>; monitor?: { cancel(): void } | null } | undefined;
  if (typeof sub?.closed?.then !== "function") return;
  const cancel = () => sub.monitor?.cancel();
  sub.closed.then(cancel, cancel);
}
