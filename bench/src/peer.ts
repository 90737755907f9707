// The other process of a two-process measurement: `node lib/peer.js <mode> <url>`.
//   raw-responder   a plain nats.js responder that echoes on "bench.echo"
//   mesh-owner      a Mesh node that hosts the Echo actor under capability "bench"
//   mesh-durable-owner  a Mesh node (prefix "remote") that hosts the durable Tally under "tally"
// Prints "ready" when it serves; exits on SIGTERM.
import { connect } from "nats";
import { Mesh } from "@mesh/runtime";
import { Echo, Tally } from "./actors.js";

const [mode, url] = process.argv.slice(2);
let stop: () => Promise<void>;
if (mode === "raw-responder") {
  const nc = await connect({ servers: url, noAsyncTraces: true });
  nc.subscribe("bench.echo", { callback: (_err, msg) => msg.respond(msg.data) });
  await nc.flush();
  stop = () => nc.close();
} else if (mode === "mesh-owner") {
  const mesh = await Mesh.start({ servers: url, nodeId: "bench-owner", actors: [Echo], capabilities: ["bench"] });
  stop = () => mesh.stop();
} else if (mode === "mesh-durable-owner") {
  const mesh = await Mesh.start({ servers: url, nodeId: "bench-durable-owner", prefix: "remote", actors: [Tally], capabilities: ["tally"], storage: { bucket: "bench_state" } });
  stop = () => mesh.stop();
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.once("SIGTERM", () => void stop().then(() => process.exit(0)));
// The bench asks for this process's CPU time (µs) to report CPU per call on each side.
process.on("message", () => process.send?.(process.cpuUsage()));
process.channel?.unref();
process.stdout.write("ready\n");
