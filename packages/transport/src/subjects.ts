import { MeshError, isToken } from "@mesh/core";

/**
 * The reply subjects a node answers on, besides the nodes' own inboxes: `_INBOX.`, the default of nats.js, the
 * nats CLI and the other NATS clients, and `_INBOX_<role>.`, the per-role prefixes of the secure config.
 */
export const DEFAULT_INBOX_PREFIXES: readonly string[] = ["_INBOX"];

/**
 * Every subject Mesh uses, under a prefix (default `mesh`):
 *
 *   <prefix>.node.<nodeId>         a node's own subject: calls (requests) and casts (publishes)
 *   <prefix>.cluster.heartbeat     periodic announcements of every node
 *   <prefix>.cluster.discover      "who is there?": every member answers with its announcement
 *   <prefix>.cluster.leave         a node's goodbye on a graceful stop
 *   <prefix>.cluster.claim         a node claims the shards it gained: every member answers once it released them
 *   <prefix>.cluster.forget        an operator deleted an actor's stored state: its live activation ends
 *   <prefix>.cluster.reset         an operator resets an actor: its live activation is dropped, even mid-turn
 *   <prefix>.call.<capability>     ingress: any NATS client calls an actor (JSON or msgpack), queue group
 *   <prefix>.cast.<capability>     ingress: the same for casts
 *   <prefix>.status.<nodeId>       a node's metrics as JSON (an endpoint of its NATS service)
 *   <prefix>.inbox.<nodeId>.>      replies to a node's own requests (its inbox: only it subscribes there)
 *
 * A node answers a request that a client or an operator may send (the ingress, status, forget, reset) only when
 * its reply subject is an inbox: under `<prefix>.inbox`, or one of the inbox prefixes (`answers`). What only
 * nodes may send (node subjects, claims, discovery) is answered wherever a peer asks: nodes trust each other, and
 * a node may use an inbox prefix of its own (`nats.inboxPrefix`).
 */
export class Subjects {
  readonly heartbeat: string;
  readonly discover: string;
  readonly leave: string;
  readonly claim: string;
  readonly forget: string;
  readonly reset: string;
  /** Ingress subscriptions: every capability, and more tokens so that bad ones get an answer. */
  readonly ingressCalls: string;
  readonly ingressCasts: string;
  /** The queue group of the ingress subscriptions. */
  readonly ingressQueue: string;
  readonly #node: string;
  /** Node subjects made so far: the same string each time, whose hash is computed once (Map keys on the hot path). */
  readonly #nodes = new Map<string, string>();
  #lastNode = "";
  #lastSubject = "";
  /** What a reply subject a node answers on starts with (then `.` or `_`). */
  readonly #inboxes: readonly string[];

  /** `prefix` and each of `inboxPrefixes` are one or more tokens joined by dots; throws BAD_REQUEST otherwise. */
  constructor(
    readonly prefix = "mesh",
    inboxPrefixes: readonly string[] = DEFAULT_INBOX_PREFIXES,
  ) {
    if (!isSubject(prefix))
      throw new MeshError("BAD_REQUEST", `prefix must be subject tokens joined by dots, got ${JSON.stringify(prefix)}`);
    if (!Array.isArray(inboxPrefixes) || !inboxPrefixes.every(isSubject))
      throw new MeshError(
        "BAD_REQUEST",
        `inboxPrefixes must be a list of subject tokens joined by dots, got ${JSON.stringify(inboxPrefixes)}`,
      );
    this.#inboxes = [`${prefix}.inbox`, ...inboxPrefixes];
    this.heartbeat = `${prefix}.cluster.heartbeat`;
    this.discover = `${prefix}.cluster.discover`;
    this.leave = `${prefix}.cluster.leave`;
    this.claim = `${prefix}.cluster.claim`;
    this.forget = `${prefix}.cluster.forget`;
    this.reset = `${prefix}.cluster.reset`;
    this.#node = `${prefix}.node.`;
    this.ingressCalls = `${prefix}.call.>`;
    this.ingressCasts = `${prefix}.cast.>`;
    this.ingressQueue = `${prefix}-ingress`;
  }

  /** The subject where node `nodeId` answers with its metrics. */
  status(nodeId: string): string {
    return `${this.prefix}.status.${nodeId}`;
  }

  /** The inbox prefix of node `nodeId`: every reply to its requests comes under it, so permissions can keep them its own. */
  inbox(nodeId: string): string {
    return `${this.prefix}.inbox.${nodeId}`;
  }

  /**
   * Whether a node answers a request with this reply subject: an inbox (one of the prefixes, then `.` or `_`), with
   * no wildcard. A node's answer goes out with the node's permissions, and with `allow_responses` on any reply
   * subject at all: answering a request whose reply names `$JS.API.STREAM.PURGE.<bucket>`, `$KV.…` or a stream's
   * subject would have the node write there for whoever sent it (docs/security.md).
   */
  answers(reply: string): boolean {
    if (reply.includes("*") || reply.includes(">")) return false;
    for (const p of this.#inboxes) {
      const next = reply.charCodeAt(p.length); // "." or "_", with more after it
      if (reply.length > p.length + 1 && (next === 46 || next === 95) && reply.startsWith(p)) return true;
    }
    return false;
  }

  /** The capability named by an ingress subject (everything after `<prefix>.call.` or `<prefix>.cast.`). */
  ingressCapability(subject: string): string {
    return subject.slice(this.prefix.length + 6);
  }

  /** The subject of node `nodeId` (a valid token, checked by the caller). */
  node(nodeId: string): string {
    if (nodeId === this.#lastNode) {
      // The node asked last: most calls go where the one before went. Kept as this very string: a routing table made
      // since holds its own copy of the id, and comparing two copies reads their characters (2.3 % of a remote caller's
      // CPU, at every call, once the first call's copy was not the table's).
      this.#lastNode = nodeId;
      return this.#lastSubject;
    }
    let subject = this.#nodes.get(nodeId);
    if (subject === undefined) {
      subject = this.#node + nodeId;
      // Bounded by the nodes ever seen; a churning cluster starts over past 10,000.
      if (this.#nodes.size >= 10_000) this.#nodes.clear();
      this.#nodes.set(nodeId, subject);
    }
    this.#lastNode = nodeId;
    this.#lastSubject = subject;
    return subject;
  }
}

function isSubject(s: unknown): s is string {
  return typeof s === "string" && s.split(".").every(isToken);
}
