// Placement during a roll (docs/deploying.md "Placement during a roll"). A
// node of newer code that joins a cluster where a member runs older code
// (every member speaking protocol 3) is a standby: it owns no shard. A member
// that leaves names a standby its heir (core placement-keys.ts), which takes
// the leaver's placement key, and so exactly the leaver's shards, once and
// to newer code. A standby takes its own key instead when no member of older
// code is left, when a member of protocol 2 joins, or after standbyMs.
// Imports: the bottom floor.
import { compareVersions } from "@mesh/core";
import type { Announcement, Logger } from "@mesh/core";
import { UNVERSIONED, heirFor } from "@mesh/core/internal";

/** What the standby logic works with: this node's announcement and a way to change it. */
export interface StandbyHost {
  readonly self: Announcement;
  view(): Map<string, Announcement>;
  announce(change: Partial<Announcement>): Promise<void>;
}

/** The protocol that knows placement keys: a member of an older one would place a standby as any node. */
const KEYS_PROTOCOL = 3;

export class Standby {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  #changing = false;

  constructor(
    private readonly host: StandbyHost,
    private readonly standbyMs: number,
    private readonly log: Logger,
  ) {}

  /** Whether a node of `app` announces itself as a standby from its first announcement (before it knows the members). */
  static first(app: string, standbyMs: number): boolean {
    return app !== UNVERSIONED && standbyMs > 0;
  }

  /** Discovery is over: a standby stays one only while it may inherit (else it takes its own key before start resolves), and for at most standbyMs. */
  async started(): Promise<void> {
    this.#started = true;
    if (!this.host.self.standby) return;
    const why = this.#ownWhy();
    if (why !== undefined) return this.host.announce({ standby: false });
    this.log.info(
      { standbyMs: this.standbyMs },
      "mesh: joined as a standby: a member runs older code; this node takes a leaving member's shards",
    );
    this.#timer = setTimeout(() => this.#own("no member left within standbyMs"), this.standbyMs);
    this.#timer.unref();
  }

  /** The view changed: a standby named heir takes the leaver's key; one that can inherit nothing takes its own. */
  viewChanged(): void {
    const self = this.host.self;
    if (!this.#started || self.standby !== true || this.#changing) return;
    const members = [...this.host.view().values()];
    const leaver = members.filter((m) => m.capabilities.length === 0 && m.heir === self.node).sort((a, b) => (a.node < b.node ? -1 : 1))[0];
    if (leaver !== undefined) return this.#take(leaver.key ?? leaver.node, `heir of ${leaver.node}`);
    const why = this.#ownWhy();
    if (why !== undefined) this.#own(why);
  }

  /** Why this standby can inherit nothing (and takes its own key), or undefined while it may. */
  #ownWhy(): string | undefined {
    const self = this.host.self;
    const members = [...this.host.view().values()];
    if (members.some((m) => (m.protocol ?? 1) < KEYS_PROTOCOL)) return "a member speaks a protocol before placement keys";
    const older = members.some(
      (m) =>
        m.node !== self.node &&
        m.standby !== true &&
        compareVersions(m.app, self.app) < 0 &&
        m.capabilities.some((c) => self.capabilities.includes(c)),
    );
    return older ? undefined : "no member runs older code";
  }

  /** The heir this node names as it leaves: none while it is a standby itself (it holds no key). */
  heir(): string | undefined {
    const self = this.host.self;
    if (self.standby === true) return undefined;
    return heirFor(self, [...this.host.view().values()]);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  #own(why: string): void {
    this.#take(undefined, why);
  }

  /** Leaves standby under `key` (undefined: its own id); deferred, as it runs inside a view change. */
  #take(key: string | undefined, why: string): void {
    this.#changing = true;
    clearTimeout(this.#timer);
    queueMicrotask(() => {
      this.log.info({ key: key ?? this.host.self.node, why }, "mesh: standby over: this node owns shards now");
      void this.host.announce(key === undefined ? { standby: false } : { standby: false, key }).finally(() => (this.#changing = false));
    });
  }
}
