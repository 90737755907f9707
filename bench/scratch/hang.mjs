import { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
class Tally { n = 0; async handleCall() { await Promise.resolve(); return ++this.n; } }
const s = await startNatsServer();
const a = await Mesh.start({ servers: s.url, nodeId: "a", actors: [Tally], capabilities: ["rt"] });
const ids = Array.from({ length: 10 }, (_, i) => `t_${i}`);
const timer = setTimeout(() => { console.log("HANG"); process.exit(1); }, 5000);
const r = await Promise.all(ids.map((id) => a.call({ actor: "Tally", id, capability: "rt" })));
console.log(r.map(x => x.result));
const r2 = await Promise.all(ids.map((id) => a.call({ actor: "Tally", id, capability: "rt" })));
console.log(r2.map(x => x.result));
clearTimeout(timer);
await a.stop(); await s.stop();
