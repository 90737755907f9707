// What the admin API reads of a running node (operations/admin.ts): its parts,
// its event dispatchers and its reminders, each read when a question comes.
// Imports: every room below.
import type { Reminders } from "../timers/reminders.js";
import type { EventSources } from "../events/sources.js";
import type { AdminSources } from "../operations/admin.js";
import type { MetricsSnapshot } from "../operations/metrics.js";
import type { ResolvedOptions } from "../options.js";
import { version } from "../version.js";
import type { NodeParts } from "./parts.js";

/** The node as the admin API sees it. */
export interface AdminNode {
  readonly o: ResolvedOptions;
  readonly parts: NodeParts;
  events(): EventSources | undefined;
  reminders(): Reminders | undefined;
  metrics(): MetricsSnapshot;
  /** When the node started (epoch ms). */
  readonly startedAt: number;
}

export function adminSources(n: AdminNode): AdminSources {
  const { membership, actors, metrics, routes, lease } = n.parts;

  return {
    nodeId: n.o.nodeId,
    node: () => ({
      node: n.o.nodeId,
      version,
      appVersion: n.o.appVersion,
      capabilities: [...membership.self.capabilities],
      actorTypes: actors.actorTypes(),
      lease: { held: lease.holdsNow() },
      uptimeMs: Date.now() - n.startedAt,
    }),
    types: () => actors.views.byType(),
    top: (count, order) => metrics.hot.top(count, order),
    rates: () => metrics.hot.rates(),
    actor: (actorType, id) => actors.views.of(actorType, id),
    subscriptions: () => n.events()?.report() ?? [],
    reminders: (withinMs, count) => {
      const until = Date.now() + withinMs;
      const due = [];
      for (const r of n.reminders()?.held() ?? []) if (r.runAt <= until) due.push(r); // no copy of what is not due
      return due
        .sort((a, b) => a.runAt - b.runAt)
        .slice(0, count)
        .map(({ capability, actorType, id, name, runAt, failures }) => ({ capability, actorType, id, name, runAt, failures }));
    },
    shards: (capability) => {
      const table = routes.table(capability);
      if (table === undefined) return undefined;
      const nodes: string[] = [];
      const index = new Map<string, number>();
      const owners = Array.from({ length: n.o.shards }, (_, shard) => {
        const owner = table.owner(shard);
        let i = index.get(owner);
        if (i === undefined) index.set(owner, (i = nodes.push(owner) - 1));
        return i;
      });
      return { shards: n.o.shards, nodes, owners };
    },
    metrics: () => n.metrics(),
  };
}
