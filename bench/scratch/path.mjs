import { encodeRequest, decodeRequest, encodeResult, decodeReply, TimeoutMap } from "@mesh/core/internal";
import { shardFor } from "@mesh/core";
const { Supervisor } = await import("../../packages/runtime/lib/supervisor.js");
const { RemoteCall } = await import("../../packages/runtime/lib/remote-call.js");
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
class Echo { n = 0; handleCall(p) { this.n++; return p; } }
const sup = new Supervisor("owner", [Echo], quiet);
const body = { action: "ping", n: 1 };
const reqs = Array.from({ length: 1024 }, (_, i) => encodeRequest({ kind: 0, capability: "bench", actorType: "Echo", id: `echo_${i}`, payload: body, initArg: undefined, timeoutMs: 5000, hops: 0 }));
let sink;
class Reply { constructor(m) { this.m = m } succeed(pid, result) { sink = encodeResult(pid, result) } fail(e) { sink = e } }
function owner(i) {
  const req = decodeRequest(reqs[i & 1023]);
  sup.deliver(req.actorType, req.id, shardFor(req.id), req.payload, req.initArg, req.timeoutMs, new Reply(i));
}
const replyBytes = encodeResult("owner/Echo/echo_1#1", body);
const pending = new TimeoutMap();
let next = 0;
const rer = { reroute() {} };
async function caller(i) {
  const r = { kind: 0, capability: "bench", actorType: "Echo", id: `echo_${i & 1023}`, payload: body, initArg: undefined, timeoutMs: 5000, hops: 0, shard: shardFor(`echo_${i & 1023}`), owner: "owner" };
  const p = new Promise((resolve, reject) => {
    const call = new RemoteCall(r, performance.now() + 5000, resolve, reject, rer);
    sink = encodeRequest(r);
    const id = (next++).toString(36);
    pending.set(id, call);
    queueMicrotask(() => pending.take(id).reply(replyBytes));
  });
  return p;
}
async function bench(name, f, N = 500000) {
  for (let i = 0; i < 50000; i++) await f(i);
  const t = performance.now(); for (let i = 0; i < N; i++) await f(i);
  console.log(name.padEnd(20), ((performance.now() - t) * 1000 / N).toFixed(2), "µs/op");
}
if (!process.env.ONLY_CALLER) await bench("owner path", owner);
await bench("caller path", caller);
await bench("baseline await", async () => {});
