// `mesh top`: a live view of a cluster over the admin API (admin-client.ts):
// its nodes, live actors per type, and the hottest actors of the last minute,
// redrawn in place every interval; fits an 80-column terminal. `--json`
// prints one view and exits.
import type { NatsConnection } from "nats";
import { readCluster } from "./admin-client.js";
import type { ClusterView } from "./admin-client.js";

export interface TopOptions {
  json: boolean;
  intervalMs: number;
  /** Views to draw before exiting; undefined: until interrupted. */
  count: number | undefined;
  waitMs: number;
  /** How many hot actors to show. */
  hot: number;
}

const WIDTH = 80;

export async function top(nc: NatsConnection, prefix: string, o: TopOptions): Promise<number> {
  if (o.json) {
    const view = await readCluster(nc, prefix, o.waitMs, o.hot);
    process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    return view.nodes.length > 0 ? 0 : 1;
  }
  const tty = process.stdout.isTTY === true;
  let previous: ClusterView | undefined;
  for (let drawn = 0; o.count === undefined || drawn < o.count; drawn++) {
    if (drawn > 0) await new Promise((resolve) => setTimeout(resolve, o.intervalMs));
    const view = await readCluster(nc, prefix, o.waitMs, o.hot);
    const text = render(view, previous, o.intervalMs);
    // On a terminal, redraw in place (cursor home, clear screen); otherwise one view after another.
    process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    previous = view;
  }
  return 0;
}

/** One view as text, at most WIDTH columns; calls per second from the change since `previous`. */
export function render(view: ClusterView, previous: ClusterView | undefined, intervalMs: number): string {
  const lines: string[] = [];
  const time = new Date(view.at).toISOString().slice(11, 19);
  const plural = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
  lines.push(`mesh top  prefix "${view.prefix}"  ${plural(view.nodes.length, "node")}  ${time} UTC  every ${intervalMs / 1000} s`);
  if (view.silent.length > 0) lines.push(`no answer from: ${view.silent.join(", ")}`);
  lines.push("");
  const cols = [7, 7, 8, 7, 7, 7, 7];
  const row = (name: string, cells: string[]) => `${fit(name, 18).padEnd(18)} ${cells.map((c, i) => c.padStart(cols[i]!)).join(" ")}`;
  lines.push(row("NODE", ["APP", "ACTORS", "CALLS/S", "QUEUED", "ERRORS", "RSS MiB", "LOOP ms"]));
  const seconds = previous === undefined ? 0 : (view.at - previous.at) / 1000;
  for (const n of view.nodes) {
    const before = previous?.nodes.find((p) => p.node === n.node);
    const rate = before === undefined || seconds <= 0 ? "-" : num(Math.max(0, n.callsServed - before.callsServed) / seconds);
    const name = n.leaseHeld ? n.node : `${n.node}!`;
    lines.push(
      row(name, [
        fit(n.appVersion, 7),
        num(n.actors),
        rate,
        num(n.queued),
        num(n.errors),
        num(n.rssBytes / 1024 / 1024),
        n.eventLoopP99Ms.toFixed(1),
      ]),
    );
  }
  if (view.nodes.some((n) => !n.leaseHeld)) lines.push("! its lease lapsed: its turns wait until it holds the lease again");
  lines.push("");
  lines.push(
    ...wrap(
      "TYPES",
      Object.entries(view.types).map(([t, k]) => `${t} ${num(k)}`),
    ),
  );
  lines.push("");
  lines.push(
    `${"HOTTEST ACTORS, LAST MINUTE".padEnd(36)} ${"NODE".padEnd(18)} ${"CALLS/S".padStart(8)} ${"ERR".padStart(5)} ${"P99 ms".padStart(7)}`,
  );
  if (view.hot.length === 0) lines.push("(none yet: turns are sampled, one in 32)");
  for (const a of view.hot)
    lines.push(
      `${fit(`${a.actorType}/${a.id}`, 36).padEnd(36)} ${fit(a.node, 18).padEnd(18)} ${num(a.perSecond).padStart(8)} ${num(a.errors).padStart(5)} ${(a.p99Ms === undefined || a.p99Ms === null ? "-" : a.p99Ms.toFixed(2)).padStart(7)}`,
    );
  return lines.map((l) => fit(l, WIDTH)).join("\n");
}

/** `text` with its control characters shown as "?" (an actor id may hold any: none reaches the terminal), cut to `width` with an ellipsis. */
function fit(text: string, width: number): string {
  const safe = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  return safe.length <= width ? safe : `${safe.slice(0, width - 1)}…`;
}

function num(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** `label` then `items`, wrapped at WIDTH. */
function wrap(label: string, items: string[]): string[] {
  const lines: string[] = [];
  let line = label;
  for (const item of items.length > 0 ? items : ["(none live)"]) {
    if (line.length + 2 + item.length > WIDTH) {
      lines.push(line);
      line = " ".repeat(label.length);
    }
    line += `  ${item}`;
  }
  lines.push(line);
  return lines;
}
