// A node's lifecycle: it starts serving (its subject, the operator's subjects,
// Prometheus, the NATS service, reminders, event dispatchers, then
// membership and the lease), follows the cluster view (rebalancing its
// actors) and its connection, changes its capabilities one at a time, and
// stops: leave, drain, deactivate, close. The parts it drives are made in
// parts.ts; `Mesh` (mesh.ts) is the public face over it. Imports: every room.
import { MeshError } from "@mesh/core";
import type { Announcement } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { settleWithin } from "@mesh/transport";
import type { NodeRecords } from "@mesh/transport";
import type { NatsConnection, Subscription } from "nats";
import { EventSources } from "../events/sources.js";
import type { ResolvedSubscription } from "../events/subscription.js";
import { serveForget } from "../operations/forget.js";
import { NO_OUTBOUND } from "../operations/metrics.js";
import { Admin } from "../operations/admin.js";
import type { MetricsSnapshot } from "../operations/metrics.js";
import { PrometheusEndpoint } from "../operations/prometheus.js";
import { nodeStarted, nodeStopped } from "../operations/tracing.js";
import { checkCapabilities } from "../options.js";
import type { ResolvedOptions } from "../options.js";
import type { StateStorage } from "../state/state-store.js";
import { Reminders, reminderBucket, reminderTurns } from "../timers/reminders.js";
import { adminSources } from "./admin-sources.js";
import { makeParts } from "./parts.js";
import type { MeshState, NodeParts, NodeStatus } from "./parts.js";

/** What a node is started with: its options, its connection and what Mesh.start found out. */
export interface NodeInput {
  readonly o: ResolvedOptions;
  readonly nc: NatsConnection;
  readonly maxPayload: number;
  readonly store: StateStorage | undefined;
  readonly inbox: string;
  /** Random per start of the process (the announcement's and the node's record's). */
  readonly instance: string;
  /** Where the JetStream quorum keeps the nodes' records (undefined: the server has no JetStream). */
  readonly records: NodeRecords | undefined;
  readonly subscriptions: readonly ResolvedSubscription[];
}

/** One running node: its parts, and its lifecycle (RUNNING, STOPPING, STOPPED). */
export class MeshNode {
  readonly o: ResolvedOptions;
  readonly parts: NodeParts;
  readonly #nc: NatsConnection;
  readonly #input: NodeInput;
  readonly #status: NodeStatus = { state: "RUNNING" };
  #prometheus: PrometheusEndpoint | undefined;
  #rebalancePending = false;
  /** Capability changes, one after another. */
  #changes: Promise<void> = Promise.resolve();
  #nodeSub: Subscription | undefined;
  #forgetSub: Subscription | undefined;
  #resetSub: Subscription | undefined;
  #reminders: Reminders | undefined;
  #events: EventSources | undefined;
  #stopping: Promise<void> | undefined;
  #admin: Admin | undefined;
  readonly #startedAt = Date.now();

  private constructor(input: NodeInput) {
    this.o = input.o;
    this.#nc = input.nc;
    this.#input = input;
    this.parts = makeParts({
      ...input,
      status: this.#status,
      links: {
        viewChanged: (view) => this.#viewChanged(view),
        rebalanceSoon: () => this.#rebalanceSoon(),
        reminders: () => this.#reminders,
        snapshot: () => this.metrics(),
        admin: (data) => this.#adminAnswer(data),
        refuse: () => this.checkRunning(),
        superseded: () => {
          if (this.#stopping !== undefined) return;
          const why =
            "another process took this node's id while this one was paused or cut off (its record names that process); this one stops";
          this.o.logger.error({ node: this.o.nodeId }, `mesh: ${why}`);
          // Nothing more in the id's name: no announcement, no claim answered, no call taken (the subject is the
          // other process's now), no ingress request; its activations go without onDeactivate, as when replaced.
          this.parts.membership.mute();
          this.parts.claims.stop();
          this.#nodeSub?.unsubscribe();
          this.#nodeSub = undefined;
          void this.parts.service.stop();
          this.parts.actors.dropAll();
          void this.stop();
        },
      },
    });
  }

  /** Makes the node's parts and starts serving; on failure, what it started is closed (the connection is the caller's). */
  static async start(input: NodeInput): Promise<MeshNode> {
    const node = new MeshNode(input);
    try {
      await node.#start();
      nodeStarted(); // looks for a tracer provider (operations/tracing.ts)
    } catch (err) {
      await node.#prometheus?.close();
      await node.#reminders?.stop(); // its periodic scan would go on against a closed connection
      throw err;
    }
    return node;
  }

  async #start(): Promise<void> {
    const { o } = this;
    const { actors, inbox, replies, metrics, service, routes, router, membership, lease } = this.parts;
    this.#nodeSub = this.#nc.subscribe(o.subjects.node(o.nodeId), {
      callback: (err, msg) => {
        if (err) o.logger.warn({ err: err.message }, "mesh: the node subject's subscription failed");
        else inbox.serve(msg);
      },
    });
    const operator = { replies, subjects: o.subjects, nodeId: o.nodeId, log: o.logger };
    this.#forgetSub = this.#nc.subscribe(o.subjects.forget, { callback: (_err, msg) => serveForget(msg, "forget", actors, operator) });
    this.#resetSub = this.#nc.subscribe(o.subjects.reset, { callback: (_err, msg) => serveForget(msg, "reset", actors, operator) });
    if (o.metricsPort !== undefined) {
      this.#prometheus = await PrometheusEndpoint.start(metrics, () => this.metrics(), o.metricsHost, o.metricsPort);
    }
    await service.register(o.capabilities, actors.actorTypes());
    const owns = (capability: string, shard: number) => routes.owner(capability, shard) === o.nodeId;
    if (o.actors.some((cls) => cls.durable === true)) {
      this.#reminders = await Reminders.open(
        this.#nc,
        reminderBucket(o.subjects.prefix),
        {
          replicas: o.storage.replicas,
          timeoutMs: o.storage.timeoutMs,
          scanMs: o.reminderScanMs,
          shards: o.shards,
          maxTurns: reminderTurns(o.maxActors),
          inboxPrefix: this.#input.inbox,
        },
        actors.scheduler,
        {
          owns,
          held: () => lease.held(),
          fire: (r, shard, info, occurrence) => actors.reminderTurn(r, shard, info, occurrence, o.callTimeoutMs),
        },
        () => membership.self.capabilities,
        metrics,
        o.logger,
      );
    }
    if (this.#input.subscriptions.length > 0) {
      this.#events = await EventSources.open(this.#input.subscriptions, {
        nc: this.#nc,
        prefix: o.subjects.prefix,
        shards: o.shards,
        log: o.logger,
        callTimeoutMs: o.callTimeoutMs,
        inboxPrefix: this.#input.inbox,
        drainTimeoutMs: o.drainTimeoutMs,
        storage: o.storage,
        owns,
        deliver: (sub, id, event, timeoutMs, reply) => router.event(sub.capability, sub.actorType, id, event, timeoutMs, reply),
      });
    }
    // The node's record, renewed from now on: discovery below may take longer than the lease.
    await this.parts.renewal?.start();
    await this.#nc.flush();
    const joined = performance.now();
    this.parts.claims.start(); // answers others' claims from now: they may claim shards as soon as they know this node
    await membership.start();
    await this.parts.placement.started();
    this.parts.claims.begin();
    lease.start(joined);
    void this.#reminders?.scan();
    void this.#watchConnection();
  }

  /** RUNNING, STOPPING or STOPPED. */
  get state(): MeshState {
    return this.#status.state;
  }

  /** This node's counters and latency histograms (docs/observability.md). */
  metrics(): MetricsSnapshot {
    const { metrics, membership, actors, requests } = this.parts;
    return metrics.snapshot({
      node: this.o.nodeId,
      capabilities: membership.self.capabilities,
      placement: {
        key: membership.self.key ?? this.o.nodeId,
        standby: membership.self.standby === true,
        yields: membership.self.yields ?? [],
      },
      actors: actors.size,
      queues: actors.queues(),
      outbound: requests.outbound() ?? NO_OUTBOUND,
      events: this.#events?.report(),
      remindersHeld: this.#reminders?.size ?? 0,
      reminderScan: this.#reminders?.lastScan ?? { dirs: 0, pages: 0, entries: 0 },
    });
  }

  /** The answer to a request on the status subject (the admin API, made at its first question). */
  #adminAnswer(data: Uint8Array): string {
    this.#admin ??= new Admin(
      adminSources({
        o: this.o,
        parts: this.parts,
        events: () => this.#events,
        reminders: () => this.#reminders,
        metrics: () => this.metrics(),
        startedAt: this.#startedAt,
      }),
    );
    return this.#admin.answer(data);
  }

  /** Where Prometheus can scrape this node (`metricsPort` set), else undefined. */
  get metricsUrl(): string | undefined {
    return this.#prometheus?.url;
  }

  /** Replaces this node's capabilities, one change at a time (Mesh.registerCapabilities). */
  registerCapabilities(capabilities: readonly string[]): Promise<void> {
    try {
      this.checkRunning();
      const checked = checkCapabilities(capabilities);
      // One change at a time, and none once the node stops.
      const change = this.#changes.then(async () => {
        this.checkRunning();
        // Nodes that host a capability answer the ingress; the others only call.
        await this.parts.service.register(checked, this.parts.actors.actorTypes());
        this.checkRunning();
        await this.parts.membership.announce({ capabilities: checked });
      });
      this.#changes = change.catch(() => {});
      return change;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Leaves the cluster, drains and closes (Mesh.stop). Safe to call twice. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const { o } = this;
    const { service, membership, actors, requests, claims } = this.parts;
    this.#status.state = "STOPPING";
    try {
      await this.#changes; // a capability change under way ends first (it sees STOPPING)
      // Dispatchers send no more events; those in flight finish, and their floors are stored.
      await this.#events?.stop(o.drainTimeoutMs);
      await service.stop(); // ingress requests it already took are still answered
      this.#admin?.stop();
      const deadline = performance.now() + o.drainTimeoutMs;
      const left = () => Math.max(0, deadline - performance.now());
      // The shards go over first: with no capability left, members route elsewhere and claim them; this node's
      // activations leave after their turn (onDeactivate("shutdown")), what waits is handed on, and each claim is
      // answered once its shard is released (shard-claims.ts). What still arrives here is forwarded.
      // A standby of newer code, if one waits, takes this node's placement key: exactly its shards (standby.ts).
      const heir = this.parts.placement.heir();
      this.parts.placement.stop();
      await settleWithin(membership.announce({ capabilities: [], ...(heir === undefined ? {} : { heir }) }), left());
      // No reminders watch may still be setting up when the connection drains (its heartbeat timer would outlive the node).
      await settleWithin(this.#reminders?.stop() ?? Promise.resolve(), left());
      this.#forgetSub?.unsubscribe();
      this.#resetSub?.unsubscribe();
      // In flight: handlers running or queued here, and calls this node sent (its callers' or forwarded ones).
      await actors.idle(left());
      while (requests.size > 0 && left() > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      await actors.deactivateAll(o.drainTimeoutMs);
      await membership.stop(); // leave: nothing of this node's shards is held here any more
      // Drained: every message the server had sent was read, and the inbox serves those read together a tick apart.
      if (this.#nodeSub)
        await settleWithin(
          this.#nodeSub.drain().then(() => this.parts.inbox.idle()),
          left(),
        );
      claims.stop();
      await settleWithin(this.parts.renewal?.stop(true) ?? Promise.resolve(), o.drainTimeoutMs); // the record goes last: turns ran under it
      requests.close(new MeshError("STOPPED", `node ${o.nodeId} stopped before the reply came`));
      this.parts.router.unreachable.close(new MeshError("STOPPED", `node ${o.nodeId} stopped while the call's owner was unreachable`));
    } finally {
      // Whatever failed above, the node lets go of everything: a connection left open would
      // reconnect for ever once its server is gone. drain() cannot finish while the server is
      // unreachable: close in any case.
      void this.#reminders?.stop();
      void this.parts.renewal?.stop(false);
      await settleWithin(this.#nc.drain(), o.drainTimeoutMs);
      if (!this.#nc.isClosed()) await this.#nc.close();
      await this.#prometheus?.close();
      nodeStopped();
      this.#status.state = "STOPPED";
    }
  }

  /**
   * The cluster changed: rebuild the routes, and let go of the actors whose
   * shards now belong to another node (after their current message).
   */
  #viewChanged(view: ReadonlyMap<string, Announcement>): void {
    this.parts.routes.setMembers(view.values());
    this.parts.router.unreachable.viewChanged(); // calls waiting for an owner that had no responders
    this.parts.claims.viewChanged(); // shards gained wait for their handover; then those lost are let go
    this.#rebalance();
    this.parts.placement.viewChanged();
    this.#events?.viewChanged((node) => view.has(node));
    // Shards this node now owns may hold reminders: read their pages at once.
    void this.#reminders?.scan(true);
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
    if (this.#status.state === "STOPPED") return;
    const { routes, actors } = this.parts;
    try {
      const reason = this.#status.state === "RUNNING" ? "rebalance" : "shutdown";
      const moved = actors.rebalance((capability, shard) => routes.owner(capability, shard) === this.o.nodeId, reason);
      if (moved > 0) this.o.logger.info({ moved }, "mesh: rebalanced: actors whose shards moved are deactivated");
    } catch (err) {
      this.o.logger.error({ err: messageOf(err) }, "mesh: rebalancing failed");
    }
  }

  /**
   * A lost connection ends the lease (peers may have dropped this node: its
   * turns wait until it is re-validated); after a reconnect, asks everyone
   * again so views heal at once.
   */
  async #watchConnection(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type === "disconnect" && this.#status.state === "RUNNING") this.parts.lease.lapse();
      if (status.type === "reconnect") this.parts.requests.reconnected();
      if (status.type === "reconnect" && this.#status.state === "RUNNING") {
        this.o.logger.info({ server: status.data }, "mesh: reconnected to NATS");
        this.#events?.reconnected();
        await this.parts.membership.rediscover();
      }
    }
  }

  /** Throws STOPPED unless the node is RUNNING. */
  checkRunning(): void {
    if (this.#status.state !== "RUNNING") throw new MeshError("STOPPED", `node ${this.o.nodeId} is ${this.#status.state.toLowerCase()}`);
  }
}
