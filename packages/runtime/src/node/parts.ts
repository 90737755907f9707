// One node's parts, made in dependency order, each given only what it needs.
// Two pairs need each other, and each pair is closed here, in one place: the
// lease re-validates through membership, which tells it each heartbeat heard
// back; and the actors hand waiting letters on (and make their own calls)
// through the router, which delivers to the actors. What the node's lifecycle
// answers (the view changed, a rebalance soon, the reminders once open) comes
// in as `NodeLinks`. Imports: every room.
import { RoutingTable } from "@mesh/core";
import type { Announcement } from "@mesh/core";
import { PROTOCOL } from "@mesh/core/internal";
import { Membership, Requests, StoreRemovals, answersProbe } from "@mesh/transport";
import type { NodeRecords } from "@mesh/transport";
import type { NatsConnection } from "nats";
import { Lease } from "../actors/lease.js";
import { LeaseRenewal } from "../actors/lease-renewal.js";
import { Supervisor } from "../actors/supervisor.js";
import { Ingress } from "../calls/ingress.js";
import { Replies } from "../calls/nats-reply.js";
import { NodeInbox } from "../calls/node-inbox.js";
import { OverloadNotices } from "../calls/overload-notices.js";
import { RefusedCasts } from "../calls/refused-casts.js";
import { Router } from "../calls/router.js";
import { Publisher } from "../events/outbox.js";
import { NodeMetrics } from "../operations/metrics.js";
import type { MetricsSnapshot } from "../operations/metrics.js";
import { NodeService } from "../operations/service.js";
import type { ResolvedOptions } from "../options.js";
import type { StateStorage } from "../state/state-store.js";
import type { Reminders } from "../timers/reminders.js";
import { version } from "../version.js";
import { Standby } from "./standby.js";
import { ShardClaims } from "./shard-claims.js";

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
  /** This node's metrics snapshot, events included (for the NATS service's STATS). */
  snapshot(): MetricsSnapshot;
  /** The answer to a request on the node's status subject: its metrics, or an admin question's (operations/admin.ts). */
  admin(data: Uint8Array): string;
  /** Throws STOPPED: the node does not take this request now. */
  refuse(): void;
  /** Another process took this node's id (its record names another instance): this one stops. */
  superseded(): void;
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
  /** Random per start of the process (the announcement's). */
  readonly instance: string;
  /** Where the JetStream quorum keeps the nodes' records (undefined: no JetStream; the lease is the heartbeats'). */
  readonly records: NodeRecords | undefined;
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
  /** The lease's renewals in the nodes' records (undefined: no JetStream). */
  readonly renewal: LeaseRenewal | undefined;
  readonly actors: Supervisor;
  readonly membership: Membership;
  /** This node's place in placement: standby, heir, its key, the shards it gives up (standby.ts). */
  readonly placement: Standby;
  /** The handover of the shards this node gains (shard-claims.ts). */
  readonly claims: ShardClaims;
  readonly router: Router;
  readonly inbox: NodeInbox;
  readonly service: NodeService;
}

/** Makes a node's parts, in dependency order. */
export function makeParts({ o, nc, maxPayload, store, inbox, instance, records, status, links }: PartsInput): NodeParts {
  const log = o.logger;
  const metrics = new NodeMetrics();
  const routes = new RoutingTable(o.shards, o.placement.fn);
  // Flow control: a cast waits for room on the way to its owner as long as a call may take.
  const requests = new Requests(nc, log, maxPayload, inbox, { maxBytes: o.maxOutboundBytes, castWaitMs: o.callTimeoutMs });
  const refusedCasts = new RefusedCasts(metrics, log);
  requests.onNotice = refusedCasts.notice;
  const replies = new Replies(nc, maxPayload, log);

  // Peers drop a node silent for nodeTimeoutMs; a heartbeat heard back keeps the lease for that, less one interval.
  const leaseMs = o.nodeTimeoutMs > o.heartbeatMs ? o.nodeTimeoutMs - o.heartbeatMs : o.nodeTimeoutMs / 2;
  const lease: Lease = new Lease(
    leaseMs,
    {
      // Where the quorum keeps the records, it alone says whether peers removed this node. Cycles: both are made below.
      revalidate: (timeoutMs): Promise<{ confirmed: boolean; replaced: boolean }> =>
        renewal !== undefined ? renewal.revalidate() : membership.revalidate(timeoutMs),
      dropAll: () => {
        claims.reclaimAll(); // cycle: made below
        return actors.dropAll();
      },
      resume: () => actors.resume(),
      running: () => status.state === "RUNNING",
      log,
    },
    metrics,
  );
  const renewal: LeaseRenewal | undefined =
    records === undefined ? undefined : new LeaseRenewal(records, lease, o.heartbeatMs, links.superseded);
  const actors: Supervisor = new Supervisor({
    nodeId: o.nodeId,
    shards: o.shards,
    actors: o.actors,
    log,
    metrics,
    lease,
    limits: { maxMailbox: o.maxMailbox, maxTurnMs: o.maxTurnMs, maxQueuedLetters: o.maxQueuedLetters, maxQueuedBytes: o.maxQueuedBytes },
    deactivateTimeoutMs: o.drainTimeoutMs,
    store,
    idleTimeoutMs: o.idleTimeoutMs,
    maxActors: o.maxActors,
    reminders: links.reminders,
    publisher: new Publisher(nc, o.storage.timeoutMs, metrics),
    maxPayload,
    // cycle: the router is made below
    handover: (act, letters) => router.handover(act, letters),
    claimed: (capability, shard) => claims.ready(capability, shard),
    yieldShard: (capability, shard) => placement.yieldShard(capability, shard), // cycle: made below
    outbound: {
      call: (request, chain) => router.call(request, false, chain),
      cast: (request) => router.cast(request, false),
      migrate: (to, moved) => router.migrate(to, moved),
    },
  });

  const self: Announcement = {
    v: 1,
    node: o.nodeId,
    instance,
    capabilities: o.capabilities,
    actorTypes: actors.actorTypes(),
    shards: o.shards,
    strategy: o.placement.name,
    version,
    app: o.appVersion,
    protocol: PROTOCOL,
    heartbeatMs: o.heartbeatMs,
    nodeTimeoutMs: o.nodeTimeoutMs,
    keys: true,
    ...(Standby.first(o.appVersion, o.standbyMs) ? { standby: true } : {}),
  };
  const timing = { heartbeatMs: o.heartbeatMs, nodeTimeoutMs: o.nodeTimeoutMs, discoveryQuietMs: o.discoveryQuietMs };
  const membership: Membership = new Membership({
    nc,
    subjects: o.subjects,
    self,
    timing,
    log,
    onChange: links.viewChanged,
    inboxPrefix: inbox,
    onHeard: (sentAt) => lease.heard(sentAt),
    removals: records === undefined ? undefined : new StoreRemovals(records),
  });
  const placement = new Standby(membership, o.standbyMs, log);

  const claims: ShardClaims = new ShardClaims({
    nc,
    subjects: o.subjects,
    nodeId: o.nodeId,
    inboxPrefix: inbox,
    routes,
    membership,
    log,
    released: (of, timeoutMs) => actors.released(of, timeoutMs),
    running: () => status.state !== "STOPPED",
    handedOver: () => void links.reminders()?.scan(),
    inboxServed: () => nodeInbox.idle(), // made below
  });

  const node = { nodeId: o.nodeId, shards: o.shards, callTimeoutMs: o.callTimeoutMs, maxPayload, log, routes, actors, metrics };
  const router: Router = new Router({
    ...node,
    requests,
    refusedCasts,
    subjects: o.subjects,
    hosting: { hosts: (actorType) => actors.hosts(actorType), capabilities: () => membership.self.capabilities },
    answers: (id, timeoutMs) => answersProbe(nc, o.subjects, id, timeoutMs),
    protocolOf: (id) => membership.member(id)?.protocol ?? 1,
    takesRecords: (id) => membership.member(id)?.keys === true,
    admit: (acceptWhileStopping) => {
      if (status.state === "STOPPED" || (status.state === "STOPPING" && !acceptWhileStopping)) links.refuse();
    },
  });
  const notices = new OverloadNotices(nc, o.nodeId, metrics, log);
  const nodeInbox = new NodeInbox({ ...node, router, replies, notices, state: () => status.state, rebalanceSoon: links.rebalanceSoon });
  const ingress = new Ingress(
    { call: (r) => router.call(r, true), cast: (r) => router.cast(r, true) },
    o.subjects,
    maxPayload,
    log,
    metrics,
  );
  const service = new NodeService(nc, o.subjects, ingress, o.nodeId, version, links.snapshot, links.admin, {
    shards: o.shards,
    strategy: o.placement.name,
    appVersion: o.appVersion,
  });
  return { metrics, routes, requests, replies, lease, renewal, actors, membership, placement, claims, router, inbox: nodeInbox, service };
}
