// State versions (docs/state.md "State versions"): a durable class's
// `static stateVersion` is stored with its state (record.ts, layout 2). A
// record of an older version is turned into the class's by its
// `migrateState` as it is loaded, and stored at the class's version by the
// next commit; one of a newer version is never read (STATE_TOO_NEW).
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";

/** What a durable class says of its state's versions. */
export interface StateVersioning {
  /** The version this code reads and writes (1 unless the class sets `static stateVersion`). */
  readonly version: number;
  /** The class's `migrateState`: a stored state of an older version, turned into this version's. */
  readonly migrate?: (stored: unknown, fromVersion: number) => unknown;
}

/** A class that sets no state version. */
export const UNVERSIONED: StateVersioning = { version: 1 };

/** STATE_TOO_NEW unless a record of version `stored` may be read by code of `v`. */
export function checkReadable(stored: number, v: StateVersioning, key: string, actorType: string): void {
  if (stored > v.version)
    throw new MeshError(
      "STATE_TOO_NEW",
      `the state of ${key} was stored by newer code (stateVersion ${stored}); this node's ${actorType} reads up to version ${v.version}, so it does not read it`,
    );
}

/** The state to start from, given a stored one of version `from` (at most the class's). Throws BAD_STATE when migrateState throws. */
export async function upgrade(state: unknown, from: number, v: StateVersioning, key: string, actorType: string): Promise<unknown> {
  if (from === v.version || v.migrate === undefined) return state;
  try {
    return await v.migrate(state, from);
  } catch (err) {
    throw new MeshError("BAD_STATE", `${actorType}.migrateState(stored, ${from}) failed for ${key}: ${messageOf(err)}`, { cause: err });
  }
}
