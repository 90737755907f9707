// Placement during a roll (docs/deploying.md "Placement during a roll"). A
// node of newer code that joins a cluster where a member runs older code
// (every member knowing placement keys) is a standby: it owns no shard. A member
// that leaves names a standby its heir (core placement-keys.ts), which takes
// the leaver's placement key, and so exactly the leaver's shards, once and
// to newer code. A standby takes its own key instead when no member of older
// code is left, when a member of a Mesh before placement keys joins, or after
// standbyMs. A node whose id a member already places under takes another key.
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

export class Standby {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  #changing = false;
  #stopped = false;
  /** Shards given up (`<capability>/<shard>`). */
  readonly #yields = new Set<string>();

  constructor(
    private readonly host: StandbyHost,
    private readonly standbyMs: number,
    private readonly log: Logger,
  ) {}

  /** Whether a node of `app` announces itself as a standby from its first announcement (before it knows the members). */
  static first(app: string, standbyMs: number): boolean {
    return app !== UNVERSIONED && standbyMs > 0;
  }

  /**
   * Discovery is over. A node whose id another member already places under
   * (it inherited it: a node id used again) takes a key of its own. A
   * standby named heir meanwhile takes the leaver's key; one that may
   * inherit nothing takes its own at once (before start resolves); the others
   * wait at most standbyMs.
   */
  async started(): Promise<void> {
    this.#started = true;
    const self = this.host.self;
    if (self.standby !== true) {
      if (this.#ownKey() !== self.node) await this.host.announce({ key: this.#ownKey() });
      return;
    }
    const leaver = this.#namedBy();
    if (leaver !== undefined) return this.#take(leaver.key ?? leaver.node, `heir of ${leaver.node}`);
    if (this.#ownWhy() !== undefined) return this.host.announce(this.#own());
    this.log.info(
      { standbyMs: this.standbyMs },
      "mesh: joined as a standby: a member runs older code; this node takes a leaving member's shards",
    );
    this.#timer = setTimeout(() => this.#take(undefined, "no member left within standbyMs"), this.standbyMs);
    this.#timer.unref();
  }

  /** The view changed: a standby named heir takes the leaver's key; one that can inherit nothing takes its own. */
  viewChanged(): void {
    if (!this.#started || this.#stopped || this.host.self.standby !== true || this.#changing) return;
    const leaver = this.#namedBy();
    if (leaver !== undefined) return this.#take(leaver.key ?? leaver.node, `heir of ${leaver.node}`);
    const why = this.#ownWhy();
    if (why !== undefined) this.#take(undefined, why);
  }

  /** The heir this node names as it leaves: none while it is a standby itself (it holds no key), or hosts nothing. */
  heir(): string | undefined {
    const self = this.host.self;
    if (self.standby === true) return undefined;
    return heirFor(self, [...this.host.view().values()]);
  }

  /**
   * An activation here met state that newer code stored (STATE_TOO_NEW): when
   * a member of newer code that places under a key shares the capability,
   * this node gives the shard up (announced at once, so its owner changes
   * before this returns) and returns true; else false.
   */
  yieldShard(capability: string, shard: number): boolean {
    const self = this.host.self;
    const members = [...this.host.view().values()];
    if (this.#stopped || members.some((m) => m.keys !== true)) return false;
    const newer = members.some(
      (m) => m.node !== self.node && m.standby !== true && m.capabilities.includes(capability) && compareVersions(m.app, self.app) > 0,
    );
    if (!newer) return false;
    const entry = `${capability}/${shard}`;
    if (!this.#yields.has(entry)) {
      this.#yields.add(entry);
      this.log.info({ capability, shard }, "mesh: gave up a shard whose state newer code stored; a node of newer code takes it");
      void this.host.announce({ yields: [...this.#yields].sort() });
    }
    return true;
  }

  /** The node stops: no more changes. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** The leaving member that names this standby its heir (of several, the first id). */
  #namedBy(): Announcement | undefined {
    const self = this.host.self;
    return [...this.host.view().values()]
      .filter((m) => m.capabilities.length === 0 && m.heir === self.node)
      .sort((a, b) => (a.node < b.node ? -1 : 1))[0];
  }

  /** Why this standby can inherit nothing (and takes its own key), or undefined while it may. */
  #ownWhy(): string | undefined {
    const self = this.host.self;
    const members = [...this.host.view().values()];
    if (members.some((m) => m.keys !== true)) return "a member of a Mesh before placement keys is in the view";
    const older = members.some(
      (m) =>
        m.node !== self.node &&
        m.standby !== true &&
        compareVersions(m.app, self.app) < 0 &&
        m.capabilities.some((c) => self.capabilities.includes(c)),
    );
    return older ? undefined : "no member runs older code";
  }

  /** Its node id, unless another member places under it (it inherited the id of a node that left): then its instance. */
  #ownKey(): string {
    const self = this.host.self;
    const taken = [...this.host.view().values()].some((m) => m.node !== self.node && m.standby !== true && (m.key ?? m.node) === self.node);
    return taken ? self.instance : self.node;
  }

  /** What a standby announces to place under its own key. */
  #own(): Partial<Announcement> {
    const key = this.#ownKey();
    return key === this.host.self.node ? { standby: false } : { standby: false, key };
  }

  /** Leaves standby under `key` (undefined: its own); deferred, as it may run inside a view change. */
  #take(key: string | undefined, why: string): void {
    this.#changing = true;
    clearTimeout(this.#timer);
    queueMicrotask(() => {
      if (this.#stopped) return;
      const change = key === undefined ? this.#own() : { standby: false, key };
      this.log.info({ key: change.key ?? this.host.self.node, why }, "mesh: standby over: this node owns shards now");
      void this.host.announce(change).finally(() => (this.#changing = false));
    });
  }
}
