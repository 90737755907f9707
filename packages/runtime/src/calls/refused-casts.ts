// The sender's side of overload notices (overload-notices.ts): casts to an
// actor whose owner said it refuses them are refused here at once, unsent,
// with OVERLOADED, until the notice's hold runs out or the actor moves.
// Imports: the calls room, the bottom floor.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { NodeMetrics } from "../operations/metrics.js";
import { decodeNotice } from "./overload-notices.js";

/** The most actors a sender remembers refusing casts (the oldest are forgotten first), and the most nodes. */
const REFUSED_MAX = 10_000;
const NODES_MAX = 1000;
/** The longest hold a notice may ask for (Mesh asks for NOTICE_HOLD_MS). */
const HOLD_MAX_MS = 5000;
/**
 * Refusals within one turn of the event loop before the next waits for the
 * loop's next turn: a refusal settles in a microtask, so without this
 * `for (;;) await mesh.cast(x).catch(() => {})` would starve its own node of
 * notices, heartbeats and replies.
 */
const REFUSALS_PER_TURN = 1000;

interface Hold {
  readonly owner: string;
  readonly until: number;
}

export class RefusedCasts {
  /** By `<capability>/<type>/<id>`: insertion order is age. */
  readonly #actors = new Map<string, Hold>();
  /** Owners that refuse every cast (their node's limits), until when. */
  readonly #nodes = new Map<string, number>();
  #thisTurn = 0;
  #turnReset = false;

  constructor(
    private readonly metrics: NodeMetrics,
    private readonly log: Logger,
  ) {}

  /** An owner's notice arrived. */
  readonly notice = (data: Uint8Array): void => {
    try {
      const n = decodeNotice(data);
      this.metrics.overloadNotices.received++;
      const until = performance.now() + Math.min(n.holdMs, HOLD_MAX_MS);
      if (n.nodeWide) {
        this.#nodes.delete(n.owner);
        this.#nodes.set(n.owner, until);
        if (this.#nodes.size > NODES_MAX) this.#nodes.delete(this.#nodes.keys().next().value!);
      }
      for (const [capability, actorType, id] of n.actors) {
        const key = `${capability}/${actorType}/${id}`;
        this.#actors.delete(key);
        this.#actors.set(key, { owner: n.owner, until });
        if (this.#actors.size > REFUSED_MAX) this.#actors.delete(this.#actors.keys().next().value!);
      }
    } catch (err) {
      // Not a warning: a node of an older Mesh may answer casts on `_o` (with an error envelope).
      this.log.debug({ err: messageOf(err) }, "mesh: ignored a message on the overload notice subject that is not a notice");
    }
  };

  /** OVERLOADED when the owner `owner` of this actor said it refuses casts now; undefined: send it. */
  check(owner: string, to: { capability: string; actorType: string; id: string }): MeshError | undefined {
    if (this.#actors.size === 0 && this.#nodes.size === 0) return undefined;
    const now = performance.now();
    const node = this.#nodes.get(owner);
    if (node !== undefined) {
      if (now < node) return this.#refused(`node ${owner} refuses casts: its mailboxes are full (maxQueuedLetters or maxQueuedBytes)`);
      this.#nodes.delete(owner);
    }
    if (this.#actors.size === 0) return undefined;
    const key = `${to.capability}/${to.actorType}/${to.id}`;
    const hold = this.#actors.get(key);
    if (hold === undefined) return undefined;
    if (hold.owner === owner && now < hold.until) return this.#refused(`the mailbox of ${to.actorType}/${to.id} on node ${owner} is full`);
    this.#actors.delete(key);
    return undefined;
  }

  /**
   * A refused cast's promise: rejected now, or, past REFUSALS_PER_TURN in
   * this turn of the event loop, on the next turn.
   */
  refuse(err: MeshError): Promise<never> {
    if (!this.#turnReset) {
      this.#turnReset = true;
      setImmediate(() => {
        this.#thisTurn = 0;
        this.#turnReset = false;
      });
    }
    if (++this.#thisTurn <= REFUSALS_PER_TURN) return Promise.reject(err);
    return new Promise((_resolve, reject) => setImmediate(reject, err));
  }

  #refused(why: string): MeshError {
    this.metrics.castsRefusedAtSender++;
    return new MeshError("OVERLOADED", `${why}: the cast was refused before it was sent; retry later`);
  }
}
