// One Mesh node as its own OS process, for fault tests. Options come as JSON in
// $MESH_NODE; it prints "ready" once started, stops gracefully on SIGTERM, and
// reports an unhandled rejection or exception on stderr with exit code 70.
import { Mesh } from "@mesh/runtime";
import type { MeshOptions } from "@mesh/runtime";
import { Alarm, Counter, DurableCounter, Slow } from "./actors.js";
import { eventActors } from "./event-actors.js";
import { PlainRegister, Register } from "./registers.js";
import { Ticker, VCounterV1, VCounterV2 } from "./versioned-actors.js";

process.on("unhandledRejection", (err) => {
  process.stderr.write(`UNHANDLED REJECTION: ${String(err)}\n`);
  process.exitCode = 70;
});
process.on("uncaughtException", (err) => {
  process.stderr.write(`UNCAUGHT EXCEPTION: ${String(err)}\n`);
  process.exit(70);
});

const options = JSON.parse(process.env.MESH_NODE ?? "{}") as MeshOptions & { eventStream?: string; logToStderr?: boolean; release?: 1 | 2 };
// logToStderr: every log line (info and above) on stderr, with the wall clock, for a test to print when it fails.
if (options.logToStderr) {
  const line = (level: string) => (fields: object, message: string) =>
    process.stderr.write(`${new Date().toISOString()} ${level} ${message} ${JSON.stringify(fields)}\n`);
  options.logger = { debug: () => {}, info: line("info"), warn: line("warn"), error: line("error") };
}
// With eventStream: the durable EventLedger of event-actors.ts reads that stream too.
const events = options.eventStream === undefined ? [] : [eventActors(options.eventStream, { maxDeliveries: 1000 }).EventLedger];
// With release: the classes of that release of versioned-actors.ts too.
const release = options.release === undefined ? [] : [options.release === 2 ? VCounterV2 : VCounterV1, Ticker];
const mesh = await Mesh.start({
  ...options,
  actors: [Counter, DurableCounter, Alarm, Slow, Register, PlainRegister, ...events, ...release],
});
// The handler goes in before "ready": a SIGTERM sent on seeing it stops the node gracefully.
process.once("SIGTERM", () => {
  void mesh.stop().then(() => process.exit(process.exitCode ?? 0));
});
process.stdout.write(`ready ${mesh.nodeId} ${process.pid}\n`);
