import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { MeshError, RoutingTable, shardFor } from "@mesh/core";
import type { Announcement } from "@mesh/core";
import { Kind, checkId, decodeRequest, encodeError, isBatch, messageOf, readBatch } from "@mesh/core/internal";
import type { WireRequest } from "@mesh/core/internal";
import { Membership, Requests, claimNodeId, connectNats, inboxPrefixFromEnv, settleWithin } from "@mesh/transport";
import type { Subjects } from "@mesh/transport";
import type { Msg, NatsConnection, Subscription } from "nats";
import { ActorRef } from "./calls/ref.js";
import { encodeWithin, noNodes, routeRequest } from "./calls/request.js";
import type { LocalHosting } from "./calls/request.js";
import { PromiseReply } from "./actors/activation.js";
import type { Activation, Letter } from "./actors/activation.js";
import { RemoteCall } from "./calls/remote-call.js";
import type { Rerouter, Routed } from "./calls/remote-call.js";
import { checkCapabilities, resolveOptions } from "./options.js";
import type { MeshOptions, ResolvedOptions } from "./options.js";
import { Ingress } from "./calls/ingress.js";
import { NodeService } from "./operations/service.js";
import { Supervisor } from "./actors/supervisor.js";
import { StateStore } from "./state/state-store.js";
import { Reminders, reminderBucket } from "./timers/reminders.js";
import { serveForget } from "./state/forget.js";
import { FrameReply, NatsReply, Replies } from "./calls/nats-reply.js";
import { NodeMetrics } from "./operations/metrics.js";
import { PrometheusEndpoint } from "./operations/prometheus.js";
import type { MetricsSnapshot } from "./operations/metrics.js";
import type { ActorClass, CallResult, Inferred, MeshRequest, RefOptions, ReplyOf, ReplyTo, TypedRequest } from "./types.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** The lifecycle of a node. */
export type MeshState = "RUNNING" | "STOPPING" | "STOPPED";

/** How many times a call that met "no responders" is re-routed before NODE_UNAVAILABLE. */
const MAX_REROUTES = 3;

/** How many times a call may be forwarded between nodes whose views disagree, before a node serves it anyway. */
const MAX_HOPS = 3;

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
  readonly #maxPayload: number;
  readonly #rerouter: Rerouter = { reroute: (call) => this.#reroute(call) };
  /** What this node hosts, for NO_NODES messages. */
  readonly #hosting: LocalHosting = { hosts: (actorType) => this.#actors.hosts(actorType), capabilities: () => this.#membership.self.capabilities };
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
  #state: MeshState = "RUNNING";
  #stopping: Promise<void> | undefined;

  private constructor(o: ResolvedOptions, nc: NatsConnection, maxPayload: number, store: StateStore | undefined, inbox: string) {
    this.#o = o;
    this.#nc = nc;
    this.#subjects = o.subjects;
    this.#routes = new RoutingTable(o.shards, o.placement.fn);
    this.#actors = new Supervisor({
      nodeId: o.nodeId,
      actors: o.actors,
      log: o.logger,
      metrics: this.#metrics,
      handover: this.#handover,
      deactivateTimeoutMs: o.drainTimeoutMs,
      store,
      idleTimeoutMs: o.idleTimeoutMs,
      maxActors: o.maxActors,
      outbound: { call: (request, chain) => this.#call(request, false, chain), cast: (request) => this.#cast(request, false) },
      reminders: () => this.#reminders,
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
    this.#membership = new Membership(nc, this.#subjects, self, o, o.logger, (view) => this.#viewChanged(view), inbox);
    this.#service = new NodeService(nc, this.#subjects, new Ingress({ call: (r) => this.#call(r, true), cast: (r) => this.#cast(r, true) }, this.#subjects, this.#maxPayload, o.logger, this.#metrics), o.nodeId, version, () => this.metrics(), { shards: o.shards, strategy: o.placement.name });
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
    // Replies come under the node's own inbox, so permissions can keep them its own (docs/security.md).
    const inbox = o.nats.inboxPrefix ?? inboxPrefixFromEnv() ?? o.subjects.inbox(o.nodeId);
    const nc = await connectNats(o.servers, o.nodeId, o.nats, inbox);
    let mesh: Mesh | undefined;
    try {
      await claimNodeId(nc, o.subjects, o.nodeId, Math.min(o.callTimeoutMs, PRESENCE_PROBE_MS), o.logger);
      const maxPayload = Math.min(o.maxPayloadBytes ?? Infinity, nc.info?.max_payload ?? Infinity);
      const durable = o.actors.some((cls) => cls.durable === true);
      const store = durable ? await StateStore.open(nc, o.storage.bucket, o.storage, maxPayload, inbox) : undefined;
      mesh = new Mesh(o, nc, maxPayload, store, inbox);
      await mesh.#start();
    } catch (err) {
      if (mesh) await mesh.#prometheus?.close();
      await nc.close();
      throw err;
    }
    return mesh;
  }

  async #start(): Promise<void> {
    this.#nodeSub = this.#nc.subscribe(this.#subjects.node(this.#o.nodeId), { callback: (_err, msg) => this.#serve(msg) });
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
    await this.#nc.flush();
    await this.#membership.start();
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
    return this.#metrics.snapshot(this.#o.nodeId, this.#membership.self.capabilities, this.#actors.size);
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
    return this.#call(request as MeshRequest, false);
  }

  /**
   * A typed reference to actor `id` of class `actor`: `ref.call(payload)`
   * takes the payload type of the class's handleCall and resolves to what it
   * returns; `ref.cast(payload)` likewise for handleCast. Errors as `call`.
   */
  ref<C extends ActorClass>(actor: C, id: string, options: RefOptions = {}): ActorRef<InstanceType<C>> {
    return new ActorRef<InstanceType<C>>({ call: (r) => this.#call(r, false), cast: (r) => this.#cast(r, false) }, actor, id, options);
  }

  /**
   * `acceptWhileStopping`: requests this node already took (ingress) are
   * served until it has stopped. `chain`: a call from an actor's turn, and the
   * actors waiting on it (for CALL_CYCLE).
   */
  #call<R>(request: MeshRequest, acceptWhileStopping: boolean, chain?: readonly string[]): Promise<CallResult<R>> {
    try {
      const r = this.#route(request, Kind.CALL, acceptWhileStopping);
      if (chain !== undefined) r.chain = chain;
      if (r.owner === this.#o.nodeId) {
        return this.#actors.call(r.capability, r.actorType, r.id, r.shard, r.payload, r.initArg, r.timeoutMs, chain) as Promise<CallResult<R>>;
      }
      const deadline = performance.now() + r.timeoutMs;
      return new Promise((resolve, reject) => this.#send(new RemoteCall(r, deadline, new PromiseReply(resolve as (r: CallResult) => void, reject), this.#rerouter, this.#metrics.remoteCallLatency)));
    } catch (err) {
      return Promise.reject(err);
    }
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
    return this.#cast(request as MeshRequest, false);
  }

  async #cast(request: MeshRequest, acceptWhileStopping: boolean): Promise<void> {
    this.#castTo(this.#route(request, Kind.CAST, acceptWhileStopping));
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
      await this.#service.stop(); // ingress requests it already took are still answered
      await this.#membership.stop();
      this.#reminders?.stop();
      const deadline = performance.now() + this.#o.drainTimeoutMs;
      const left = () => Math.max(0, deadline - performance.now());
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
      this.#reminders?.stop();
      await settleWithin(this.#nc.drain(), this.#o.drainTimeoutMs);
      if (!this.#nc.isClosed()) await this.#nc.close();
      await this.#prometheus?.close();
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

  /** Sends the letters waiting for an actor that moved to its new owner. */
  readonly #handover = (act: Activation, letters: Letter[]): void => {
    for (const letter of letters) {
      try {
        this.#handOn(act, letter);
      } catch (err) {
        if (letter.cast) this.#o.logger.warn({ pid: act.pid, err: messageOf(err) }, "mesh: cast lost in a rebalance");
        else letter.reply.fail(err as Error);
      }
    }
  };

  /** One waiting letter of an actor that moved, on to the actor's owner now. */
  #handOn(act: Activation, letter: Letter): void {
    const owner = this.#routes.owner(act.capability, act.shard);
    if (owner === undefined) throw noNodes(act.capability, this.#routes);
    const r: Routed = { kind: letter.cast ? Kind.CAST : Kind.CALL, capability: act.capability, actorType: act.actorType, id: act.id, payload: letter.payload, initArg: letter.initArg, timeoutMs: 0, hops: 0, shard: act.shard, owner, chain: letter.chain };
    if (owner !== this.#o.nodeId) this.#metrics.forwards++;
    if (letter.cast) this.#castTo(r);
    else this.#dispatch(new RemoteCall(r, letter.deadline, letter.reply, this.#rerouter));
  }

  /** Checks a request and finds its owner. Throws BAD_REQUEST, NO_NODES or STOPPED. */
  #route(request: MeshRequest, kind: Kind, acceptWhileStopping: boolean): Routed {
    if (this.#state === "STOPPED" || (this.#state === "STOPPING" && !acceptWhileStopping)) this.#checkRunning();
    return routeRequest(request, kind, this.#routes, this.#o.shards, this.#o.callTimeoutMs, this.#hosting);
  }

  /** Sends a remote call to its owner, with what is left of its time. */
  #send(call: RemoteCall): void {
    const r = call.request;
    r.timeoutMs = Math.max(1, Math.round(call.deadline - performance.now()));
    let bytes: Uint8Array;
    try {
      bytes = this.#encode(r);
    } catch (err) {
      return call.sink.fail(err as Error);
    }
    this.#requests.call(this.#subjects.node(r.owner), bytes, call);
  }

  /**
   * The owner had no responders: the call was never delivered, so it is safe
   * to send again. Drop the owner from the view and send to the new owner.
   */
  #reroute(call: RemoteCall): void {
    try {
      this.#rerouteOrFail(call);
    } catch (err) {
      call.sink.fail(err as Error);
    }
  }

  #rerouteOrFail(call: RemoteCall): void {
    const r = call.request;
    this.#membership.markGone(r.owner);
    const owner = this.#routes.owner(r.capability, r.shard);
    if (owner === undefined) return call.sink.fail(noNodes(r.capability, this.#routes));
    if (owner === r.owner || call.reroutes >= MAX_REROUTES) {
      return call.sink.fail(new MeshError("NODE_UNAVAILABLE", `node ${r.owner} is unavailable (no responders on its subject)`));
    }
    call.reroutes++;
    this.#metrics.retries++;
    r.owner = owner;
    this.#dispatch(call);
  }

  /** A call whose owner is known: delivered here if this node owns it, else sent. */
  #dispatch(call: RemoteCall): void {
    const r = call.request;
    if (r.owner !== this.#o.nodeId) return this.#send(call);
    let payload: unknown, initArg: unknown;
    try {
      payload = this.#actors.incoming(r.actorType, r.payload, "payload");
      initArg = this.#actors.incoming(r.actorType, r.initArg, "initArg");
    } catch (err) {
      return call.sink.fail(err as Error);
    }
    this.#actors.deliver(r.capability, r.actorType, r.id, r.shard, payload, initArg, call.deadline - performance.now(), call, r.chain);
  }

  /** A cast whose owner is known: into the mailbox here if this node owns it, else published. */
  #castTo(r: Routed): void {
    if (r.owner !== this.#o.nodeId) return this.#publish(r.owner, this.#encode(r));
    this.#actors.cast(r.capability, r.actorType, r.id, r.shard, this.#actors.incoming(r.actorType, r.payload, "payload"), this.#actors.incoming(r.actorType, r.initArg, "initArg"));
  }

  #encode(r: WireRequest): Uint8Array {
    return encodeWithin(r, this.#maxPayload);
  }

  /** A cast to another node: batched with the other frames for that node in this tick. Throws NODE_UNAVAILABLE when the connection is closed. */
  #publish(node: string, bytes: Uint8Array): void {
    this.#requests.cast(this.#subjects.node(node), bytes);
  }

  /**
   * Handles a message on this node's subject: a plain envelope, or a batch
   * whose frames are handled one by one (a malformed frame fails only itself).
   * Never throws: an exception would stop nats.js's reader.
   */
  #serve(msg: Msg): void {
    if (msg.data.length === 0) {
      // A presence probe: a starting node asks whether this node id is taken.
      if (msg.reply) this.#replies.respond(msg, msg.data);
      return;
    }
    if (!isBatch(msg.data)) {
      this.#serveOne(msg.data, msg.reply ? new NatsReply(msg, this.#replies) : undefined);
      return;
    }
    const caller = msg.reply ? this.#replies.caller(msg.reply) : undefined;
    try {
      readBatch(msg.data, (id, envelope) => this.#serveOne(envelope, id !== 0 && caller !== undefined ? new FrameReply(caller, id, this.#replies) : undefined));
    } catch (err) {
      // The framing is checked before any frame runs: none of this batch's calls ran, and this answers them all.
      this.#o.logger.warn({ subject: msg.subject, err: messageOf(err) }, "mesh: refused a message on the node subject (a malformed batch)");
      if (msg.reply) this.#replies.respond(msg, encodeError(err));
    }
  }

  #serveOne(data: Uint8Array, reply: ReplyTo | undefined): void {
    try {
      this.#handle(data, reply);
    } catch (err) {
      this.#o.logger.error({ err: messageOf(err) }, "mesh: failed to handle a message on the node subject");
      reply?.fail(err as Error);
    }
  }

  /** A call or cast from another node: serve it here, or forward it to its owner. `reply`: where a call's outcome goes. */
  #handle(data: Uint8Array, reply: ReplyTo | undefined): void {
    let req: WireRequest;
    try {
      if (data.length > this.#maxPayload) {
        throw new MeshError("PAYLOAD_TOO_LARGE", `the request is ${data.length} bytes; the limit is ${this.#maxPayload}`);
      }
      req = decodeRequest(data);
      // While stopping, messages already delivered to this node are still served.
      if (this.#state === "STOPPED") throw new MeshError("STOPPED", `node ${this.#o.nodeId} is stopped`);
    } catch (err) {
      this.#o.logger.warn({ err: messageOf(err) }, "mesh: refused a message on the node subject");
      reply?.fail(err as Error);
      return;
    }
    const shard = shardFor(req.id, this.#o.shards);
    const owner = this.#routes.owner(req.capability, shard);
    // A stale route: the sender's view is behind ours. Forward to the owner we
    // know, a bounded number of hops so that disagreeing views cannot loop.
    if (owner !== undefined && owner !== this.#o.nodeId && req.hops < MAX_HOPS && this.#state === "RUNNING") {
      this.#forward({ ...req, hops: req.hops + 1, shard, owner }, reply);
      return;
    }
    // Served here although another node owns it (hops used up, or the owner is unknown here):
    // the activation must not outlive this message, so check ownership again once it is handled.
    if (owner !== this.#o.nodeId) this.#rebalanceSoon();
    if (req.kind === Kind.CALL && reply !== undefined) {
      this.#actors.deliver(req.capability, req.actorType, req.id, shard, req.payload, req.initArg, req.timeoutMs || this.#o.callTimeoutMs, reply, req.chain);
      return;
    }
    try {
      this.#actors.cast(req.capability, req.actorType, req.id, shard, req.payload, req.initArg);
    } catch (err) {
      this.#o.logger.warn({ actorType: req.actorType, id: req.id, err: messageOf(err) }, "mesh: cast failed");
    }
  }

  /** Sends a call or cast that reached the wrong node on to its owner; the owner's reply goes back to the original caller. */
  #forward(r: Routed, reply: ReplyTo | undefined): void {
    this.#metrics.forwards++;
    this.#o.logger.debug({ actorType: r.actorType, id: r.id, to: r.owner, hops: r.hops }, "mesh: forwarding a stale route");
    if (r.kind === Kind.CALL && reply !== undefined) {
      const deadline = performance.now() + (r.timeoutMs || this.#o.callTimeoutMs);
      this.#send(new RemoteCall(r, deadline, reply, this.#rerouter));
      return;
    }
    try {
      this.#publish(r.owner, this.#encode(r));
    } catch (err) {
      this.#o.logger.warn({ actorType: r.actorType, id: r.id, err: messageOf(err) }, "mesh: cast lost while forwarding");
    }
  }

  /** After a reconnect, asks everyone again so views heal at once. */
  async #watchConnection(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type === "reconnect" && this.#state === "RUNNING") {
        this.#o.logger.info({ server: status.data }, "mesh: reconnected to NATS");
        await this.#membership.rediscover();
      }
    }
  }

  #checkRunning(): void {
    if (this.#state !== "RUNNING") throw new MeshError("STOPPED", `node ${this.#o.nodeId} is ${this.#state.toLowerCase()}`);
  }
}
