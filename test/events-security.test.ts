// Events under the shipped nats-secure.conf (docs/security.md "Events"): a node
// with the node role reads a stream, applies each event once and publishes its
// output; the operator sets up the streams and reads `mesh events`; clients may
// not read the stream, the events bucket, or publish dead letters and outputs.
// The streams are the ones the config names (ORDERS on orders.>, SHIPMENTS on
// shipments.>). Every server here is real; every credential is made by the test.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import anyTest from "ava";
import type { ExecutionContext, TestFn } from "ava";
import { connect } from "nats";
import type { ConnectionOptions, NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import type { CallContext, MeshOptions, StreamEvent } from "@mesh/runtime";
import type { Credentials } from "@mesh/runtime/testing";
import { eventually, nodeId } from "./helpers/cluster.js";
import { useSecureServer } from "./helpers/secure.js";
import type { SecureContext } from "./helpers/secure.js";

interface OrderState {
  lines: number;
  total: number;
  paid: boolean;
}

/** An order: events on orders.<id>.line ({ amount }) and orders.<id>.pay; a payment ships it once. Any other event fails. */
class Order {
  static actorType = "order";
  static capabilities = ["order"];
  static durable = true;
  static events = { stream: "ORDERS", subject: "orders.*.*", key: { token: 1 }, maxDeliveries: 2, backoffMs: 10 };
  state: OrderState = { lines: 0, total: 0, paid: false };
  handleCall(): OrderState {
    return this.state;
  }
  handleEvent(event: StreamEvent, ctx: CallContext): void {
    const kind = event.subject.split(".")[2];
    if (kind === "line") {
      this.state.lines++;
      this.state.total += event.json<{ amount: number }>().amount;
    } else if (kind === "pay") {
      if (this.state.paid) return;
      this.state.paid = true;
      ctx.publish(`shipments.${ctx.id}`, { order: ctx.id, lines: this.state.lines, total: this.state.total });
    } else {
      throw new Error(`no such order event: ${kind}`);
    }
  }
}

/** The progress key of Order's subscription in the events bucket. */
const FLOOR_KEY = "order.order.ORDERS.0";

type Context = SecureContext;
const test = anyTest as TestFn<Context>;
useSecureServer(test);

async function node(t: ExecutionContext<Context>, name: string, options: MeshOptions = {}): Promise<Mesh> {
  const mesh = await Mesh.start({
    servers: t.context.secure.server.url,
    nats: t.context.secure.node,
    nodeId: nodeId(name),
    heartbeatMs: 200,
    actors: [Order],
    capabilities: ["order"],
    ...options,
  });
  t.context.nodes.push(mesh);
  return mesh;
}

async function conn(t: ExecutionContext<Context>, creds: Credentials): Promise<NatsConnection> {
  const nc = await connect({ servers: t.context.secure.server.url, ...creds } as Partial<ConnectionOptions>);
  t.context.conns.push(nc);
  return nc;
}

/** The operator creates the streams the config names, as the demo does. */
async function setUpStreams(t: ExecutionContext<Context>): Promise<NatsConnection> {
  const op = await conn(t, t.context.secure.operator);
  const jsm = await op.jetstreamManager();
  await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
  await jsm.streams.add({ name: "SHIPMENTS", subjects: ["shipments.>"] });
  return op;
}

/** `orders` orders, order i with i + 1 lines of amount 10 * i + line, and a payment for the even ones. Returns what each should hold. */
async function publishOrders(op: NatsConnection, orders: number): Promise<Map<string, OrderState>> {
  const js = op.jetstream();
  const expected = new Map<string, OrderState>();
  const acks = [];
  for (let i = 0; i < orders; i++) {
    const state = { lines: 0, total: 0, paid: i % 2 === 0 };
    for (let line = 1; line <= i + 1; line++) {
      acks.push(js.publish(`orders.o${i}.line`, JSON.stringify({ amount: 10 * i + line })));
      state.lines++;
      state.total += 10 * i + line;
    }
    if (state.paid) acks.push(js.publish(`orders.o${i}.pay`, "{}"));
    expected.set(`o${i}`, state);
  }
  await Promise.all(acks);
  return expected;
}

const totals = (nodes: Mesh[]) =>
  nodes
    .flatMap((n) => n.metrics().events)
    .reduce((a, r) => ({ handled: a.handled + r.handled, deadLetters: a.deadLetters + r.deadLetters }), { handled: 0, deadLetters: 0 });

const CLI = fileURLToPath(new URL("../../packages/runtime/lib/operations/cli.js", import.meta.url));

/** Runs the mesh CLI as user `c`, its credentials in the environment as the docs show. */
function meshCli(url: string, c: Credentials, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, NATS_USER: c.user, NATS_PASSWORD: c.pass };
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, "-s", url], { env, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const escape = (s: string) => s.replace(/[$.*+?^(){}|[\]\\]/g, "\\$&");

/** Sends a request the server must refuse: resolves with its error, after checking it is the server's permissions error for `subject`. */
async function refusedPublish(t: ExecutionContext<Context>, nc: NatsConnection, subject: string, body = "{}"): Promise<void> {
  const err = await t.throwsAsync(nc.request(subject, body, { timeout: 2000 }), undefined, subject);
  t.is((err as { code?: string } | undefined)?.code, "PERMISSIONS_VIOLATION", subject);
  t.regex(err?.message ?? "", new RegExp(`Permissions Violation for Publish to "${escape(subject)}"`), subject);
}

test.serial(
  "under the shipped roles, a durable event actor on node-role nodes applies each event of its stream once, ships paid orders once, dead-letters a bad event, and the operator's mesh events shows it",
  async (t) => {
    const { server, operator, client } = t.context.secure;
    const op = await setUpStreams(t);
    const nodes = [await node(t, "ev-a"), await node(t, "ev-b")];
    await eventually(() => nodes.every((n) => n.nodesFor("order").length === 2), "the two nodes to see each other");
    const expected = await publishOrders(op, 20);
    await op.jetstream().publish("orders.o-bad.refund", "{}");
    const events = [...expected.values()].reduce((a, s) => a + s.lines + (s.paid ? 1 : 0), 0);
    await eventually(
      () => {
        const { handled, deadLetters } = totals(nodes);
        return handled === events && deadLetters === 1;
      },
      `${events} events handled and one dead letter`,
      20_000,
    );

    // Exactly once: each order holds the sum of its events.
    for (const [id, state] of expected) t.deepEqual((await nodes[0]!.call<OrderState>({ actor: Order, id })).result, state, id);
    // Its output: one shipment per paid order, counted by the operator.
    const shipments = await (await op.jetstreamManager()).streams.info("SHIPMENTS", { subjects_filter: ">" });
    const paid = [...expected].filter(([, s]) => s.paid).map(([id]) => `shipments.${id}`);
    t.deepEqual(shipments.state.subjects, Object.fromEntries(paid.map((s) => [s, 1])));
    t.is(shipments.state.messages, paid.length);

    // What the operator sees, once the dispatcher has settled its lag (a message's pending count can be stale).
    await eventually(
      () =>
        nodes
          .flatMap((n) => n.metrics().events)
          .flatMap((r) => r.dispatchers)
          .every((d) => d.lag === 0),
      "the dispatcher's lag to come to 0",
    );
    const cli = await meshCli(server.url, operator, "events", "--json");
    t.is(cli.code, 0, cli.stderr);
    const subs = (
      JSON.parse(cli.stdout) as {
        subscriptions: {
          subscription: string;
          stream: string;
          handled: number;
          deadLetters: number;
          dispatchers: { floor: number; lag: number; error?: string }[];
          stored?: { applied: number; deadLetters: number; floors: { partition: number; floor: number }[] };
        }[];
      }
    ).subscriptions;
    t.is(subs.length, 1);
    t.like(subs[0], { subscription: "order.order.ORDERS", stream: "ORDERS", handled: events, deadLetters: 1 });
    t.like(subs[0], { stored: { applied: events, deadLetters: 1, floors: [{ partition: 0, floor: events + 1 }] } });
    t.deepEqual(
      subs[0]!.dispatchers.map((d) => [d.floor, d.lag, d.error]),
      [[events + 1, 0, undefined]],
    );
    const table = await meshCli(server.url, operator, "events");
    // LAG, APPLIED and DEAD (stored), then HANDLED, REPEATED, RETRIED (the live nodes').
    t.regex(table.stdout, new RegExp(`order\\.order\\.ORDERS\\s+ORDERS\\s+0\\s+${events}\\s+1\\s+${events}\\s+0\\s+\\d+\\s`), table.stdout);
    // A client may not ask the nodes ($SRV is the operator's).
    const refused = await meshCli(server.url, client, "events", "--json");
    t.not(refused.code, 0, refused.stdout);
  },
);

test.serial(
  "client and payments connections cannot read the stream, create a consumer on it, read or move the dispatchers' floors, inject events, or publish dead letters and shipments",
  async (t) => {
    const { client, payments } = t.context.secure;
    const op = await setUpStreams(t);
    const host = await node(t, "ev-host");
    const expected = await publishOrders(op, 4);
    const events = [...expected.values()].reduce((a, s) => a + s.lines + (s.paid ? 1 : 0), 0);
    await eventually(() => totals([host]).handled === events, "the events to be handled");
    const floor = () => host.metrics().events[0]!.dispatchers[0]!.floor;
    await eventually(() => floor() === events, "the floor to reach the last event");

    for (const creds of [client, payments]) {
      const nc = await conn(t, creds);
      // The stream: no info, no consumer of any kind (ordered, named, durable), no direct read.
      await refusedPublish(t, nc, "$JS.API.STREAM.INFO.ORDERS");
      const jsm = await nc.jetstreamManager({ checkAPI: false });
      const created = await t.throwsAsync(
        jsm.consumers.add("ORDERS", { name: "spy", filter_subject: "orders.>", ack_policy: "none" } as never),
      );
      t.regex(created?.message ?? "", /Permissions Violation for Publish to "\$JS\.API\.CONSUMER\.CREATE\.ORDERS\.spy\.orders\.>"/);
      await refusedPublish(
        t,
        nc,
        "$JS.API.CONSUMER.CREATE.ORDERS",
        JSON.stringify({ stream_name: "ORDERS", config: { ack_policy: "none" } }),
      );
      await refusedPublish(
        t,
        nc,
        "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.spy",
        JSON.stringify({ stream_name: "ORDERS", config: { durable_name: "spy", ack_policy: "explicit" } }),
      );
      await refusedPublish(t, nc, "$JS.API.STREAM.MSG.GET.ORDERS", JSON.stringify({ seq: 1 }));
      await t.throwsAsync(nc.jetstream().consumers.get("ORDERS"), {
        message: /Permissions Violation for Publish to "\$JS\.API\.STREAM\.INFO\.ORDERS"/,
      });
      // The events bucket: its floors can be neither read nor written.
      await refusedPublish(t, nc, `$JS.API.DIRECT.GET.KV_mesh_events.$KV.mesh_events.${FLOOR_KEY}`);
      await refusedPublish(
        t,
        nc,
        "$JS.API.STREAM.MSG.GET.KV_mesh_events",
        JSON.stringify({ last_by_subj: `$KV.mesh_events.${FLOOR_KEY}` }),
      );
      await refusedPublish(t, nc, `$KV.mesh_events.${FLOOR_KEY}`, JSON.stringify({ seq: 1_000_000 }));
      await refusedPublish(t, nc, "$JS.API.STREAM.INFO.KV_mesh_events");
      // Events in, dead letters and outputs: neither injected nor forged.
      await refusedPublish(t, nc, "orders.o0.pay");
      await refusedPublish(t, nc, "mesh.events.dead.order");
      await refusedPublish(t, nc, "shipments.o1");
      // Nor read by subscription.
      const errors: string[] = [];
      const subjects = ["orders.>", "$KV.mesh_events.>", "mesh.events.dead.>", "shipments.>"];
      const subs = subjects.map((s) => nc.subscribe(s, { callback: (err) => err && errors.push(err.message) }));
      await nc.flush();
      await eventually(
        () => subs.every((s) => s.isClosed()) && errors.length === subjects.length,
        `the server to refuse ${creds.user}'s subscriptions`,
      );
      for (const s of subjects)
        t.true(
          errors.some((e) => e.includes(`Permissions Violation for Subscription to "${s}"`)),
          `${creds.user}: ${s}`,
        );
    }

    // Nothing changed: the floor, what was handled, the orders' state, the shipments.
    const { handled, deadLetters } = totals([host]);
    t.deepEqual({ handled, deadLetters, floor: floor() }, { handled: events, deadLetters: 0, floor: events });
    for (const [id, state] of expected) t.deepEqual((await host.call<OrderState>({ actor: Order, id })).result, state, id);
    t.is(
      (await (await op.jetstreamManager()).streams.info("SHIPMENTS")).state.messages,
      [...expected.values()].filter((s) => s.paid).length,
    );
    // The control: the operator may publish orders (the demo's order source), and the node handles them.
    await op.jetstream().publish("orders.o1.pay", "{}");
    await eventually(() => totals([host]).handled === events + 1, "the operator's order event to be handled");
    t.like((await host.call<OrderState>({ actor: Order, id: "o1" })).result, { paid: true });
  },
);
