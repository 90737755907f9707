import { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
class Tally { n = 0; async handleCall() { await Promise.resolve(); return ++this.n; } }
const s = await startNatsServer();
const timer = setTimeout(() => { console.log("HANG"); process.exit(1); }, 8000);
const a = await Mesh.start({ servers: s.url, nodeId: "r1", actors: [Tally], capabilities: ["runtime"], heartbeatMs: 200 });
console.log("a up");
const b = await Mesh.start({ servers: s.url, nodeId: "r2", actors: [Tally], capabilities: ["runtime"], heartbeatMs: 200 });
console.log("b up", a.nodesFor("runtime"));
const ids = Array.from({ length: 400 }, (_, i) => `tally_${i}`);
const r = await Promise.all(ids.map((id) => a.call({ actor: "Tally", id, capability: "runtime" }).catch(e => e.code)));
console.log("pids", r.length, a.actorCount, b.actorCount);
clearTimeout(timer);
await a.stop(); await b.stop(); await s.stop();
{
const s = await startNatsServer();
const timer = setTimeout(() => { console.log("HANG2", calls); process.exit(1); }, 8000);
const a = await Mesh.start({ servers: s.url, nodeId: "r1", actors: [Tally], capabilities: ["runtime"], heartbeatMs: 200 });
const b = await Mesh.start({ servers: s.url, nodeId: "r2", actors: [Tally], capabilities: ["runtime"], heartbeatMs: 200 });
const ids = Array.from({ length: 400 }, (_, i) => `tally_${i}`);
var calls = 0; let running = true;
const done = Promise.all(Array.from({ length: 16 }, async (_, w) => { for (let i = w; running; i += 16) { calls++; await a.call({ actor: "Tally", id: ids[i % 400], capability: "runtime" }).catch(e => e.code); } }));
const t0 = Date.now();
while (calls < 1000) { await new Promise(r => setTimeout(r, 10)); }
console.log("1000 calls after", Date.now() - t0, "ms");
running = false; await done;
clearTimeout(timer);
await a.stop(); await b.stop(); await s.stop();
}
