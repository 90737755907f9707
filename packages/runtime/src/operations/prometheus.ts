// Prometheus text on `http://<metricsHost>:<metricsPort>/metrics`, with prom-client.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { LATENCY_BUCKETS_MS, METRIC_ROWS } from "./metrics.js";
import type { Histogram as LatencyHistogram, MetricsSnapshot, NodeMetrics } from "./metrics.js";

/** Serves one node's metrics for Prometheus: the series of the metrics table (metrics.ts), from one snapshot per scrape. */
export class PrometheusEndpoint {
  readonly #registry = new Registry();
  readonly #server: Server;
  /** Sets every counter and gauge from a snapshot; a scrape runs it once, then reads the registry. */
  readonly #updates: ((m: MetricsSnapshot) => void)[] = [];

  readonly #snapshot: () => MetricsSnapshot;
  #url = "";

  private constructor(metrics: NodeMetrics, snapshot: () => MetricsSnapshot) {
    this.#snapshot = snapshot;
    this.#registry.setDefaultLabels({ node: snapshot().node });
    const registers = [this.#registry];
    const buckets = LATENCY_BUCKETS_MS.map((ms) => ms / 1000);
    const fields = metrics as unknown as Record<string, unknown>;
    for (const [field, metric] of METRIC_ROWS)
      for (const s of metric.series) {
        if (s.kind === "histogram") {
          const histogram = new Histogram({ name: s.name, help: s.help, buckets, registers });
          (fields[field] as LatencyHistogram).onObserve = (ms) => histogram.observe(ms / 1000);
          continue;
        }
        const labelNames = s.label === undefined ? [] : [s.label];
        const series = new (s.kind === "counter" ? Counter : Gauge)({ name: s.name, help: s.help, labelNames, registers });
        this.#updates.push((m) => {
          const values = s.values(m[field] as never);
          series.reset();
          if (typeof values === "number") series.inc(values);
          else for (const [label, n] of values) series.inc({ [s.label!]: label }, n);
        });
      }
    this.#server = createServer((req, res) => {
      if (req.method !== "GET" || req.url !== "/metrics") {
        res.writeHead(404).end("not found: GET /metrics\n");
        return;
      }
      this.#scrape().then(
        (text) => res.writeHead(200, { "Content-Type": this.#registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
  }

  /** The Prometheus text: one snapshot per scrape (it walks every live activation), which every series reads. */
  async #scrape(): Promise<string> {
    const now = this.#snapshot();
    for (const update of this.#updates) update(now);
    return this.#registry.metrics();
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
