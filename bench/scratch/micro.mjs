const N = 5_000_000;
function bench(name, f) { for (let i = 0; i < 200000; i++) f(i); const t = performance.now(); let x; for (let i = 0; i < N; i++) x = f(i); console.log(name.padEnd(28), ((performance.now() - t) * 1e6 / N).toFixed(0), "ns"); return x; }
bench("performance.now", () => performance.now());
bench("Date.now", () => Date.now());
let k = 0; bench("toString(36)+concat", () => "_INBOX.ABCDEFGHIJKLMNOP." + (k++).toString(36));
const m = new Map(); bench("map set+get+delete str", (i) => { const s = (i).toString(36); m.set(s, i); const v = m.get(s); m.delete(s); return v; });
bench("new Promise", () => new Promise((r, j) => { k = r; }));
bench("obj 12 fields", (i) => ({ kind: 0, capability: "c", actorType: "T", id: "x", payload: i, initArg: undefined, timeoutMs: 5, hops: 0, shard: 1, owner: "o" }));
