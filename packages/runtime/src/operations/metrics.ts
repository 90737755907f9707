// What a node counts, as one table (METRICS): each metric once, with where its
// value comes from and the Prometheus series it makes. The snapshot type
// (MetricsSnapshot), the node's counters (NodeMetrics), `mesh.metrics()` and
// the Prometheus endpoint (prometheus.ts) are all made from it; adding a metric
// is a row here and the line that counts it (and its line in docs/observability.md).
import type { ErrorCode } from "@mesh/core";
import type { OutboundReport } from "@mesh/transport";
import type { SubscriptionReport } from "../events/sources.js";
import { HotActors, type HotKey } from "./hot-actors.js";

/** The outbound report of a node without flow control (`maxOutboundBytes: Infinity`). */
export const NO_OUTBOUND: OutboundReport = { bytes: 0, waiting: 0, waits: { call: 0, cast: 0 }, refused: { call: 0, cast: 0 }, nodes: [] };

/** Upper bounds of the latency buckets, in milliseconds. */
export const LATENCY_BUCKETS_MS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;

/** A latency histogram: counts per bucket (the last one is +Inf), sum and count. */
export class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  sum = 0;
  count = 0;
  /** Also told each observation (the Prometheus endpoint, when there is one). */
  onObserve: ((ms: number) => void) | undefined;

  observe(ms: number): void {
    this.onObserve?.(ms);
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
    this.counts[i]!++;
    this.sum += ms;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bucketsMs: [...LATENCY_BUCKETS_MS], counts: [...this.counts], sumMs: this.sum, count: this.count };
  }
}

export interface HistogramSnapshot {
  /** Upper bounds; `counts` has one more entry, for everything above the last bound. */
  bucketsMs: number[];
  counts: number[];
  sumMs: number;
  count: number;
}

/** What the node tells a snapshot that is not counted but read at that moment. */
export interface NodeView {
  node: string;
  capabilities: string[];
  /** Where placement ranks the node: its key (its id, unless it took a leaving member's), whether it is a standby, the shards it gave up (docs/deploying.md). */
  placement: { key: string; standby: boolean; yields: string[] };
  /** Live activations. */
  actors: number;
  /** What waits in the mailboxes (one walk over the live activations). */
  queues: { queuedLetters: number; queuedBytes: number; deepestMailbox: number };
  /** Flow control: what this node sent that other nodes have not read, and what waits for room. */
  outbound: OutboundReport;
  events?: SubscriptionReport[];
  /** Reminders held in memory (0 without durable classes). */
  remindersHeld: number;
  /** What the node's last reminder scan read (zeros before the first, or without durable classes). */
  reminderScan: ReminderScanReads;
}

/** What one reminder scan read: the slots' directories, its own shards' pages they name, and the entries in those pages. */
export interface ReminderScanReads {
  dirs: number;
  pages: number;
  entries: number;
}

/**
 * A Prometheus series made from a metric's snapshot value, labelled `node`
 * (and `label`, when `values` gives [label value, number] pairs). A histogram
 * is fed each observation of the metric's Histogram instead.
 */
export type Series<T> =
  | {
      readonly kind: "counter" | "gauge";
      readonly name: string;
      readonly help: string;
      readonly label?: string;
      readonly values: (value: T) => number | [string, number][];
    }
  | { readonly kind: "histogram"; readonly name: string; readonly help: string };

/** A metric the node reads when a snapshot is taken (NodeView). */
export interface Live<T> {
  readonly read: (view: NodeView) => T;
  readonly series: readonly Series<T>[];
}

/** A metric the node counts: a NodeMetrics field of the same name, from `start()`, and `read` copies it into a snapshot. */
export interface Counted<S, T> {
  readonly start: () => S;
  readonly read: (stored: S) => T;
  readonly series: readonly Series<T>[];
}

/** A counted number, one Prometheus counter or gauge. */
function counted(kind: "counter" | "gauge", name: string, help: string): Counted<number, number> {
  return { start: () => 0, read: (n) => n, series: [{ kind, name, help, values: (n) => n }] };
}

/** Counted numbers by a label (an object of them), one Prometheus counter labelled `label`. */
function countedBy<S extends Partial<Record<string, number>>>(label: string, start: () => S, name: string, help: string): Counted<S, S> {
  const values = (s: S) => Object.entries(s).map(([key, n]): [string, number] => [key, n ?? 0]);
  return { start, read: (s) => ({ ...s }), series: [{ kind: "counter", name, help, label, values }] };
}

/** A latency Histogram (milliseconds), one Prometheus histogram in seconds. */
function latency(name: string, help: string): Counted<Histogram, HistogramSnapshot> {
  return { start: () => new Histogram(), read: (h) => h.snapshot(), series: [{ kind: "histogram", name, help }] };
}

/** A value read from the node, and the Prometheus series it makes, if any. */
function live<T>(read: (view: NodeView) => T, ...series: Series<T>[]): Live<T> {
  return { read, series };
}

/** One Prometheus series per stream subscription (label `subscription`). */
function perSubscription(
  kind: "counter" | "gauge",
  name: string,
  help: string,
  read: (r: SubscriptionReport) => number,
): Series<SubscriptionReport[]> {
  return { kind, name, help, label: "subscription", values: (reports) => reports.map((r): [string, number] => [r.subscription, read(r)]) };
}

/**
 * Every metric of a node, in the order of the snapshot's fields: the field's
 * name, its documentation, where its value comes from and its Prometheus series.
 */
export const METRICS = {
  node: live((v) => v.node),
  capabilities: live((v) => v.capabilities),
  /** Where placement ranks this node: its placement key and whether it is a standby (docs/deploying.md). */
  placement: live((v) => v.placement),
  /** Live activations on this node. */
  actors: live((v) => v.actors, { kind: "gauge", name: "mesh_actors", help: "Live actors on this node", values: (n) => n }),
  /** Reminders this node holds in memory: of shards it owns, due within its horizon, or waiting for a turn. */
  remindersHeld: live((v) => v.remindersHeld, {
    kind: "gauge",
    name: "mesh_reminders_held",
    help: "Reminders this node holds: of its shards, due within its horizon or waiting for a turn",
    values: (n) => n,
  }),
  /** What this node's last reminder scan read: directories, pages (of its own shards only), entries (due within its horizon only). */
  reminderScan: live((v) => v.reminderScan, {
    kind: "gauge",
    name: "mesh_reminder_scan_reads",
    help: "What the node's last reminder scan read: directories, pages of its shards, entries due within its horizon",
    label: "read",
    values: (r) => [
      ["dirs", r.dirs],
      ["pages", r.pages],
      ["entries", r.entries],
    ],
  }),
  /** Calls run by this node's actors (from local and remote callers). */
  callsServed: counted("counter", "mesh_calls_served_total", "Calls run by this node's actors"),
  /** Casts run by this node's actors. */
  castsServed: counted("counter", "mesh_casts_served_total", "Casts run by this node's actors"),
  /** Timer turns run by this node's actors. */
  timersServed: counted("counter", "mesh_timers_served_total", "Timer turns run by this node's actors"),
  /** Reminder turns run by this node's actors (those that found their occurrence applied before included). */
  remindersServed: counted("counter", "mesh_reminders_served_total", "Reminder turns run by this node's actors"),
  /** Stream event turns run by this node's actors (those that found their event applied before included). */
  eventsServed: counted("counter", "mesh_events_served_total", "Stream event turns run by this node's actors"),
  /** Turns that ran past their maxTurnMs: each dropped its activation. */
  turnTimeouts: counted("counter", "mesh_turn_timeouts_total", "Turns that ran past their maxTurnMs (each dropped its activation)"),
  migrationsOut: counted("counter", "mesh_migrations_out_total", "Activations handed to their new owner with their state (live migration)"),
  migrationsIn: counted("counter", "mesh_migrations_in_total", "Activations that started here from the state their old owner handed over"),
  migrationsRefused: counted(
    "counter",
    "mesh_migrations_refused_total",
    "Activations whose state could not move (outside the value model, a hook that threw, or it arrived too late): they started afresh",
  ),
  /** Actors activated on this node. */
  activations: counted("counter", "mesh_activations_total", "Actors activated on this node"),
  /** Activations that failed (constructor or onActivate threw). */
  activationFailures: counted("counter", "mesh_activation_failures_total", "Activations that failed (constructor or onActivate threw)"),
  /** Actors that crashed (a handler threw). */
  crashes: counted("counter", "mesh_crashes_total", "Actors that crashed (a handler threw)"),
  /** Calls and casts this node sent on to the owner it knows (stale routes, handovers). */
  forwards: counted("counter", "mesh_forwards_total", "Calls and casts forwarded to the owner this node knows"),
  /** Calls re-sent after "no responders". */
  retries: counted("counter", "mesh_retries_total", "Calls re-sent after no responders"),
  /** Calls and casts taken from foreign clients on the ingress. */
  ingressRequests: counted("counter", "mesh_ingress_requests_total", "Requests taken from foreign clients on the ingress"),
  /** Durable actors: states read from the store at activation. */
  stateLoads: counted("counter", "mesh_state_loads_total", "Durable states read from the store at activation"),
  /** Durable actors: commits that landed (one may cover several turns). */
  stateCommits: counted("counter", "mesh_state_commits_total", "Durable state commits that landed"),
  /** Durable actors: commits refused because another activation committed first (STATE_CONFLICT). */
  stateConflicts: counted("counter", "mesh_state_conflicts_total", "Commits refused because another activation committed first"),
  /** Actors deactivated after idleTimeoutMs without a message. */
  passivations: counted("counter", "mesh_passivations_total", "Actors deactivated after idleTimeoutMs"),
  /** Idle actors deactivated to stay within maxActors. */
  evictions: counted("counter", "mesh_evictions_total", "Idle actors deactivated to stay within maxActors"),
  /** Times this node's ownership lease lapsed (a pause, a lost connection: docs/faults.md). */
  leaseLapses: counted("counter", "mesh_lease_lapses_total", "Times this node's ownership lease lapsed (a pause, a lost connection)"),
  /** Lease re-validations that ended with the lease held again. */
  leaseRevalidations: counted("counter", "mesh_lease_revalidations_total", "Lease re-validations that ended with the lease held again"),
  /** Activations dropped at a re-validation because another node may have replaced them. */
  leaseDrops: counted(
    "counter",
    "mesh_lease_drops_total",
    "Activations dropped at a re-validation because another node may have replaced them",
  ),
  /** Calls and casts refused with OVERLOADED, by the limit they met: an actor's mailbox, the node's letters or bytes. */
  overloaded: countedBy(
    "reason",
    () => ({ mailbox: 0, letters: 0, bytes: 0 }),
    "mesh_overloaded_total",
    "Calls and casts refused with OVERLOADED, by the limit they met (mailbox, letters, bytes)",
  ),
  /** Messages waiting in this node's mailboxes now. */
  queuedLetters: live((v) => v.queues.queuedLetters, {
    kind: "gauge",
    name: "mesh_queued_letters",
    help: "Messages waiting in this node's mailboxes",
    values: (n) => n,
  }),
  /** The bytes of the messages from the wire waiting in this node's mailboxes now. */
  queuedBytes: live((v) => v.queues.queuedBytes, {
    kind: "gauge",
    name: "mesh_queued_bytes",
    help: "Bytes of messages from other nodes waiting in this node's mailboxes",
    values: (n) => n,
  }),
  /** The most messages waiting in one mailbox now. */
  deepestMailbox: live((v) => v.queues.deepestMailbox, {
    kind: "gauge",
    name: "mesh_deepest_mailbox",
    help: "The most messages waiting in one mailbox on this node",
    values: (n) => n,
  }),
  /**
   * Flow control (docs/behaviour.md "Flow control"): bytes sent to other nodes and not yet read by
   * them, sends waiting for room, sends that waited and that were refused (never sent) by kind, and
   * the nodes with anything outstanding.
   */
  outbound: live(
    (v) => v.outbound,
    { kind: "gauge", name: "mesh_outbound_bytes", help: "Bytes sent to other nodes and not yet read by them", values: (o) => o.bytes },
    {
      kind: "gauge",
      name: "mesh_outbound_waiting",
      help: "Calls and casts waiting for room on the way to other nodes",
      values: (o) => o.waiting,
    },
    {
      kind: "counter",
      name: "mesh_outbound_waits_total",
      help: "Calls and casts that waited for room on the way to another node",
      label: "kind",
      values: (o) => Object.entries(o.waits),
    },
    {
      kind: "counter",
      name: "mesh_outbound_refused_total",
      help: "Calls and casts refused with OVERLOADED before they were sent: no room on the way to their node",
      label: "kind",
      values: (o) => Object.entries(o.refused),
    },
  ),
  /** Casts refused at once, unsent, because their owner said it refuses them now (overload notices). */
  castsRefusedAtSender: counted(
    "counter",
    "mesh_casts_refused_at_sender_total",
    "Casts refused unsent: their owner said it refuses them now",
  ),
  /** Overload notices this node sent to the senders of casts it refused, and received from owners. */
  overloadNotices: countedBy(
    "direction",
    () => ({ sent: 0, received: 0 }),
    "mesh_overload_notices_total",
    "Overload notices sent to senders of refused casts, and received from owners",
  ),
  /** Reminder turns that ran and succeeded on this node. */
  remindersFired: counted("counter", "mesh_reminders_fired_total", "Reminder turns that ran and succeeded"),
  /** Reminder turns that failed (retried with backoff). */
  remindersFailed: counted("counter", "mesh_reminders_failed_total", "Reminder turns that failed (retried with backoff)"),
  /** Messages turns published (ctx.publish) that JetStream stored. */
  published: counted("counter", "mesh_events_published_total", "Messages turns published (ctx.publish) that JetStream stored"),
  /** Messages committed or handed over by turns and not yet stored by JetStream. */
  outboxDepth: counted("gauge", "mesh_outbox_depth", "Messages of turns (ctx.publish) not yet stored by JetStream"),
  /** The event subscriptions of the classes this node hosts: what they did here, and the dispatchers running here (docs/events.md). */
  events: live(
    (v) => v.events ?? [],
    perSubscription("counter", "mesh_events_handled_total", "Stream events actors applied, by subscription", (r) => r.handled),
    perSubscription(
      "counter",
      "mesh_events_duplicates_total",
      "Stream events an actor had applied already (redeliveries after a failure or a move)",
      (r) => r.duplicates,
    ),
    perSubscription("counter", "mesh_events_redeliveries_total", "Deliveries of stream events after their first", (r) => r.redeliveries),
    perSubscription("counter", "mesh_events_dead_letters_total", "Stream events dead-lettered after maxDeliveries", (r) => r.deadLetters),
    perSubscription(
      "gauge",
      "mesh_events_lag",
      "Stream events not yet handled by the dispatchers on this node (read and in flight, or not yet read)",
      (r) => r.dispatchers.reduce((a, d) => a + d.lag, 0),
    ),
    perSubscription(
      "gauge",
      "mesh_events_dispatcher_errors",
      "Dispatchers on this node that cannot read their stream now (their error is in mesh events)",
      (r) => r.dispatchers.filter((d) => d.error !== undefined).length,
    ),
  ),
  /** Failures this node's actors gave callers, by code. */
  errors: countedBy(
    "code",
    (): Partial<Record<ErrorCode, number>> => ({}),
    "mesh_errors_total",
    "Failures this node's actors gave callers, by error code",
  ),
  /** Time actors spent on each call or cast, from its start to its end (in-process calls to synchronous handlers are not timed). */
  handlerLatency: latency("mesh_handler_duration_seconds", "Time actors spent on each call or cast"),
  /** Round trip of the calls this node sent to other nodes. */
  remoteCallLatency: latency("mesh_remote_call_duration_seconds", "Round trip of calls this node sent to other nodes"),
  /** Time from a commit's start to the store's acknowledgement. */
  commitLatency: latency("mesh_state_commit_duration_seconds", "Time from a durable state commit's start to the store's acknowledgement"),
  /** How late reminders started their turn: now - due. */
  reminderLateness: latency("mesh_reminder_lateness_seconds", "How late reminders started their turn"),
};

type Table = typeof METRICS;

/** What a node counts (the table's fields, in its order). Read it with `mesh.metrics()`. */
export type MetricsSnapshot = { -readonly [K in keyof Table]: ReturnType<Table[K]["read"]> };

type CountedName = { [K in keyof Table]: Table[K] extends { start: () => unknown } ? K : never }[keyof Table];
type Stored<K extends CountedName> = ReturnType<Table[K]["start"]>;
/** The counted metrics as NodeMetrics fields: numbers to increment, and the objects (by label, histograms) to change in place. */
type Counts = { -readonly [K in CountedName as Stored<K> extends number ? K : never]: number } & {
  readonly [K in CountedName as Stored<K> extends number ? never : K]: Stored<K>;
};

/** Any row of the table, as the code that walks the table sees it. */
export interface AnyMetric {
  readonly start?: () => unknown;
  readonly read: (from: never) => unknown;
  readonly series: readonly Series<never>[];
}

/** The table's rows, with their field names, in order. */
export const METRIC_ROWS = Object.entries(METRICS) as [keyof MetricsSnapshot, AnyMetric][];

// The counted fields are declared by the table (Counts) and set in the constructor.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface NodeMetrics extends Counts {}

/** The counters of one node: a plain field per counted metric of the table (incrementing one costs nothing measurable). */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class NodeMetrics {
  /** The hottest actors of the last minute, sampled (the admin API's `top`; not a metric of the table). */
  readonly hot = new HotActors();
  /**
   * The fast path of local calls (Turns.call) counts down here instead of counting `callsServed`:
   * `if (--m.untimedCalls <= 0) m.sampleCall(act)`. One decrement per call, as one increment was
   * before the sampler (which, as a second counter there, cost local calls about 4 %).
   */
  untimedCalls = 1;
  #untimedWeight = 1;

  /** The untimed call that ran `untimedCalls` out: counted with those before it, and recorded for the hottest actors. */
  sampleCall(who: HotKey): void {
    const weight = this.#untimedWeight;
    this.callsServed += weight;
    this.untimedCalls = this.#untimedWeight = this.hot.gap();
    this.hot.record(who, -1, weight);
  }

  constructor() {
    // Defined, not assigned by a computed key: V8 keeps an object with more than a dozen keyed-in fields
    // as a dictionary, which made each increment about ten times slower.
    for (const [name, metric] of METRIC_ROWS)
      if (metric.start) Object.defineProperty(this, name, { value: metric.start(), writable: true, enumerable: true, configurable: true });
  }

  /** Counts a failure given to a caller, by its code. */
  error(code: ErrorCode): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  /** Every metric now: the counted ones copied, the others read from `view`. */
  snapshot(view: NodeView): MetricsSnapshot {
    // The untimed calls not yet sampled are counted now; the gap to the next sample stays as it was.
    this.callsServed += this.#untimedWeight - this.untimedCalls;
    this.#untimedWeight = this.untimedCalls;
    const fields = this as unknown as Record<string, never>;
    return Object.fromEntries(
      METRIC_ROWS.map(([name, metric]) => [name, metric.read(metric.start ? fields[name]! : (view as never))]),
    ) as MetricsSnapshot;
  }
}
