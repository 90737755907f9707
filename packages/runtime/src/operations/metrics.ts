import type { ErrorCode } from "@mesh/core";
import type { SubscriptionReport } from "../events/sources.js";

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

/** What a node counts. Read it with `mesh.metrics()`. */
export interface MetricsSnapshot {
  node: string;
  capabilities: string[];
  /** Live activations on this node. */
  actors: number;
  /** Calls run by this node's actors (from local and remote callers). */
  callsServed: number;
  /** Casts run by this node's actors. */
  castsServed: number;
  activations: number;
  activationFailures: number;
  crashes: number;
  /** Calls and casts this node sent on to the owner it knows (stale routes, handovers). */
  forwards: number;
  /** Calls re-sent after "no responders". */
  retries: number;
  /** Calls and casts taken from foreign clients on the ingress. */
  ingressRequests: number;
  /** Durable actors: states read from the store at activation. */
  stateLoads: number;
  /** Durable actors: commits that landed (one may cover several turns). */
  stateCommits: number;
  /** Durable actors: commits refused because another activation committed first (STATE_CONFLICT). */
  stateConflicts: number;
  /** Actors deactivated after idleTimeoutMs without a message. */
  passivations: number;
  /** Idle actors deactivated to stay within maxActors. */
  evictions: number;
  /** Times this node's ownership lease lapsed (a pause, a lost connection: docs/faults.md). */
  leaseLapses: number;
  /** Lease re-validations that ended with the lease held again. */
  leaseRevalidations: number;
  /** Activations dropped at a re-validation because another node may have replaced them. */
  leaseDrops: number;
  /** Calls and casts refused with OVERLOADED, by the limit they met: an actor's mailbox, the node's letters or bytes. */
  overloaded: { mailbox: number; letters: number; bytes: number };
  /** Messages waiting in this node's mailboxes now, and the bytes of those from the wire. */
  queuedLetters: number;
  queuedBytes: number;
  /** The most messages waiting in one mailbox now. */
  deepestMailbox: number;
  /** Reminder turns that ran and succeeded on this node. */
  remindersFired: number;
  /** Reminder turns that failed (retried with backoff). */
  remindersFailed: number;
  /** Messages turns published (ctx.publish) that JetStream stored. */
  published: number;
  /** Messages committed or handed over by turns and not yet stored by JetStream. */
  outboxDepth: number;
  /** The event subscriptions of the classes this node hosts: what they did here, and the dispatchers running here (docs/events.md). */
  events: SubscriptionReport[];
  /** Failures this node's actors gave callers, by code. */
  errors: Partial<Record<ErrorCode, number>>;
  /** Time actors spent on each call or cast, from its start to its end (in-process calls to synchronous handlers are not timed). */
  handlerLatency: HistogramSnapshot;
  /** Round trip of the calls this node sent to other nodes. */
  remoteCallLatency: HistogramSnapshot;
  /** Time from a commit's start to the store's acknowledgement. */
  commitLatency: HistogramSnapshot;
  /** How late reminders started their turn: now - due. */
  reminderLateness: HistogramSnapshot;
}

/** The counters of one node. Plain fields: incrementing one costs nothing measurable. */
export class NodeMetrics {
  callsServed = 0;
  castsServed = 0;
  activations = 0;
  activationFailures = 0;
  crashes = 0;
  forwards = 0;
  retries = 0;
  ingressRequests = 0;
  stateLoads = 0;
  stateCommits = 0;
  stateConflicts = 0;
  passivations = 0;
  evictions = 0;
  leaseLapses = 0;
  leaseRevalidations = 0;
  leaseDrops = 0;
  readonly overloaded = { mailbox: 0, letters: 0, bytes: 0 };
  remindersFired = 0;
  remindersFailed = 0;
  published = 0;
  outboxDepth = 0;
  readonly errors: Partial<Record<ErrorCode, number>> = {};
  readonly handlerLatency = new Histogram();
  readonly remoteCallLatency = new Histogram();
  readonly commitLatency = new Histogram();
  readonly reminderLateness = new Histogram();

  error(code: ErrorCode): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  snapshot(
    node: string,
    capabilities: string[],
    actors: number,
    queues: { queuedLetters: number; queuedBytes: number; deepestMailbox: number },
    events: SubscriptionReport[] = [],
  ): MetricsSnapshot {
    return {
      node,
      capabilities,
      actors,
      callsServed: this.callsServed,
      castsServed: this.castsServed,
      activations: this.activations,
      activationFailures: this.activationFailures,
      crashes: this.crashes,
      forwards: this.forwards,
      retries: this.retries,
      ingressRequests: this.ingressRequests,
      stateLoads: this.stateLoads,
      stateCommits: this.stateCommits,
      stateConflicts: this.stateConflicts,
      passivations: this.passivations,
      evictions: this.evictions,
      leaseLapses: this.leaseLapses,
      leaseRevalidations: this.leaseRevalidations,
      leaseDrops: this.leaseDrops,
      overloaded: { ...this.overloaded },
      ...queues,
      remindersFired: this.remindersFired,
      remindersFailed: this.remindersFailed,
      published: this.published,
      outboxDepth: this.outboxDepth,
      events,
      errors: { ...this.errors },
      handlerLatency: this.handlerLatency.snapshot(),
      remoteCallLatency: this.remoteCallLatency.snapshot(),
      commitLatency: this.commitLatency.snapshot(),
      reminderLateness: this.reminderLateness.snapshot(),
    };
  }
}
