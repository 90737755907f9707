// The actors a node hosts: per actor type, its class, how it is kept
// (durable, idle timeout, the capabilities it is bound to), and the live
// activations. An actor is (capability, type, id): a type reached through two
// capabilities is two actors, so each type keeps one slot of activations per
// capability it was reached through. Every message looks its actor up here:
// a Map per type, then per capability, then an IdTable by id (core/id-table.ts),
// with no key to build.
import { MeshError, xxh32 } from "@mesh/core";
import { IdTable } from "@mesh/core/internal";
import { idleTimeoutOf } from "../options.js";
import type { ActorClass } from "../types.js";
import { boundCapabilities, reachableUnder } from "../capabilities.js";
import { actorTypeOf } from "./actor.js";
import type { Activation, ContextHost, Place } from "./activation.js";
import type { SweptType } from "./passivation.js";

/** One hosted actor type. */
export interface HostedType {
  readonly cls: ActorClass;
  readonly name: string;
  /** Its live activations, one slot per capability it was reached through. */
  readonly slots: Map<string, Slot>;
  readonly durable: boolean;
  /** The class's idleTimeoutMs, else the node's, else 15 minutes for durable classes; Infinity: never. */
  readonly idleTimeoutMs: number;
  /** Calls of its own call chain run at once instead of failing with CALL_CYCLE. */
  readonly reentrant: boolean;
  /** The capabilities the class is bound to (`static capabilities`); undefined: any. */
  readonly capabilities: readonly string[] | undefined;
  /** Local callers share values with it instead of copying them (`static shareValues`). */
  readonly shares: boolean;
}

/** The live activations of one type under one capability, by id; also the place they share (activation.ts). */
export interface Slot extends SweptType, Place {
  readonly type: HostedType;
}

export class ActorTable {
  readonly #types = new Map<string, HostedType>();
  /** Every slot of every type, in creation order: what the passivation sweep walks. */
  readonly slots: Slot[] = [];
  #live = 0;

  /** Throws BAD_REQUEST when two classes share an actor type. */
  constructor(
    actors: readonly ActorClass[],
    nodeIdleTimeoutMs: number | undefined,
    private readonly host: ContextHost,
  ) {
    for (const cls of actors) {
      const name = actorTypeOf(cls);
      if (this.#types.has(name)) throw new MeshError("BAD_REQUEST", `two actor classes share the actor type "${name}"`);
      const durable = cls.durable === true;
      const idleTimeoutMs = idleTimeoutOf(cls, nodeIdleTimeoutMs);
      this.#types.set(name, {
        cls,
        name,
        slots: new Map(),
        durable,
        idleTimeoutMs,
        reentrant: cls.reentrant === true,
        capabilities: boundCapabilities(cls),
        shares: cls.shareValues === true,
      });
    }
  }

  /** Live activations, all types together. */
  get size(): number {
    return this.#live;
  }

  /** The hosted types, in the order of the `actors` option. */
  get types(): HostedType[] {
    return [...this.#types.values()];
  }

  /** The actor type names, sorted. */
  names(): string[] {
    return [...this.#types.keys()].sort();
  }

  type(actorType: string): HostedType | undefined {
    return this.#types.get(actorType);
  }

  /**
   * The activations of `actorType` under `capability` (made on first use), if this node hosts that type and it
   * may be reached so. The slot asked last comes back with no lookup: most letters go where the last one went.
   */
  slotOf(actorType: string, capability: string): Slot | undefined {
    const last = this.#last;
    if (last !== undefined && last.actorType === actorType && last.capability === capability) return last;
    const type = this.#types.get(actorType);
    if (type === undefined || !reachableUnder(capability, type.capabilities)) return undefined;
    return (this.#last = this.slot(type, capability));
  }

  #last: Slot | undefined;

  /** The activations of `type` under `capability`, made on first use. */
  slot(type: HostedType, capability: string): Slot {
    let slot = type.slots.get(capability);
    if (slot === undefined) {
      const { host } = this;
      const pidPrefix = [host.nodeId, "/", type.name, "/"].join(""); // flat: a pid joins to it
      slot = { type, capability, actorType: type.name, host, pidPrefix, activations: new IdTable(), idleTimeoutMs: type.idleTimeoutMs };
      type.slots.set(capability, slot);
      this.slots.push(slot);
    }
    return slot;
  }

  /** The live activation of (`capability`, `actorType`, `id`), if any. */
  get(capability: string, actorType: string, id: string): Activation | undefined {
    return this.#types.get(actorType)?.slots.get(capability)?.activations.get(id);
  }

  /** The most letters waiting in one mailbox now (a walk over the live activations). */
  deepestMailbox(): number {
    let deepest = 0;
    for (const act of this.all()) deepest = Math.max(deepest, act.waiting);
    return deepest;
  }

  /** `hash`: its id's XXH32, when the caller has it. */
  add(slot: Slot, act: Activation, hash?: number): void {
    slot.activations.set(act, hash);
    this.#live++;
  }

  /** Takes an activation out, if it is still the one the table holds for its id. */
  remove(act: Activation): void {
    const activations = this.#types.get(act.actorType)!.slots.get(act.capability)!.activations;
    const hash = xxh32(act.id);
    if (activations.get(act.id, hash) === act) {
      activations.delete(act.id, hash);
      this.#live--;
    }
  }

  /** Every live activation. */
  *all(): IterableIterator<Activation> {
    for (const slot of this.slots) yield* slot.activations.values();
  }

  /** Empties the table and returns what it held. */
  clear(): Activation[] {
    const all = [...this.all()];
    for (const slot of this.slots) slot.activations.clear();
    this.#live = 0;
    return all;
  }
}
