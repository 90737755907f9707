// A class's `static events`, checked at node start and resolved into what a
// dispatcher needs (docs/events.md). Imports: the events room and the bottom floor
// (capabilities.ts; the class was checked by actors/actor.ts before).
import { MeshError, isToken } from "@mesh/core";
import { checkId } from "@mesh/core/internal";
import { boundCapabilities, chosenCapability, reachableUnder } from "../capabilities.js";
import type { ActorClass, EventSubscription } from "../types.js";
import { isFilterSubject, isPublishSubject } from "./event.js";

/** A subscription, checked, with its defaults. */
export interface ResolvedSubscription {
  /** `<capability>.<actorType>.<name>`: its name in metrics, `mesh events` and the progress bucket. */
  readonly id: string;
  /** Its name (the last part of its id). */
  readonly name: string;
  readonly capability: string;
  readonly actorType: string;
  readonly stream: string;
  /** The stream may be created after the node starts (a missing one is logged, not refused). */
  readonly waitForStream: boolean;
  readonly subject: string | undefined;
  readonly start: "all" | "new";
  readonly maxDeliveries: number;
  readonly backoffMs: number;
  readonly deadLetter: string;
  readonly onDeadLetter: "skip" | "stop";
  readonly maxInFlight: number;
  readonly partitions: number;
  /** The actor id of a message. Throws BAD_REQUEST when the message has none. */
  keyOf(subject: string, headers: Readonly<Record<string, string>>): string;
}

/** The longest wait between two deliveries of one event. */
export const MAX_BACKOFF_MS = 10_000;

/** The subscriptions of the classes a node hosts. Throws BAD_REQUEST for a bad one, naming the class. */
export function subscriptionsOf(classes: readonly ActorClass[], prefix: string): ResolvedSubscription[] {
  const all: ResolvedSubscription[] = [];
  const ids = new Set<string>();
  for (const cls of classes) {
    if (cls.events === undefined) continue;
    const list = (Array.isArray(cls.events) ? cls.events : [cls.events]) as EventSubscription[];
    for (const s of list) {
      const sub = resolve(cls, s, prefix);
      if (ids.has(sub.id)) throw bad(cls, `two subscriptions are named ${sub.id}: give each its own name`);
      ids.add(sub.id);
      all.push(sub);
    }
  }
  return all;
}

function resolve(cls: ActorClass, s: EventSubscription, prefix: string): ResolvedSubscription {
  const actorType = cls.actorType ?? cls.name;
  if (typeof s !== "object" || s === null) throw bad(cls, "each subscription must be an object");
  if (typeof cls.prototype.handleEvent !== "function") throw bad(cls, "a class with static events needs a handleEvent method");
  if (!isToken(s.stream)) throw bad(cls, `stream must be a stream name (1-128 of A-Z a-z 0-9 _ -), got ${JSON.stringify(s.stream)}`);
  if (s.subject !== undefined && !isFilterSubject(s.subject))
    throw bad(cls, `subject must be a NATS subject filter, got ${JSON.stringify(s.subject)}`);
  const name = s.name ?? s.stream;
  if (!isToken(name)) throw bad(cls, `name must be 1-128 of A-Z a-z 0-9 _ -, got ${JSON.stringify(name)}`);
  const bound = boundCapabilities(cls);
  const capability = chosenCapability(s.capability, bound);
  if (capability === undefined || !isToken(capability))
    throw bad(cls, "a subscription needs a capability (its capability, or the class's static capabilities)");
  if (!reachableUnder(capability, bound)) throw bad(cls, `capability "${capability}" is not one of the class's (${bound!.join(", ")})`);
  const count = (what: string, v: unknown, dflt: number, max: number) => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max)
      throw bad(cls, `${what} must be an integer from 1 to ${max}, got ${String(v)}`);
    return v as number;
  };
  if (s.waitForStream !== undefined && typeof s.waitForStream !== "boolean")
    throw bad(cls, `waitForStream must be true or false, got ${JSON.stringify(s.waitForStream)}`);
  if (s.start !== undefined && s.start !== "all" && s.start !== "new")
    throw bad(cls, `start must be "all" or "new", got ${JSON.stringify(s.start)}`);
  if (s.onDeadLetter !== undefined && s.onDeadLetter !== "skip" && s.onDeadLetter !== "stop")
    throw bad(cls, `onDeadLetter must be "skip" or "stop", got ${JSON.stringify(s.onDeadLetter)}`);
  if (s.deadLetter !== undefined && !isPublishSubject(s.deadLetter))
    throw bad(cls, `deadLetter must be a subject without wildcards, got ${JSON.stringify(s.deadLetter)}`);
  return {
    id: `${capability}.${actorType}.${name}`,
    name,
    capability,
    actorType,
    stream: s.stream,
    waitForStream: s.waitForStream === true,
    subject: s.subject,
    start: s.start ?? "all",
    maxDeliveries: count("maxDeliveries", s.maxDeliveries, 5, 1000),
    backoffMs: count("backoffMs", s.backoffMs, 100, MAX_BACKOFF_MS),
    deadLetter: s.deadLetter ?? `${prefix}.events.dead.${actorType}`,
    onDeadLetter: s.onDeadLetter ?? "skip",
    maxInFlight: count("maxInFlight", s.maxInFlight, 1024, 100_000),
    partitions: count("partitions", s.partitions, 1, 1024),
    keyOf: keyReader(cls, s.key),
  };
}

function keyReader(cls: ActorClass, key: EventSubscription["key"]): ResolvedSubscription["keyOf"] {
  if (typeof key === "function") {
    return (subject, headers) => {
      let id: unknown;
      try {
        id = key({ subject, headers });
      } catch (err) {
        throw new MeshError("BAD_REQUEST", `the subscription's key function threw: ${(err as Error).message}`);
      }
      return checkId(id);
    };
  }
  if (typeof key === "object" && key !== null && "token" in key && Number.isInteger(key.token)) {
    const at = key.token;
    return (subject) => {
      const token = tokenOf(subject, at);
      if (token === undefined) throw new MeshError("BAD_REQUEST", `subject ${subject} has no token ${at} to take the actor id from`);
      return checkId(token);
    };
  }
  if (typeof key === "object" && key !== null && "header" in key && typeof key.header === "string" && key.header !== "") {
    const name = key.header;
    return (_subject, headers) => {
      const id = headers[name];
      if (id === undefined || id === "") throw new MeshError("BAD_REQUEST", `the message has no header ${name} to take the actor id from`);
      return checkId(id);
    };
  }
  throw bad(cls, "key must be { token: n }, { header: name } or a function of { subject, headers }");
}

/** Token `at` of a subject (negative: from the end), found without splitting it (one array and string per token per event). */
function tokenOf(subject: string, at: number): string | undefined {
  if (at < 0) {
    let end = subject.length;
    for (let i = -1; ; i--) {
      const start = subject.lastIndexOf(".", end - 1) + 1;
      if (i === at) return start === 0 && end === 0 ? undefined : subject.slice(start, end);
      if (start === 0) return undefined;
      end = start - 1;
    }
  }
  let start = 0;
  for (let i = 0; i < at; i++) {
    const dot = subject.indexOf(".", start);
    if (dot < 0) return undefined;
    start = dot + 1;
  }
  const dot = subject.indexOf(".", start);
  return subject.slice(start, dot < 0 ? subject.length : dot);
}

function bad(cls: ActorClass, reason: string): MeshError {
  return new MeshError("BAD_REQUEST", `static events of ${cls.name}: ${reason}`);
}
