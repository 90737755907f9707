// A flood at one key (docs/events.md "Limits"): a stream far ahead of what its
// actors can take, most of it for one id. The dispatcher reads at most
// 16 x maxInFlight events past its floor (the window; its read-ahead of 1,024
// is larger here), and the server delivers it no more than that ahead of the
// floor (nats.js's ordered consumer alone would pull the whole stream into the
// node's memory); the hot id's events are applied in order, and the other ids' too.
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { CallContext, StreamEvent } from "@mesh/runtime";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

const MAX_IN_FLIGHT = 16;
const HOT = 2000;
const COLD_KEYS = 8;
const COLD = 50;

/** Takes its id from the subject's last token; each event takes a timer tick. */
class Meter {
  static capability = "meter";
  static events = { stream: "FLOOD", subject: "flood.>", key: { token: -1 }, maxInFlight: MAX_IN_FLIGHT };
  seqs: number[] = [];
  handleCall(): number[] {
    return this.seqs;
  }
  async handleEvent(event: StreamEvent, _ctx: CallContext): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    this.seqs.push(event.seq);
  }
}

test.serial(
  "a flood at one key: the node reads at most its read-ahead past the floor, and every key's events are handled in stream order",
  async (t) => {
    t.timeout(120_000);
    const nc = await connect({ servers: t.context.server.url });
    t.teardown(() => nc.close());
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: "FLOOD", subjects: ["flood.>"] });
    const js = nc.jetstream();
    const want = new Map<string, number[]>();
    const acks = [];
    for (let i = 0; i < HOT + COLD_KEYS * COLD; i++) {
      // Every 5th event is a cold one, until they run out; the rest are the hot key's.
      const key = i % 5 === 0 && i / 5 < COLD_KEYS * COLD ? `cold${(i / 5) % COLD_KEYS}` : "hot";
      acks.push(js.publish(`flood.a.${key}`).then((ack) => want.set(key, [...(want.get(key) ?? []), ack.seq])));
    }
    await Promise.all(acks);
    for (const seqs of want.values()) seqs.sort((a, b) => a - b);

    const node = await startNode(t, { nodeId: nodeId("flood"), actors: [Meter], capabilities: ["meter"] });
    const dispatcher = () => node.metrics().events[0]?.dispatchers[0];
    // What the server has delivered to the node's consumer, at most, past the floor, while the hot key drains.
    let ahead = 0;
    let inFlight = 0;
    let samples = 0;
    await eventually(
      async () => {
        const d = dispatcher();
        if (d === undefined) return false;
        inFlight = Math.max(inFlight, d.inFlight);
        for await (const c of jsm.consumers.list("FLOOD")) if (c?.delivered) ahead = Math.max(ahead, c.delivered.stream_seq - d.floor);
        samples++;
        return d.floor >= HOT + COLD_KEYS * COLD;
      },
      "the dispatcher to get through the stream",
      90_000,
    );
    t.true(samples > 10, `sampled while the flood drained (${samples} samples)`);
    t.true(inFlight <= 16 * MAX_IN_FLIGHT, `at most the window, 16 x maxInFlight, read and not done (saw ${inFlight})`);
    // The window (16 x maxInFlight past the floor) plus one pull of the consumer (maxInFlight).
    t.true(ahead <= 17 * MAX_IN_FLIGHT, `delivered at most the window past the floor (saw ${ahead} of ${HOT + COLD_KEYS * COLD})`);
    for (const [key, seqs] of want) {
      const { result } = await node.call<number[]>({ actor: "Meter", id: key, capability: "meter" });
      t.deepEqual(result, seqs, `${key}: its events, in stream order, once each`);
    }
  },
);
