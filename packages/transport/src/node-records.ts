// The nodes' records: where the JetStream quorum decides who is in the
// cluster (docs/faults.md "A NATS cluster"). Each node keeps one record in the
// replicated KV bucket `<prefix>_nodes` and renews it every heartbeat with a
// compare-and-set on its own last revision. A peer removes a node only by
// deleting that record with a compare-and-set on the revision it last saw,
// after it saw no newer one for the node timeout. JetStream orders the two:
// once a delete is stored, the node's next renewal fails (it learns it was
// removed), and a renewal stored first makes the delete fail (the node is
// alive, whether or not this peer can reach it). Silence on core NATS and "no
// responders" prove nothing on a cluster: only the store's verdict removes.
import { MeshError } from "@mesh/core";
import { checkAnnouncement, encodeJson, messageOf } from "@mesh/core/internal";
import type { Announcement, Logger } from "@mesh/core";
import type { JetStreamManager, KV, NatsConnection } from "nats";
import { JETSTREAM_READY_MS, bucketName, classifyNatsError, isTransient, openBucket, readLatest } from "./jetstream.js";
import type { BucketOptions } from "./jetstream.js";
import { readAll } from "./kv-read.js";

/** What a node's records are opened with. */
export interface NodeRecordsOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly nodeId: string;
  /** The node's instance (its announcement's): what its record holds. */
  readonly instance: string;
  readonly storage: BucketOptions;
  readonly log: Logger;
  /** The node's nodeTimeoutMs, which its lease counts on: kept in its record, so that a process of its id after it waits as long. */
  readonly nodeTimeoutMs: number;
  /** How often a process of this id waiting for the record of another reads it again. */
  readonly heartbeatMs: number;
}

/** The longest node timeout a record may ask a later process of its id to wait (the largest setTimeout). */
const MAX_RECORDED_TIMEOUT_MS = 2 ** 31 - 1;

/** What one renewal did: stored (the write was sent at `sentAt`), refused because a peer removed this node, or not known. */
export type Renewal = { readonly kind: "renewed"; readonly sentAt: number } | { readonly kind: "removed" } | { readonly kind: "failed" };

/** What the store says of a peer this node saw no renewal of: removed (its record is gone; the delete's revision when read), alive at a newer revision, or nothing (no quorum). */
export type Verdict =
  | { readonly kind: "removed"; readonly revision?: number }
  | { readonly kind: "alive"; readonly revision: number }
  | { readonly kind: "unknown" };

/** A node whose record is fresh: whom discovery waits for, and keeps in its view from its record when no process answers for it. */
export interface RecordedNode {
  readonly node: string;
  /** The record's revision. */
  readonly revision: number;
  /** What the node announced when it wrote the record (absent from a Mesh before records kept it, or not an announcement). */
  readonly announcement?: Announcement;
}

/** Renewals failing for this long are said at warn level (then every WARN_EVERY_MS while they fail). */
const WARN_AFTER_MS = 1_000;
const WARN_EVERY_MS = 10_000;

export class NodeRecords {
  /** The revision of this node's record the quorum last acknowledged; 0 before the first. */
  #revision = 0;
  #inFlight = false;
  /** Since when this node's own renewals have been stored without a failure (performance.now()); undefined while they fail. */
  #healthySince: number | undefined = performance.now();
  readonly #jsm: JetStreamManager;
  /** When the renewals that fail now began to (performance.now()), when that was last said at warn level, and the bucket last re-opened. */
  #failingSince: number | undefined;
  #warnedAt = -Infinity;
  #reopenedAt = -Infinity;
  /** What this node announces, kept in its record from the next write on. */
  #announcement: Announcement | undefined;
  /** Told each time a write of this node's record is stored (membership.ts announces its revision at once). */
  #onStored: () => void = () => {};

  private constructor(
    private kv: KV,
    jsm: JetStreamManager,
    private readonly bucket: string,
    private readonly o: NodeRecordsOptions,
  ) {
    this.#jsm = jsm;
  }

  /** Opens the nodes bucket (creating it when missing). Throws STORAGE_UNAVAILABLE, naming what the node's user needs. */
  static async open(o: NodeRecordsOptions): Promise<NodeRecords> {
    const bucket = bucketName(o.prefix, "nodes");
    const kv = await openBucket(o.nc, "nodes", bucket, o.storage).catch((err: MeshError) => {
      const why = `${err.message} (every node on a server with JetStream keeps its record there; its user needs the bucket: docs/security.md)`;
      throw new MeshError(err.code, why, { cause: err });
    });
    // No API check (an account info request): the bucket just answered, and on a cluster still electing its leaders
    // that request can time out, which would end the node's start with a bare TIMEOUT.
    return new NodeRecords(kv, await o.nc.jetstreamManager({ timeout: o.storage.timeoutMs, checkAPI: false }), bucket, o);
  }

  /**
   * Since when this node's own writes have been stored without a failure, or
   * undefined while they fail: a peer's silence in the store counts only from
   * then (a store that did not answer anyone, such as a bucket electing its
   * leader, removes nobody).
   */
  get healthySince(): number | undefined {
    return this.#healthySince;
  }

  /** What this node announces now (membership.ts): its record keeps it from the next write on. */
  describe(announcement: Announcement): void {
    this.#announcement = announcement;
  }

  /** `listener` is told each time a write of this node's record is stored, its revision in `revision`. */
  onStored(listener: () => void): void {
    this.#onStored = listener;
  }

  /** The revision of this node's record last stored (heartbeats carry it). */
  get revision(): number {
    return this.#revision;
  }

  /**
   * Writes this node's record anew, whatever is there (a record an earlier
   * process of this id left, or none: this node was removed). Resolves to
   * when the write was sent, once the quorum acknowledged it; throws
   * STORAGE_UNAVAILABLE otherwise. With `waitMs`, tries again for that long
   * while the bucket's stream has no leader yet (a bucket just created).
   */
  async create(waitMs = 0): Promise<number> {
    const until = performance.now() + waitMs;
    for (;;) {
      const sentAt = performance.now();
      try {
        this.#revision = await this.kv.put(this.o.nodeId, this.#value());
        this.#healthySince ??= performance.now();
        this.#onStored();
        return sentAt;
      } catch (err) {
        if (performance.now() >= until || !isTransient(err)) throw this.#unavailable(err);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  #unavailable(err: unknown): MeshError {
    const message = `node ${this.o.nodeId} could not store its record in "${this.bucket}": ${messageOf(err)}`;
    return new MeshError("STORAGE_UNAVAILABLE", message, { cause: err });
  }

  /**
   * Whether another process holds this node's id: its record, read from the stream leader, names another
   * instance (a process started with the same id while this one was frozen or cut off, and wrote its record
   * anew). Throws when the store does not answer.
   */
  async heldByAnother(): Promise<boolean> {
    return (await this.otherInstance()) !== undefined;
  }

  /**
   * This node id's record when another instance wrote it (another process of this id): its revision and the node
   * timeout it kept; else undefined (none, deleted, ours, or not a record), read from the stream leader. Throws
   * when the store does not answer.
   */
  async otherInstance(): Promise<{ revision: number; nodeTimeoutMs: number } | undefined> {
    const latest = await readLatest(this.#jsm, this.bucket, this.o.nodeId);
    if (latest === null || latest.value === undefined) return undefined;
    const record = recordOf(latest.value);
    if (record === undefined || record.instance === this.o.instance) return undefined; // not a record: written anew, as a deleted one
    const { nodeTimeoutMs } = record;
    const kept = typeof nodeTimeoutMs === "number" && nodeTimeoutMs > 0 ? Math.min(nodeTimeoutMs, MAX_RECORDED_TIMEOUT_MS) : 0;
    return { revision: latest.revision, nodeTimeoutMs: kept };
  }

  /**
   * Before this process writes its record: when the id's record names another instance, that process may still
   * serve under its lease, unaware that the server closed its connection (half-open: the presence probe met no
   * responders). Resolves once the record went unrenewed for the longer of the two node timeouts, or was
   * deleted, reading it every heartbeat (a read without an answer counts as unchanged). Throws CONNECTION_FAILED
   * when it is renewed meanwhile (a live node uses the id), STORAGE_UNAVAILABLE when the store never answers.
   */
  async afterPredecessor(): Promise<void> {
    const read = () =>
      this.otherInstance().then(
        (r) => r ?? null,
        () => undefined,
      ); // undefined: no answer
    const until = performance.now() + JETSTREAM_READY_MS; // a bucket just made may have no leader yet
    let first = await read();
    while (first === undefined && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      first = await read();
    }
    if (first === undefined) throw this.#unavailable(new Error("the store did not answer"));
    if (first === null) return;
    const waitMs = Math.max(this.o.nodeTimeoutMs, first.nodeTimeoutMs);
    this.o.log.warn(
      { node: this.o.nodeId, waitMs },
      "mesh: the record of this node id names another process; taking the id once it goes unrenewed",
    );
    const since = performance.now();
    for (let left = waitMs; left > 0; left = waitMs - (performance.now() - since)) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.o.heartbeatMs, left)));
      const now = await read();
      if (now === null) return; // deleted: it stopped, or peers removed it
      if (now !== undefined && now.revision !== first.revision)
        throw new MeshError(
          "CONNECTION_FAILED",
          `another live node renews the record of node id "${this.o.nodeId}"; give every node its own nodeId`,
        );
    }
  }

  /** Renews this node's record if nobody removed it since the last renewal. One write at a time: a slow store is not piled up on. */
  async renew(): Promise<Renewal> {
    if (this.#inFlight) return { kind: "failed" };
    this.#inFlight = true;
    const sentAt = performance.now();
    try {
      this.#revision = await this.kv.update(this.o.nodeId, this.#value(), this.#revision);
      this.#healthySince ??= performance.now();
      this.#failingSince = undefined;
      this.#onStored();
      return { kind: "renewed", sentAt };
    } catch (err) {
      if (classifyNatsError(err) === "wrong-last-sequence") return { kind: "removed" };
      this.#healthySince = undefined;
      this.#failed(err);
      // No stream answers: the bucket may have been deleted. Made again, as at start: the node's record is then gone,
      // so the next renewal finds it removed and re-validates (writes it anew, its activations dropped).
      if (classifyNatsError(err) === "no-responders") await this.#reopen();
      return { kind: "failed" };
    } finally {
      this.#inFlight = false;
    }
  }

  /** A renewal failed: said at debug level, and at warn level once failures last (the node's turns wait meanwhile). */
  #failed(err: unknown): void {
    const now = performance.now();
    this.#failingSince ??= now;
    const fields = { err: messageOf(err), failingForMs: Math.round(now - this.#failingSince) };
    if (now - this.#failingSince < WARN_AFTER_MS || now - this.#warnedAt < WARN_EVERY_MS)
      return this.o.log.debug(fields, "mesh: the node's record was not renewed");
    this.#warnedAt = now;
    this.o.log.warn(fields, `mesh: the node's record in "${this.bucket}" cannot be renewed: its turns wait until it is (docs/faults.md)`);
  }

  /** Opens the bucket again (creating it when missing), at most every WARN_AFTER_MS. */
  async #reopen(): Promise<void> {
    const now = performance.now();
    if (now - this.#reopenedAt < WARN_AFTER_MS) return;
    this.#reopenedAt = now;
    try {
      this.kv = await openBucket(this.o.nc, "nodes", this.bucket, this.o.storage);
    } catch (err) {
      this.o.log.debug({ err: messageOf(err) }, "mesh: the nodes bucket could not be opened again");
    }
  }

  /**
   * Removes `node` if its record is still at `revision` (no renewal stored
   * since). When it moved on, the newest revision is read from the stream
   * leader: a record deleted meanwhile (a graceful stop, another peer's
   * verdict) is `removed` too.
   */
  async remove(node: string, revision: number): Promise<Verdict> {
    try {
      await this.kv.delete(node, { previousSeq: revision });
      return { kind: "removed" };
    } catch (err) {
      if (classifyNatsError(err) !== "wrong-last-sequence") return { kind: "unknown" };
    }
    try {
      const latest = await readLatest(this.#jsm, this.bucket, node);
      if (latest === null) return { kind: "removed" };
      return latest.value === undefined ? { kind: "removed", revision: latest.revision } : { kind: "alive", revision: latest.revision };
    } catch {
      return { kind: "unknown" };
    }
  }

  /**
   * The other nodes whose record was renewed within the last `freshMs`, or the
   * node timeout the record keeps if longer (by the wall clock of the node that
   * wrote it): whom discovery waits for, and keeps in its view when they do not
   * answer. Read again for up to JETSTREAM_READY_MS while the store does not
   * answer (a node that took none for absent could take a half-open node's
   * shards); then, or at once when it refuses (no permission), STORAGE_UNAVAILABLE.
   */
  async live(freshMs: number): Promise<RecordedNode[]> {
    const until = performance.now() + JETSTREAM_READY_MS;
    for (;;) {
      try {
        return await this.#live(freshMs);
      } catch (err) {
        if (performance.now() >= until || !isTransient(err)) {
          const why = `node ${this.o.nodeId} could not read the nodes' records in "${this.bucket}": ${messageOf(err)} (its user needs the bucket's consumers: docs/security.md)`;
          throw new MeshError("STORAGE_UNAVAILABLE", why, { cause: err });
        }
        this.o.log.debug({ err: messageOf(err) }, "mesh: could not read the nodes' records; reading them again");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async #live(freshMs: number): Promise<RecordedNode[]> {
    const nodes: RecordedNode[] = [];
    const now = Date.now();
    await readAll(this.kv, ">", (e) => {
      const record = recordOf(e.value);
      if (record === undefined) return;
      const kept = typeof record.nodeTimeoutMs === "number" ? record.nodeTimeoutMs : 0;
      if (e.key === this.o.nodeId || typeof record.at !== "number" || now - record.at > Math.max(freshMs, kept)) return;
      nodes.push({ node: e.key, revision: e.revision, announcement: announcementOf(record.announcement, e.key) });
    });
    return nodes;
  }

  /**
   * A graceful stop: deletes this node's record (peers take its shards at once; a node that joins does not keep
   * it from its record). A renewal stored meanwhile moved the revision on: the record is deleted at the one it
   * has, if it is still this process's.
   */
  async leave(): Promise<void> {
    try {
      await this.kv.delete(this.o.nodeId, { previousSeq: this.#revision });
    } catch (err) {
      if (classifyNatsError(err) !== "wrong-last-sequence") return;
      const latest = await readLatest(this.#jsm, this.bucket, this.o.nodeId).catch(() => null);
      if (latest?.value === undefined || recordOf(latest.value)?.instance !== this.o.instance) return;
      await this.kv.delete(this.o.nodeId, { previousSeq: latest.revision }).catch(() => {});
    }
  }

  #value(): Uint8Array {
    const { nodeId: node, instance, nodeTimeoutMs } = this.o;
    return encodeJson({ node, instance, at: Date.now(), nodeTimeoutMs, announcement: this.#announcement });
  }
}

/** A record's fields, unchecked; undefined when the value is not a JSON object. */
function recordOf(value: Uint8Array): { instance?: unknown; at?: unknown; nodeTimeoutMs?: unknown; announcement?: unknown } | undefined {
  try {
    const record: unknown = JSON.parse(new TextDecoder().decode(value));
    return typeof record === "object" && record !== null && !Array.isArray(record) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The announcement a record keeps, if it is one, of `node`. */
function announcementOf(value: unknown, node: string): Announcement | undefined {
  try {
    const a = checkAnnouncement(value);
    return a.node === node ? a : undefined;
  } catch {
    return undefined;
  }
}
