// What arrives on this node's subject (<prefix>.node.<nodeId>): calls and
// casts from other nodes, one by one or in batches, served here or forwarded
// to the owner this node knows when the sender's view was stale; and the
// presence probe of a starting node. Imports: the calls room, the actors'
// supervisor, the bottom floor.
import { MeshError, shardOfHash, xxh32 } from "@mesh/core";
import { Kind, decodeRequest, encodeError, isBatch, messageOf, now, readBatch } from "@mesh/core/internal";
import type { WireRequest } from "@mesh/core/internal";
import { MessageTicks } from "@mesh/transport";
import type { Msg } from "nats";
import { Letter } from "../actors/letter.js";
import type { Address } from "../actors/letter.js";
import { MeshEvent } from "../events/event.js";
import type { ReplyTo } from "../types.js";
import { endSpan, tracing, within } from "../operations/tracing.js";
import { Refusal } from "../actors/overload.js";
import { FrameReply, NatsReply } from "./nats-reply.js";
import type { Replies } from "./nats-reply.js";
import { RemoteCall } from "./remote-call.js";
import type { Routed } from "./remote-call.js";
import type { NodeParts, Router } from "./router.js";
import { SpanReply, carry, serveSpan } from "./call-spans.js";
import { noticeSubject } from "./overload-notices.js";
import type { OverloadNotices } from "./overload-notices.js";

/** How many times a call may be forwarded between nodes whose views disagree, before a node serves it anyway. */
const MAX_HOPS = 3;

/** What the node inbox works with besides: the router for forwards, and where replies go. */
export interface NodeInboxParts extends NodeParts {
  readonly router: Router;
  readonly replies: Replies;
  /** Tells the senders of refused casts (overload notices). */
  readonly notices: OverloadNotices;
  /** RUNNING, STOPPING or STOPPED: while stopping, what arrives for shards that went over is forwarded to their owner. */
  state(): "RUNNING" | "STOPPING" | "STOPPED";
  /** Checks ownership again soon: an activation served here without owning its shard must not outlive the message. */
  rebalanceSoon(): void;
}

export class NodeInbox {
  /** The reply subject of the message being served: a refused cast's sender is told on its `_o` subject. */
  #replyOf: string | undefined;
  /** When the message being served arrived (`performance.now()`): its calls' deadlines count from it (one clock read a batch). */
  #arrived = 0;

  constructor(private readonly p: NodeInboxParts) {}

  /** Messages read together are served a tick apart: the replies to the first leave before the next is served. */
  readonly #ticks = new MessageTicks<Msg>(
    (msg) => this.#serveNow(msg),
    (err) => this.p.log.error({ err: messageOf(err) }, "mesh: failed to serve a message on the node subject"),
  );

  /** Takes a message on this node's subject: served now, or a tick after those read with it (message-ticks.ts). */
  serve(msg: Msg): void {
    this.#ticks.take(msg);
  }

  /** Resolves once every message taken was served (the node subject was drained). */
  idle(): Promise<void> {
    return this.#ticks.idle();
  }

  /**
   * Serves a message on this node's subject: a plain envelope, or a batch
   * whose frames are handled one by one (a malformed frame fails only itself).
   * Never throws: an exception would stop nats.js's reader.
   */
  #serveNow(msg: Msg): void {
    if (msg.data.length === 0) {
      // A presence probe: a starting node asks whether this node id is taken, or a sender whether
      // this node has read what it sent before (flow control): everything before it was handled.
      if (msg.reply) this.p.replies.respond(msg, msg.data);
      return;
    }
    this.#replyOf = msg.reply || undefined;
    this.#arrived = now();
    try {
      this.#serveMessage(msg);
    } finally {
      this.#replyOf = undefined;
    }
  }

  #serveMessage(msg: Msg): void {
    // A message of casts alone has reply subject `<inbox>._o`: there are no calls to answer.
    const calls = msg.reply !== undefined && msg.reply !== "" && !msg.reply.endsWith("._o");
    if (!isBatch(msg.data)) {
      this.#serveOne(msg.data, calls ? new NatsReply(msg, this.p.replies) : undefined);
      return;
    }
    const caller = calls ? this.p.replies.caller(msg.reply!) : undefined;
    try {
      readBatch(msg.data, (id, envelope) =>
        this.#serveOne(envelope, id !== 0 && caller !== undefined ? new FrameReply(caller, id, this.p.replies) : undefined),
      );
    } catch (err) {
      // The framing is checked before any frame runs: none of this batch's calls ran, and this answers them all.
      this.p.log.warn({ subject: msg.subject, err: messageOf(err) }, "mesh: refused a message on the node subject (a malformed batch)");
      if (calls) this.p.replies.respond(msg, encodeError(err));
    }
  }

  #serveOne(data: Uint8Array, reply: ReplyTo | undefined): void {
    try {
      this.#handle(data, reply);
    } catch (err) {
      this.p.log.error({ err: messageOf(err) }, "mesh: failed to handle a message on the node subject");
      reply?.fail(err as Error);
    }
  }

  /** A call or cast from another node: serve it here, or forward it to its owner. `reply`: where a call's outcome goes. */
  #handle(data: Uint8Array, reply: ReplyTo | undefined): void {
    let req: WireRequest;
    try {
      if (data.length > this.p.maxPayload) {
        throw new MeshError("PAYLOAD_TOO_LARGE", `the request is ${data.length} bytes; the limit is ${this.p.maxPayload}`);
      }
      req = decodeRequest(data);
      // While stopping, messages already delivered to this node are still served.
      if (this.p.state() === "STOPPED") throw new MeshError("STOPPED", `node ${this.p.nodeId} is stopped`);
    } catch (err) {
      this.p.log.warn({ err: messageOf(err) }, "mesh: refused a message on the node subject");
      reply?.fail(err as Error);
      return;
    }
    if (tracing.on) this.#traced(req, data.length, reply);
    else this.#serve(req, data.length, reply);
  }

  /** Serves a request under the remote hop's span: its reply ends it (a cast's, once it is in the mailbox). */
  #traced(req: WireRequest, size: number, reply: ReplyTo | undefined): void {
    const hop = serveSpan(req, this.p.nodeId, size);
    try {
      within(hop.ctx, () => this.#serve(req, size, reply !== undefined ? new SpanReply(hop.span, reply) : undefined));
      if (reply === undefined) endSpan(hop.span);
    } catch (err) {
      endSpan(hop.span, err);
      throw err;
    }
  }

  /** Serves a decoded request here, or forwards it to its owner. */
  #serve(req: WireRequest, size: number, reply: ReplyTo | undefined): void {
    const hash = xxh32(req.id);
    const shard = shardOfHash(hash, this.p.shards);
    const owner = this.p.routes.owner(req.capability, shard);
    // A stale route: the sender's view is behind ours. Forward to the owner we
    // know, a bounded number of hops so that disagreeing views cannot loop.
    if (owner !== undefined && owner !== this.p.nodeId && req.hops < MAX_HOPS && this.p.state() !== "STOPPED") {
      this.#forward({ ...req, hops: req.hops + 1, shard, owner }, reply);
      return;
    }
    // Served here although another node owns it (hops used up, or the owner is unknown here):
    // the activation must not outlive this message, so check ownership again once it is handled.
    if (owner !== this.p.nodeId) this.p.rebalanceSoon();
    const to: Address = { capability: req.capability, actorType: req.actorType, id: req.id, shard, hash };
    if (req.kind === Kind.MIGRATE) return this.p.actors.adopt(to, req.payload);
    if (req.kind === Kind.EVENT) {
      if (reply === undefined)
        return this.p.log.warn({ actorType: req.actorType, id: req.id }, "mesh: refused an event without a reply subject");
      let event: MeshEvent;
      try {
        event = MeshEvent.from(req.payload, req.capability, req.actorType);
      } catch (err) {
        return reply.fail(err as Error);
      }
      const timeoutMs = req.timeoutMs || this.p.callTimeoutMs;
      this.p.actors.deliver(to, Letter.event({ event, timeoutMs, reply, metrics: this.p.metrics, bytes: size }));
      return;
    }
    if (req.kind === Kind.CALL && reply !== undefined) {
      const timeoutMs = req.timeoutMs || this.p.callTimeoutMs;
      const deadline = this.#arrived + timeoutMs;
      const { payload, initArg, chain } = req;
      this.p.actors.deliver(to, Letter.call({ payload, initArg, deadline, timeoutMs, reply, metrics: this.p.metrics, chain, bytes: size }));
      return;
    }
    try {
      this.p.actors.cast(to, req.payload, req.initArg, size);
    } catch (err) {
      if (err instanceof Refusal && this.#replyOf !== undefined)
        this.p.notices.refused(noticeSubject(this.#replyOf), to, err.why !== "mailbox");
      // A refused cast is counted (metrics: overloaded); a line for each would flood the log.
      if (!(err instanceof MeshError && err.code === "OVERLOADED"))
        this.p.log.warn({ actorType: req.actorType, id: req.id, err: messageOf(err) }, "mesh: cast failed");
    }
  }

  /** Sends a call or cast that reached the wrong node on to its owner; the owner's reply goes back to the original caller. */
  #forward(r: Routed, reply: ReplyTo | undefined): void {
    this.p.metrics.forwards++;
    if (tracing.parent !== undefined) carry(r, tracing.parent); // the owner's spans go under this node's hop
    this.p.log.debug({ actorType: r.actorType, id: r.id, to: r.owner, hops: r.hops }, "mesh: forwarding a stale route");
    if (r.kind !== Kind.CAST && reply !== undefined) {
      const deadline = now() + (r.timeoutMs || this.p.callTimeoutMs);
      this.p.router.send(new RemoteCall(r, deadline, reply, this.p.router.rerouter), true);
      return;
    }
    try {
      this.p.router.publish(r.owner, this.p.router.encode(r));
    } catch (err) {
      this.p.log.warn({ actorType: r.actorType, id: r.id, err: messageOf(err) }, "mesh: cast lost while forwarding");
    }
  }
}
