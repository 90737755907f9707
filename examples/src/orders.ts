// The demo's orders: the streams ORDERS (orders.>) and SHIPMENTS (shipments.>),
// the order events it publishes, and the checks it makes of what the order
// actors (actors.ts) did with them: each event applied once, one shipment per
// paid order. The stream names are the ones nats-secure.conf grants.
import type { NatsConnection } from "nats";
import type { Mesh } from "@mesh/runtime";

/** What an order should hold once its events are handled (the Order actor's state). */
export interface OrderState {
  lines: number;
  total: number;
  shipped: boolean;
}

/** One order event to publish: `orders.<id>.line` with an amount, or `orders.<id>.pay`. */
interface OrderEvent {
  subject: string;
  data: string;
}

/** Creates the demo's streams where missing (Mesh never creates users' streams). */
export async function setUpStreams(nc: NatsConnection): Promise<void> {
  const jsm = await nc.jetstreamManager();
  for (const [name, subject] of [
    ["ORDERS", "orders.>"],
    ["SHIPMENTS", "shipments.>"],
  ] as const) {
    try {
      await jsm.streams.info(name);
    } catch {
      await jsm.streams.add({ name, subjects: [subject] });
    }
  }
}

/**
 * `count` orders named `<run>-<n>` (a run of the demo against a long-lived
 * server never meets an earlier run's orders): order n has 5 to 25 lines, and
 * three in four are paid after their last line. The events interleave the
 * orders, each order's in its own order. Returns the events and what each
 * order should end up holding.
 */
export function planOrders(run: string, count: number): { events: OrderEvent[]; expected: Map<string, OrderState> } {
  const expected = new Map<string, OrderState>();
  const lines = (n: number) => 5 + ((n * 5) % 21);
  for (let n = 0; n < count; n++) expected.set(`${run}-${n}`, { lines: lines(n), total: 0, shipped: n % 4 !== 3 });
  const events: OrderEvent[] = [];
  for (let round = 0; round <= 25; round++) {
    let n = 0;
    for (const [id, order] of expected) {
      if (round < order.lines) {
        const amount = 1 + ((n * 31 + round * 17) % 100);
        order.total += amount;
        events.push({ subject: `orders.${id}.line`, data: JSON.stringify({ amount }) });
      } else if (round === order.lines && order.shipped) {
        events.push({ subject: `orders.${id}.pay`, data: "{}" });
      }
      n++;
    }
  }
  return { events, expected };
}

/** Publishes `events` to JetStream, 200 at a time, each acknowledged. */
export async function publishEvents(nc: NatsConnection, events: readonly OrderEvent[]): Promise<void> {
  const js = nc.jetstream();
  for (let i = 0; i < events.length; i += 200) await Promise.all(events.slice(i, i + 200).map((e) => js.publish(e.subject, e.data)));
}

/**
 * Asks every order for its state until each has seen all its events (its
 * lines, and its payment), or `timeoutMs` passes. Returns the states read last
 * (undefined for an order that did not answer) and whether all were done.
 */
export async function waitForOrders(
  client: Mesh,
  expected: ReadonlyMap<string, OrderState>,
  timeoutMs: number,
): Promise<{ done: boolean; states: Map<string, OrderState | undefined> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = new Map(
      await Promise.all(
        [...expected.keys()].map(
          async (id) =>
            [
              id,
              await client.call<OrderState>({ actor: "order", id, capability: "order" }).then(
                (r) => r.result,
                () => undefined,
              ),
            ] as const,
        ),
      ),
    );
    const done = [...expected].every(([id, want]) => {
      const got = states.get(id);
      return got !== undefined && got.lines >= want.lines && got.shipped === want.shipped;
    });
    if (done || Date.now() > deadline) return { done, states };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The shipments of this run in the stream SHIPMENTS: how many orders have one,
 * and how many messages there are. Asks until `orders` orders have one, or
 * `timeoutMs` passes (a shipment is stored right after its turn commits).
 */
export async function countShipments(
  nc: NatsConnection,
  run: string,
  orders: number,
  timeoutMs: number,
): Promise<{ orders: number; messages: number }> {
  const jsm = await nc.jetstreamManager();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await jsm.streams.info("SHIPMENTS", { subjects_filter: "shipments.>" });
    const mine = Object.entries(info.state.subjects ?? {}).filter(([subject]) => subject.startsWith(`shipments.${run}-`));
    if (mine.length >= orders || Date.now() > deadline) return { orders: mine.length, messages: mine.reduce((a, [, n]) => a + n, 0) };
    await new Promise((r) => setTimeout(r, 100));
  }
}
