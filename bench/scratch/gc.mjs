import { PerformanceObserver } from "node:perf_hooks";
import { spawn } from "node:child_process";
import { connect, createInbox } from "nats";
import { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
let gcMs = 0, gcs = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) { gcMs += e.duration; gcs++; } }).observe({ entryTypes: ["gc"] });
const server = await startNatsServer();
async function run(name, mode, mk) {
  const peer = spawn(process.execPath, ["../lib/peer.js", mode, server.url], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise(r => peer.stdout.on("data", c => c.toString().includes("ready") && r()));
  const op = await mk();
  for (let i = 0; i < 50000; i++) await op(i);
  { let nx = 0; await Promise.all(Array.from({ length: 128 }, async () => { for (let i = nx++; i < 200000; i = nx++) await op(i); })); }
  let next = 0; const total = 300000; gcMs = 0; gcs = 0;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: 128 }, async () => { for (let i = next++; i < total; i = next++) await op(i); }));
  const secs = (performance.now() - t0) / 1000; const cu = process.cpuUsage(c0);
  console.log(name, Math.round(total / secs), "/s; caller cpu µs/call", ((cu.user + cu.system) / total).toFixed(2), "gc µs/call", (gcMs * 1000 / total).toFixed(2), "gcs", gcs);
  peer.kill("SIGTERM"); await new Promise(r => peer.once("exit", r));
}
const payload = new TextEncoder().encode(JSON.stringify({ action: "ping", n: 1 }));
for (let k = 0; k < 2; k++) {
await run("raw ", "raw-responder", async () => {
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  const inbox = createInbox() + "."; const pending = new Map(); let next = 0;
  nc.subscribe(inbox + "*", { callback: (_e, m) => { const id = m.subject.slice(inbox.length); const r = pending.get(id); pending.delete(id); r(m.data); } });
  return () => new Promise(r => { const id = (next++).toString(36); pending.set(id, r); nc.publish("bench.echo", payload, { reply: inbox + id }); });
});
const caller = await Mesh.start({ servers: server.url, nodeId: "caller" + k });
const body = { action: "ping", n: 1 };
const ids = Array.from({ length: 1024 }, (_, i) => `echo_${i}`);
await run("mesh", "mesh-owner", async () => { while (caller.nodesFor("bench").length === 0) await new Promise(r => setTimeout(r, 10)); return (i) => caller.call({ actor: "Echo", id: ids[i & 1023], payload: body, capability: "bench" }); });
await caller.stop();
}
await server.stop();
