// The bottom floor: which capabilities an actor class binds itself to, and
// which one a request or a stream subscription goes through. Pure logic that
// the actors, calls and events rooms share; it imports nothing of the runtime.

/** What an actor class says of its capabilities: `ActorClass`'s `static capabilities` and `static capability`. */
export interface CapabilityStatics {
  readonly capabilities?: readonly string[];
  readonly capability?: string;
}

/** The capabilities a class binds itself to (`static capabilities`, or `static capability`); undefined when unbound. */
export function boundCapabilities(cls: CapabilityStatics): readonly string[] | undefined {
  if (cls.capabilities !== undefined) return Array.isArray(cls.capabilities) ? cls.capabilities : [cls.capabilities as unknown as string];
  return cls.capability !== undefined ? [cls.capability] : undefined;
}

/** The capability a request or subscription goes through: the one it names, else the first its class is bound to; undefined when neither. */
export function chosenCapability(named: string | undefined, bound: readonly string[] | undefined): string | undefined {
  return named ?? bound?.[0];
}

/** True when a class bound to `bound` may be reached under `capability`; an unbound class (undefined) under any. */
export function reachableUnder(capability: string, bound: readonly string[] | undefined): boolean {
  return bound === undefined || bound.includes(capability);
}
