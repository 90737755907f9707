import { MeshError, isToken } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { Logger } from "@mesh/core";
import { boundCapabilities } from "../capabilities.js";
import type { Actor, ActorClass } from "../types.js";

/** The actor type of a class: its `static actorType`, else its name. Throws BAD_REQUEST when neither is usable. */
export function actorTypeOf(actor: ActorClass | string): string {
  const type = typeof actor === "string" ? actor : typeof actor === "function" ? (actor.actorType ?? actor.name) : undefined;
  if (typeof type !== "string" || type === "") {
    throw new MeshError("BAD_REQUEST", `actor must be an actor class or a non-empty actor type name, got ${describe(actor)}`);
  }
  return type;
}

/** Throws BAD_REQUEST unless `cls` is a class with a handleCall method, and its capabilities (if bound) are capability names. */
export function checkActorClass(cls: unknown): ActorClass {
  if (typeof cls !== "function" || typeof (cls as { prototype?: Actor }).prototype?.handleCall !== "function") {
    throw new MeshError("BAD_REQUEST", `actors must be classes with a handleCall method, got ${describe(cls)}`);
  }
  const bound = boundCapabilities(cls as ActorClass);
  if (bound !== undefined && (bound.length === 0 || !bound.every(isToken))) {
    throw new MeshError(
      "BAD_REQUEST",
      `${(cls as ActorClass).name}.capabilities must be a non-empty list of capability names (1-128 of A-Z a-z 0-9 _ -), got ${JSON.stringify(bound)}`,
    );
  }
  checkStateVersion(cls as ActorClass);
  return cls as ActorClass;
}

/** Throws BAD_REQUEST unless the class's stateVersion (if any) is a positive integer of a durable class, with a migrateState above 1. */
function checkStateVersion(cls: ActorClass): void {
  const { stateVersion, migrateState } = cls;
  if (stateVersion === undefined) return;
  const problem =
    !Number.isSafeInteger(stateVersion) || stateVersion < 1
      ? `must be a positive integer, got ${describe(stateVersion)}`
      : cls.durable !== true
        ? "is for durable classes (static durable = true)"
        : stateVersion > 1 && typeof migrateState !== "function"
          ? "is above 1: the class needs a static migrateState(stored, fromVersion) for the states older versions stored"
          : undefined;
  if (problem !== undefined) throw new MeshError("BAD_REQUEST", `${cls.name}.stateVersion ${problem}`);
}

/** WRONG_CAPABILITY: `actorType` is bound to `allowed` and was asked for under `capability`. */
export function wrongCapability(actorType: string, capability: string, allowed: readonly string[]): MeshError {
  return new MeshError(
    "WRONG_CAPABILITY",
    `actor type "${actorType}" is bound to the capabilit${allowed.length === 1 ? "y" : "ies"} ${allowed.map((c) => `"${c}"`).join(", ")}; it cannot be reached through "${capability}"`,
  );
}

function describe(value: unknown): string {
  return typeof value === "function" ? `function ${value.name || "(anonymous)"}` : (JSON.stringify(value) ?? String(value));
}

/** Counts and logs a failed activation: ACTIVATION_FAILED, or (`asIs`, a durable start) a MeshError as it is. */
export function activationFailed(
  pid: string,
  err: unknown,
  asIs: boolean,
  metrics: { activationFailures: number; error(code: MeshError["code"]): void },
  log: Logger,
): MeshError {
  const failure =
    asIs && err instanceof MeshError
      ? err
      : new MeshError("ACTIVATION_FAILED", `activation of ${pid} failed: ${messageOf(err)}`, { cause: err });
  if (failure !== err) metrics.activationFailures++;
  metrics.error(failure.code);
  log.warn({ pid, err: failure.message }, "mesh: activation failed");
  return failure;
}
