import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect, createInbox } from "nats";
import { Mesh } from "/work/main/packages/runtime/lib/mod.js";
import { startNatsServer } from "/work/main/packages/runtime/lib/testing/mod.js";
const ticks = pid => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return Number(f[11]) + Number(f[12]); };
const server = await startNatsServer();
async function measure(name, peerMode, fn) {
  const peer = spawn(process.execPath, ["/work/main/bench/scratch/countpeer.mjs", "/work/main/bench/lib/peer.js", peerMode, server.url], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise(r => peer.stdout.on("data", c => c.toString().includes("ready") && r()));
  const op = await fn();
  for (let i = 0; i < 20000; i++) await op(i); 
  let next = 0; const total = 200000;
  const s0 = ticks(server.pid), p0 = ticks(peer.pid), m0 = ticks(process.pid), t0 = performance.now();
  await Promise.all(Array.from({ length: 128 }, async () => { for (let i = next++; i < total; i = next++) await op(i); }));
  const secs = (performance.now() - t0) / 1000;
  const pct = (a, b) => Math.round((b - a) / secs);
  const per = (a, b) => ((b - a) * 10000 / total).toFixed(1);
  console.log(name.padEnd(5), "rate", Math.round(total / secs), "µs cpu/call: server", per(s0, ticks(server.pid)), "peer", per(p0, ticks(peer.pid)), "me", per(m0, ticks(process.pid)));
  peer.kill("SIGTERM"); await new Promise(r => peer.once("exit", r));
}
const payload = new TextEncoder().encode(JSON.stringify({ action: "ping", n: 1 }));
for (let round = 0; round < 3; round++) {
await measure("raw", "raw-responder", async () => {
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  const inbox = createInbox() + "."; const pending = new Map(); let next = 0;
  nc.subscribe(inbox + "*", { callback: (_e, m) => { const id = m.subject.slice(inbox.length); const r = pending.get(id); pending.delete(id); r(m.data); } });
  return () => new Promise(r => { const id = (next++).toString(36); pending.set(id, r); nc.publish("bench.echo", payload, { reply: inbox + id }); });
});
const caller = await Mesh.start({ servers: server.url, nodeId: "caller" + round });
const body = { action: "ping", n: 1 };
await measure("mesh", "mesh-owner", async () => { while (caller.nodesFor("bench").length === 0) await new Promise(r => setTimeout(r, 10)); return (i) => caller.call({ actor: "Echo", id: `echo_${i & 1023}`, payload: body, capability: "bench" }); });
await caller.stop(); }
await server.stop();
