// Calls and casts on their way to an actor's owner: checked and routed
// (request.ts), then delivered here (with the copies the value model asks
// for) or sent to the owner node in this tick's batch; a call whose owner had
// no responders waits for another owner (unreachable.ts); the letters of an actor that
// moved are handed on. Serving what arrives on this node's subject is
// node-inbox.ts. Imports: the calls room, the actors' supervisor, the bottom floor.
import { MeshError, shardOfHash, xxh32 } from "@mesh/core";
import type { Logger, RoutingTable } from "@mesh/core";
import { Kind, messageOf, now } from "@mesh/core/internal";
import type { WireRequest } from "@mesh/core/internal";
import type { Requests, Subjects } from "@mesh/transport";
import type { Activation } from "../actors/activation.js";
import { Letter, PromiseReply } from "../actors/letter.js";
import type { Address } from "../actors/letter.js";
import type { Supervisor } from "../actors/supervisor.js";
import type { NodeMetrics } from "../operations/metrics.js";
import { MeshEvent } from "../events/event.js";
import { endWhenSettled, tracing, within } from "../operations/tracing.js";
import type { WireEvent } from "../events/event.js";
import type { CallResult, MeshRequest, ReplyTo } from "../types.js";
import { RemoteCall } from "./remote-call.js";
import type { Rerouter, Routed } from "./remote-call.js";
import { encodeWithin, noNodes, routeRequest } from "./request.js";
import type { LocalHosting } from "./request.js";
import { callSpan, carry, routedUnder } from "./call-spans.js";
import type { RefusedCasts } from "./refused-casts.js";
import { UnreachableOwners } from "./unreachable.js";

/** What a cast that went at once returns (one promise for all). */
const SENT: Promise<void> = Promise.resolve();

/** The node's parts that routing and serving calls both work with. */
export interface NodeParts {
  readonly nodeId: string;
  readonly shards: number;
  readonly callTimeoutMs: number;
  readonly maxPayload: number;
  readonly log: Logger;
  readonly routes: RoutingTable;
  readonly actors: Supervisor;
  readonly metrics: NodeMetrics;
}

/** What the router works with besides: where remote calls go, and the view. */
export interface RouterParts extends NodeParts {
  readonly requests: Requests;
  readonly subjects: Subjects;
  readonly hosting: LocalHosting;
  /** Actors whose owners said they refuse casts now (overload notices). */
  readonly refusedCasts: RefusedCasts;
  /** Resolves to true when `node` answers a presence probe within `timeoutMs` (an owner that had no responders is back). */
  answers(node: string, timeoutMs: number): Promise<boolean>;
  /** The wire protocol member `node` announced (1 when it announced none, or is not in the view). */
  protocolOf(node: string): number;
  /** Whether `node` takes durable records handed over (it announced placement keys: a Mesh since durable hand-overs). */
  takesRecords(node: string): boolean;
  /** Throws STOPPED unless the node takes a new request now (`acceptWhileStopping`: one it already took, from the ingress). */
  admit(acceptWhileStopping: boolean): void;
}

export class Router {
  readonly rerouter: Rerouter = { reroute: (call) => this.#reroute(call), encodeNow: (call) => this.#encodeNow(call) };
  /** Calls whose owner had no responders, waiting for another owner, the owner's return, or their deadline. */
  readonly unreachable: UnreachableOwners;

  constructor(private readonly p: RouterParts) {
    this.unreachable = new UnreachableOwners({
      nodeId: p.nodeId,
      ownerOf: (call) => p.routes.owner(call.request.capability, call.request.shard),
      dispatch: (call) => this.#dispatch(call),
      answers: (node, timeoutMs) => p.answers(node, timeoutMs),
      noNodes: (call) => noNodes(call.request.capability, p.routes),
      rerouted: () => void p.metrics.retries++,
    });
  }

  /**
   * A call: to the local supervisor when this node owns the actor, else to
   * its owner. `acceptWhileStopping`: a request this node already took (the
   * ingress), served until it has stopped. `chain`: a call from an actor's
   * turn, and the actors waiting on it (for CALL_CYCLE).
   */
  call<R>(request: MeshRequest, acceptWhileStopping: boolean, chain?: readonly string[], traced = false): Promise<CallResult<R>> {
    // The traced call (under its span) comes back here with `traced`; no closure on the untraced path (one per call).
    if (tracing.on && !traced) return this.#traced(request, acceptWhileStopping, chain);
    try {
      const r = this.#route(request, Kind.CALL, acceptWhileStopping);
      if (chain !== undefined) r.chain = chain;
      if (r.owner === this.p.nodeId) {
        return this.p.actors.call(r, r.payload, r.initArg, r.timeoutMs, chain) as Promise<CallResult<R>>;
      }
      // One clock read: the call's start, its deadline and its latency's start; it is sent with all its time.
      const sentAt = now();
      const bytes = this.encode(r);
      return new Promise((resolve, reject) => {
        const reply = new PromiseReply(resolve as (r: CallResult) => void, reject);
        this.#sendBytes(
          new RemoteCall(r, sentAt + r.timeoutMs, reply, this.rerouter, this.p.metrics.remoteCallLatency, sentAt),
          bytes,
          false,
        );
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #traced<R>(request: MeshRequest, acceptWhileStopping: boolean, chain: readonly string[] | undefined): Promise<CallResult<R>> {
    const { span, ctx } = callSpan(request, "call", this.p.nodeId);
    return endWhenSettled(
      span,
      within(ctx, () => this.call<R>(request, acceptWhileStopping, chain, true)),
    );
  }

  /**
   * A stream event to its actor (events/dispatcher.ts): handled by the owner
   * as a turn of handleEvent. `reply` succeeds with true when applied now,
   * false when the actor had applied it before, and fails as a call does.
   * Returns the node it was sent to.
   */
  event(capability: string, actorType: string, id: string, wire: WireEvent, timeoutMs: number, reply: ReplyTo): string | undefined {
    try {
      this.p.admit(false);
      const hash = xxh32(id);
      const shard = shardOfHash(hash, this.p.shards);
      const owner = this.p.routes.owner(capability, shard);
      if (owner === undefined) throw noNodes(capability, this.p.routes);
      // Here: straight to the actor (no RemoteCall, no clock reads; half the dispatcher's events in the two-node bench).
      if (owner === this.p.nodeId) {
        const event = MeshEvent.of(wire, capability, actorType);
        this.p.actors.deliver(
          { capability, actorType, id, shard, hash },
          Letter.event({ event, timeoutMs, reply, metrics: this.p.metrics }),
        );
      } else
        this.send(
          new RemoteCall(
            { kind: Kind.EVENT, capability, actorType, id, payload: wire, initArg: undefined, timeoutMs, hops: 0, shard, owner },
            performance.now() + timeoutMs,
            reply,
            this.rerouter,
          ),
        );
      return owner;
    } catch (err) {
      reply.fail(err as Error);
      return undefined;
    }
  }

  /** A cast: into the local mailbox, or into this tick's batch to its owner. */
  cast(request: MeshRequest, acceptWhileStopping: boolean): Promise<void> {
    return tracing.on ? this.#tracedCast(request, acceptWhileStopping) : this.#cast(request, acceptWhileStopping);
  }

  #tracedCast(request: MeshRequest, acceptWhileStopping: boolean): Promise<void> {
    const { span, ctx } = callSpan(request, "cast", this.p.nodeId);
    return endWhenSettled(
      span,
      within(ctx, () => this.#cast(request, acceptWhileStopping)),
    );
  }

  /** OVERLOADED goes through RefusedCasts.refuse: a loop that awaits refused casts must not starve its node. */
  #cast(request: MeshRequest, acceptWhileStopping: boolean): Promise<void> {
    try {
      return this.#castTo(this.#route(request, Kind.CAST, acceptWhileStopping)) ?? SENT;
    } catch (err) {
      return err instanceof MeshError && err.code === "OVERLOADED" ? this.p.refusedCasts.refuse(err) : Promise.reject(err as Error);
    }
  }

  /** Sends the letters waiting for an actor that moved on, each as its kind says (turn-kind.ts). */
  readonly handover = (act: Activation, letters: Letter[]): void => {
    for (const letter of letters) {
      try {
        this.#handOn(act, letter);
      } catch (err) {
        if (letter.kind.caller) letter.fail(err as Error);
        else this.p.log.warn({ pid: act.pid, err: messageOf(err) }, `mesh: ${letter.kind.name} lost in a rebalance`);
      }
    }
  };

  /**
   * One waiting letter of an actor that moved: into a new activation here if
   * this node owns the actor now (the same letter: its kind, caller and chain
   * stay), else on to the owner as its kind's wire request, back to its
   * sender, or nowhere.
   */
  #handOn(act: Activation, letter: Letter): void {
    const onMove = letter.kind.onMove;
    if (onMove.to === "nobody") return;
    const owner = this.p.routes.owner(act.capability, act.shard);
    if (owner === undefined) throw noNodes(act.capability, this.p.routes);
    if (owner === this.p.nodeId) {
      const refused = this.p.actors.deliver(act, letter);
      if (refused !== undefined && !letter.kind.caller) throw refused;
      return;
    }
    if (onMove.to === "here-or-sender")
      throw new MeshError("NODE_UNAVAILABLE", `${act.pid} moved to node ${owner} before its ${letter.kind.name} ran; it stays due there`);
    const payload = onMove.wire === Kind.EVENT ? (letter.payload as MeshEvent).toWire() : letter.payload;
    const r: Routed = {
      kind: onMove.wire,
      capability: act.capability,
      actorType: act.actorType,
      id: act.id,
      payload,
      initArg: letter.initArg,
      timeoutMs: 0,
      hops: 0,
      shard: act.shard,
      owner,
      chain: letter.chain,
    };
    if (letter.trace !== undefined) carry(r, letter.trace);
    this.p.metrics.forwards++;
    if (onMove.wire === Kind.CAST) this.publish(owner, this.encode(r));
    else this.send(new RemoteCall(r, letter.deadline, letter.reply, this.rerouter), true);
  }

  /** What moves of an activation, to the actor's owner now (live migration); false when that is this node or none, or it cannot go. */
  migrate(to: Address, moved: unknown[]): boolean {
    const owner = this.p.routes.owner(to.capability, to.shard);
    // A node of protocol 1 would refuse kind 3 as malformed: the actor starts afresh there.
    if (owner === undefined || owner === this.p.nodeId || this.p.protocolOf(owner) < 2) return false;
    if (typeof moved[1] === "number" && !this.p.takesRecords(owner)) return false; // a durable record: it would drop it
    const { capability, actorType, id, shard } = to;
    const r: Routed = {
      kind: Kind.MIGRATE,
      capability,
      actorType,
      id,
      payload: moved,
      initArg: undefined,
      timeoutMs: 0,
      hops: 0,
      shard,
      owner,
    };
    try {
      this.publish(owner, this.encode(r));
      return true;
    } catch (err) {
      this.p.log.warn({ actorType, id, err: messageOf(err) }, "mesh: an activation's state could not be sent to its new owner");
      return false;
    }
  }

  /** Checks a request and finds its owner. Throws BAD_REQUEST, NO_NODES or STOPPED. */
  #route(request: MeshRequest, kind: Kind, acceptWhileStopping: boolean): Routed {
    this.p.admit(acceptWhileStopping);
    const r = routeRequest(request, kind, this.p.routes, this.p.shards, this.p.callTimeoutMs, this.p.hosting);
    if (tracing.parent !== undefined) routedUnder(tracing.parent, r, this.p.nodeId);
    return r;
  }

  /**
   * Sends a remote call to its owner, with what is left of its time. `forced`:
   * a forward or a hand-over, which never waits for room (flow control), so
   * that it keeps its place among the letters of its actor.
   */
  send(call: RemoteCall, forced = false): void {
    let bytes: Uint8Array;
    try {
      bytes = this.#encodeNow(call);
    } catch (err) {
      return call.sink.fail(err as Error);
    }
    this.#sendBytes(call, bytes, forced);
  }

  #sendBytes(call: RemoteCall, bytes: Uint8Array, forced: boolean): void {
    this.p.requests.call(this.p.subjects.node(call.request.owner), bytes, call, forced ? undefined : call.request);
  }

  #encodeNow(call: RemoteCall): Uint8Array {
    call.request.timeoutMs = Math.max(1, Math.round(call.budgetEnd - performance.now()));
    return this.encode(call.request);
  }

  /** The owner had no responders: the call was never delivered, so it may go again (unreachable.ts). */
  #reroute(call: RemoteCall): void {
    this.unreachable.wait(call);
  }

  /** A call whose owner is known: delivered here if this node owns it, else sent. */
  #dispatch(call: RemoteCall): void {
    const r = call.request;
    if (r.owner !== this.p.nodeId) return this.send(call);
    let payload: unknown, initArg: unknown;
    try {
      if (r.kind === Kind.EVENT) {
        const event = MeshEvent.from(r.payload, r.capability, r.actorType); // a forwarded one came from the network
        const timeoutMs = call.budgetEnd - performance.now();
        return void this.p.actors.deliver(r, Letter.event({ event, timeoutMs, reply: call, metrics: this.p.metrics }));
      }
      payload = this.p.actors.incoming(r.actorType, r.payload, "payload");
      initArg = this.p.actors.incoming(r.actorType, r.initArg, "initArg");
    } catch (err) {
      return call.sink.fail(err as Error);
    }
    const letter = Letter.call({
      payload,
      initArg,
      deadline: call.budgetEnd,
      timeoutMs: call.budgetEnd - performance.now(),
      reply: call,
      metrics: this.p.metrics,
      chain: r.chain,
    });
    this.p.actors.deliver(r, letter);
  }

  /**
   * A cast whose owner is known: into the mailbox here if this node owns it,
   * else sent, unless its owner said it refuses casts (overload notices); a
   * promise when it waits for room on the way (flow control).
   */
  #castTo(r: Routed): Promise<void> | undefined {
    if (r.owner !== this.p.nodeId) {
      const refused = this.p.refusedCasts.check(r.owner, r);
      if (refused !== undefined) throw refused;
      const waiting = this.p.requests.cast(this.p.subjects.node(r.owner), this.encode(r), r);
      return waiting?.catch((err: MeshError) => this.p.refusedCasts.refuse(err));
    }
    this.p.actors.cast(
      r,
      this.p.actors.incoming(r.actorType, r.payload, "payload"),
      this.p.actors.incoming(r.actorType, r.initArg, "initArg"),
    );
  }

  encode(r: WireRequest): Uint8Array {
    return encodeWithin(r, this.p.maxPayload);
  }

  /**
   * A cast to another node that never waits (a forward, a hand-over, a
   * migration): batched with the other frames for that node in this tick.
   * Throws NODE_UNAVAILABLE when the connection is closed.
   */
  publish(node: string, bytes: Uint8Array): void {
    this.p.requests.castNow(this.p.subjects.node(node), bytes);
  }
}
