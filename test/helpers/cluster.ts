// Shared set-up for the integration tests: a real nats-server per test file,
// nodes that are always stopped, and polling with a deadline.
import { fileURLToPath } from "node:url";
import type { ExecutionContext, TestFn } from "ava";
import { Mesh } from "@mesh/runtime";
import type { MeshOptions } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import type { NatsServer } from "@mesh/runtime/testing";

/** The repository's nats.conf (this file runs from test/build/helpers/), which the demo uses too. */
export const NATS_CONF = fileURLToPath(new URL("../../../nats.conf", import.meta.url));

export interface ClusterContext {
  server: NatsServer;
  nodes: Mesh[];
}

/**
 * Gives every test of the file one nats-server (`t.context.server`), then runs
 * `setup`, and stops every node that `startNode` started, and the server, even
 * when a test fails.
 */
export function useNatsServer<C extends ClusterContext>(test: TestFn<C>, setup?: (t: ExecutionContext<C>) => Promise<void>): void {
  test.before(async (t) => {
    t.context.server = await startNatsServer({ config: NATS_CONF });
    t.context.nodes = [];
    await setup?.(t);
  });
  test.after.always(async (t) => {
    const stopped = await Promise.allSettled((t.context.nodes ?? []).map((n) => n.stop()));
    await t.context.server?.stop();
    // A node whose stop() failed is a bug to see, not to swallow.
    const failed = stopped.flatMap((s) => (s.status === "rejected" ? [String(s.reason)] : []));
    if (failed.length > 0) throw new Error(`stop() failed on ${failed.length} node(s): ${failed.join("; ")}`);
  });
}

/** Starts a node on the file's server; it is stopped after the file's tests. */
export async function startNode<C extends ClusterContext>(t: ExecutionContext<C>, options: MeshOptions = {}): Promise<Mesh> {
  const node = await Mesh.start({ servers: t.context.server.url, heartbeatMs: 200, ...options });
  t.context.nodes.push(node);
  return node;
}

let unique = 0;
/** A node id that no other test of the file uses. */
export function nodeId(name: string): string {
  return `${name}-${process.pid}-${unique++}`;
}

/**
 * Polls `condition` until it returns true, or fails after `timeoutMs` with
 * `what`. The way tests wait: for a condition, never for a fixed time.
 */
export async function eventually(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Checks `condition` every 10 ms for `forMs` and fails the moment it is false:
 * for invariants that must hold over a span of time (not a wait for an event).
 */
export async function holds(condition: () => boolean, what: string, forMs: number): Promise<void> {
  const until = Date.now() + forMs;
  while (Date.now() < until) {
    if (!condition()) throw new Error(`no longer true: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Two different ids with the same shard. */
export function sameShardIds(mesh: Mesh, prefix: string): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const id = `${prefix}${i}`;
    const shard = mesh.shardFor(id);
    const other = seen.get(shard);
    if (other !== undefined) return [other, id];
    seen.set(shard, id);
  }
}
