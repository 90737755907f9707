// The hottest actors of a node over the last minute (docs/observability.md
// "Admin API"): sampled, in bounded memory. One turn in SAMPLE, on average (random gaps), is recorded,
// with its duration when the turn was timed, into the current 10-second slot;
// six slots make the minute. A slot holds at most MAX_PER_SLOT actors: once
// full, actors not in it yet wait for the next slot (the hot ones are in it
// early). Crashes are counted every time. Nothing is read until someone asks.

/** One turn in this many, on average, is recorded (and counts for the turns let pass before it). */
const SAMPLE = 32;
const SLOT_MS = 10_000;
const SLOTS = 6;
const MAX_PER_SLOT = 1000;
/** Durations kept per actor per slot, for its p99. */
const MAX_SAMPLES = 64;

/** The names of an actor, and of its activation (an activation has them). */
export interface HotKey {
  /** Unique per activation: the key it is counted under, so that no activation is held here past its life. */
  readonly pid: string;
  readonly capability: string;
  readonly actorType: string;
  readonly id: string;
}

/** One actor over the last minute. */
export interface HotActor {
  capability: string;
  actorType: string;
  id: string;
  /** Turns per second (sampled: a multiple of SAMPLE over the window). */
  perSecond: number;
  /** Handlers that threw. */
  errors: number;
  /** The 99th percentile of its sampled timed turns, in ms (undefined: none timed). */
  p99Ms: number | undefined;
}

export type HotOrder = "calls" | "errors" | "p99";

/** Sampled turns, crashes and durations: of one actor, or of one actor type. */
class Tally {
  turns = 0;
  errors = 0;
  readonly ms: number[] = [];
  /** A recorded turn, standing for `weight` turns (those let pass before it, and itself). */
  add(ms: number, weight: number): void {
    this.turns += weight;
    if (ms < 0) return;
    // The first MAX_SAMPLES, then each replaces a slot in turn: the p99 follows the slot's latest turns.
    if (this.ms.length < MAX_SAMPLES) this.ms.push(ms);
    else this.ms[this.#recorded % MAX_SAMPLES] = ms;
    this.#recorded++;
  }
  #recorded = 0;
}

class Entry extends Tally {
  /** The actor's names, copied: the activation itself is not kept. */
  readonly who: { capability: string; actorType: string; id: string };
  constructor(who: HotKey) {
    super();
    this.who = { capability: who.capability, actorType: who.actorType, id: who.id };
  }
}

interface Slot {
  readonly start: number;
  readonly actors: Map<string, Entry>;
  /** By actor type: every sampled turn counts here, also of actors the slot had no room for. */
  readonly types: Map<string, Tally>;
}

/** One actor type over the last minute. */
export interface TypeRate {
  perSecond: number;
  errors: number;
  p99Ms: number | undefined;
}

export class HotActors {
  #slots: Slot[] = [];
  #random = 0x9e3779b9 | 0;

  /**
   * Turns to let pass before the next is recorded: callers decrement it and call `turn` when it reaches 0
   * (`if (--hot.skip <= 0) hot.turn(…)`), so that a turn that is not recorded costs no call (a call per
   * turn cost local calls about 10 %). Random, from 1 to 2 × SAMPLE - 1 (xorshift): a fixed period would
   * alias with callers that alternate actors.
   */
  skip = SAMPLE;
  #weight = SAMPLE;

  /** A recorded turn of `who` (its `skip` ran out); `ms` its duration, or -1 when it was not timed. */
  turn(who: HotKey, ms: number): void {
    const weight = this.#weight;
    this.skip = this.#weight = this.gap();
    this.record(who, ms, weight);
  }

  /** A turn of `who` standing for `weight` turns (itself and those let pass before it). */
  record(who: HotKey, ms: number, weight: number): void {
    this.#typeOf(who).add(ms, weight);
    this.#entry(who)?.add(ms, weight);
  }

  /** A random gap between recorded turns, from 1 to 2 × SAMPLE - 1 (xorshift). */
  gap(): number {
    let x = this.#random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#random = x;
    return 1 + ((x >>> 0) % (2 * SAMPLE - 1));
  }

  /** A handler of `who` threw. */
  failed(who: HotKey): void {
    this.#typeOf(who).errors++;
    const e = this.#entry(who);
    if (e !== undefined) e.errors++;
  }

  /** Per actor type, over the last minute: turns per second, crashes, p99. */
  rates(): Record<string, TypeRate> {
    const { live, seconds } = this.#window();
    const merged = new Map<string, Tally>();
    for (const slot of live)
      for (const [type, t] of slot.types) {
        let m = merged.get(type);
        if (m === undefined) merged.set(type, (m = new Tally()));
        m.turns += t.turns;
        m.errors += t.errors;
        m.ms.push(...t.ms);
      }
    return Object.fromEntries(
      [...merged].map(([type, m]) => [type, { perSecond: m.turns / seconds, errors: m.errors, p99Ms: percentile(m.ms, 0.99) }]),
    );
  }

  /** The slots of the last minute, and the seconds they cover. */
  #window(): { live: Slot[]; seconds: number } {
    const now = performance.now();
    const live = this.#slots.filter((s) => now - s.start < SLOT_MS * SLOTS);
    return { live, seconds: live.length === 0 ? 1 : Math.max(1, (now - Math.min(...live.map((s) => s.start))) / 1000) };
  }

  /** The top `n` actors of the last minute by `order`. */
  top(n: number, order: HotOrder): HotActor[] {
    const { live, seconds } = this.#window();
    // Merged by activation (its pid, the slots' key: no key to build); durations only for the rows shown,
    // unless they are the order (an answer cost 4-7 ms of the owner's CPU with 1,024 busy actors when every
    // row's p99 was computed).
    const merged = new Map<string, { who: Entry["who"]; turns: number; errors: number; parts: Entry[]; p99: number | undefined }>();
    for (const slot of live)
      for (const [pid, e] of slot.actors) {
        let m = merged.get(pid);
        if (m === undefined) merged.set(pid, (m = { who: e.who, turns: 0, errors: 0, parts: [], p99: undefined }));
        m.turns += e.turns;
        m.errors += e.errors;
        m.parts.push(e);
      }
    const p99 = (m: { parts: Entry[]; p99: number | undefined }) =>
      (m.p99 ??=
        percentile(
          m.parts.flatMap((e) => e.ms),
          0.99,
        ) ?? -1);
    const key = { calls: (m: { turns: number }) => m.turns, errors: (m: { errors: number }) => m.errors, p99 }[order];
    const rows = [...merged.values()].sort((a, b) => key(b) - key(a)).slice(0, n);
    return rows.map((m) => {
      const ms = p99(m);
      return { ...m.who, perSecond: m.turns / seconds, errors: m.errors, p99Ms: ms < 0 ? undefined : ms };
    });
  }

  /**
   * The slot samples go to: open until a timer closes it SLOT_MS later, so that recording reads no clock
   * (two clock reads per recorded turn cost local calls about 4 %). The next
   * sample after that opens the next slot; with nothing sampled, no timer runs.
   */
  #slot(): Slot {
    return this.#current ?? this.#open();
  }

  #current: Slot | undefined;

  #open(): Slot {
    const slot: Slot = { start: performance.now(), actors: new Map(), types: new Map() };
    this.#current = slot;
    this.#slots.push(slot);
    if (this.#slots.length > SLOTS) this.#slots = this.#slots.slice(-SLOTS);
    setTimeout(() => (this.#current = undefined), SLOT_MS).unref();
    return slot;
  }

  #typeOf(who: HotKey): Tally {
    const types = this.#slot().types;
    let t = types.get(who.actorType);
    if (t === undefined) types.set(who.actorType, (t = new Tally()));
    return t;
  }

  #entry(who: HotKey): Entry | undefined {
    const slot = this.#slot();
    let e = slot.actors.get(who.pid);
    if (e === undefined) {
      if (slot.actors.size >= MAX_PER_SLOT) return undefined;
      slot.actors.set(who.pid, (e = new Entry(who)));
    }
    return e;
  }
}

function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}
