// The cost of tracing (docs/observability.md "Traces"): local and remote calls
// with no OpenTelemetry SDK registered, and with the SDK's tracer provider, an
// always-on sampler and a batch processor whose exporter drops the spans (what
// a traced call costs before the exporter's own work). The caller switches
// tracing on and off between rounds; the remote owner is one of two peers,
// one without an SDK, one with (peer.ts, mesh-owner and mesh-owner-traced).
import { trace } from "@opentelemetry/api";
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { Mesh } from "@mesh/runtime";
import { Echo } from "./actors.js";
import { load, median } from "./load.js";
import type { Measured } from "./load.js";

/** Spans the dropping exporter was given, in this process. */
let exported = 0;

/** A tracer provider that samples every span and drops them at export. */
export function tracerProvider(): BasicTracerProvider {
  const drop: SpanExporter = {
    export: (spans: ReadableSpan[], done) => {
      exported += spans.length;
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
  };
  return new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor(drop, { maxQueueSize: 65_536, maxExportBatchSize: 4096, scheduledDelayMillis: 200 })],
  });
}

/** A node looks for a tracer provider every second (operations/tracing.ts): wait past that. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1100));

type Peer = (mode: string) => Promise<{ stop(): Promise<void> }>;

export async function tracing(
  url: string,
  n: (count: number) => number,
  rounds: number,
  startPeer: Peer,
  record: (section: string, name: string, m: Measured) => Measured,
) {
  console.log("\nTracing (no SDK, then the SDK with an always-on sampler and an exporter that drops spans; rounds alternate)");
  const plain = await startPeer("mesh-owner");
  const traced = await startPeer("mesh-owner-traced");
  const node = await Mesh.start({ servers: url, nodeId: "bench-tracing", actors: [Echo], capabilities: ["tlocal"] });
  const provider = tracerProvider();
  try {
    await new Promise((resolve) => setTimeout(resolve, 500)); // the peers in view
    const body = { action: "ping", n: 1 };
    const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
    const localCall = (i: number) => node.call({ actor: Echo, id: ids[i & 1023]!, payload: body, capability: "tlocal" });
    const remoteCall = (capability: string) => (i: number) => node.call({ actor: "Echo", id: ids[i & 1023]!, payload: body, capability });
    const runs = { localOff: [] as Measured[], localOn: [] as Measured[], remoteOff: [] as Measured[], remoteOn: [] as Measured[] };
    let spans = 0;
    let tracedCalls = 0;
    for (let round = 0; round < rounds; round++) {
      trace.disable();
      await settle();
      runs.localOff.push(await load(localCall, { inFlight: 128, total: n(300_000) }));
      runs.remoteOff.push(await load(remoteCall("bench"), { inFlight: 128, total: n(100_000), warmup: 5000 }));
      trace.setGlobalTracerProvider(provider);
      await settle();
      await provider.forceFlush();
      const before = exported;
      runs.localOn.push(await load(localCall, { inFlight: 128, total: n(100_000) }));
      runs.remoteOn.push(await load(remoteCall("benchT"), { inFlight: 128, total: n(50_000), warmup: 5000 }));
      await provider.forceFlush();
      spans += exported - before;
      tracedCalls += n(100_000) + 5000 + n(50_000) + 5000;
    }
    trace.disable();
    const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])) as Record<keyof typeof runs, Measured>;
    record("tracing", "local calls, no SDK, 128 in flight", m.localOff);
    record("tracing", "local calls, SDK always on, 128 in flight", m.localOn);
    record("tracing", "remote calls, no SDK, 128 in flight", m.remoteOff);
    record("tracing", "remote calls, SDK always on (both nodes), 128 in flight", m.remoteOn);
    console.log(`  spans exported by the caller per traced call: ${(spans / tracedCalls).toFixed(2)} (local: call + turn; remote: call)`);
    return m;
  } finally {
    trace.disable();
    await node.stop();
    await provider.shutdown();
    await Promise.all([plain.stop(), traced.stop()]);
  }
}
