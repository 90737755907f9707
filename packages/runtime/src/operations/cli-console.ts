// `mesh console --port`: a web page of the cluster, served by the CLI itself
// (node:http, no other server, nothing to build, nothing from a CDN). The page
// (console-page.ts) polls two JSON endpoints that this process answers over
// NATS with the admin API (admin-client.ts): `/api/cluster`, the whole view,
// and `/api/actor`, one actor's live view on every node and its stored state.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { NatsConnection } from "nats";
import { MeshError } from "@mesh/core";
import { checkToken, messageOf } from "@mesh/core/internal";
import { askNode, readCluster } from "./admin-client.js";
import type { ClusterView } from "./admin-client.js";
import { jsonValue, readState } from "./cli-state.js";
import { CONSOLE_PAGE } from "./console-page.js";
import { LATENCY_BUCKETS_MS } from "./metrics.js";
import type { TypeRate } from "./hot-actors.js";

export interface ConsoleOptions {
  port: number;
  host: string;
  waitMs: number;
  /** The state bucket, for stored states. */
  bucket: string;
}

/** Serves the console until SIGINT or SIGTERM. */
export async function serveConsole(nc: NatsConnection, prefix: string, o: ConsoleOptions): Promise<number> {
  const api = new ConsoleApi(nc, prefix, o);
  const server = createServer((req, res) => void api.handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : o.port;
  api.port = port;
  process.stdout.write(`mesh console: http://${o.host}:${port}/ (prefix "${prefix}"; Ctrl-C to stop)\n`);
  // Until Ctrl-C or SIGTERM, or until the NATS connection is gone for good (the tool does not reconnect).
  const closed = await Promise.race([
    new Promise<false>((resolve) => {
      process.once("SIGINT", () => resolve(false));
      process.once("SIGTERM", () => resolve(false));
    }),
    nc.closed().then(() => true),
  ]);
  if (closed) process.stderr.write("mesh console: the NATS connection closed; stopping\n");
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return closed ? 1 : 0;
}

/** What one node adds to the cluster view on the page: rates since the previous read. */
interface NodeRates {
  callsPerSecond: number | null;
  errorsPerSecond: number | null;
  p99Ms: number | null;
}

/** Readings closer together than this share one read (two tabs, a reload): rates need time between readings. */
const MIN_READ_MS = 500;

class ConsoleApi {
  /** The port it listens on: a request must name this host and port (no page elsewhere can reach it by DNS rebinding). */
  port = 0;
  #previous: ClusterView | undefined;
  #reading: { at: number; answer: Promise<object> } | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly o: ConsoleOptions,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://console");
      const hosts = [`127.0.0.1:${this.port}`, `localhost:${this.port}`, `${this.o.host}:${this.port}`, `[::1]:${this.port}`];
      if (!hosts.includes(req.headers.host ?? "")) return send(res, 421, "text/plain", "this console answers only to its own address");
      if (req.method !== "GET") return send(res, 405, "text/plain", "GET only");
      if (url.pathname === "/") return send(res, 200, "text/html; charset=utf-8", CONSOLE_PAGE);
      if (url.pathname === "/api/cluster") return send(res, 200, "application/json", JSON.stringify(await this.#shared()));
      if (url.pathname === "/api/actor")
        return send(res, 200, "application/json", JSON.stringify(await this.actor(url.searchParams), jsonValue));
      return send(res, 404, "text/plain", "not found");
    } catch (err) {
      const code = err instanceof MeshError ? err.code : "INTERNAL";
      return send(
        res,
        err instanceof MeshError && err.code === "BAD_REQUEST" ? 400 : 500,
        "application/json",
        JSON.stringify({ error: { code, message: messageOf(err) } }),
      );
    }
  }

  /** One read for every request within MIN_READ_MS of it (and the one under way). */
  #shared(): Promise<object> {
    const now = Date.now();
    if (this.#reading === undefined || now - this.#reading.at >= MIN_READ_MS) this.#reading = { at: now, answer: this.cluster() };
    return this.#reading.answer;
  }

  /** The cluster now, with each node's rates since the previous read, shard maps, type rates, event lag and reminders. */
  async cluster(): Promise<object> {
    const view = await readCluster(this.nc, this.prefix, this.o.waitMs, 10);
    const previous = this.#previous;
    this.#previous = view;
    const seconds = previous === undefined ? 0 : (view.at - previous.at) / 1000;
    const nodes = view.nodes.map((n): typeof n & NodeRates => {
      const before = previous?.nodes.find((p) => p.node === n.node);
      if (before === undefined || seconds <= 0) return { ...n, callsPerSecond: null, errorsPerSecond: null, p99Ms: null };
      const delta = n.latency.map((c, i) => c - (before.latency[i] ?? 0));
      return {
        ...n,
        callsPerSecond: Math.max(0, n.callsServed - before.callsServed) / seconds,
        errorsPerSecond: Math.max(0, n.errors - before.errors) / seconds,
        p99Ms: histogramP99(delta),
      };
    });
    const ask = <T>(node: string, q: object) => askNode<T>(this.nc, this.prefix, node, q, this.o.waitMs).catch(() => undefined);
    const capabilities = [...new Set(view.nodes.flatMap((n) => n.capabilities))].sort();
    const shards = Object.fromEntries(
      await Promise.all(
        capabilities.map(async (c) => {
          const holder = view.nodes.find((n) => n.capabilities.includes(c))!;
          return [c, await ask(holder.node, { q: "shards", capability: c })] as const;
        }),
      ),
    );
    const perNode = await Promise.all(
      view.nodes.map(async (n) => ({
        node: n.node,
        rates: (await ask<Record<string, TypeRate>>(n.node, { q: "rates" })) ?? {},
        subscriptions:
          (await ask<{ subscription: string; handled: number; deadLetters: number; dispatchers: { lag: number }[] }[]>(n.node, {
            q: "subscriptions",
          })) ?? [],
        reminders: (await ask<{ actorType: string; id: string; name: string; runAt: number }[]>(n.node, { q: "reminders", n: 20 })) ?? [],
      })),
    );
    const rates: Record<string, TypeRate> = {};
    for (const { rates: r } of perNode)
      for (const [type, t] of Object.entries(r)) {
        const sum = (rates[type] ??= { perSecond: 0, errors: 0, p99Ms: undefined });
        sum.perSecond += t.perSecond;
        sum.errors += t.errors;
        if (t.p99Ms !== undefined && t.p99Ms !== null) sum.p99Ms = Math.max(sum.p99Ms ?? 0, t.p99Ms);
      }
    const subscriptions = perNode.flatMap((p) =>
      p.subscriptions.map((s) => ({
        node: p.node,
        subscription: s.subscription,
        handled: s.handled,
        deadLetters: s.deadLetters,
        lag: s.dispatchers.reduce((a, d) => a + d.lag, 0),
      })),
    );
    const reminders = perNode
      .flatMap((p) => p.reminders.map((r) => ({ node: p.node, ...r })))
      .sort((a, b) => a.runAt - b.runAt)
      .slice(0, 20);
    return { ...view, nodes, shards, rates, subscriptions, reminders };
  }

  /** One actor: its live activations on every node, and its stored state (durable actors). */
  async actor(params: URLSearchParams): Promise<object> {
    const capability = checkToken(params.get("capability") ?? "", "capability");
    const actorType = params.get("type") ?? "";
    const id = params.get("id") ?? "";
    if (actorType === "") throw new MeshError("BAD_REQUEST", "the actor's type is missing");
    const view = this.#previous ?? (await readCluster(this.nc, this.prefix, this.o.waitMs, 1));
    const live = (
      await Promise.all(
        view.nodes.map(async (n) => ({
          node: n.node,
          activations:
            (await askNode<object[]>(this.nc, this.prefix, n.node, { q: "actor", actor: actorType, id }, this.o.waitMs).catch(() => [])) ??
            [],
        })),
      )
    ).filter((l) => l.activations.length > 0);
    const stored = await readState(this.nc, this.o.bucket, { capability, actorType, id }).catch((err: unknown) => ({
      error: messageOf(err),
    }));
    return { capability, actorType, id, live, stored };
  }
}

/** The 99th percentile of a latency histogram's counts (the upper bound of its bucket), or null when it is empty. */
function histogramP99(counts: number[]): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= 0.99 * total) return LATENCY_BUCKETS_MS[i] ?? null; // null: past the last bound (10 s)
  }
  return null;
}

/** The page runs its own inline script and style, talks to this server only, and is framed nowhere. */
const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
};

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "Content-Type": type, ...SECURITY_HEADERS });
  res.end(body);
}
