// `mesh status`: every node of the cluster, its capabilities, live actors, calls
// served, mailboxes, and the shards of each capability it owns; apart, the
// callers: processes that run Mesh but host no capability (producers, tools).
import { RoutingTable, resolveStrategy } from "@mesh/core";
import type { NatsConnection } from "nats";
import { clusterStats } from "./cluster-stats.js";
import type { MetricsSnapshot } from "./metrics.js";

/** Flow control at a node or caller (docs/behaviour.md "Flow control"). */
interface Flow {
  /** Bytes it sent to other nodes that they have not read, and its sends waiting for room now. */
  unreadBytes: number;
  waiting: number;
  /** Sends that waited for room, and that were refused unsent (no room in time, too many waiting). */
  waited: number;
  refused: number;
  /** Casts it refused unsent because their owner said it refuses them (overload notices). */
  refusedAtSender: number;
  notices: { sent: number; received: number };
}

function flowOf(m: Partial<MetricsSnapshot> | undefined): Flow {
  const o = m?.outbound;
  return {
    unreadBytes: o?.bytes ?? 0,
    waiting: o?.waiting ?? 0,
    waited: (o?.waits.call ?? 0) + (o?.waits.cast ?? 0),
    refused: (o?.refused.call ?? 0) + (o?.refused.cast ?? 0),
    refusedAtSender: m?.castsRefusedAtSender ?? 0,
    notices: { sent: m?.overloadNotices?.sent ?? 0, received: m?.overloadNotices?.received ?? 0 },
  };
}

interface NodeStatus {
  node: string;
  /** The Mesh package's version, and the application's (`appVersion`). */
  version: string;
  appVersion: string;
  capabilities: string[];
  actors: number;
  callsServed: number;
  castsServed: number;
  crashes: number;
  /** Messages waiting in its mailboxes, the deepest mailbox, and calls and casts refused with OVERLOADED. */
  queued: number;
  deepestMailbox: number;
  overloaded: number;
  /** Activations that moved here and away with their state, and those that could not (live migration). */
  migrations: { in: number; out: number; refused: number };
  /** capability -> shards owned */
  shards: Record<string, number>;
  flow: Flow;
}

export async function status(nc: NatsConnection, prefix: string, asJson: boolean, waitMs: number): Promise<number> {
  const { infos, stats } = await clusterStats(nc, prefix, waitMs);
  const shardCount = Number(infos[0]?.metadata?.shards ?? 4096);
  const strategy = infos[0]?.metadata?.strategy ?? "rendezvous";
  const routes =
    strategy === "rendezvous" || strategy === "modulo" ? new RoutingTable(shardCount, resolveStrategy(strategy).fn) : undefined;
  // Each node's placement as its metrics report it (a node of a Mesh before placement keys reports none: every node by its id).
  routes?.setMembers(
    infos.map((i) => {
      const placement = stats.get(i.metadata!.node!)?.placement;
      const member = { node: i.metadata!.node!, capabilities: splitList(i.metadata?.capabilities), app: i.metadata?.app_version };
      return placement === undefined ? member : { ...member, ...placement, keys: true };
    }),
  );
  const hosts = (i: (typeof infos)[number]) => splitList(i.metadata?.capabilities).length > 0;
  const callers = infos
    .filter((i) => !hosts(i))
    .map((i) => ({
      node: i.metadata!.node!,
      version: i.version,
      appVersion: i.metadata?.app_version ?? "unknown",
      flow: flowOf(stats.get(i.metadata!.node!)),
    }))
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  const nodes: NodeStatus[] = infos
    .filter(hosts)
    .map((i) => {
      const node = i.metadata!.node!;
      const m = stats.get(node);
      const capabilities = splitList(i.metadata?.capabilities);
      const shards: Record<string, number> = {};
      for (const c of capabilities) shards[c] = routes?.table(c)?.shardCounts().get(node) ?? 0;
      return {
        node,
        version: i.version,
        appVersion: i.metadata?.app_version ?? "unknown",
        capabilities,
        actors: m?.actors ?? 0,
        callsServed: m?.callsServed ?? 0,
        castsServed: m?.castsServed ?? 0,
        crashes: m?.crashes ?? 0,
        queued: m?.queuedLetters ?? 0,
        deepestMailbox: m?.deepestMailbox ?? 0,
        overloaded: Object.values(m?.overloaded ?? {}).reduce((a, b) => a + b, 0),
        migrations: { in: m?.migrationsIn ?? 0, out: m?.migrationsOut ?? 0, refused: m?.migrationsRefused ?? 0 },
        shards,
        flow: flowOf(m),
      };
    })
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ prefix, shards: shardCount, strategy, nodes, callers }, null, 2)}\n`);
    return 0;
  }
  if (infos.length === 0) {
    process.stdout.write(`no Mesh node answered on prefix "${prefix}"\n`);
    return 1;
  }
  const width = Math.max(4, ...nodes.map((n) => n.node.length));
  const appWidth = Math.max(3, ...nodes.map((n) => n.appVersion.length));
  const plural = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
  const calling = callers.length > 0 ? `, ${plural(callers.length, "caller")} (hosting nothing)` : "";
  process.stdout.write(`${plural(nodes.length, "node")}${calling}, prefix "${prefix}", ${shardCount} shards, ${strategy}\n\n`);
  process.stdout.write(
    `${"NODE".padEnd(width)}  ${"APP".padEnd(appWidth)}  ${"ACTORS".padStart(7)}  ${"CALLS".padStart(9)}  ${"QUEUED".padStart(7)}  ${"DEEPEST".padStart(7)}  ${"REFUSED".padStart(7)}  CAPABILITIES\n`,
  );
  for (const n of nodes) {
    const cells = [n.actors, n.callsServed, n.queued, n.deepestMailbox, n.overloaded].map((v, i) => String(v).padStart(i === 1 ? 9 : 7));
    process.stdout.write(
      `${n.node.padEnd(width)}  ${n.appVersion.padEnd(appWidth)}  ${cells.join("  ")}  ${n.capabilities.join(", ") || "-"}\n`,
    );
  }
  const moved = nodes.filter((n) => n.migrations.in + n.migrations.out + n.migrations.refused > 0);
  if (moved.length > 0) process.stdout.write("\nmigrations (in / out / refused):\n");
  for (const n of moved)
    process.stdout.write(`  ${n.node.padEnd(width)}  ${n.migrations.in} / ${n.migrations.out} / ${n.migrations.refused}\n`);
  const flowing = [...nodes, ...callers].filter((n) =>
    Object.values(n.flow).some((v) => (typeof v === "number" ? v : v.sent + v.received) > 0),
  );
  if (flowing.length > 0) {
    const w = Math.max(width, ...flowing.map((n) => n.node.length));
    process.stdout.write(
      `\nflow control (UNREAD: bytes sent to other nodes, not yet read; REFUSED: unsent, no room in time; AT-SENDER: casts refused unsent after an overload notice)\n`,
    );
    process.stdout.write(
      `  ${"NODE".padEnd(w)}  ${["UNREAD", "WAITING", "WAITED", "REFUSED", "AT-SENDER"].map((h) => h.padStart(9)).join("  ")}  NOTICES SENT / RECEIVED\n`,
    );
    for (const { node, flow: f } of flowing) {
      const cells = [f.unreadBytes, f.waiting, f.waited, f.refused, f.refusedAtSender].map((v) => String(v).padStart(9));
      process.stdout.write(`  ${node.padEnd(w)}  ${cells.join("  ")}  ${f.notices.sent} / ${f.notices.received}\n`);
    }
  }
  if (callers.length > 0) process.stdout.write(`\ncallers: ${callers.map((c) => `${c.node} (${c.appVersion})`).join(", ")}\n`);
  const all = [...new Set(nodes.flatMap((n) => n.capabilities))].sort();
  for (const c of all) {
    process.stdout.write(`\nshards of "${c}"\n`);
    for (const n of nodes.filter((x) => x.capabilities.includes(c))) {
      const owned = n.shards[c] ?? 0;
      const bar = "█".repeat(Math.round((owned / shardCount) * 40));
      process.stdout.write(
        `  ${n.node.padEnd(width)}  ${bar.padEnd(40)} ${String(owned).padStart(5)} (${((owned / shardCount) * 100).toFixed(1)} %)\n`,
      );
    }
  }
  return 0;
}

function splitList(text: string | undefined): string[] {
  return (text ?? "").split(",").filter(Boolean);
}
