// What operators see: mesh.metrics(), Prometheus text on metricsPort, and a pino-style logger.
import anyTest from "ava";
import type { TestFn } from "ava";
import type { Mesh } from "@mesh/runtime";
import { Counter, Crasher } from "./helpers/actors.js";
import { nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const lines: { level: string; fields: object; message: string }[] = [];
const logger = Object.fromEntries(
  ["debug", "info", "warn", "error"].map((level) => [level, (fields: object, message: string) => lines.push({ level, fields, message })]),
) as never;

const test = anyTest as TestFn<ClusterContext & { owner: Mesh; caller: Mesh }>;
useNatsServer(test, async (t) => {
  t.context.owner = await startNode(t, {
    nodeId: nodeId("obs"),
    actors: [Counter, Crasher],
    capabilities: ["obs"],
    metricsPort: 0,
    logger,
  });
  t.context.caller = await startNode(t, { nodeId: nodeId("obs-caller"), metricsPort: 0 });
});

test.serial("mesh.metrics() counts calls, activations, crashes and errors, with latency histograms", async (t) => {
  const { owner, caller } = t.context;
  const before = owner.metrics();
  for (let i = 0; i < 5; i++) await caller.call({ actor: Counter, id: `m_${i % 2}`, capability: "obs" });
  await caller.call({ actor: Crasher, id: "boom", payload: { action: "crash" }, capability: "obs" }).catch(() => {});
  await caller.call({ actor: "Ghost", id: "x", capability: "obs" }).catch(() => {});
  const after = owner.metrics();
  t.is(after.callsServed - before.callsServed, 6);
  t.is(after.activations - before.activations, 3);
  t.is(after.crashes - before.crashes, 1);
  t.is((after.errors.ACTOR_CRASHED ?? 0) - (before.errors.ACTOR_CRASHED ?? 0), 1);
  t.is((after.errors.UNKNOWN_ACTOR_TYPE ?? 0) - (before.errors.UNKNOWN_ACTOR_TYPE ?? 0), 1);
  t.is(after.handlerLatency.count - before.handlerLatency.count, 6);
  t.is(
    after.handlerLatency.counts.reduce((a, b) => a + b, 0),
    after.handlerLatency.count,
  );
  t.true(caller.metrics().remoteCallLatency.count >= 7);
});

test.serial(
  "local calls (the in-process fast path, counted by a sampled countdown) are counted exactly, however often metrics are read",
  async (t) => {
    const { owner } = t.context;
    const ids = ["local_a", "local_b", "local_c"];
    for (const id of ids) await owner.call({ actor: Counter, id, capability: "obs" }); // live: the next calls take the fast path
    const before = owner.metrics().callsServed;
    let done = 0;
    for (const n of [1, 5, 17, 40, 3]) {
      for (let i = 0; i < n; i++) await owner.call({ actor: Counter, id: ids[i % ids.length]!, capability: "obs" });
      done += n;
      t.is(owner.metrics().callsServed - before, done);
    }
  },
);

test.serial("with metricsPort, Prometheus text is served at /metrics", async (t) => {
  const { owner } = t.context;
  await owner.call({ actor: Counter, id: "prom", capability: "obs" });
  t.regex(owner.metricsUrl!, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const response = await fetch(owner.metricsUrl!);
  t.is(response.status, 200);
  const text = await response.text();
  t.regex(text, new RegExp(`mesh_calls_served_total\\{node="${owner.nodeId}"\\} ${owner.metrics().callsServed}`));
  t.regex(text, /mesh_handler_duration_seconds_bucket\{le="0\.001",node="[^"]+"\} \d+/);
  t.regex(text, /mesh_errors_total\{code="ACTOR_CRASHED",node="[^"]+"\} 1/);
  t.regex(text, /mesh_actors\{node="[^"]+"\} \d+/);
  t.is((await fetch(owner.metricsUrl!.replace("/metrics", "/other"))).status, 404);
});

test.serial("a pino-style logger hears what happens, as (fields, message)", (t) => {
  t.true(lines.some((l) => l.level === "info" && l.message === "mesh: node joined"));
  t.true(lines.some((l) => l.level === "warn" && l.message === "mesh: actor crashed"));
  t.true(lines.every((l) => typeof l.fields === "object"));
});

test.serial("a stopped node's metrics endpoint is closed", async (t) => {
  const node = await startNode(t, { nodeId: nodeId("obs-stop"), metricsPort: 0 });
  const url = node.metricsUrl!;
  t.is((await fetch(url)).status, 200);
  await node.stop();
  await t.throwsAsync(fetch(url));
});
