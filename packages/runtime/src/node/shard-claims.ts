// Handover on every move (docs/faults.md "Moves"). When a join, a leave, a
// capability change or a removal gives this node a shard, it starts no actor
// of that shard until every other member has answered its claim: the member
// does not own the shard in its own view (to take it, it would have to claim
// it from this node first), and holds nothing of it any more (its activations
// there finished their turn, their commits landed, and what waited for them
// was handed on). Until then, an activation of that shard waits in its
// starting phase, with its letters queued. A member that does not answer is
// asked again until it answers or leaves the view (the store removed it: its
// lease is over). So no two nodes serve one actor across a move, durable or
// plain. A node whose lease was replaced (lease.ts) claims every shard it owns
// again. Imports: every room below.
import type { Announcement, Logger, RoutingTable } from "@mesh/core";
import { decodeAnnouncement, encodeJson, messageOf } from "@mesh/core/internal";
import type { Membership, Subjects } from "@mesh/transport";
import { createInbox } from "nats";
import type { Msg, NatsConnection, Subscription } from "nats";

/** Shards by capability. */
type Shards = Record<string, number[]>;

/** A claim on the wire (`<prefix>.cluster.claim`, docs/PROTOCOL.md): the claimer's announcement and the shards it claims. */
interface Claim extends Announcement {
  claims: Shards;
}

/** How long a claim round waits for answers, and how long a member holds its answer while its activations of those shards finish. */
const ROUND_MS = 2_000;
/** The pause before a claim round that was not answered by all, or refused, is tried again. */
const RETRY_MS = 100;
/** How long claims wait before that is logged, and how often it is logged again. */
const STUCK_LOG_MS = 5_000;

/** What claims work with. */
export interface ClaimParts {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly nodeId: string;
  readonly inboxPrefix: string;
  readonly routes: RoutingTable;
  readonly membership: Membership;
  readonly log: Logger;
  /** Resolves once this node holds no activation of a shard `of` names, or after `timeoutMs`, to the shards still held then. */
  released(of: (capability: string, shard: number) => boolean, timeoutMs: number): Promise<Array<readonly [string, number]>>;
  /** False once the node stopped. */
  running(): boolean;
  /** Shards were handed over to this node: what their old owners stored before they let go is there to read (reminders). */
  handedOver(): void;
  /**
   * Resolves once the messages on this node's subject read so far were served. An old owner sends its hand-overs
   * (migrations, records) there before it answers a claim, and the node subject may serve a message a tick after
   * it was read (message-ticks.ts): a claim settles only once they were.
   */
  inboxServed(): Promise<void>;
}

interface Pending {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

export class ShardClaims {
  /** The shards this node owns in its view, by "capability/shard"; each claimed (true) or waiting for its claim. */
  readonly #owned = new Map<string, true | Pending>();
  #waiting = 0;
  #round: Promise<void> | undefined;
  #sub: Subscription | undefined;
  /** Until discovery ended, this node's view is itself alone: nothing starts, and nothing is claimed. */
  #begun = false;
  readonly #begin: Pending;

  constructor(private readonly p: ClaimParts) {
    let resolve!: () => void;
    this.#begin = { promise: new Promise<void>((r) => (resolve = r)), resolve };
  }

  /** Answers other members' claims (from before discovery: they may claim as soon as they know this node). */
  start(): void {
    this.#sub = this.p.nc.subscribe(this.p.subjects.claim, { callback: (_err, msg) => void this.#answer(msg) });
  }

  /** Discovery ended: every shard this node owns in its view is claimed. */
  begin(): void {
    this.#begun = true;
    this.viewChanged();
    this.#begin.resolve();
  }

  stop(): void {
    this.#sub?.unsubscribe();
    for (const [key, state] of this.#owned) if (state !== true) this.#settle(key, state);
    this.#begin.resolve();
  }

  /** Undefined when an actor of (`capability`, `shard`) may start now; else resolves once its claim was answered by all, or the shard moved on. */
  ready(capability: string, shard: number): Promise<void> | undefined {
    if (!this.#begun) return this.#begin.promise.then(() => this.ready(capability, shard));
    if (this.#waiting === 0) return undefined;
    const state = this.#owned.get(`${capability}/${shard}`);
    return state === undefined || state === true ? undefined : state.promise;
  }

  /** The view changed: shards gained are claimed; activations waiting on a shard lost go on (and leave: the rebalance). */
  viewChanged(): void {
    if (!this.#begun) return;
    const owned = this.#ownedNow();
    for (const [key, state] of this.#owned) {
      if (owned.has(key)) continue;
      if (state !== true) this.#settle(key, state);
      this.#owned.delete(key);
    }
    for (const key of owned) if (!this.#owned.has(key)) this.#pend(key);
    this.#claimSoon();
  }

  /** Another node may have served this node's actors (its lease was replaced): every shard it owns is claimed again. */
  reclaimAll(): void {
    for (const [key, state] of this.#owned) if (state === true) this.#pend(key);
    this.#claimSoon();
  }

  #ownedNow(): Set<string> {
    const { routes, nodeId } = this.p;
    const owned = new Set<string>();
    for (const capability of routes.allCapabilities()) {
      if (!routes.nodesFor(capability).includes(nodeId)) continue;
      for (let shard = 0; shard < routes.shards; shard++)
        if (this.#owner(capability, shard) === nodeId) owned.add(`${capability}/${shard}`);
    }
    return owned;
  }

  /** The owner of a shard in this node's view; undefined when none, or when the placement function fails (its calls get INTERNAL). */
  #owner(capability: string, shard: number): string | undefined {
    try {
      return this.p.routes.owner(capability, shard);
    } catch {
      return undefined;
    }
  }

  #pend(key: string): void {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#owned.set(key, { promise, resolve });
    this.#waiting++;
  }

  #settle(key: string, state: Pending): void {
    state.resolve();
    this.#owned.set(key, true);
    this.#waiting--;
  }

  /** When claims began to wait without an answer from all, and when that was last logged. */
  #waitingSince: number | undefined;
  #loggedAt = 0;

  /** Claims still wait after a round: logged (at most every STUCK_LOG_MS, once they waited that long), naming who did not answer or refused. */
  #stuck(shards: number, unanswered: string[], refusedBy: string[]): void {
    const now = performance.now();
    this.#waitingSince ??= now;
    if (now - this.#waitingSince < STUCK_LOG_MS || now - this.#loggedAt < STUCK_LOG_MS) return;
    this.#loggedAt = now;
    const waitedMs = Math.round(now - this.#waitingSince);
    this.p.log.warn({ shards, unanswered, refusedBy, waitedMs }, "mesh: shards gained still wait for their handover");
  }

  /** One claim round at a time; another follows while shards wait. */
  #claimSoon(): void {
    if (this.#round !== undefined || this.#waiting === 0) return;
    this.#round = this.#claim()
      .catch((err: unknown) => this.p.log.warn({ err: messageOf(err) }, "mesh: a shard claim round failed"))
      .finally(() => {
        this.#round = undefined;
        if (this.#waiting > 0 && this.p.running()) setTimeout(() => this.#claimSoon(), RETRY_MS).unref?.();
      });
  }

  async #claim(): Promise<void> {
    const claims: Shards = {};
    const keys: string[] = [];
    for (const [key, state] of this.#owned) {
      if (state === true) continue;
      keys.push(key);
      const cut = key.lastIndexOf("/");
      (claims[key.slice(0, cut)] ??= []).push(Number(key.slice(cut + 1)));
    }
    const expected = new Set(this.p.membership.others());
    const refused = new Set<string>();
    const refusers = new Set<string>();
    if (expected.size > 0) {
      const inbox = createInbox(this.p.inboxPrefix); // one per round: a late answer to an earlier one counts for nothing
      let timer: ReturnType<typeof setTimeout> | undefined;
      let answers: Subscription | undefined;
      await new Promise<void>((done) => {
        timer = setTimeout(done, ROUND_MS); // who did not answer is asked again
        answers = this.p.nc.subscribe(inbox, {
          callback: (_err, msg) => {
            try {
              const answer = msg.json<{ node: string; refused: Shards }>();
              for (const [capability, shards] of Object.entries(answer.refused)) {
                for (const s of shards) refused.add(`${capability}/${s}`);
                if (shards.length > 0) refusers.add(answer.node);
              }
              expected.delete(answer.node);
            } catch {
              return; // not an answer
            }
            if (expected.size === 0) done();
          },
        });
        const claim: Claim = { ...this.p.membership.announcement(), claims };
        this.p.nc.publish(this.p.subjects.claim, encodeJson(claim), { reply: inbox });
      }).finally(() => {
        clearTimeout(timer);
        answers?.unsubscribe();
      });
      // Who left the view meanwhile need not answer: removed by the store (its lease is over), or it left.
      const members = new Set(this.p.membership.others());
      for (const node of expected) if (!members.has(node)) expected.delete(node);
    }
    if (expected.size > 0 || refusers.size > 0) this.#stuck(keys.length, [...expected], [...refusers]);
    if (expected.size > 0) return;
    await this.p.inboxServed();
    let settled = 0;
    for (const key of keys) {
      const state = this.#owned.get(key);
      if (state === undefined || state === true || refused.has(key)) continue;
      this.#settle(key, state);
      settled++;
    }
    if (this.#waiting === 0) this.#waitingSince = undefined;
    if (settled > 0 && this.p.membership.others().length > 0) this.p.handedOver();
  }

  /** Another member claims shards: answered once each is released here, or refused (this node owns it in its view, or still holds it). */
  async #answer(msg: Msg): Promise<void> {
    try {
      const { claims, ...announcement } = decodeAnnouncement(msg.data) as Claim;
      if (announcement.node === this.p.nodeId || msg.reply === undefined) return;
      this.p.membership.heard(announcement); // the claimer's own view of itself (a rejoining node's new record)
      const refused: Shards = {};
      const asked = new Map<string, Set<number>>();
      for (const [capability, shards] of Object.entries(claims ?? {})) {
        for (const shard of Array.isArray(shards) ? shards : []) {
          // This node may answer for a shard it does not own in its view (to take it, it must claim it: from the claimer too).
          if (this.#owner(capability, shard) !== this.p.nodeId) {
            let set = asked.get(capability);
            if (set === undefined) asked.set(capability, (set = new Set()));
            set.add(shard);
          } else (refused[capability] ??= []).push(shard);
        }
      }
      const of = (capability: string, shard: number) => asked.get(capability)?.has(shard) === true;
      for (const [capability, shard] of await this.p.released(of, ROUND_MS / 2)) (refused[capability] ??= []).push(shard);
      msg.respond(encodeJson({ node: this.p.nodeId, refused }));
    } catch (err) {
      this.p.log.warn({ err: messageOf(err) }, "mesh: ignored a malformed shard claim");
    }
  }
}
