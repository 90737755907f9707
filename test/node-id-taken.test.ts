// A node id is one process's. When a process is cut off (or frozen) long
// enough for its peers to remove it, and a replacement starts with the same id
// (as in-place deploys with fixed ids do), the old process, once it is back,
// finds the id's record naming the new one: it stops, rather than serve every
// call beside it and overwrite its record at each renewal.
import anyTest from "ava";
import type { TestFn } from "ava";
import type { CallContext } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { TcpProxy } from "./helpers/proxy.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** Counts what each process's activations handled. */
const handled = new Map<string, number>();
class Tally {
  handleCall(_p: unknown, ctx: CallContext): string {
    handled.set(ctx.pid, (handled.get(ctx.pid) ?? 0) + 1);
    return ctx.pid;
  }
}

test("a process whose node id another process took while it was cut off stops when it is back, and every call runs once", async (t) => {
  const timing = { heartbeatMs: 200, nodeTimeoutMs: 1000, callTimeoutMs: 2000, standbyMs: 0 };
  const prefix = "idt";
  const proxy = await TcpProxy.start(t.context.server.url);
  t.teardown(() => proxy.close());
  const id = nodeId("x");
  const old = await startNode(t, { servers: proxy.url, prefix, nodeId: id, actors: [Tally], capabilities: ["c"], ...timing });
  const peer = await startNode(t, { prefix, nodeId: nodeId("peer"), actors: [Tally], capabilities: ["c"], ...timing });
  await eventually(() => peer.nodesFor("c").length === 2 && old.nodesFor("c").length === 2, "both nodes to see both");
  const ids = Array.from({ length: 400 }, (_, i) => `t${i}`).filter((k) => peer.ownerNode(peer.shardFor(k), "c") === id);
  await proxy.cut();
  await eventually(() => !peer.nodesFor("c").includes(id), "the peer to remove the cut-off node", 10_000);
  const fresh = await startNode(t, { prefix, nodeId: id, actors: [Tally], capabilities: ["c"], ...timing });
  await eventually(() => peer.nodesFor("c").includes(id), "the peer to see the id again", 10_000);
  await proxy.restore();
  await eventually(() => old.state === "STOPPED", "the old process to stop once it is back", 15_000);
  t.is(fresh.state, "RUNNING");
  const pids = new Set<string>();
  for (const k of ids.slice(0, 20)) pids.add((await peer.call<string>({ actor: Tally, id: k, capability: "c" })).result);
  t.true([...pids].every((pid) => pid.startsWith(`${id}/`)));
  const runs = [...handled].filter(([pid]) => pids.has(pid)).reduce((n, [, count]) => n + count, 0);
  t.is(runs, 20, "each call ran once, in the new process");
});
