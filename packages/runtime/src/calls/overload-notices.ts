// Overload notices (docs/PROTOCOL.md "Overload notices"): an owner that
// refuses casts from another node tells that node, on its inbox's `_o`
// subject, which actors (or that the whole node) refuse casts now, and for how
// long; the sender then refuses casts to them at once (refused-casts.ts).
// One notice per sender per batch of work, at most once per (sender, actor)
// per half hold. Imports: the calls room, the bottom floor.
import { encode } from "@msgpack/msgpack";
import type { Logger } from "@mesh/core";
import { decodeValue, messageOf } from "@mesh/core/internal";
import type { NatsConnection } from "nats";
import type { NodeMetrics } from "../operations/metrics.js";

/** How long a sender refuses casts to an actor after a notice: the owner tells it again while the actor stays full. */
export const NOTICE_HOLD_MS = 500;
/** The most (sender, actor) pairs an owner remembers having told (the oldest are forgotten first). */
const TOLD_MAX = 4096;
/** The most actors one notice names (about 40 bytes each): others are told at their next refusal. */
const NOTICE_ACTORS_MAX = 1000;

/** What a notice says: actors refuse casts (or the whole node does) for `holdMs` from its arrival. */
export interface OverloadNotice {
  readonly owner: string;
  readonly holdMs: number;
  /** The node's own limits (maxQueuedLetters, maxQueuedBytes): every actor of `owner` refuses casts. */
  readonly nodeWide: boolean;
  /** [capability, actorType, id] of each actor whose mailbox is full. */
  readonly actors: readonly (readonly [string, string, string])[];
}

const MARK = "overload";
const VERSION = 1;

/** The notice on the wire: msgpack `["overload", 1, owner, holdMs, nodeWide, [[capability, actorType, id], ...]]`. */
export function encodeNotice(n: OverloadNotice): Uint8Array {
  return encode([MARK, VERSION, n.owner, n.holdMs, n.nodeWide, n.actors]);
}

/** A notice read from the wire; throws when it is not one. A later version's extra fields are ignored. */
export function decodeNotice(data: Uint8Array): OverloadNotice {
  const v = decodeValue(data); // checked as it is read: never the library's arrays at the size they claim
  if (!Array.isArray(v) || v[0] !== MARK || typeof v[1] !== "number" || v[1] < VERSION) throw new Error("not an overload notice");
  const [, , owner, holdMs, nodeWide, actors] = v as unknown[];
  const isName = (a: unknown) => Array.isArray(a) && a.length >= 3 && a.slice(0, 3).every((s) => typeof s === "string");
  if (typeof owner !== "string" || typeof holdMs !== "number" || !(holdMs >= 0) || typeof nodeWide !== "boolean")
    throw new Error("a malformed overload notice");
  if (!Array.isArray(actors) || !actors.every(isName)) throw new Error("a malformed overload notice: its actors");
  return { owner, holdMs: Math.min(holdMs, 60_000), nodeWide, actors: actors as [string, string, string][] };
}

/** The `_o` subject of the node whose message had reply subject `reply` (`<its inbox>.<token>`). */
export function noticeSubject(reply: string): string {
  return `${reply.slice(0, reply.lastIndexOf(".") + 1)}_o`;
}

/** The owner's side: refused casts from other nodes, told to their senders at the end of the tick. */
export class OverloadNotices {
  /** When each (subject, actor) was last told: insertion order is age. */
  readonly #told = new Map<string, number>();
  /** What goes at the end of this tick, per notice subject. */
  #due = new Map<string, { nodeWide: boolean; actors: [string, string, string][]; keys: Set<string> }>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly nodeId: string,
    private readonly metrics: NodeMetrics,
    private readonly log: Logger,
  ) {}

  /** A cast from the node behind `subject` to this actor was refused (`nodeWide`: by the node's own limits). */
  refused(subject: string, to: { capability: string; actorType: string; id: string }, nodeWide: boolean): void {
    const key = nodeWide ? `${subject} *` : `${subject} ${to.capability}/${to.actorType}/${to.id}`;
    const now = performance.now();
    const last = this.#told.get(key);
    if (last !== undefined && now - last < NOTICE_HOLD_MS / 2) return;
    let due = this.#due.get(subject);
    if (due === undefined) {
      if (this.#due.size === 0) queueMicrotask(() => this.#send());
      this.#due.set(subject, (due = { nodeWide: false, actors: [], keys: new Set() }));
    }
    if (due.keys.has(key) || due.actors.length >= NOTICE_ACTORS_MAX) return;
    due.keys.add(key);
    this.#told.delete(key);
    this.#told.set(key, now);
    if (this.#told.size > TOLD_MAX) this.#told.delete(this.#told.keys().next().value!);
    if (nodeWide) due.nodeWide = true;
    else due.actors.push([to.capability, to.actorType, to.id]);
  }

  #send(): void {
    const due = this.#due;
    this.#due = new Map();
    for (const [subject, d] of due) {
      try {
        this.nc.publish(subject, encodeNotice({ owner: this.nodeId, holdMs: NOTICE_HOLD_MS, nodeWide: d.nodeWide, actors: d.actors }));
        this.metrics.overloadNotices.sent++;
      } catch (err) {
        this.log.warn({ subject, err: messageOf(err) }, "mesh: could not send an overload notice");
      }
    }
  }
}
