// Actors that handle stream events (docs/events.md), made for a stream `stream`
// whose subjects are `<stream>.in.<id>`: each event's JSON is { n, fail?, big? }.
// They publish `{ seq, total }` to `<stream>.out.<id>` from the turn.
import type { CallContext, StreamEvent } from "@mesh/runtime";

export interface LedgerState {
  total: number;
  /** The stream sequences applied, in the order they were. */
  seqs: number[];
}

interface EventBody {
  n: number;
  /** The handler throws after publishing. */
  fail?: boolean;
  /** The state grows past what the store takes, after publishing: the commit fails. */
  big?: boolean;
}

/** The classes for stream `stream`, under capability "ev", dead letters to `<stream>.dead`. */
export function eventActors(stream: string, options: { maxDeliveries?: number; partitions?: number; maxInFlight?: number } = {}) {
  const events = {
    stream,
    subject: `${stream}.in.>`,
    key: { token: 2 },
    backoffMs: 10,
    maxDeliveries: options.maxDeliveries ?? 3,
    deadLetter: `${stream}.dead`,
    partitions: options.partitions ?? 1,
    maxInFlight: options.maxInFlight ?? 1024,
  };

  function apply(state: LedgerState, event: StreamEvent, ctx: CallContext): void {
    const body = event.json<EventBody>();
    state.total += body.n;
    state.seqs.push(event.seq);
    ctx.publish(
      `${stream}.out.${ctx.id}`,
      { seq: event.seq, total: state.total },
      { "Event-Seq": String(event.seq), Actor: ctx.actorType },
    );
    if (body.fail) throw new Error(`event ${event.seq} asked to fail`);
    if (body.big) (state as LedgerState & { pad?: string }).pad = "x".repeat(2 * 1024 * 1024);
  }

  /** Durable: applies each event once, and publishes with its commit. */
  class EventLedger {
    static durable = true;
    static capability = "ev";
    static events = { ...events, name: "ledger" };
    state: LedgerState = { total: 0, seqs: [] };
    handleCall(): LedgerState {
      return this.state;
    }
    handleEvent(event: StreamEvent, ctx: CallContext): void {
      apply(this.state, event, ctx);
    }
  }

  /** Plain: at least once, in memory. */
  class EventTally {
    static capability = "ev";
    static events = { ...events, name: "tally" };
    state: LedgerState = { total: 0, seqs: [] };
    handleCall(): LedgerState {
      return this.state;
    }
    async handleEvent(event: StreamEvent, ctx: CallContext): Promise<void> {
      await Promise.resolve();
      apply(this.state, event, ctx);
    }
  }
  return { EventLedger, EventTally };
}
