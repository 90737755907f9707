// The actors a node hosts: per actor type, its class, how it is kept
// (durable, idle timeout), and the live activations by id. Every message
// looks its actor up here; a Map per type keeps that one hash lookup.
import { MeshError } from "@mesh/core";
import { actorTypeOf } from "./actor.js";
import type { ActorClass } from "./actor.js";
import type { Activation } from "./activation.js";

/** What a durable actor that sets no idleTimeoutMs gets: it loses nothing by leaving memory. */
export const DURABLE_IDLE_TIMEOUT_MS = 15 * 60_000;

/** One hosted actor type. */
export interface HostedType {
  readonly cls: ActorClass;
  readonly activations: Map<string, Activation>;
  readonly durable: boolean;
  /** The class's idleTimeoutMs, else the node's, else 15 minutes for durable classes; Infinity: never. */
  readonly idleTimeoutMs: number;
  /** Calls of its own call chain run at once instead of failing with CALL_CYCLE. */
  readonly reentrant: boolean;
}

export class ActorTable {
  readonly #types = new Map<string, HostedType>();
  #live = 0;

  /** Throws BAD_REQUEST when two classes share an actor type. */
  constructor(actors: readonly ActorClass[], nodeIdleTimeoutMs: number | undefined) {
    for (const cls of actors) {
      const type = actorTypeOf(cls);
      if (this.#types.has(type)) throw new MeshError("BAD_REQUEST", `two actor classes share the actor type "${type}"`);
      const durable = cls.durable === true;
      const idleTimeoutMs = cls.idleTimeoutMs ?? nodeIdleTimeoutMs ?? (durable ? DURABLE_IDLE_TIMEOUT_MS : Infinity);
      this.#types.set(type, { cls, activations: new Map(), durable, idleTimeoutMs, reentrant: cls.reentrant === true });
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

  /** The live activation of (`actorType`, `id`), if any. */
  get(actorType: string, id: string): Activation | undefined {
    return this.#types.get(actorType)?.activations.get(id);
  }

  add(type: HostedType, act: Activation): void {
    type.activations.set(act.id, act);
    this.#live++;
  }

  /** Takes an activation out, if it is still the one the table holds for its id. */
  remove(act: Activation): void {
    const activations = this.#types.get(act.actorType)!.activations;
    if (activations.get(act.id) === act) {
      activations.delete(act.id);
      this.#live--;
    }
  }

  /** Every live activation. */
  *all(): IterableIterator<Activation> {
    for (const t of this.#types.values()) yield* t.activations.values();
  }

  /** Empties the table and returns what it held. */
  clear(): Activation[] {
    const all = [...this.all()];
    for (const t of this.#types.values()) t.activations.clear();
    this.#live = 0;
    return all;
  }
}
