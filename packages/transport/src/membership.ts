import { decodeAnnouncement, decodeLeave, encodeJson, incompatible, messageOf, sameMembership } from "@mesh/core/internal";
import type { Announcement, Logger } from "@mesh/core";
import type { Leave } from "@mesh/core/internal";
import { createInbox } from "nats";
import type { Msg, NatsConnection, Subscription } from "nats";
import { settleWithin } from "./connection.js";
import { isGone } from "./node-id.js";
import type { MembershipParts, MembershipTiming, Revalidation, Round, RoundAsk } from "./membership-parts.js";
import type { StoreRemovals } from "./store-removals.js";
import type { Subjects } from "./subjects.js";

interface Member {
  announcement: Announcement;
  lastSeen: number;
}

/** How many removed instances a node remembers (each answer to a re-validation names the asker's count). */
const REMOVALS_KEPT = 10_000;

/** The longest a discovery or announcement round waits for answers. */
const ROUND_MAX_MS = 2_000;

/**
 * Who is in the cluster, learned through NATS alone:
 * - on start a node publishes its announcement on `discover` with a reply
 *   subject; every member adds it and answers with its own announcement;
 * - every node publishes its announcement on `heartbeat` every heartbeatMs;
 * - a node silent for nodeTimeoutMs is removed; a graceful stop publishes `leave`.
 * Nodes whose shard count or strategy differ from ours are refused (logged once).
 */
export class Membership {
  readonly #members = new Map<string, Member>();
  readonly #refused = new Set<string>();
  readonly #subs: Subscription[] = [];
  readonly #rounds = new Map<string, Round>();
  readonly #inbox: string;
  #self: Announcement;
  #roundNo = 0;
  #timers: ReturnType<typeof setInterval>[] = [];
  #stopped = false;
  #muted = false; // another process took this node's id: nothing more is said in its name (mute)
  /** How many times this node removed each "<node>/<instance>" from its view. */
  readonly #removals = new Map<string, number>();
  /** The removal counts each member last reported for this node. */
  readonly #removedBy = new Map<string, number>();
  /** Members this node removed since its last re-validation: it asks them too. */
  readonly #removedSince = new Set<string>();
  #lastSweep = performance.now();
  /** Heartbeats not yet heard back: their number (`beat`) → when each was sent. */
  readonly #sent = new Map<number, number>();
  #beat = 0;
  /** When a stored write of this node's record last made it heartbeat (performance.now()): the timer skips its beats for a heartbeat after. */
  #storedBeatAt = -Infinity;
  private readonly nc: NatsConnection;
  private readonly subjects: Subjects;
  private readonly timing: MembershipTiming;
  private readonly log: Logger;
  private readonly onChange: (members: ReadonlyMap<string, Announcement>) => void;
  private readonly onHeard: (sentAt: number) => void;
  readonly #store: StoreRemovals | undefined;

  constructor(p: MembershipParts) {
    ({ nc: this.nc, subjects: this.subjects, timing: this.timing, log: this.log, onChange: this.onChange } = p);
    this.onHeard = p.onHeard ?? (() => {});
    this.#store = p.removals;
    this.#self = p.self;
    this.#inbox = `${createInbox(p.inboxPrefix)}.`;
    this.#store?.records.describe(this.#self);
    this.#store?.records.onStored(() => this.#stored());
  }

  /** This node's announcement. */
  get self(): Announcement {
    return this.#self;
  }

  /** The other members' ids. */
  others(): string[] {
    return [...this.#members.keys()].filter((n) => n !== this.#self.node);
  }

  /** An announcement heard another way (a shard claim): taken as a heartbeat is. */
  heard(a: Announcement): void {
    this.#upsert(a);
  }

  /** The current view: node id → announcement, self included. */
  view(): Map<string, Announcement> {
    return new Map([...this.#members].map(([id, m]) => [id, m.announcement]));
  }

  /** The announcement of member `node`, if it is in the view. */
  member(node: string): Announcement | undefined {
    return this.#members.get(node)?.announcement;
  }

  /** Joins: listens, discovers every live member, and starts heart-beating. */
  async start(): Promise<void> {
    const on = (subject: string, handle: (msg: Msg) => void) =>
      this.#subs.push(
        this.nc.subscribe(subject, {
          callback: (_err, msg) => {
            try {
              handle(msg);
            } catch (err) {
              this.log.warn({ subject, err: messageOf(err) }, "mesh: ignored a malformed membership message");
            }
          },
        }),
      );
    on(this.subjects.heartbeat, (msg) => {
      const a = decodeAnnouncement(msg.data) as Announcement & { beat?: unknown };
      if (a.node === this.#self.node && a.instance === this.#self.instance) {
        const sentAt = typeof a.beat === "number" ? this.#sent.get(a.beat) : undefined;
        if (sentAt === undefined) return;
        for (const beat of this.#sent.keys()) if (beat <= (a.beat as number)) this.#sent.delete(beat);
        this.onHeard(sentAt);
        return;
      }
      this.#upsert(a);
    });
    on(this.subjects.discover, (msg) => {
      const a = decodeAnnouncement(msg.data);
      if (a.node === this.#self.node && a.instance === this.#self.instance) return;
      this.#upsert(a);
      // The answer names every member we know, so the asker can wait for each of them,
      // and how often we removed the asker, so it can tell whether its shards may have moved.
      const removals = this.#removals.get(`${a.node}/${a.instance}`) ?? 0;
      if (msg.reply && !this.#muted) msg.respond(encodeJson({ ...this.announcement(), members: [...this.#members.keys()], removals }));
    });
    on(this.subjects.leave, (msg) => this.#leave(decodeLeave(msg.data)));
    on(`${this.#inbox}*`, (msg) => {
      const a = decodeAnnouncement(msg.data);
      this.#upsert(a);
      const round = this.#rounds.get(msg.subject.slice(this.#inbox.length));
      if (round === undefined) return;
      round.answers++;
      round.heard.add(a.node);
      if (round.revalidation && a.removals !== undefined) {
        if (a.removals > (this.#removedBy.get(a.node) ?? 0)) round.replaced = true;
        this.#removedBy.set(a.node, a.removals);
      }
      round.expected.delete(a.node);
      if (round.open) {
        for (const m of a.members ?? []) if (m !== this.#self.node && !round.heard.has(m) && !round.probed.has(m)) round.expected.add(m);
      } else if (round.expected.size === 0) {
        round.done();
      }
    });
    this.#members.set(this.#self.node, { announcement: this.#self, lastSeen: performance.now() });
    this.onChange(this.view());
    // Where the quorum keeps records, discovery also waits for every node whose record is fresh:
    // a member slow to answer (a busy event loop) is not taken for absent.
    const recorded = (await this.#store?.records.live(this.timing.nodeTimeoutMs)) ?? [];
    await this.#round({ recorded });
    // One that did not answer (no process serves it, or it is frozen) may be half-open, or frozen with its
    // connection open, and serve under its lease: the members that knew it keep it until the store removes it,
    // and so does this node, from its record (else it would take its shards at once).
    for (const { node, revision, announcement } of recorded) {
      if (announcement === undefined || this.#members.has(node)) continue;
      this.log.info({ node }, "mesh: a member that did not answer discovery has a fresh record: in the view until the store removes it");
      this.#upsert({ ...announcement, rev: revision });
    }
    // Heartbeat once now: members that missed discovery learn of us at once.
    this.#heartbeat();
    this.#timers.push(
      setInterval(() => performance.now() - this.#storedBeatAt >= this.timing.heartbeatMs && this.#heartbeat(), this.timing.heartbeatMs),
      setInterval(() => this.#sweep(), Math.max(50, Math.min(this.timing.heartbeatMs, this.timing.nodeTimeoutMs) / 4)),
    );
    for (const t of this.#timers) t.unref();
  }

  /** Replaces this node's announcement (e.g. new capabilities) and tells every member; resolves once each acknowledged it, or after 2 s. */
  async announce(change: Partial<Announcement>): Promise<void> {
    this.#self = { ...this.#self, ...change };
    this.#store?.records.describe(this.#self);
    this.#members.set(this.#self.node, { announcement: this.#self, lastSeen: performance.now() });
    this.onChange(this.view());
    const others = new Set([...this.#members.keys()].filter((n) => n !== this.#self.node));
    await this.#round({ expected: others });
  }

  /** Another process took this node's id: from now on this one announces nothing (its peers would take it for the other). */
  mute(): void {
    this.#muted = true;
  }

  /** Asks everyone again (after a reconnect): members answer and re-learn us. */
  async rediscover(): Promise<void> {
    await this.#round({});
  }

  /**
   * Asks every member whether it removed this node since it last asked (a
   * lease re-validation, docs/faults.md): `replaced` when one did, or did not
   * answer within `timeoutMs`; `confirmed` once the server acknowledged the
   * question. Members that hear it learn of this node again.
   */
  async revalidate(timeoutMs: number): Promise<Revalidation> {
    const asked = [...this.#members.keys(), ...this.#removedSince].filter((n) => n !== this.#self.node);
    const round = await this.#round({ expected: new Set(asked), maxMs: timeoutMs, revalidation: true });
    const confirmed = await settleWithin(this.nc.flush(), timeoutMs);
    if (confirmed) for (const n of asked) this.#removedSince.delete(n);
    return { confirmed, replaced: round.replaced || round.expected.size > 0 };
  }

  /** The store removed `node` (its record is deleted): out of the view. */
  #storeRemoved(node: string, why: string): void {
    const known = this.#members.get(node);
    if (known === undefined) return;
    this.#remove(node, known);
    this.log.warn({ node }, `mesh: node removed: ${why}`);
    this.onChange(this.view());
  }

  /** Leaves: publishes `leave` and stops listening and heart-beating. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    for (const round of this.#rounds.values()) round.done();
    this.#publish(this.subjects.leave, { v: 1, node: this.#self.node, instance: this.#self.instance });
    for (const sub of this.#subs) sub.unsubscribe();
    await settleWithin(this.nc.flush(), 500); // best effort: the server may be gone
  }

  /**
   * Publishes our announcement on `discover` and collects the answers.
   * Announce (`expected` given): ends when each of those answered. Discovery
   * (`expected` undefined): ends when every member named in any answer or
   * `recorded` has answered and no new answer came for discoveryQuietMs. Never longer than
   * ROUND_MAX_MS.
   */
  async #round({ expected, maxMs = ROUND_MAX_MS, revalidation = false, recorded = [] }: RoundAsk): Promise<Round> {
    const key = (this.#roundNo++).toString(36);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let round!: Round;
    const finished = new Promise<void>((resolve) => {
      round = {
        expected: expected ?? new Set(recorded.map((r) => r.node)),
        heard: new Set(),
        probed: new Set(),
        open: expected === undefined,
        answers: 0,
        revalidation,
        replaced: false,
        done: resolve,
      };
      timer = setTimeout(resolve, maxMs);
    });
    this.#rounds.set(key, round);
    try {
      if (!this.#muted) this.nc.publish(this.subjects.discover, encodeJson(this.announcement()), { reply: this.#inbox + key });
      if (!round.open) {
        if (round.expected.size > 0) await finished;
        return round;
      }
      await this.nc.flush();
      for (let answers = -1; !this.#stopped && (answers !== round.answers || round.expected.size > 0); ) {
        answers = round.answers;
        for (const node of round.expected) void this.#unlessGone(round, node, maxMs);
        const pause = new Promise<"quiet">((resolve) => setTimeout(resolve, this.timing.discoveryQuietMs, "quiet"));
        if ((await Promise.race([pause, finished])) !== "quiet") return round;
      }
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, "mesh: discovery round failed");
    } finally {
      clearTimeout(timer);
      this.#rounds.delete(key);
    }
    return round;
  }

  /** A member discovery waits for that no process serves (it died, or is half-open): not waited for (start() keeps it from its record). */
  async #unlessGone(round: Round, node: string, timeoutMs: number): Promise<void> {
    if (round.probed.has(node)) return;
    round.probed.add(node);
    if (!(await isGone(this.nc, this.subjects, node, timeoutMs)) || round.heard.has(node)) return;
    round.expected.delete(node);
    this.log.info({ node }, "mesh: discovery does not wait for a member no process serves");
  }

  #upsert({ members: _members, removals: _removals, beat: _beat, ...a }: Announcement & { beat?: unknown }): void {
    if (this.#stopped) return;
    if (a.node === this.#self.node) {
      if (a.instance !== this.#self.instance) {
        this.log.error({ node: a.node }, "mesh: another live node uses this node's id; node ids must be unique");
      }
      return;
    }
    const refusal = incompatible(a, this.#self);
    if (refusal !== undefined) {
      const key = `${a.node}/${a.instance}`;
      if (!this.#refused.has(key)) this.log.error(refusal.fields, refusal.message);
      this.#refused.add(key);
      return;
    }
    const now = performance.now();
    // Older than the store's verdict on it: it adds nobody back.
    if (a.rev !== undefined && this.#store?.heard(a.node, a.rev, now) === false) return;
    const known = this.#members.get(a.node);
    if (known && known.announcement.instance === a.instance && sameMembership(known.announcement, a)) {
      known.lastSeen = now;
      known.announcement = a;
      return;
    }
    this.#members.set(a.node, { announcement: a, lastSeen: now });
    this.log.info({ node: a.node, capabilities: a.capabilities }, known ? "mesh: node changed" : "mesh: node joined");
    this.onChange(this.view());
  }

  #leave({ node, instance }: Leave): void {
    const known = this.#members.get(node);
    if (node === this.#self.node || known?.announcement.instance !== instance) return;
    this.#members.delete(node);
    this.#store?.forget(node);
    this.log.info({ node }, "mesh: node left");
    this.onChange(this.view());
  }

  #sweep(): void {
    const now = performance.now();
    const stalled = now - this.#lastSweep > this.timing.nodeTimeoutMs / 2;
    this.#lastSweep = now;
    if (stalled) {
      // This node itself was paused or stalled: what it has not read yet may be
      // every member's heartbeat. Each gets a fresh node timeout from now.
      for (const m of this.#members.values()) m.lastSeen = Math.max(m.lastSeen, now);
      this.#store?.stalled(now);
      return;
    }
    // The longest of ours, the node's own (its lease counts on it) and three of its heartbeats.
    const timeoutOf = (m: Member | undefined) =>
      Math.max(this.timing.nodeTimeoutMs, m?.announcement.nodeTimeoutMs ?? 0, 3 * (m?.announcement.heartbeatMs ?? 0));
    this.#store?.sweep(
      now,
      (node) => timeoutOf(this.#members.get(node)),
      (node) => this.#storeRemoved(node, "its record was not renewed for the node timeout (the store's verdict)"),
    );
    let changed = false;
    for (const [node, m] of this.#members) {
      // Where the quorum keeps a node's record, silence removes nobody: the store decides (above).
      if (this.#store !== undefined && m.announcement.rev !== undefined) continue;
      if (node !== this.#self.node && now - m.lastSeen > timeoutOf(m)) {
        this.#remove(node, m);
        this.log.warn({ node }, "mesh: node removed: silent past the node timeout");
        changed = true;
      }
    }
    if (changed) this.onChange(this.view());
  }

  /** Forgets a member that did not leave by itself, counting it for its re-validation. */
  #remove(node: string, m: Member): void {
    this.#members.delete(node);
    this.#removedSince.add(node);
    if (this.#removedSince.size > REMOVALS_KEPT) this.#removedSince.delete(this.#removedSince.values().next().value!);
    const key = `${node}/${m.announcement.instance}`;
    const count = (this.#removals.get(key) ?? 0) + 1;
    this.#removals.delete(key); // re-inserted last: the oldest entries go first
    this.#removals.set(key, count);
    if (this.#removals.size > REMOVALS_KEPT) this.#removals.delete(this.#removals.keys().next().value!);
  }

  /**
   * A write of this node's record was stored: its revision is announced at
   * once. Peers count a node's silence in the store from when they heard of
   * its last revision; one stored but not yet announced when the node died
   * would make them ask the store too early, hear "alive" and wait a whole
   * node timeout more. The timer skips its beats while a stored write sent
   * one within the last heartbeatMs: while renewals are stored, one beat
   * follows each; while they stall, the timer's go on, up to two heartbeats
   * apart (peers allow three).
   */
  #stored(): void {
    if (this.#timers.length === 0 || this.#stopped) return; // not started, or left
    this.#storedBeatAt = performance.now();
    this.#heartbeat();
  }

  /** Publishes our announcement, numbered so that hearing it back tells when it was sent. */
  #heartbeat(): void {
    const beat = ++this.#beat;
    const sentAt = performance.now();
    if (!this.#publish(this.subjects.heartbeat, { ...this.announcement(), beat })) return;
    this.#sent.set(beat, sentAt);
    if (this.#sent.size > 64) this.#sent.delete(this.#sent.keys().next().value!); // not heard back: no proof of anything
  }

  /** This node's announcement as sent: with its record's revision where the quorum keeps one. */
  announcement(): Announcement {
    const rev = this.#store?.records.revision;
    return rev ? { ...this.#self, rev } : this.#self;
  }

  #publish(subject: string, message: unknown): boolean {
    if (this.#muted) return false;
    try {
      this.nc.publish(subject, encodeJson(message));
      return true;
    } catch (err) {
      this.log.warn({ subject, err: messageOf(err) }, "mesh: could not publish a membership message");
      return false;
    }
  }
}
