import { Encoder, Decoder } from "@msgpack/msgpack";
import { encodeRequest, decodeReply, encodeResult, decodeRequest } from "@mesh/core/internal";
const enc = new Encoder(), dec = new Decoder();
const body = { action: "ping", n: 1 };
const N = 1_000_000;
function bench(name, f) { for (let i = 0; i < 100000; i++) f(i); const t = performance.now(); for (let i = 0; i < N; i++) f(i); console.log(name.padEnd(30), ((performance.now() - t) * 1e6 / N).toFixed(0), "ns"); }
const r = { kind: 0, capability: "bench", actorType: "Echo", id: "echo_1", payload: body, initArg: undefined, timeoutMs: 5000, hops: 0 };
bench("encodeRequest", () => encodeRequest(r));
bench("encodeSharedRef+allocUnsafe", () => { const v = enc.encodeSharedRef([1, 0, "bench", "Echo", "echo_1", body, null, 5000, 0]); const b = Buffer.allocUnsafe(v.length); b.set(v); return b; });
bench("encodeSharedRef only", () => enc.encodeSharedRef([1, 0, "bench", "Echo", "echo_1", body, null, 5000, 0]));
const req = encodeRequest(r); const rep = encodeResult("bench-owner/Echo/echo_1#1", body);
bench("decodeRequest", () => decodeRequest(req));
bench("decodeReply", () => decodeReply(rep));
bench("encodeResult", () => encodeResult("bench-owner/Echo/echo_1#1", body));
bench("JSON.stringify+encode", () => new TextEncoder().encode(JSON.stringify([1, 0, "bench", "Echo", "echo_1", body, null, 5000, 0])));
