// One node's parts, made in dependency order, each given only what it needs.
// Two pairs need each other, and each pair is closed here, in one place: the
// lease re-validates through membership, which tells it each heartbeat heard
// back; and the actors hand waiting letters on (and make their own calls)
// through the router, which delivers to the actors. What the node's lifecycle
// answers (the view changed, a rebalance soon, the reminders once open) comes
// in as `NodeLinks`. Imports: every room.
import { randomBytes } from "node:crypto";
import { RoutingTable } from "@mesh/core";
import type { Announcement } from "@mesh/core";
import { Membership, Requests } from "@mesh/transport";
import type { NatsConnection } from "nats";
import { Lease } from "../actors/lease.js";
import { Supervisor } from "../actors/supervisor.js";
import { Ingress } from "../calls/ingress.js";
import { Replies } from "../calls/nats-reply.js";
import { NodeInbox } from "../calls/node-inbox.js";
import { Router } from "../calls/router.js";
import { Publisher } from "../events/outbox.js";
import { NodeMetrics } from "../operations/metrics.js";
import type { MetricsSnapshot } from "../operations/metrics.js";
import { NodeService } from "../operations/service.js";
import type { ResolvedOptions } from "../options.js";
import type { StateStorage } from "../state/state-store.js";
import type { Reminders } from "../timers/reminders.js";
import { version } from "../version.js";

/** The lifecycle of a node. */
export type MeshState = "RUNNING" | "STOPPING" | "STOPPED";

/** Where the node is in its lifecycle: one object, read by the parts that admit or serve requests. */
export interface NodeStatus {
  state: MeshState;
}

/** What the parts ask of the node's lifecycle (lifecycle.ts). */
export interface NodeLinks {
  /** The cluster view changed (self included). */
  viewChanged(view: ReadonlyMap<string, Announcement>): void;
  /** A request was served here though another node owns its actor: check ownership again soon. */
  rebalanceSoon(): void;
  /** The node's reminders, once open (only with durable classes). */
  reminders(): Reminders | undefined;
  /** This node's metrics snapshot, events included (for the NATS service's status and STATS). */
  snapshot(): MetricsSnapshot;
  /** Throws STOPPED: the node does not take this request now. */
  refuse(): void;
}

/** What a node's parts are made from. */
export interface PartsInput {
  readonly o: ResolvedOptions;
  readonly nc: NatsConnection;
  /** The largest message: the option, capped by the server's max_payload. */
  readonly maxPayload: number;
  /** Where durable actors' state lives (undefined: no durable class). */
  readonly store: StateStorage | undefined;
  /** The node's own reply inbox prefix. */
  readonly inbox: string;
  readonly status: NodeStatus;
  readonly links: NodeLinks;
}

/** A node's parts. */
export interface NodeParts {
  readonly metrics: NodeMetrics;
  readonly routes: RoutingTable;
  readonly requests: Requests;
  readonly replies: Replies;
  readonly lease: Lease;
  readonly actors: Supervisor;
  readonly membership: Membership;
  readonly router: Router;
  readonly inbox: NodeInbox;
  readonly service: NodeService;
}

/** Makes a node's parts, in dependency order. */
export function makeParts({ o, nc, maxPayload, store, inbox, status, links }: PartsInput): NodeParts {
  const log = o.logger;
  const metrics = new NodeMetrics();
  const routes = new RoutingTable(o.shards, o.placement.fn);
  const requests = new Requests(nc, log, maxPayload, inbox);
  const replies = new Replies(nc, maxPayload, log);

  // Peers drop a node silent for nodeTimeoutMs; a heartbeat heard back keeps the lease for that, less one interval.
  const leaseMs = o.nodeTimeoutMs > o.heartbeatMs ? o.nodeTimeoutMs - o.heartbeatMs : o.nodeTimeoutMs / 2;
  const lease = new Lease(
    leaseMs,
    {
      revalidate: (timeoutMs) => membership.revalidate(timeoutMs), // cycle: membership is made below
      dropAll: () => actors.dropAll(),
      resume: () => actors.resume(),
      running: () => status.state === "RUNNING",
      log,
    },
    metrics,
  );
  const actors: Supervisor = new Supervisor({
    nodeId: o.nodeId,
    actors: o.actors,
    log,
    metrics,
    lease,
    limits: { maxMailbox: o.maxMailbox, maxQueuedLetters: o.maxQueuedLetters, maxQueuedBytes: o.maxQueuedBytes },
    deactivateTimeoutMs: o.drainTimeoutMs,
    store,
    idleTimeoutMs: o.idleTimeoutMs,
    maxActors: o.maxActors,
    reminders: links.reminders,
    publisher: new Publisher(nc, o.storage.timeoutMs, metrics),
    maxPayload,
    // cycle: the router is made below
    handover: (act, letters) => router.handover(act, letters),
    outbound: { call: (request, chain) => router.call(request, false, chain), cast: (request) => router.cast(request, false) },
  });

  const self: Announcement = {
    v: 1,
    node: o.nodeId,
    instance: randomBytes(8).toString("hex"),
    capabilities: o.capabilities,
    actorTypes: actors.actorTypes(),
    shards: o.shards,
    strategy: o.placement.name,
    version,
    heartbeatMs: o.heartbeatMs,
  };
  const timing = { heartbeatMs: o.heartbeatMs, nodeTimeoutMs: o.nodeTimeoutMs, discoveryQuietMs: o.discoveryQuietMs };
  const membership: Membership = new Membership(nc, o.subjects, self, timing, log, links.viewChanged, inbox, (sentAt) =>
    lease.heard(sentAt),
  );

  const node = { nodeId: o.nodeId, shards: o.shards, callTimeoutMs: o.callTimeoutMs, maxPayload, log, routes, actors, metrics };
  const router: Router = new Router({
    ...node,
    requests,
    subjects: o.subjects,
    hosting: { hosts: (actorType) => actors.hosts(actorType), capabilities: () => membership.self.capabilities },
    markGone: (id) => membership.markGone(id),
    admit: (acceptWhileStopping) => {
      if (status.state === "STOPPED" || (status.state === "STOPPING" && !acceptWhileStopping)) links.refuse();
    },
  });
  const nodeInbox = new NodeInbox({ ...node, router, replies, state: () => status.state, rebalanceSoon: links.rebalanceSoon });
  const ingress = new Ingress(
    { call: (r) => router.call(r, true), cast: (r) => router.cast(r, true) },
    o.subjects,
    maxPayload,
    log,
    metrics,
  );
  const service = new NodeService(nc, o.subjects, ingress, o.nodeId, version, links.snapshot, {
    shards: o.shards,
    strategy: o.placement.name,
  });
  return { metrics, routes, requests, replies, lease, actors, membership, router, inbox: nodeInbox, service };
}
