import { Mesh } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
const s = await startNatsServer();
const node = await Mesh.start({ servers: s.url, nodeId: "x", capabilities: [] });
await s.stop();
await new Promise(r => setTimeout(r, 300));
const t = performance.now();
await node.stop();
console.log("stop took", Math.round(performance.now() - t), "ms");
