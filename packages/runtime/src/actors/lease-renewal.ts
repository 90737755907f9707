// The lease granted by the quorum (docs/faults.md "A NATS cluster"). Hearing
// its own heartbeat back proves only that this node's server relayed it: on a
// NATS cluster cut in two, each side keeps hearing its own, and both would
// serve the same actors. Where JetStream is there, the node keeps its record
// in a replicated KV bucket (`<prefix>_nodes`, @mesh/transport's
// node-records.ts) and renews it every heartbeat with a compare-and-set;
// JetStream acknowledges a write only once a majority of the bucket's replicas
// have it. The lease runs from when that write was sent, for as long as a
// heartbeat heard back would give it: a node cut off from the quorum cannot
// renew, and its turns stop (reads and local calls included) before its peers
// may delete its record and take its shards. A renewal refused because the
// record was deleted means peers removed this node: the lease lapses, and
// re-validating writes the record anew and drops every activation; unless the
// record names another instance: then another process took this node id
// (started while this one was frozen or cut off), and this one stops without
// serving again, rather than overwrite the other's record at every renewal
// while both serve every call.
import { JETSTREAM_READY_MS } from "@mesh/transport";
import type { NodeRecords } from "@mesh/transport";
import type { Lease } from "./lease.js";

export class LeaseRenewal {
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly records: NodeRecords,
    private readonly lease: Lease,
    /** How often it renews: the node's heartbeatMs. */
    private readonly everyMs: number,
    /** Another process holds this node's id: this one must stop. */
    private readonly superseded: () => void,
  ) {}

  /** Writes the record anew (throws STORAGE_UNAVAILABLE), grants the lease from then, and renews every `everyMs`. */
  async start(): Promise<void> {
    this.lease.byQuorum(await this.records.create(JETSTREAM_READY_MS)); // a bucket just made may have no leader yet
    this.#timer ??= setInterval(() => void this.#renew(), this.everyMs);
    this.#timer.unref?.();
  }

  async #renew(): Promise<void> {
    const renewal = await this.records.renew();
    if (renewal.kind === "renewed") this.lease.renewed(renewal.sentAt);
    else if (renewal.kind === "removed") this.lease.lapse(); // peers removed this node: re-validate (below)
  }

  /**
   * A re-validation where the quorum grants the lease: confirmed once the
   * record is renewed; replaced when peers had deleted it (another node may
   * have served this node's actors), and then written anew.
   */
  async revalidate(): Promise<{ confirmed: boolean; replaced: boolean }> {
    const renewal = await this.records.renew();
    if (renewal.kind === "renewed") return { confirmed: true, replaced: false };
    if (renewal.kind === "failed") return { confirmed: false, replaced: false };
    try {
      if (await this.records.heldByAnother()) {
        this.superseded();
        return { confirmed: false, replaced: true };
      }
      await this.records.create();
      return { confirmed: true, replaced: true };
    } catch {
      return { confirmed: false, replaced: true };
    }
  }

  /** Stops renewing; with `leave`, deletes the record (a graceful stop: peers take the shards at once). */
  async stop(leave: boolean): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (leave) await this.records.leave();
  }
}
