// A claim for shards settles only once the messages on the node subject read so
// far were served: an old owner sends its hand-overs (migrations, records) there
// before it answers the claim, and the node subject may serve a message a tick
// after it was read (message-ticks.ts). Here the node subject's "served" is held
// back by the test: the shards stay unready until it is let go.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import { RoutingTable, quietLogger, rendezvous } from "@mesh/core";
import { Subjects } from "@mesh/transport";
import type { Membership } from "@mesh/transport";
import { useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const { ShardClaims } = (await import(new URL("../../packages/runtime/lib/node/shard-claims.js", import.meta.url).href)) as {
  ShardClaims: new (parts: Record<string, unknown>) => {
    start(): void;
    begin(): void;
    stop(): void;
    ready(capability: string, shard: number): Promise<void> | undefined;
  };
};

test("a claim answered by every member waits for the node subject's messages read before it were served", async (t) => {
  const nc = await connect({ servers: t.context.server.url });
  t.teardown(() => nc.close());
  const subjects = new Subjects("order");
  // The old owner: answers every claim at once, refusing nothing.
  nc.subscribe(subjects.claim, {
    callback: (_err, msg) => msg.respond(new TextEncoder().encode(JSON.stringify({ node: "old", refused: {} }))),
  });
  await nc.flush();

  const routes = new RoutingTable(4, rendezvous);
  routes.setMembers([
    { node: "new", capabilities: ["c"] },
    { node: "old", capabilities: [] },
  ]);
  const membership = {
    others: () => ["old"],
    announcement: () => ({ node: "new", capabilities: ["c"] }),
  } as unknown as Membership;
  let served!: () => void;
  const inboxServed = new Promise<void>((resolve) => (served = resolve));
  let asked = 0;
  const claims = new ShardClaims({
    nc,
    subjects,
    nodeId: "new",
    inboxPrefix: "_INBOX",
    routes,
    membership,
    log: quietLogger,
    released: () => Promise.resolve([]),
    running: () => true,
    handedOver: () => {},
    inboxServed: () => {
      asked++;
      return inboxServed;
    },
  });
  t.teardown(() => claims.stop());
  claims.start();
  claims.begin();

  const ready = claims.ready("c", 0);
  t.truthy(ready, "the shard waits for its claim");
  let settled = false;
  void ready!.then(() => (settled = true));
  const deadline = performance.now() + 5000;
  while (asked === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  t.is(asked, 1, "the claim was answered, and the node subject asked");
  await new Promise((resolve) => setImmediate(resolve));
  t.false(settled, "not ready while the node subject has messages to serve");
  served();
  await ready;
  t.true(settled);
  t.is(claims.ready("c", 0), undefined, "ready at once from then on");
});
