// Mesh: the public face of a node. It starts a node (options, connection,
// node id, state store) and answers the public API; the node's parts are
// made in node/parts.ts and its lifecycle is node/lifecycle.ts.
import { randomBytes } from "node:crypto";
import { MeshError, shardFor } from "@mesh/core";
import { checkId } from "@mesh/core/internal";
import { NodeRecords, claimNodeId, connectNats, inboxPrefixFromEnv } from "@mesh/transport";
import { ActorRef } from "./actors/ref.js";
import { noNodes } from "./calls/request.js";
import { subscriptionsOf } from "./events/subscription.js";
import { MeshNode } from "./node/lifecycle.js";
import type { MeshState } from "./node/parts.js";
import type { MetricsSnapshot } from "./operations/metrics.js";
import { resolveOptions } from "./options.js";
import type { MeshOptions } from "./options.js";
import { StateStore } from "./state/state-store.js";
import type { ActorClass, CallResult, Inferred, MeshRequest, RefOptions, ReplyOf, TypedRequest } from "./types.js";

export type { MeshState } from "./node/parts.js";

/** How long Mesh.start waits for a node that may already hold its node id. */
const PRESENCE_PROBE_MS = 1000;

/**
 * A Mesh node: one NATS connection, the actors it hosts, and its view of the
 * cluster. Start it with `Mesh.start`, stop it with `stop`.
 */
export class Mesh {
  readonly #node: MeshNode;

  private constructor(node: MeshNode) {
    this.#node = node;
  }

  /**
   * Connects to NATS, opens the state bucket when a class is durable, starts
   * serving this node's subject, discovers the cluster, and registers
   * `options.capabilities`. Throws BAD_REQUEST for a bad option,
   * STORAGE_UNAVAILABLE when durable classes have no JetStream to store in,
   * and CONNECTION_FAILED when no server answers (the message names the URLs),
   * the server refuses the credentials, or a live node already uses `nodeId`.
   */
  static async start(options: MeshOptions = {}): Promise<Mesh> {
    const o = resolveOptions(options);
    const subscriptions = subscriptionsOf(o.actors, o.subjects.prefix);
    // Replies come under the node's own inbox, so permissions can keep them its own (docs/security.md).
    const inbox = o.nats.inboxPrefix ?? inboxPrefixFromEnv() ?? o.subjects.inbox(o.nodeId);
    const nc = await connectNats(o.servers, o.nodeId, o.nats, inbox);
    try {
      await claimNodeId(nc, o.subjects, o.nodeId, Math.min(o.callTimeoutMs, PRESENCE_PROBE_MS), o.logger);
      const maxPayload = Math.min(o.maxPayloadBytes ?? Infinity, nc.info?.max_payload ?? Infinity);
      const durable = o.actors.some((cls) => cls.durable === true);
      const store = durable ? await StateStore.open(nc, o.storage.bucket, o.storage, maxPayload, inbox) : undefined;
      // Where JetStream is there, the quorum keeps the nodes' records: the lease and removals go through it (docs/faults.md).
      const instance = randomBytes(8).toString("hex");
      const records =
        durable || nc.info?.jetstream === true
          ? await NodeRecords.open({
              nc,
              prefix: o.subjects.prefix,
              nodeId: o.nodeId,
              instance,
              storage: o.storage,
              log: o.logger,
              nodeTimeoutMs: o.nodeTimeoutMs,
              heartbeatMs: o.heartbeatMs,
            })
          : undefined;
      // Before it serves anything: a process of this id before it may still serve under its lease (node-records.ts).
      await records?.afterPredecessor();
      return new Mesh(await MeshNode.start({ o, nc, maxPayload, store, inbox, instance, records, subscriptions }));
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  /** This node's id. */
  get nodeId(): string {
    return this.#node.o.nodeId;
  }

  /** RUNNING, STOPPING or STOPPED. */
  get state(): MeshState {
    return this.#node.state;
  }

  /** This node's counters and latency histograms (docs/observability.md). */
  metrics(): MetricsSnapshot {
    return this.#node.metrics();
  }

  /** Where Prometheus can scrape this node (`metricsPort` set), else undefined. */
  get metricsUrl(): string | undefined {
    return this.#node.metricsUrl;
  }

  /** How many actors are live on this node. */
  get actorCount(): number {
    return this.#node.parts.actors.size;
  }

  /**
   * Replaces this node's capabilities (an empty list: it hosts nothing, but can
   * still call). Resolves once every known node has acknowledged the change
   * (or after 2 s for nodes that do not answer). Throws BAD_REQUEST for a
   * capability that is not 1-128 of A-Z a-z 0-9 _ -.
   */
  registerCapabilities(capabilities: readonly string[]): Promise<void> {
    return this.#node.registerCapabilities(capabilities);
  }

  /**
   * Calls actor `id` and resolves with its pid and reply. The actor is started
   * on its owner node if it is not live. With a class as `actor`, the payload
   * type is its handleCall's and the reply type what it returns (as
   * `mesh.ref`); `call<R>(…)` names the reply type instead. Rejects with a
   * MeshError: BAD_REQUEST, NO_NODES, UNKNOWN_ACTOR_TYPE, ACTIVATION_FAILED,
   * ACTOR_CRASHED, TIMEOUT, NODE_UNAVAILABLE, PAYLOAD_TOO_LARGE, BAD_REPLY or
   * STOPPED.
   */
  call<R = Inferred, C extends ActorClass | string = ActorClass | string>(
    request: [R] extends [Inferred] ? TypedRequest<C> : MeshRequest,
  ): Promise<CallResult<[R] extends [Inferred] ? ReplyOf<C> : R>> {
    return this.#node.parts.router.call(request as MeshRequest, false);
  }

  /**
   * A typed reference to actor `id` of class `actor`: `ref.call(payload)`
   * takes the payload type of the class's handleCall and resolves to what it
   * returns; `ref.cast(payload)` likewise for handleCast. Errors as `call`.
   */
  ref<C extends ActorClass>(actor: C, id: string, options: RefOptions = {}): ActorRef<InstanceType<C>> {
    return new ActorRef<InstanceType<C>>(
      { call: (r) => this.#node.parts.router.call(r, false), cast: (r) => this.#node.parts.router.cast(r, false) },
      actor,
      id,
      options,
    );
  }

  /**
   * Sends a message to actor `id` without waiting for it to be handled (with a
   * class as `actor`, the payload type is its handleCast's, else handleCall's).
   * Resolves once the message is in the local mailbox or queued for the batch
   * to its owner that leaves at the end of this turn.
   * Rejects only when that cannot happen: BAD_REQUEST, NO_NODES,
   * PAYLOAD_TOO_LARGE, STOPPED, and for a local owner UNKNOWN_ACTOR_TYPE or
   * ACTIVATION_FAILED. Errors on a remote owner are logged there.
   */
  cast<C extends ActorClass | string>(request: TypedRequest<C, true>): Promise<void> {
    return this.#node.parts.router.cast(request as MeshRequest, false);
  }

  /** Sorted ids of the nodes that registered `capability` (empty when none). */
  nodesFor(capability: string): string[] {
    return [...this.#node.parts.routes.nodesFor(capability)];
  }

  /** Every capability registered anywhere in the cluster, sorted and de-duplicated. */
  allCapabilities(): string[] {
    return [...this.#node.parts.routes.allCapabilities()];
  }

  /** The shard of `id` (0 to shards-1): XXH32 of its UTF-8 bytes, seed 0, modulo shards. */
  shardFor(id: string): number {
    return shardFor(checkId(id), this.#node.o.shards);
  }

  /** The node that owns `shard` of `capability`. Throws NO_NODES when no node has it, BAD_REQUEST for a bad shard. */
  ownerNode(shard: number, capability: string): string {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.#node.o.shards) {
      throw new MeshError("BAD_REQUEST", `shard must be an integer from 0 to ${this.#node.o.shards - 1}, got ${String(shard)}`);
    }
    const owner = this.#node.parts.routes.owner(capability, shard);
    if (owner === undefined) throw noNodes(capability, this.#node.parts.routes);
    return owner;
  }

  /**
   * Leaves the cluster: publishes `leave`, stops taking calls (they fail with
   * STOPPED), waits for running handlers and in-flight calls (at most
   * drainTimeoutMs), runs onDeactivate("shutdown") on every actor, and closes
   * the NATS connection. Safe to call twice.
   */
  stop(): Promise<void> {
    return this.#node.stop();
  }
}
