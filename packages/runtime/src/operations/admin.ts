// The admin API (docs/observability.md "Admin API", PROTOCOL.md): what an
// operator asks a node on its status subject, `<prefix>.status.<nodeId>`. An
// empty request answers the node's metrics, as it always did; a JSON request
// `{"q": …}` answers one question. Under the shipped secure config only the
// operator role may ask. Nothing here runs until someone asks; each answer is
// bounded (top lists and reminders by `n`, a shard map by the shard count).
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { IntervalHistogram } from "node:perf_hooks";
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { ActorView } from "../actors/actor-view.js";
import type { SubscriptionReport } from "../events/sources.js";
import type { HotActor, HotOrder, TypeRate } from "./hot-actors.js";
import type { MetricsSnapshot } from "./metrics.js";

/** What the node tells the admin API, read when a question comes. */
export interface AdminSources {
  readonly nodeId: string;
  node(): {
    node: string;
    version: string;
    appVersion: string;
    capabilities: string[];
    actorTypes: string[];
    lease: { held: boolean };
    uptimeMs: number;
  };
  types(): Record<string, number>;
  top(n: number, order: HotOrder): HotActor[];
  rates(): Record<string, TypeRate>;
  actor(actorType: string, id: string): ActorView[];
  subscriptions(): SubscriptionReport[];
  reminders(
    withinMs: number,
    n: number,
  ): { capability: string; actorType: string; id: string; name: string; runAt: number; failures: number }[];
  /** The owner of each shard of `capability` as this node sees it, as indexes into `nodes`; undefined when no node hosts it. */
  shards(capability: string): { shards: number; nodes: string[]; owners: number[] } | undefined;
  metrics(): MetricsSnapshot;
}

/** The questions, and what each answers. */
const QUESTIONS = {
  node: (s, _q, a) => ({ ...s.node(), ...a.load() }),
  types: (s) => s.types(),
  top: (s, q) => s.top(count(q.n, 10, 100), order(q.by)),
  rates: (s) => s.rates(),
  actor: (s, q) => s.actor(text(q.actor, "actor"), id(q.id)),
  subscriptions: (s) => s.subscriptions(),
  reminders: (s, q) => s.reminders(count(q.withinMs, 60_000, 24 * 3600_000), count(q.n, 100, 1000)),
  shards: (s, q) => s.shards(text(q.capability, "capability")) ?? null,
} satisfies Record<string, (s: AdminSources, q: Record<string, unknown>, a: Admin) => unknown>;

export type AdminQuestion = keyof typeof QUESTIONS;

export class Admin {
  /** The event loop's delay since the previous `node` question (a histogram sampled every 20 ms, from the first one on). */
  #delay: IntervalHistogram | undefined;

  constructor(private readonly sources: AdminSources) {}

  /** The answer to one request on the status subject, as JSON text; never throws. */
  answer(data: Uint8Array): string {
    if (data.length === 0) return JSON.stringify(this.sources.metrics());
    try {
      let q: unknown;
      try {
        q = JSON.parse(new TextDecoder().decode(data));
      } catch (err) {
        throw new MeshError("BAD_REQUEST", `an admin request is JSON: ${messageOf(err)}`);
      }
      if (typeof q !== "object" || q === null || Array.isArray(q)) throw new MeshError("BAD_REQUEST", "an admin request is a JSON object");
      const name = (q as { q?: unknown }).q;
      if (typeof name !== "string" || !Object.hasOwn(QUESTIONS, name))
        throw new MeshError("BAD_REQUEST", `"q" must be one of ${Object.keys(QUESTIONS).join(", ")}`);
      const value = QUESTIONS[name as AdminQuestion](this.sources, q as Record<string, unknown>, this);
      return JSON.stringify({ ok: true, node: this.sources.nodeId, q: name, answer: value });
    } catch (err) {
      const code = err instanceof MeshError ? err.code : "INTERNAL";
      return JSON.stringify({ ok: false, error: { code, message: messageOf(err) } });
    }
  }

  /** The process's load: uptime, CPU, memory, event-loop delay. */
  load(): Record<string, unknown> {
    if (this.#delay === undefined) {
      this.#delay = monitorEventLoopDelay({ resolution: 20 });
      this.#delay.enable();
    }
    const d = this.#delay;
    const ms = (ns: number) => (Number.isFinite(ns) ? ns / 1e6 : 0);
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const delay = { p50: ms(d.percentile(50)), p99: ms(d.percentile(99)), max: ms(d.max) };
    d.reset();
    return {
      cpu: { userMs: cpu.user / 1000, systemMs: cpu.system / 1000 },
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external },
      eventLoopDelayMs: delay,
    };
  }

  stop(): void {
    this.#delay?.disable();
  }
}

function count(v: unknown, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max)
    throw new MeshError("BAD_REQUEST", `expected a whole number from 1 to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

function text(v: unknown, what: string): string {
  if (typeof v !== "string" || v === "") throw new MeshError("BAD_REQUEST", `"${what}" must be a non-empty string`);
  return v;
}

/** An actor id: any string, the empty one too (as the ingress takes it). */
function id(v: unknown): string {
  if (typeof v !== "string") throw new MeshError("BAD_REQUEST", `"id" must be a string`);
  return v;
}

function order(v: unknown): HotOrder {
  if (v === undefined) return "calls";
  if (v === "calls" || v === "errors" || v === "p99") return v;
  throw new MeshError("BAD_REQUEST", `"by" must be calls, errors or p99, got ${JSON.stringify(v)}`);
}
