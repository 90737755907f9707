import { decodeAnnouncement, decodeLeave, encodeJson, messageOf } from "@mesh/core/internal";
import type { Announcement, Logger } from "@mesh/core";
import type { Leave } from "@mesh/core/internal";
import { MeshError } from "@mesh/core";
import { createInbox } from "nats";
import type { Msg, NatsConnection, Subscription } from "nats";
import { settleWithin } from "./connection.js";
import type { Subjects } from "./subjects.js";

/** Timing of membership. */
export interface MembershipTiming {
  /** How often a node publishes its heartbeat. */
  heartbeatMs: number;
  /** A node silent for this long is removed from the view. */
  nodeTimeoutMs: number;
  /** Discovery ends once no answer arrived for this long. */
  discoveryQuietMs: number;
}

interface Member {
  announcement: Announcement;
  lastSeen: number;
}

interface Round {
  /** Whom we still wait for: the known members (announce), or the members that answers named (discovery). */
  readonly expected: Set<string>;
  readonly heard: Set<string>;
  /** Discovery: each answer names its members, and we wait for those too. */
  readonly open: boolean;
  /** Answers so far. */
  answers: number;
  done(): void;
}

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

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    self: Announcement,
    private readonly timing: MembershipTiming,
    private readonly log: Logger,
    /** Called with the whole view (self included) whenever it changes. */
    private readonly onChange: (members: ReadonlyMap<string, Announcement>) => void,
    /** Where replies to discovery come (the node's inbox prefix). @default "_INBOX" */
    inboxPrefix?: string,
  ) {
    this.#self = self;
    this.#inbox = `${createInbox(inboxPrefix)}.`;
  }

  /** This node's announcement. */
  get self(): Announcement {
    return this.#self;
  }

  /** The current view: node id → announcement, self included. */
  view(): Map<string, Announcement> {
    return new Map([...this.#members].map(([id, m]) => [id, m.announcement]));
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
    on(this.subjects.heartbeat, (msg) => this.#upsert(decodeAnnouncement(msg.data)));
    on(this.subjects.discover, (msg) => {
      const a = decodeAnnouncement(msg.data);
      if (a.node === this.#self.node && a.instance === this.#self.instance) return;
      this.#upsert(a);
      // The answer names every member we know, so the asker can wait for each of them.
      if (msg.reply) msg.respond(encodeJson({ ...this.#self, members: [...this.#members.keys()] }));
    });
    on(this.subjects.leave, (msg) => this.#leave(decodeLeave(msg.data)));
    on(`${this.#inbox}*`, (msg) => {
      const a = decodeAnnouncement(msg.data);
      this.#upsert(a);
      const round = this.#rounds.get(msg.subject.slice(this.#inbox.length));
      if (round === undefined) return;
      round.answers++;
      round.heard.add(a.node);
      round.expected.delete(a.node);
      if (round.open) {
        for (const m of a.members ?? []) if (m !== this.#self.node && !round.heard.has(m)) round.expected.add(m);
      } else if (round.expected.size === 0) {
        round.done();
      }
    });
    this.#members.set(this.#self.node, { announcement: this.#self, lastSeen: performance.now() });
    this.onChange(this.view());
    await this.#round(undefined);
    // Heartbeat once now: members that missed discovery learn of us at once.
    this.#publish(this.subjects.heartbeat, this.#self);
    this.#timers.push(
      setInterval(() => this.#publish(this.subjects.heartbeat, this.#self), this.timing.heartbeatMs),
      setInterval(() => this.#sweep(), Math.max(50, Math.min(this.timing.heartbeatMs, this.timing.nodeTimeoutMs) / 4)),
    );
    for (const t of this.#timers) t.unref();
  }

  /**
   * Replaces this node's announcement (e.g. new capabilities) and tells every
   * member; resolves once each known member acknowledged it, or after 2 s.
   */
  async announce(change: Partial<Announcement>): Promise<void> {
    this.#self = { ...this.#self, ...change };
    this.#members.set(this.#self.node, { announcement: this.#self, lastSeen: performance.now() });
    this.onChange(this.view());
    const others = new Set([...this.#members.keys()].filter((n) => n !== this.#self.node));
    await this.#round(others);
  }

  /** Asks everyone again (after a reconnect): members answer and re-learn us. */
  async rediscover(): Promise<void> {
    await this.#round(undefined);
  }

  /** Removes a node that we know is gone (its subject had no responders). */
  markGone(node: string): void {
    if (node !== this.#self.node && this.#members.delete(node)) {
      this.log.info({ node }, "mesh: node removed: no responders on its subject");
      this.onChange(this.view());
    }
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
   * (`expected` undefined): ends when every member named in any answer has
   * answered and no new answer came for discoveryQuietMs. Never longer than
   * ROUND_MAX_MS.
   */
  async #round(expected: Set<string> | undefined): Promise<void> {
    const key = (this.#roundNo++).toString(36);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let round!: Round;
    const finished = new Promise<void>((resolve) => {
      round = { expected: expected ?? new Set(), heard: new Set(), open: expected === undefined, answers: 0, done: resolve };
      timer = setTimeout(resolve, ROUND_MAX_MS);
    });
    this.#rounds.set(key, round);
    try {
      this.nc.publish(this.subjects.discover, encodeJson(this.#self), { reply: this.#inbox + key });
      if (!round.open) {
        if (round.expected.size > 0) await finished;
        return;
      }
      await this.nc.flush();
      for (let answers = -1; !this.#stopped && (answers !== round.answers || round.expected.size > 0); ) {
        answers = round.answers;
        const pause = new Promise<"quiet">((resolve) => setTimeout(resolve, this.timing.discoveryQuietMs, "quiet"));
        if ((await Promise.race([pause, finished])) !== "quiet") return;
      }
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, "mesh: discovery round failed");
    } finally {
      clearTimeout(timer);
      this.#rounds.delete(key);
    }
  }

  #upsert({ members: _members, ...a }: Announcement): void {
    if (this.#stopped) return;
    if (a.node === this.#self.node) {
      if (a.instance !== this.#self.instance) {
        this.log.error({ node: a.node }, "mesh: another live node uses this node's id; node ids must be unique");
      }
      return;
    }
    if (a.shards !== this.#self.shards || a.strategy !== this.#self.strategy) {
      const key = `${a.node}/${a.instance}`;
      if (!this.#refused.has(key)) {
        this.#refused.add(key);
        this.log.error(
          { node: a.node, shards: a.shards, strategy: a.strategy, ours: { shards: this.#self.shards, strategy: this.#self.strategy } },
          "mesh: refused a node whose shard count or placement strategy differs from ours",
        );
      }
      return;
    }
    const known = this.#members.get(a.node);
    const now = performance.now();
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
    this.log.info({ node }, "mesh: node left");
    this.onChange(this.view());
  }

  #sweep(): void {
    const now = performance.now();
    let changed = false;
    for (const [node, m] of this.#members) {
      // A node that announced a slower heartbeat than ours gets three of its own intervals.
      const timeout = Math.max(this.timing.nodeTimeoutMs, 3 * m.announcement.heartbeatMs);
      if (node !== this.#self.node && now - m.lastSeen > timeout) {
        this.#members.delete(node);
        this.log.warn({ node }, "mesh: node removed: silent past the node timeout");
        changed = true;
      }
    }
    if (changed) this.onChange(this.view());
  }

  #publish(subject: string, message: unknown): void {
    try {
      this.nc.publish(subject, encodeJson(message));
    } catch (err) {
      this.log.warn({ subject, err: messageOf(err) }, "mesh: could not publish a membership message");
    }
  }
}

/**
 * Throws CONNECTION_FAILED when a live node already serves `nodeId`: an empty
 * request on its node subject (a presence probe, PROTOCOL.md) is answered by
 * any node subscribed there. "No responders" means the id is free. No answer
 * within `timeoutMs` means a holder that does not answer (a frozen process, a
 * connection the server has not yet found dead): logged, and the id is taken.
 */
export async function claimNodeId(nc: NatsConnection, subjects: Subjects, nodeId: string, timeoutMs: number, log: Logger): Promise<void> {
  try {
    await nc.request(subjects.node(nodeId), new Uint8Array(0), { timeout: timeoutMs });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "503") return; // no responders: nobody serves this id
    log.warn({ node: nodeId, err: messageOf(err) }, "mesh: a subscriber on this node's subject did not answer the presence probe; starting anyway");
    return;
  }
  throw new MeshError("CONNECTION_FAILED", `another live node already uses the node id "${nodeId}" (it answered on ${subjects.node(nodeId)}); give every node its own nodeId`);
}

function sameMembership(a: Announcement, b: Announcement): boolean {
  return a.capabilities.join(",") === b.capabilities.join(",") && a.actorTypes.join(",") === b.actorTypes.join(",");
}
