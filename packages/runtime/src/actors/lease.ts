// The ownership lease (docs/faults.md "Pauses and lost connections"). A node
// serves a turn only while it is sure no other node took the actor's shard
// since it last knew it owned it. Peers drop a node that was silent for
// nodeTimeoutMs; so when the server hands this node back a heartbeat it sent
// at time t, every member heard the node at t or later and none drops it
// before t + nodeTimeoutMs. The lease runs to t + (nodeTimeoutMs -
// heartbeatMs), on the monotonic clock: a heartbeat late by up to a whole
// interval still renews it in time.
//
// Where the server has JetStream, the lease also needs the quorum's
// acknowledgement of the node's record (lease-renewal.ts). Heartbeats then
// follow the renewals stored, and may be up to two intervals apart while
// renewals stall: the renewals' part of the lease, which ends first then, is
// what holds.
//
// Once it has lapsed (a pause, a lost connection, an event loop stalled past
// the lease), turns wait and the node re-validates: it renews its record
// (lease-renewal.ts), or, without JetStream, asks every member whether it
// removed this node meanwhile (Membership.revalidate). If its record was
// deleted, or a member removed it or did not answer, another node may have
// served this node's shards from newer state, and every activation is
// dropped (and every shard claimed again: node/shard-claims.ts): durable ones
// read their state again on their next message, plain ones start afresh.
// Then the waiting turns run, on the activations that are left or on new ones.
//
// The check sits where a turn starts (turns.ts), on the clock read each turn
// makes anyway, so a pause is seen even when the first thing a resumed process
// does is read calls that waited in its socket.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { messageOf, now } from "@mesh/core/internal";

/** How many local calls may share one clock read (see Lease.holdsNow). */
const LOCAL_CREDIT = 64;

/** What re-validating the lease asks of the node. */
export interface LeaseParts {
  /** Renews the node's record (LeaseRenewal.revalidate), or asks the members (Membership.revalidate), waiting at most `timeoutMs`. */
  revalidate(timeoutMs: number): Promise<{ confirmed: boolean; replaced: boolean }>;
  /** Drops every activation (another node may have replaced it); returns how many. */
  dropAll(): number;
  /** The lease holds again: run the turns that waited for it. */
  resume(): void;
  /** False once the node is stopping. */
  running(): boolean;
  log: Logger;
}

/** The lease's counters (NodeMetrics). */
export interface LeaseCounts {
  leaseLapses: number;
  leaseRevalidations: number;
  leaseDrops: number;
}

export class Lease {
  /** Until when (performance.now()) this node may serve turns: the earlier of what its heartbeats and its quorum renewals give. */
  until = Infinity;
  /** What heartbeats heard back give. */
  #heardUntil = Infinity;
  /** What the quorum's acknowledgements give (Infinity while the lease is not granted by a quorum). */
  #renewedUntil = Infinity;
  #revalidating: Promise<void> | undefined;
  /** Re-validations that found the node replaced (every activation dropped): what an activation from before one did is void. */
  epoch = 0;

  constructor(
    /** How long a heard-back heartbeat keeps the lease. */
    readonly ms: number,
    private readonly parts: LeaseParts,
    private readonly counts: LeaseCounts,
  ) {}

  /**
   * From now on the lease also needs the quorum's acknowledgements
   * (`renewed`, lease-renewal.ts), the first of which came for a write sent
   * at `sentAt`.
   */
  byQuorum(sentAt: number): void {
    this.#renewedUntil = sentAt + this.ms;
    this.until = Math.min(this.#heardUntil, this.#renewedUntil);
  }

  /** The lease starts (the node joined): it holds for `ms` from `at`. */
  start(at: number): void {
    if (this.#revalidating !== undefined) return;
    this.#heardUntil = at + this.ms;
    this.until = Math.min(this.#heardUntil, this.#renewedUntil);
  }

  /** True when a turn may start at `now` (performance.now()). */
  holds(now: number): boolean {
    return now <= this.until;
  }

  /**
   * `holds` for local calls to idle plain actors, which read no clock
   * otherwise: one read costs about 90 ns on this machine, a third of such a
   * call (bench). The clock is read again every LOCAL_CREDIT calls and in
   * every turn of the event loop (the credit ends in its check phase, before
   * the loop waits for I/O again), so a pause while the loop waits is seen by
   * the first call after it, as by every other turn.
   */
  holdsNow(): boolean {
    if (this.#credit > 0) {
      this.#credit--;
      return true;
    }
    if (!this.holds(now())) return false;
    this.#credit = LOCAL_CREDIT;
    if (!this.#creditEnds) {
      this.#creditEnds = true;
      setImmediate(this.#endCredit).unref();
    }
    return true;
  }
  #credit = 0;
  #creditEnds = false;
  readonly #endCredit = () => {
    this.#creditEnds = false;
    this.#credit = 0;
  };

  /** The server handed back a heartbeat sent at `sentAt`: the lease extends, unless it had lapsed before. */
  heard(sentAt: number): void {
    if (this.#revalidating !== undefined) return;
    if (sentAt > this.until) return this.lapse();
    this.#heardUntil = Math.max(this.#heardUntil === Infinity ? 0 : this.#heardUntil, sentAt + this.ms);
    this.until = Math.min(this.#heardUntil, this.#renewedUntil);
  }

  /** The quorum acknowledged the node's record written at `sentAt` (lease-renewal.ts): the lease extends, unless it had lapsed before. */
  renewed(sentAt: number): void {
    if (this.#revalidating !== undefined) return;
    if (sentAt > this.until) return this.lapse();
    this.#renewedUntil = Math.max(this.#renewedUntil === Infinity ? 0 : this.#renewedUntil, sentAt + this.ms);
    this.until = Math.min(this.#heardUntil, this.#renewedUntil);
  }

  /** The lease cannot be trusted (it ran out, or the connection dropped): turns wait until it is re-validated. */
  lapse(): void {
    this.until = -Infinity;
    this.#credit = 0;
    if (this.#revalidating !== undefined || !this.parts.running()) return;
    this.counts.leaseLapses++;
    this.#revalidating = this.#revalidate().finally(() => {
      this.#revalidating = undefined;
      this.parts.resume();
    });
  }

  /**
   * Resolves once the lease holds, re-validating it first when it does not
   * (an activation that starts reads and writes the store only then).
   * Rejects with STOPPED once the node is stopping.
   */
  async held(): Promise<void> {
    while (!this.holds(performance.now())) {
      this.lapse();
      if (this.#revalidating === undefined) throw new MeshError("STOPPED", "the node is stopping: its lease is not re-validated");
      await this.#revalidating;
    }
  }

  /** Resolves once no re-validation is under way. */
  settled(): Promise<void> {
    return this.#revalidating ?? Promise.resolve();
  }

  async #revalidate(): Promise<void> {
    // The answers and the server's acknowledgement take a third of the lease each at most: a third is left to serve under.
    const wait = Math.max(50, this.ms / 3);
    // A member's answer counts once (the next round compares with it): what a round that was not confirmed learned is kept.
    let replaced = false;
    while (this.parts.running()) {
      const began = performance.now();
      let verdict: { confirmed: boolean; replaced: boolean };
      try {
        verdict = await this.parts.revalidate(wait);
      } catch (err) {
        this.parts.log.warn({ err: messageOf(err) }, "mesh: lease re-validation failed; trying again");
        verdict = { confirmed: false, replaced: true };
      }
      replaced ||= verdict.replaced;
      if (!verdict.confirmed) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 250)));
        continue;
      }
      if (replaced) this.epoch++;
      const dropped = replaced ? this.parts.dropAll() : 0;
      this.counts.leaseDrops += dropped;
      this.counts.leaseRevalidations++;
      this.#heardUntil = began + this.ms;
      if (this.#renewedUntil !== Infinity) this.#renewedUntil = began + this.ms;
      this.until = Math.min(this.#heardUntil, this.#renewedUntil);
      this.parts.log.warn(
        { replaced, dropped },
        replaced
          ? "mesh: lease re-validated: another node may have served this node's actors meanwhile; their activations here were dropped"
          : "mesh: lease re-validated: no other node took this node's shards",
      );
      return;
    }
  }
}
