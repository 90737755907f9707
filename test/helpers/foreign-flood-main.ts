// A foreign client's flood on the ingress as its own OS process
// (flow-control.test.ts): plain nats.js, nothing of Mesh's. Options as JSON in
// $MESH_FLOOD: `inFlight` requests at a time on `<prefix>.<mode>.slow` at
// Slow/hot for `durationMs`. Prints one line `result <json>` (a FloodResult,
// without the fields only a node knows) and exits.
import { connect } from "nats";

const o = JSON.parse(process.env.MESH_FLOOD ?? "{}") as {
  servers: string;
  prefix: string;
  mode: "casts" | "calls";
  inFlight: number;
  durationMs: number;
};
const nc = await connect({ servers: o.servers });
const subject = `${o.prefix}.${o.mode === "casts" ? "cast" : "call"}.slow`;
// A call admitted to the full mailbox waits up to 1,000 x 5 ms: its timeout is past that.
const body = new TextEncoder().encode(JSON.stringify({ actor: "Slow", id: "hot", payload: { ms: 5 }, timeoutMs: 10_000 }));
// Warm-up: requests at an ordinary pace, through the ingress of every node, so that the flood meets compiled code.
const warm = (body: object) => new TextEncoder().encode(JSON.stringify(body));
await Promise.all(
  Array.from({ length: 50 }, async (_, i) => {
    for (let k = 0; k < 40; k++) {
      await nc.request(`${o.prefix}.call.slow`, warm({ actor: "Counter", id: `warm_${i}` }), { timeout: 5000 });
      await nc.request(
        `${o.prefix}.${o.mode === "casts" ? "cast" : "call"}.slow`,
        warm({ actor: "Slow", id: `warm_${i}`, payload: { ms: 0 } }),
        {
          timeout: 5000,
        },
      );
    }
  }),
);
const result = { sent: 0, overloaded: 0, failures: {} as Record<string, number>, firstOverloadedMs: -1 };
const start = performance.now();
await Promise.all(
  Array.from({ length: o.inFlight }, async () => {
    while (performance.now() < start + o.durationMs) {
      result.sent++;
      let code: string | undefined;
      try {
        const reply = JSON.parse(new TextDecoder().decode((await nc.request(subject, body, { timeout: 15_000 })).data)) as {
          ok: boolean;
          error?: { code: string };
        };
        code = reply.ok ? undefined : reply.error?.code;
      } catch (err) {
        code = String(err);
      }
      if (code === "OVERLOADED") {
        if (result.overloaded++ === 0) result.firstOverloadedMs = performance.now() - start;
      } else if (code !== undefined) result.failures[code] = (result.failures[code] ?? 0) + 1;
    }
  }),
);
process.stdout.write(`result ${JSON.stringify(result)}\n`);
await nc.close();
process.exit(0);
