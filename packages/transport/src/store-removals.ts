// Removal through the store (node-records.ts): which peers this node asks the
// store to remove, and which announcements it no longer believes. Every
// heartbeat of a node whose records the quorum keeps carries the revision of
// its record last stored (`rev`). A peer that heard no newer revision for the
// node timeout asks the store to delete the record at the revision it last
// saw; only then is the node out of its view. An announcement that carries a
// revision no newer than a removal this node knows of was sent before it
// (delayed, or from a node that does not know yet): it adds nobody back.
import type { NodeRecords, Verdict } from "./node-records.js";

interface Seen {
  /** The newest revision of the node's record this node heard of. */
  revision: number;
  /** When it first heard of it (performance.now()). */
  since: number;
}

export class StoreRemovals {
  readonly #seen = new Map<string, Seen>();
  /** Removed nodes → their record's last revision before the delete. */
  readonly #gone = new Map<string, number>();
  readonly #judging = new Set<string>();

  constructor(readonly records: NodeRecords) {}

  /**
   * `node` announced its record at `revision`: false when that is no newer
   * than the removal of it this node knows of (the announcement is older than
   * the verdict, and must not add it back).
   */
  heard(node: string, revision: number, now: number): boolean {
    const gone = this.#gone.get(node);
    if (gone !== undefined) {
      if (revision <= gone) return false;
      this.#gone.delete(node);
    }
    const seen = this.#seen.get(node);
    if (seen === undefined || revision > seen.revision) this.#seen.set(node, { revision, since: now });
    return true;
  }

  /** This node was stalled: what it did not read may be every peer's renewal. Each gets a fresh timeout from `now`. */
  stalled(now: number): void {
    for (const seen of this.#seen.values()) seen.since = Math.max(seen.since, now);
  }

  /** `node` left by itself, or another rule removed it: nothing more to judge. */
  forget(node: string): void {
    this.#seen.delete(node);
  }

  /**
   * Asks the store to remove every peer whose record showed no newer revision
   * for `timeoutMs` while this node's own renewals were stored (one question
   * per peer at a time); `removed` is called for each the store removed.
   */
  sweep(now: number, timeoutMs: (node: string) => number, removed: (node: string) => void): void {
    // Silence counts only while this node's own writes are stored: a store that answered nobody removes nobody.
    const healthySince = this.records.healthySince;
    if (healthySince === undefined) return;
    for (const [node, seen] of this.#seen) {
      if (now - Math.max(seen.since, healthySince) <= timeoutMs(node) || this.#judging.has(node)) continue;
      this.#judging.add(node);
      void this.records.remove(node, seen.revision).then((verdict) => {
        this.#judging.delete(node);
        this.#judged(node, seen, verdict, removed);
      });
    }
  }

  #judged(node: string, seen: Seen, verdict: Verdict, removed: (node: string) => void): void {
    if (this.#seen.get(node) !== seen) return; // heard of again meanwhile (a newer revision, or it left)
    if (verdict.kind === "removed") {
      this.#seen.delete(node);
      this.#gone.set(node, Math.max(seen.revision, verdict.revision ?? 0));
      removed(node);
    } else if (verdict.kind === "alive" && verdict.revision > seen.revision) {
      // Alive as the store shows it, reachable or not: a fresh timeout from now.
      this.#seen.set(node, { revision: verdict.revision, since: performance.now() });
    }
  }
}
