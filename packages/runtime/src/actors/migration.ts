// Live migration (docs/behaviour.md "Deploys"): a plain activation that
// leaves because its shard moved or its node stops is handed to its new owner
// with what its instance holds (its own fields, or what dehydrate() returns)
// and its timers' time left, as a MIGRATE request on the owner's node subject,
// before the letters that waited for it. The new owner holds the shard's
// actors until the old owner released the shard (node/shard-claims.ts), so
// what moved is there when the activation starts: it starts from it
// (rehydrate(data), or the fields assigned) instead of onActivate, and the
// old one's onDeactivate does not run. An activation whose state cannot move
// (outside the value model, a dehydrate that throws) starts afresh there,
// counted and logged once per class. A durable activation hands over its
// stored record and revision once its commits have landed, so that its new
// owner does not read the store, and its timers' time left, taken as it left;
// its fields do not move (onDeactivate and onActivate run as on any move),
// and its commits stay fenced by that revision. Imports: the actors room, the timers room, state and the bottom
// floor.
import { checkAcross, messageOf } from "@mesh/core/internal";
import type { Logger } from "@mesh/core";
import type { NodeMetrics } from "../operations/metrics.js";
import type { Stored } from "../state/state-store.js";
import type { Timers } from "../timers/timers.js";
import type { ActorClass } from "../types.js";
import { isThenable } from "./activation.js";
import type { Activation } from "./activation.js";
import type { Address } from "./letter.js";

/** What moves of a plain actor, on the wire: [data, timers as [name, time left in ms, interval in ms (0: once)]]. */
type PlainMoved = [data: unknown, timers: Carried];
/** Timers on the wire: [name, time left in ms, interval in ms (0: once)]. */
type Carried = [string, number, number][];
/** What moves of a durable actor: its stored record (nil: nothing stored), its revision, and its timers when it has any. */
type DurableMoved = [record: Uint8Array | null, revision: number] | [record: Uint8Array | null, revision: number, timers: Carried];
type Moved = PlainMoved | DurableMoved;

/** How long, and how many bytes in all, durable records wait for their actors' next message (then the store is read). */
const PARKED_MS = 60_000;
const PARKED_BYTES = 64 * 1024 * 1024;
const parkedKey = (capability: string, actorType: string, id: string) => `${capability}\u0000${actorType}\u0000${id}`;

/** Returned by resume() when nothing moved for the activation: it starts as usual. */
export const NOT_MOVED = Symbol("not moved");

export class Migrations {
  /** What arrived for an activation (made for it, or waiting for its shard's handover): gone with it if it never starts. */
  readonly #arrived = new WeakMap<Activation, Moved>();
  /** Activations created while their shard's handover was pending: only these may take what moves. */
  readonly #waiting = new WeakSet<Activation>();
  /** A leaving durable activation's timers, taken before they end: they go with its record, once its commits landed. */
  readonly #leavingTimers = new WeakMap<Activation, Carried>();
  /** The timers that came with a durable activation's record: armed once its state is loaded (resumeTimers). */
  readonly #timersIn = new WeakMap<Activation, Carried>();
  /** Classes whose state could not move, logged once each. */
  readonly #logged = new Set<string>();
  /**
   * Durable records that arrived for actors with no activation here: kept, oldest first, until the actor's next
   * message activates it (with that message's initArg), for at most PARKED_MS and PARKED_BYTES in all.
   */
  readonly #parked = new Map<string, { moved: DurableMoved; capability: string; shard: number; at: number }>();
  #parkedBytes = 0;

  constructor(
    private readonly timers: Timers<Activation>,
    private readonly metrics: NodeMetrics,
    private readonly log: Logger,
    /** Sends what moves to the actor's owner now; false when there is none but this node, or it cannot go (the lease lapsed: another node may have served the actor meanwhile). */
    private readonly send: (act: Activation, moved: unknown[]) => boolean,
  ) {}

  /**
   * `act` leaves (its shard moved, or the node stops): true when it moved to its new owner with its state. A plain
   * actor moves as it leaves; a durable one once its commits have landed (`when`), if its record is known here.
   */
  moved(act: Activation, when: "leaving" | "committed"): boolean {
    const durable = (act.instance.constructor as ActorClass).durable === true;
    if (durable && when === "leaving" && act.timers !== undefined && act.timers.size > 0)
      this.#leavingTimers.set(act, this.timers.carried(act));
    if (durable !== (when === "committed")) return false;
    const moved = durable ? this.#record(act) : this.packed(act);
    if (moved === undefined || !this.send(act, moved)) return false;
    this.metrics.migrationsOut++;
    return true;
  }

  /** A durable actor's stored record and revision, when its commits know them (and its class moves). */
  #record(act: Activation): DurableMoved | undefined {
    if ((act.instance.constructor as ActorClass).migrate === false) return undefined;
    const stored = act.commits?.snapshot();
    if (stored === undefined) return undefined;
    const timers = this.#leavingTimers.get(act);
    // Without timers, the two elements a Mesh before durable timers moved takes too.
    return timers === undefined ? [stored.bytes ?? null, stored.revision] : [stored.bytes ?? null, stored.revision, timers];
  }

  /**
   * What of `act` moves to its new owner, or undefined when nothing does (a durable class, `static migrate = false`,
   * or state that cannot move: counted, and logged once per class).
   */
  private packed(act: Activation): Moved | undefined {
    const cls = act.instance.constructor as ActorClass;
    if (cls.durable === true || cls.migrate === false) return undefined;
    try {
      const instance = act.instance as { dehydrate?: () => unknown };
      const data = typeof instance.dehydrate === "function" ? instance.dehydrate() : { ...act.instance };
      checkAcross(data, "BAD_STATE", "the state that moves");
      return [data, this.timers.carried(act)];
    } catch (err) {
      this.#cannotMove(act, err);
      return undefined;
    }
  }

  /** The activation was created while its shard's handover was pending: what moves for it may arrive. */
  waits(act: Activation): void {
    this.#waiting.add(act);
  }

  /**
   * True when what moved for an actor may go into its activation here: `live`, still waiting for its shard's
   * handover, or, with none, one made now that will wait for it (`handover`), of a plain class that moves. Else it
   * is refused (counted): it came too late (the actor started here already), or the class does not take it.
   */
  accepts(to: { live: Activation | undefined; handover: boolean; cls: ActorClass | undefined }, payload: unknown): payload is Moved {
    const { live, handover, cls } = to;
    const waits = live === undefined ? handover : this.#waiting.has(live);
    const ok = waits && cls !== undefined && cls.migrate !== false && (cls.durable === true ? isDurableMoved(payload) : isMoved(payload));
    if (!ok) this.metrics.migrationsRefused++;
    return ok;
  }

  /** What moved goes into `act`, which waits for its shard's handover: it takes it when it starts. */
  arrived(act: Activation, moved: Moved): void {
    if (this.#waiting.has(act)) this.#arrived.set(act, moved);
    else this.metrics.migrationsRefused++; // it started at once after all (the lease held, no claim): nothing to take it
  }

  /**
   * The activation starts: from what moved for it, if anything did (what rehydrate returns; a rejection is logged and
   * the activation goes on from where rehydrate left it), else NOT_MOVED. State that cannot be taken (a rehydrate or
   * an assignment that throws) is counted and logged, and the activation starts as usual (NOT_MOVED).
   */
  resume(act: Activation): unknown {
    this.#waiting.delete(act);
    const moved = this.#arrived.get(act);
    if (moved === undefined || !isMoved(moved)) return NOT_MOVED;
    this.#arrived.delete(act);
    const [data, timers] = moved;
    const instance = act.instance as { rehydrate?: (data: unknown) => unknown };
    let out: unknown;
    try {
      out = typeof instance.rehydrate === "function" ? instance.rehydrate(data) : void Object.assign(act.instance, data);
    } catch (err) {
      this.#cannotMove(act, err);
      return NOT_MOVED;
    }
    this.timers.resume(act, timers);
    this.metrics.migrationsIn++;
    return isThenable(out) ? Promise.resolve(out).catch((err: unknown) => this.#cannotMove(act, err)) : out;
  }

  /**
   * A durable record for an actor with no activation here: parked (true) until its next message; false for other
   * payloads, and for a record with timers (an activation is made for it, so that they fire).
   */
  parks(to: Address, moved: Moved): boolean {
    if (!isDurableMoved(moved) || moved[2] !== undefined) return false;
    this.#expire();
    const key = parkedKey(to.capability, to.actorType, to.id);
    this.#unparkKey(key);
    this.#parked.set(key, { moved, capability: to.capability, shard: to.shard, at: performance.now() });
    this.#parkedBytes += moved[0]?.length ?? 0;
    for (const [k] of this.#parked) if (this.#parkedBytes > PARKED_BYTES) this.#unparkKey(k);
    return true;
  }

  /** Drops the record parked for this actor, if any: its state was deleted (an operator's forget). */
  forget(capability: string, actorType: string, id: string): void {
    this.#unparkKey(parkedKey(capability, actorType, id));
  }

  /** Drops the records parked for shards this node does not own (any more). */
  unpark(owns: (capability: string, shard: number) => boolean): void {
    for (const [key, p] of this.#parked) if (!owns(p.capability, p.shard)) this.#unparkKey(key);
  }

  /** The durable activation starts: the record its old owner handed over, if one did (read instead of the store). */
  stored(act: Activation): Stored | undefined {
    this.#waiting.delete(act);
    this.#expire();
    const key = parkedKey(act.capability, act.actorType, act.id);
    const moved = this.#arrived.get(act) ?? this.#parked.get(key)?.moved;
    this.#arrived.delete(act);
    this.#unparkKey(key);
    if (moved === undefined || !isDurableMoved(moved)) return undefined;
    this.metrics.migrationsIn++;
    if (moved[2] !== undefined) this.#timersIn.set(act, moved[2]);
    return { bytes: moved[0] ?? undefined, revision: moved[1] };
  }

  /** The durable activation's state is loaded: the timers that came with its record are set again with the time they had left. */
  resumeTimers(act: Activation): void {
    const timers = this.#timersIn.get(act);
    if (timers === undefined) return;
    this.#timersIn.delete(act);
    this.timers.resume(act, timers);
  }

  #unparkKey(key: string): void {
    const p = this.#parked.get(key);
    if (p === undefined) return;
    this.#parked.delete(key);
    this.#parkedBytes -= p.moved[0]?.length ?? 0;
  }

  /** Drops the parked records older than PARKED_MS (the map is in arrival order). */
  #expire(): void {
    const now = performance.now();
    for (const [key, p] of this.#parked) {
      if (now - p.at < PARKED_MS) break;
      this.#unparkKey(key);
    }
  }

  #cannotMove(act: Activation, err: unknown): void {
    this.metrics.migrationsRefused++;
    if (this.#logged.has(act.actorType)) return;
    this.#logged.add(act.actorType);
    this.log.warn(
      { actorType: act.actorType, err: messageOf(err) },
      "mesh: an actor's state cannot move to its new owner; it starts afresh there (logged once per class)",
    );
  }
}

function isDurableMoved(payload: unknown): payload is DurableMoved {
  return (
    Array.isArray(payload) &&
    (payload.length === 2 || (payload.length === 3 && isCarried(payload[2]))) &&
    (payload[0] === null || payload[0] instanceof Uint8Array) &&
    Number.isSafeInteger(payload[1]) &&
    (payload[1] as number) >= 0
  );
}

function isMoved(payload: unknown): payload is PlainMoved {
  return Array.isArray(payload) && payload.length === 2 && isCarried(payload[1]);
}

function isCarried(timers: unknown): timers is Carried {
  return (
    Array.isArray(timers) &&
    timers.every((t) => Array.isArray(t) && typeof t[0] === "string" && typeof t[1] === "number" && typeof t[2] === "number")
  );
}
