// Prometheus text on `http://<metricsHost>:<metricsPort>/metrics`, with prom-client.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { LATENCY_BUCKETS_MS } from "./metrics.js";
import type { MetricsSnapshot, NodeMetrics } from "./metrics.js";

/** Serves one node's metrics for Prometheus. */
export class PrometheusEndpoint {
  readonly #registry = new Registry();
  readonly #server: Server;
  #url = "";

  private constructor(metrics: NodeMetrics, snapshot: () => MetricsSnapshot) {
    const labels = { node: snapshot().node };
    this.#registry.setDefaultLabels(labels);
    const counter = (name: string, help: string, read: (m: MetricsSnapshot) => number) =>
      new Counter({
        name,
        help,
        registers: [this.#registry],
        collect() {
          this.reset();
          this.inc(read(snapshot()));
        },
      });
    counter("mesh_calls_served_total", "Calls run by this node's actors", (m) => m.callsServed);
    counter("mesh_casts_served_total", "Casts run by this node's actors", (m) => m.castsServed);
    counter("mesh_activations_total", "Actors activated on this node", (m) => m.activations);
    counter("mesh_activation_failures_total", "Activations that failed (constructor or onActivate threw)", (m) => m.activationFailures);
    counter("mesh_crashes_total", "Actors that crashed (a handler threw)", (m) => m.crashes);
    counter("mesh_forwards_total", "Calls and casts forwarded to the owner this node knows", (m) => m.forwards);
    counter("mesh_retries_total", "Calls re-sent after no responders", (m) => m.retries);
    counter("mesh_ingress_requests_total", "Requests taken from foreign clients on the ingress", (m) => m.ingressRequests);
    counter("mesh_state_loads_total", "Durable states read from the store at activation", (m) => m.stateLoads);
    counter("mesh_state_commits_total", "Durable state commits that landed", (m) => m.stateCommits);
    counter("mesh_state_conflicts_total", "Commits refused because another activation committed first", (m) => m.stateConflicts);
    counter("mesh_passivations_total", "Actors deactivated after idleTimeoutMs", (m) => m.passivations);
    counter("mesh_evictions_total", "Idle actors deactivated to stay within maxActors", (m) => m.evictions);
    counter("mesh_lease_lapses_total", "Times this node's ownership lease lapsed (a pause, a lost connection)", (m) => m.leaseLapses);
    counter("mesh_lease_revalidations_total", "Lease re-validations that ended with the lease held again", (m) => m.leaseRevalidations);
    counter(
      "mesh_lease_drops_total",
      "Activations dropped at a re-validation because another node may have replaced them",
      (m) => m.leaseDrops,
    );
    counter("mesh_reminders_fired_total", "Reminder turns that ran and succeeded", (m) => m.remindersFired);
    counter("mesh_reminders_failed_total", "Reminder turns that failed (retried with backoff)", (m) => m.remindersFailed);
    new Counter({
      name: "mesh_errors_total",
      help: "Failures this node's actors gave callers, by error code",
      labelNames: ["code"],
      registers: [this.#registry],
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(snapshot().errors)) this.inc({ code }, n ?? 0);
      },
    });
    new Counter({
      name: "mesh_overloaded_total",
      help: "Calls and casts refused with OVERLOADED, by the limit they met (mailbox, letters, bytes)",
      labelNames: ["reason"],
      registers: [this.#registry],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(snapshot().overloaded)) this.inc({ reason }, n);
      },
    });
    counter("mesh_events_published_total", "Messages turns published (ctx.publish) that JetStream stored", (m) => m.published);
    const perSubscription = (
      name: string,
      help: string,
      read: (r: MetricsSnapshot["events"][number]) => number,
      kind: typeof Counter | typeof Gauge,
    ) =>
      new kind({
        name,
        help,
        labelNames: ["subscription"],
        registers: [this.#registry],
        collect(this: Counter | Gauge) {
          this.reset();
          for (const r of snapshot().events) (this as Gauge).inc({ subscription: r.subscription }, read(r));
        },
      });
    perSubscription("mesh_events_handled_total", "Stream events actors applied, by subscription", (r) => r.handled, Counter);
    perSubscription(
      "mesh_events_duplicates_total",
      "Stream events an actor had applied already (redeliveries after a failure or a move)",
      (r) => r.duplicates,
      Counter,
    );
    perSubscription("mesh_events_redeliveries_total", "Deliveries of stream events after their first", (r) => r.redeliveries, Counter);
    perSubscription("mesh_events_dead_letters_total", "Stream events dead-lettered after maxDeliveries", (r) => r.deadLetters, Counter);
    perSubscription(
      "mesh_events_lag",
      "Stream events not yet handled by the dispatchers on this node (read and in flight, or not yet read)",
      (r) => r.dispatchers.reduce((a, d) => a + d.lag, 0),
      Gauge,
    );
    const gauge = (name: string, help: string, read: (m: MetricsSnapshot) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.#registry],
        collect() {
          this.set(read(snapshot()));
        },
      });
    gauge("mesh_actors", "Live actors on this node", (m) => m.actors);
    gauge("mesh_queued_letters", "Messages waiting in this node's mailboxes", (m) => m.queuedLetters);
    gauge("mesh_queued_bytes", "Bytes of messages from other nodes waiting in this node's mailboxes", (m) => m.queuedBytes);
    gauge("mesh_outbox_depth", "Messages of turns (ctx.publish) not yet stored by JetStream", (m) => m.outboxDepth);
    gauge("mesh_deepest_mailbox", "The most messages waiting in one mailbox on this node", (m) => m.deepestMailbox);
    const buckets = LATENCY_BUCKETS_MS.map((ms) => ms / 1000);
    const handler = new Histogram({
      name: "mesh_handler_duration_seconds",
      help: "Time actors spent on each call or cast",
      buckets,
      registers: [this.#registry],
    });
    const remote = new Histogram({
      name: "mesh_remote_call_duration_seconds",
      help: "Round trip of calls this node sent to other nodes",
      buckets,
      registers: [this.#registry],
    });
    const commit = new Histogram({
      name: "mesh_state_commit_duration_seconds",
      help: "Time from a durable state commit's start to the store's acknowledgement",
      buckets,
      registers: [this.#registry],
    });
    metrics.handlerLatency.onObserve = (ms) => handler.observe(ms / 1000);
    metrics.commitLatency.onObserve = (ms) => commit.observe(ms / 1000);
    const lateness = new Histogram({
      name: "mesh_reminder_lateness_seconds",
      help: "How late reminders started their turn",
      buckets,
      registers: [this.#registry],
    });
    metrics.reminderLateness.onObserve = (ms) => lateness.observe(ms / 1000);
    metrics.remoteCallLatency.onObserve = (ms) => remote.observe(ms / 1000);
    this.#server = createServer((req, res) => {
      if (req.method !== "GET" || req.url !== "/metrics") {
        res.writeHead(404).end("not found: GET /metrics\n");
        return;
      }
      this.#registry.metrics().then(
        (text) => res.writeHead(200, { "Content-Type": this.#registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
  }

  /** Starts listening; `port` 0 picks a free one. */
  static async start(metrics: NodeMetrics, snapshot: () => MetricsSnapshot, host: string, port: number): Promise<PrometheusEndpoint> {
    const endpoint = new PrometheusEndpoint(metrics, snapshot);
    await new Promise<void>((resolve, reject) => {
      endpoint.#server.once("error", reject);
      endpoint.#server.listen(port, host, () => resolve());
    });
    const { address, port: bound } = endpoint.#server.address() as AddressInfo;
    endpoint.#url = `http://${address.includes(":") ? `[${address}]` : address}:${bound}/metrics`;
    return endpoint;
  }

  /** `http://host:port/metrics` */
  get url(): string {
    return this.#url;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
