// The lease granted by the quorum (docs/faults.md "Pauses and lost
// connections"). Hearing its own heartbeat back proves only that this node's
// server relayed it: on a NATS cluster cut in two, each side keeps hearing its
// own, and both would serve the same actors. Where the node stores state in
// JetStream, it also writes its record into a replicated KV bucket
// (`<prefix>_nodes`, replicas as the state bucket) every heartbeat; JetStream
// acknowledges the write only once a majority of the bucket's replicas have
// it. The lease then runs from when that write was sent, for as long as a
// heartbeat heard back would give it: a node cut off from the quorum cannot
// renew, and its turns stop (reads and local calls included) before its peers
// may take its shards. A graceful stop deletes the record.
import type { Logger } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { bucketName, openBucket } from "@mesh/transport";
import type { BucketOptions } from "@mesh/transport";
import type { KV, NatsConnection } from "nats";

/** What renewing asks of the node. */
export interface RenewalParts {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly nodeId: string;
  readonly storage: BucketOptions;
  /** How often it renews: the node's heartbeatMs. */
  readonly everyMs: number;
  readonly log: Logger;
  /** A write sent at `sentAt` (performance.now()) was acknowledged by the quorum. */
  renewed(sentAt: number): void;
}

export class LeaseRenewal {
  #timer: ReturnType<typeof setInterval> | undefined;
  #inFlight = false;

  private constructor(
    private readonly kv: KV,
    private readonly p: RenewalParts,
  ) {}

  /** Opens the nodes bucket (creating it when missing). Throws STORAGE_UNAVAILABLE. */
  static async open(p: RenewalParts): Promise<LeaseRenewal> {
    return new LeaseRenewal(await openBucket(p.nc, "nodes", bucketName(p.prefix, "nodes"), p.storage), p);
  }

  /** Writes the record now, and every `everyMs` after. */
  start(): void {
    void this.renew();
    this.#timer ??= setInterval(() => void this.renew(), this.p.everyMs);
    this.#timer.unref?.();
  }

  /**
   * Writes the node's record; true once the quorum acknowledged it (and the
   * lease was told). One write at a time: a slow store is not piled up on.
   */
  async renew(): Promise<boolean> {
    if (this.#inFlight) return false;
    this.#inFlight = true;
    const sentAt = performance.now();
    try {
      await this.kv.put(this.p.nodeId, JSON.stringify({ node: this.p.nodeId, at: Date.now() }));
      this.p.renewed(sentAt);
      return true;
    } catch (err) {
      this.p.log.debug({ err: messageOf(err) }, "mesh: the lease's record was not stored");
      return false;
    } finally {
      this.#inFlight = false;
    }
  }

  /** Stops renewing; with `leave`, deletes the record (a graceful stop). */
  async stop(leave: boolean): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (leave) await this.kv.delete(this.p.nodeId).catch(() => {});
  }
}
