import { randomBytes } from "node:crypto";
import { MeshError, RoutingTable, shardFor } from "@mesh/core";
import type { Announcement } from "@mesh/core";
import { checkId, messageOf } from "@mesh/core/internal";
import { Membership, Requests, claimNodeId, connectNats, inboxPrefixFromEnv, settleWithin } from "@mesh/transport";
import type { Subjects } from "@mesh/transport";
import type { NatsConnection, Subscription } from "nats";
import { ActorRef } from "./actors/ref.js";
import { noNodes } from "./calls/request.js";
import { Router } from "./calls/router.js";
import { NodeInbox } from "./calls/node-inbox.js";
import { checkCapabilities, resolveOptions } from "./options.js";
import type { MeshOptions, ResolvedOptions } from "./options.js";
import { Ingress } from "./calls/ingress.js";
import { NodeService } from "./operations/service.js";
import { Supervisor } from "./actors/supervisor.js";
import { Lease } from "./actors/lease.js";
import { StateStore } from "./state/state-store.js";
import { Reminders, reminderBucket } from "./timers/reminders.js";
import { serveForget } from "./operations/forget.js";
import { Replies } from "./calls/nats-reply.js";
import { NodeMetrics } from "./operations/metrics.js";
import { PrometheusEndpoint } from "./operations/prometheus.js";
import type { MetricsSnapshot } from "./operations/metrics.js";
import { Publisher } from "./events/outbox.js";
import { EventSources } from "./events/sources.js";
import { subscriptionsOf } from "./events/subscription.js";
import type { ResolvedSubscription } from "./events/subscription.js";
import type { ActorClass, CallResult, Inferred, MeshRequest, RefOptions, ReplyOf, TypedRequest } from "./types.js";
import { nodeStarted, nodeStopped } from "./operations/tracing.js";
import { version } from "./version.js";

/** The lifecycle of a node. */
export type MeshState = "RUNNING" | "STOPPING" | "STOPPED";

/** How long Mesh.start waits for a node that may already hold its node id. */
const PRESENCE_PROBE_MS = 1000;

/**
 * A Mesh node: one NATS connection, the actors it hosts, and its view of the
 * cluster. Start it with `Mesh.start`, stop it with `stop`.
 */
export class Mesh {
  readonly #o: ResolvedOptions;
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  readonly #routes: RoutingTable;
  readonly #actors: Supervisor;
  readonly #requests: Requests;
  readonly #membership: Membership;
  readonly #lease: Lease;
  readonly #maxPayload: number;
  readonly #router: Router;
  readonly #inbox: NodeInbox;
  readonly #inboxPrefix: string;
  readonly #replies: Replies;
  readonly #service: NodeService;
  readonly #metrics = new NodeMetrics();
  #prometheus: PrometheusEndpoint | undefined;
  #rebalancePending = false;
  /** Capability changes, one after another. */
  #changes: Promise<void> = Promise.resolve();
  #nodeSub: Subscription | undefined;
  #forgetSub: Subscription | undefined;
  #reminders: Reminders | undefined;
  #events: EventSources | undefined;
  readonly #subscriptions: ResolvedSubscription[];
  #state: MeshState = "RUNNING";
  #stopping: Promise<void> | undefined;

  private constructor(o: ResolvedOptions, nc: NatsConnection, maxPayload: number, store: StateStore | undefined, inbox: string, subscriptions: ResolvedSubscription[]) {
    this.#o = o;
    this.#subscriptions = subscriptions;
    this.#inboxPrefix = inbox;
    this.#nc = nc;
    this.#subjects = o.subjects;
    this.#routes = new RoutingTable(o.shards, o.placement.fn);
    // Peers drop a node silent for nodeTimeoutMs; a heartbeat heard back keeps the lease for that, less one interval.
    const leaseMs = o.nodeTimeoutMs > o.heartbeatMs ? o.nodeTimeoutMs - o.heartbeatMs : o.nodeTimeoutMs / 2;
    this.#lease = new Lease(
      leaseMs,
      {
        revalidate: (timeoutMs) => this.#membership.revalidate(timeoutMs),
        dropAll: () => this.#actors.dropAll(),
        resume: () => this.#actors.resume(),
        running: () => this.#state === "RUNNING",
        log: o.logger,
      },
      this.#metrics,
    );
    this.#actors = new Supervisor({
      lease: this.#lease,
      limits: o,
      nodeId: o.nodeId,
      actors: o.actors,
      log: o.logger,
      metrics: this.#metrics,
      handover: (act, letters) => this.#router.handover(act, letters),
      deactivateTimeoutMs: o.drainTimeoutMs,
      store,
      idleTimeoutMs: o.idleTimeoutMs,
      maxActors: o.maxActors,
      outbound: { call: (request, chain) => this.#router.call(request, false, chain), cast: (request) => this.#router.cast(request, false) },
      reminders: () => this.#reminders,
      publisher: new Publisher(nc, o.storage.timeoutMs, this.#metrics),
      maxPayload,
    });
    this.#requests = new Requests(nc, o.logger, maxPayload, inbox);
    this.#maxPayload = maxPayload;
    this.#replies = new Replies(nc, maxPayload, o.logger);
    const self: Announcement = {
      v: 1,
      node: o.nodeId,
      instance: randomBytes(8).toString("hex"),
      capabilities: o.capabilities,
      actorTypes: this.#actors.actorTypes(),
      shards: o.shards,
      strategy: o.placement.name,
      version,
      heartbeatMs: o.heartbeatMs,
    };
    this.#membership = new Membership(nc, this.#subjects, self, o, o.logger, (view) => this.#viewChanged(view), inbox, (sentAt) => this.#lease.heard(sentAt));
    const node = { nodeId: o.nodeId, shards: o.shards, callTimeoutMs: o.callTimeoutMs, maxPayload, log: o.logger, routes: this.#routes, actors: this.#actors, metrics: this.#metrics };
    this.#router = new Router({
      ...node,
      requests: this.#requests,
      subjects: this.#subjects,
      hosting: { hosts: (actorType: string) => this.#actors.hosts(actorType), capabilities: () => this.#membership.self.capabilities },
      markGone: (id: string) => this.#membership.markGone(id),
      admit: (acceptWhileStopping: boolean) => {
        if (this.#state === "STOPPED" || (this.#state === "STOPPING" && !acceptWhileStopping)) this.#checkRunning();
      },
    });
    this.#inbox = new NodeInbox({ ...node, router: this.#router, replies: this.#replies, state: () => this.#state, rebalanceSoon: () => this.#rebalanceSoon() });
    const ingress = new Ingress({ call: (r) => this.#router.call(r, true), cast: (r) => this.#router.cast(r, true) }, this.#subjects, this.#maxPayload, o.logger, this.#metrics);
    this.#service = new NodeService(nc, this.#subjects, ingress, o.nodeId, version, () => this.metrics(), { shards: o.shards, strategy: o.placement.name });
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
    let mesh: Mesh | undefined;
    try {
      await claimNodeId(nc, o.subjects, o.nodeId, Math.min(o.callTimeoutMs, PRESENCE_PROBE_MS), o.logger);
      const maxPayload = Math.min(o.maxPayloadBytes ?? Infinity, nc.info?.max_payload ?? Infinity);
      const durable = o.actors.some((cls) => cls.durable === true);
      const store = durable ? await StateStore.open(nc, o.storage.bucket, o.storage, maxPayload, inbox) : undefined;
      mesh = new Mesh(o, nc, maxPayload, store, inbox, subscriptions);
      await mesh.#start();
      nodeStarted(); // looks for a tracer provider (operations/tracing.ts)
    } catch (err) {
      if (mesh) await mesh.#prometheus?.close();
      await nc.close();
      throw err;
    }
    return mesh;
  }

  async #start(): Promise<void> {
    this.#nodeSub = this.#nc.subscribe(this.#subjects.node(this.#o.nodeId), { callback: (_err, msg) => this.#inbox.serve(msg) });
    this.#forgetSub = this.#nc.subscribe(this.#subjects.forget, { callback: (_err, msg) => serveForget(msg, this.#actors, this.#replies, this.#o.nodeId, this.#o.logger) });
    if (this.#o.metricsPort !== undefined) {
      this.#prometheus = await PrometheusEndpoint.start(this.#metrics, () => this.metrics(), this.#o.metricsHost, this.#o.metricsPort);
    }
    await this.#service.register(this.#o.capabilities, this.#actors.actorTypes());
    if (this.#o.actors.some((cls) => cls.durable === true)) {
      this.#reminders = await Reminders.open(
        this.#nc,
        reminderBucket(this.#subjects.prefix),
        { replicas: this.#o.storage.replicas, timeoutMs: this.#o.storage.timeoutMs, scanMs: this.#o.reminderScanMs, shards: this.#o.shards },
        this.#actors.scheduler,
        {
          owns: (capability, shard) => this.#routes.owner(capability, shard) === this.#o.nodeId,
          fire: (r, shard, info) => this.#actors.reminderTurn(r, shard, info, this.#o.callTimeoutMs),
        },
        () => this.#membership.self.capabilities,
        this.#metrics,
        this.#o.logger,
      );
    }
    if (this.#subscriptions.length > 0) {
      this.#events = await EventSources.open(this.#subscriptions, {
        nc: this.#nc,
        prefix: this.#subjects.prefix,
        shards: this.#o.shards,
        log: this.#o.logger,
        callTimeoutMs: this.#o.callTimeoutMs,
        inboxPrefix: this.#inboxPrefix,
        drainTimeoutMs: this.#o.drainTimeoutMs,
        storage: this.#o.storage,
        owns: (capability, shard) => this.#routes.owner(capability, shard) === this.#o.nodeId,
        deliver: (sub, id, event, timeoutMs, reply) => this.#router.event(sub.capability, sub.actorType, id, event, timeoutMs, reply),
      });
    }
    await this.#nc.flush();
    const joined = performance.now();
    await this.#membership.start();
    this.#lease.start(joined);
    void this.#reminders?.scan();
    void this.#watchConnection();
  }

  /** This node's id. */
  get nodeId(): string {
    return this.#o.nodeId;
  }

  /** RUNNING, STOPPING or STOPPED. */
  get state(): MeshState {
    return this.#state;
  }

  /** This node's counters and latency histograms (docs/observability.md). */
  metrics(): MetricsSnapshot {
    return this.#metrics.snapshot(this.#o.nodeId, this.#membership.self.capabilities, this.#actors.size, this.#actors.queues(), this.#events?.report());
  }

  /** Where Prometheus can scrape this node (`metricsPort` set), else undefined. */
  get metricsUrl(): string | undefined {
    return this.#prometheus?.url;
  }

  /** How many actors are live on this node. */
  get actorCount(): number {
    return this.#actors.size;
  }

  /**
   * Replaces this node's capabilities (an empty list: it hosts nothing, but can
   * still call). Resolves once every known node has acknowledged the change
   * (or after 2 s for nodes that do not answer). Throws BAD_REQUEST for a
   * capability that is not 1-128 of A-Z a-z 0-9 _ -.
   */
  registerCapabilities(capabilities: readonly string[]): Promise<void> {
    try {
      this.#checkRunning();
      const checked = checkCapabilities(capabilities);
      // One change at a time, and none once the node stops.
      const change = this.#changes.then(async () => {
        this.#checkRunning();
        // Nodes that host a capability answer the ingress; the others only call.
        await this.#service.register(checked, this.#actors.actorTypes());
        this.#checkRunning();
        await this.#membership.announce({ capabilities: checked });
      });
      this.#changes = change.catch(() => {});
      return change;
    } catch (err) {
      return Promise.reject(err);
    }
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
  call<R = Inferred, C extends ActorClass | string = ActorClass | string>(request: [R] extends [Inferred] ? TypedRequest<C> : MeshRequest): Promise<CallResult<[R] extends [Inferred] ? ReplyOf<C> : R>> {
    return this.#router.call(request as MeshRequest, false);
  }

  /**
   * A typed reference to actor `id` of class `actor`: `ref.call(payload)`
   * takes the payload type of the class's handleCall and resolves to what it
   * returns; `ref.cast(payload)` likewise for handleCast. Errors as `call`.
   */
  ref<C extends ActorClass>(actor: C, id: string, options: RefOptions = {}): ActorRef<InstanceType<C>> {
    return new ActorRef<InstanceType<C>>({ call: (r) => this.#router.call(r, false), cast: (r) => this.#router.cast(r, false) }, actor, id, options);
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
    return this.#router.cast(request as MeshRequest, false);
  }

  /** Sorted ids of the nodes that registered `capability` (empty when none). */
  nodesFor(capability: string): string[] {
    return [...this.#routes.nodesFor(capability)];
  }

  /** Every capability registered anywhere in the cluster, sorted and de-duplicated. */
  allCapabilities(): string[] {
    return [...this.#routes.allCapabilities()];
  }

  /** The shard of `id` (0 to shards-1): XXH32 of its UTF-8 bytes, seed 0, modulo shards. */
  shardFor(id: string): number {
    return shardFor(checkId(id), this.#o.shards);
  }

  /** The node that owns `shard` of `capability`. Throws NO_NODES when no node has it, BAD_REQUEST for a bad shard. */
  ownerNode(shard: number, capability: string): string {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.#o.shards) {
      throw new MeshError("BAD_REQUEST", `shard must be an integer from 0 to ${this.#o.shards - 1}, got ${String(shard)}`);
    }
    const owner = this.#routes.owner(capability, shard);
    if (owner === undefined) throw noNodes(capability, this.#routes);
    return owner;
  }

  /**
   * Leaves the cluster: publishes `leave`, stops taking calls (they fail with
   * STOPPED), waits for running handlers and in-flight calls (at most
   * drainTimeoutMs), runs onDeactivate("shutdown") on every actor, and closes
   * the NATS connection. Safe to call twice.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#state = "STOPPING";
    try {
      await this.#changes; // a capability change under way ends first (it sees STOPPING)
      // Dispatchers send no more events; those in flight finish, and their floors are stored.
      await this.#events?.stop(this.#o.drainTimeoutMs);
      await this.#service.stop(); // ingress requests it already took are still answered
      await this.#membership.stop();
      const deadline = performance.now() + this.#o.drainTimeoutMs;
      const left = () => Math.max(0, deadline - performance.now());
      // No reminders watch may still be setting up when the connection drains (its heartbeat timer would outlive the node).
      await settleWithin(this.#reminders?.stop() ?? Promise.resolve(), left());
      this.#forgetSub?.unsubscribe();
      if (this.#nodeSub) await settleWithin(this.#nodeSub.drain(), left());
      // In flight: handlers running or queued here, and calls this node sent (its callers' or forwarded ones).
      await this.#actors.idle(left());
      while (this.#requests.size > 0 && left() > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      await this.#actors.deactivateAll("shutdown", this.#o.drainTimeoutMs);
      this.#requests.close(new MeshError("STOPPED", `node ${this.#o.nodeId} stopped before the reply came`));
    } finally {
      // Whatever failed above, the node lets go of everything: a connection left open would
      // reconnect for ever once its server is gone. drain() cannot finish while the server is
      // unreachable: close in any case.
      void this.#reminders?.stop();
      await settleWithin(this.#nc.drain(), this.#o.drainTimeoutMs);
      if (!this.#nc.isClosed()) await this.#nc.close();
      await this.#prometheus?.close();
      nodeStopped();
      this.#state = "STOPPED";
    }
  }

  /**
   * The cluster changed: rebuild the routes, and let go of the actors whose
   * shards now belong to another node (after their current message).
   */
  #viewChanged(view: ReadonlyMap<string, Announcement>): void {
    this.#routes.setMembers([...view.values()].map((a) => [a.node, a.capabilities] as const));
    this.#rebalance();
    this.#events?.viewChanged((node) => view.has(node));
    // Shards this node now owns may hold reminders: read them at once.
    void this.#reminders?.scan();
  }

  /** A rebalance on the next turn of the event loop (several requests share one). */
  #rebalanceSoon(): void {
    if (this.#rebalancePending) return;
    this.#rebalancePending = true;
    setImmediate(() => {
      this.#rebalancePending = false;
      this.#rebalance();
    });
  }

  /** Lets go of the local actors whose shards this node does not own in its current view. */
  #rebalance(): void {
    if (this.#state !== "RUNNING") return;
    try {
      const moved = this.#actors.rebalance((capability, shard) => this.#routes.owner(capability, shard) === this.#o.nodeId);
      if (moved > 0) this.#o.logger.info({ moved }, "mesh: rebalanced: actors whose shards moved are deactivated");
    } catch (err) {
      this.#o.logger.error({ err: messageOf(err) }, "mesh: rebalancing failed");
    }
  }

  /**
   * A lost connection ends the lease (peers may have dropped this node: its
   * turns wait until it is re-validated); after a reconnect, asks everyone
   * again so views heal at once.
   */
  async #watchConnection(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type === "disconnect" && this.#state === "RUNNING") this.#lease.lapse();
      if (status.type === "reconnect" && this.#state === "RUNNING") {
        this.#o.logger.info({ server: status.data }, "mesh: reconnected to NATS");
        this.#events?.reconnected();
        await this.#membership.rediscover();
      }
    }
  }

  #checkRunning(): void {
    if (this.#state !== "RUNNING") throw new MeshError("STOPPED", `node ${this.#o.nodeId} is ${this.#state.toLowerCase()}`);
  }
}
