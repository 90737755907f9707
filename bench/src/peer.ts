// The other process of a two-process measurement: `node lib/peer.js <mode> <url>`.
//   raw-responder   a plain nats.js responder that echoes on "bench.echo"
//   mesh-owner      a Mesh node that hosts the Echo actor under capability "bench"
//   mesh-owner-traced  the same under "benchT", with an OpenTelemetry SDK registered (tracing.ts)
//   mesh-durable-owner  a Mesh node (prefix "remote") that hosts the durable Tally under "tally"
//   mesh-events     a Mesh node (prefix argv[4]) hosting event class argv[5] (EvPlain, EvDurable, EvPublish)
//   mesh-reminders  a Mesh node (prefix argv[4]) hosting Beeper and Echo under "beep"
//   mesh-flood-owner  a Mesh node (prefix argv[4]) hosting Slow and Echo under "flood" (flood.ts)
// Prints "ready" when it serves; exits on SIGTERM.
import { connect } from "nats";
import { Mesh } from "@mesh/runtime";
import { trace } from "@opentelemetry/api";
import { Beeper, Echo, EvDurable, EvPlain, EvPublish, Slow, Tally } from "./actors.js";
import { tracerProvider } from "./tracing.js";

const [mode, url] = process.argv.slice(2);
let stop: () => Promise<void>;
/** Events handled through this node's dispatchers, and how many run here (mode mesh-events), sent with the CPU time. */
let handled = () => 0;
let dispatchers = () => 0;
if (mode === "raw-responder") {
  const nc = await connect({ servers: url, noAsyncTraces: true });
  nc.subscribe("bench.echo", { callback: (_err, msg) => msg.respond(msg.data) });
  await nc.flush();
  stop = () => nc.close();
} else if (mode === "mesh-owner") {
  const mesh = await Mesh.start({ servers: url, nodeId: "bench-owner", actors: [Echo], capabilities: ["bench"] });
  stop = () => mesh.stop();
} else if (mode === "mesh-owner-traced") {
  trace.setGlobalTracerProvider(tracerProvider());
  const mesh = await Mesh.start({ servers: url, nodeId: "bench-owner-traced", actors: [Echo], capabilities: ["benchT"] });
  stop = () => mesh.stop();
} else if (mode === "mesh-durable-owner") {
  const mesh = await Mesh.start({
    servers: url,
    nodeId: "bench-durable-owner",
    prefix: "remote",
    actors: [Tally],
    capabilities: ["tally"],
    storage: { bucket: "bench_state" },
  });
  stop = () => mesh.stop();
} else if (mode === "mesh-events") {
  // The second node of the events section: hosts the event classes under the prefix given.
  const classes = { EvPlain, EvDurable, EvPublish };
  const cls = classes[process.argv[5] as keyof typeof classes];
  const mesh = await Mesh.start({
    servers: url,
    nodeId: `bench-events-${process.argv[4]}`,
    prefix: process.argv[4],
    actors: [cls],
    capabilities: ["evb"],
    heartbeatMs: 200,
    nodeTimeoutMs: 1000,
  });
  handled = () => mesh.metrics().events.reduce((a, r) => a + r.handled, 0);
  dispatchers = () => mesh.metrics().events.reduce((a, r) => a + r.dispatchers.length, 0);
  stop = () => mesh.stop();
} else if (mode === "mesh-reminders") {
  // The second node of the reminders section: Beeper and Echo under the prefix given.
  const mesh = await Mesh.start({
    servers: url,
    nodeId: `bench-reminders-${process.argv[4]}`,
    prefix: process.argv[4],
    actors: [Beeper, Echo],
    capabilities: ["beep"],
  });
  stop = () => mesh.stop();
} else if (mode === "mesh-flood-owner") {
  // The owner the flood section floods: Slow/hot takes the casts, Echo the calls beside them.
  const mesh = await Mesh.start({
    servers: url,
    nodeId: "bench-flood-owner",
    prefix: process.argv[4],
    actors: [Slow, Echo],
    capabilities: ["flood"],
  });
  stop = () => mesh.stop();
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.once("SIGTERM", () => void stop().then(() => process.exit(0)));
// The bench asks for this process's CPU time (µs) to report CPU per call on each side.
// (The reminders section also reads its RSS and what its Beepers saw.)
process.on("message", () =>
  process.send?.({
    ...process.cpuUsage(),
    handled: handled(),
    dispatchers: dispatchers(),
    rss: process.memoryUsage().rss,
    lateness: Beeper.lateness,
    dues: Beeper.dues,
    lastFiredAt: Beeper.lastFiredAt,
  }),
);
process.channel?.unref();
process.stdout.write("ready\n");
