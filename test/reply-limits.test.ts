// A reply near the payload limit, or an error whose message is longer than
// the limit, still reaches a remote caller (and a foreign one): as the reply,
// as PAYLOAD_TOO_LARGE, or as the error with its message cut; never as a
// TIMEOUT after the reply was lost on its way.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { Mesh, MeshError } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";
import type { NatsServer } from "@mesh/runtime/testing";
import { eventually, nodeId } from "./helpers/cluster.js";
import { jsonRequest } from "./helpers/foreign.js";

class Sized {
  static actorType = "Sized";
  handleCall(p: { chars?: number; throwChars?: number }): string {
    if (p.throwChars !== undefined) throw new Error("e".repeat(p.throwChars));
    return "y".repeat(p.chars ?? 0);
  }
}

/** The server's max_payload, which the nodes take as their limit (their default). */
const LIMIT = 4096;
const CAP = "limits";
type Ctx = { server: NatsServer; owner: Mesh; caller: Mesh };
const test = anyTest as TestFn<Ctx>;
const dir = mkdtempSync(join(tmpdir(), "mesh-limits-"));
test.before(async (t) => {
  const config = join(dir, "nats.conf");
  writeFileSync(config, `max_payload: ${LIMIT}\n`);
  t.context.server = await startNatsServer({ config });
  const start = (options: object) => Mesh.start({ servers: t.context.server.url, prefix: "limits", heartbeatMs: 200, ...options });
  t.context.owner = await start({ nodeId: nodeId("owner"), actors: [Sized], capabilities: [CAP] });
  t.context.caller = await start({ nodeId: nodeId("caller") });
  await eventually(() => t.context.caller.nodesFor(CAP).length === 1, "the caller to see the owner");
});
test.after.always(async (t) => {
  await Promise.allSettled([t.context.owner?.stop(), t.context.caller?.stop()]);
  await t.context.server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (err: unknown) => (err instanceof MeshError ? err.code : String(err)),
  );

test("replies of every size around the limit, sent together, each get their reply or PAYLOAD_TOO_LARGE", async (t) => {
  const sizes = Array.from({ length: 80 }, (_, i) => LIMIT - 100 + i);
  const outcomes = await Promise.all(
    sizes.map((chars, i) =>
      outcome(t.context.caller.call({ actor: "Sized", id: `s${i}`, payload: { chars }, capability: CAP, timeoutMs: 3000 })),
    ),
  );
  t.deepEqual([...new Set(outcomes)].sort(), ["PAYLOAD_TOO_LARGE", "ok"], outcomes.join(" "));
  const firstRefused = outcomes.indexOf("PAYLOAD_TOO_LARGE");
  t.true(
    outcomes.slice(firstRefused).every((o) => o === "PAYLOAD_TOO_LARGE"),
    "every larger one is refused too",
  );
});

test("an error whose message is longer than the limit reaches a remote caller and a foreign one, its message cut", async (t) => {
  const throwChars = 3 * LIMIT;
  for (const node of [t.context.caller, t.context.owner]) {
    const err = await t.throwsAsync(
      node.call({ actor: "Sized", id: "thrower", payload: { throwChars }, capability: CAP, timeoutMs: 3000 }),
      {
        instanceOf: MeshError,
      },
    );
    t.is(err?.code, "ACTOR_CRASHED");
  }
  const remote = await t.throwsAsync(
    t.context.caller.call({ actor: "Sized", id: "thrower", payload: { throwChars }, capability: CAP, timeoutMs: 3000 }),
  );
  t.regex(remote?.message ?? "", new RegExp(`… \\(cut from \\d+ characters\\)$`));
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const foreign = await jsonRequest(nc, `limits.call.${CAP}`, { actor: "Sized", id: "thrower", payload: { throwChars } });
  if (foreign.ok) return t.fail("the foreign call succeeded");
  t.is(foreign.error.code, "ACTOR_CRASHED");
  t.regex(foreign.error.message, /cut from \d+ characters\)$/);
});
