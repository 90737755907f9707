// A shard that moves is handed over once its activations here are gone,
// onDeactivate included: an actor that holds something outside Mesh (a
// socket, a file, a lock: `static migrate = false`) is never live on two nodes
// at once, between one's onActivate and the end of the other's onDeactivate.
import anyTest from "ava";
import type { TestFn } from "ava";
import type { CallContext } from "@mesh/runtime";
import { eventually, holds, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const live = new Map<string, number>();
let mostLive = 0;
const deactivating = new Set<string>();
let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));

class Socket {
  static migrate = false; // it holds a connection: it ends, and starts again on the new owner
  constructor(readonly id: string) {}
  onActivate(): void {
    const n = (live.get(this.id) ?? 0) + 1;
    live.set(this.id, n);
    mostLive = Math.max(mostLive, n);
  }
  async onDeactivate(): Promise<void> {
    deactivating.add(this.id);
    await released; // closing the connection takes a while
    live.set(this.id, live.get(this.id)! - 1);
  }
  handleCall(_p: unknown, ctx: CallContext): string {
    return ctx.nodeId;
  }
}

test("an actor whose shard moves starts on its new owner only once its onDeactivate on the old one has ended", async (t) => {
  const timing = { heartbeatMs: 200, standbyMs: 0 };
  const a = await startNode(t, { nodeId: nodeId("a"), prefix: "dh", actors: [Socket], capabilities: ["c"], ...timing });
  const ids = Array.from({ length: 100 }, (_, i) => `s${i}`);
  for (const id of ids) await a.call({ actor: Socket, id, capability: "c" });
  const b = await startNode(t, { nodeId: nodeId("b"), prefix: "dh", actors: [Socket], capabilities: ["c"], ...timing });
  await eventually(() => a.nodesFor("c").length === 2 && b.nodesFor("c").length === 2, "both nodes to see both");
  const moved = ids.filter((id) => b.ownerNode(b.shardFor(id), "c") === b.nodeId);
  t.true(moved.length > 0); // 100 ids all staying on a: a chance of 2^-100
  await eventually(() => moved.every((id) => deactivating.has(id)), "a to deactivate the actors that move");
  const calls = moved.map((id) => b.call<string>({ actor: Socket, id, capability: "c", timeoutMs: 20_000 }));
  await holds(() => mostLive === 1, "no moved actor is live on both nodes", 500);
  release();
  const owners = (await Promise.all(calls)).map((r) => r.result);
  t.true(owners.every((owner) => owner === b.nodeId));
  t.is(mostLive, 1, "no actor was live on two nodes at once");
});
