// The spans of a call on its way (docs/observability.md "Traces"): the
// caller's `call`/`cast` span, the owner node's `serve` span (the remote hop:
// from the request's arrival to its reply), and the ingress's span for a
// foreign client's request. Made only while `tracing.on`. Imports: the calls
// room, operations/tracing.ts, the bottom floor.
import { Kind } from "@mesh/core/internal";
import type { WireRequest } from "@mesh/core/internal";
import {
  ROOT_CONTEXT,
  SpanKind,
  contextOf,
  currentParent,
  endSpan,
  headersContext,
  spanOf,
  startSpan,
  traceparentOf,
  tracestateOf,
} from "../operations/tracing.js";
import type { Context, Span } from "../operations/tracing.js";
import type { MeshRequest, ReplyTo } from "../types.js";
import type { Routed } from "./remote-call.js";

/** The actor type a request names, as well as it can be read before it is checked. */
function typeNamed(request: MeshRequest): string {
  const actor = (request as Partial<MeshRequest> | null)?.actor;
  return typeof actor === "string" ? actor : typeof actor === "function" ? (actor.actorType ?? actor.name) : "unknown";
}

/** The caller's span of a call or cast (`rpc.method`), under the current parent. */
export function callSpan(request: MeshRequest, method: "call" | "cast", node: string): { span: Span; ctx: Context } {
  const actorType = typeNamed(request);
  return startSpan(
    `${method} ${actorType}`,
    method === "call" ? SpanKind.CLIENT : SpanKind.PRODUCER,
    { "rpc.system": "mesh", "rpc.service": actorType, "rpc.method": method, "mesh.node": node },
    currentParent(),
  );
}

/**
 * A request routed under a call span (the current parent): the span learns
 * where it goes, and a request to another node carries the span's context.
 */
export function routedUnder(parent: Context, r: Routed, node: string): void {
  const remote = r.owner !== node;
  const span = spanOf(parent);
  span?.setAttributes({
    "mesh.actor.type": r.actorType,
    "mesh.actor.id": r.id,
    "mesh.capability": r.capability,
    "mesh.shard": r.shard,
    "mesh.owner.node": r.owner,
    "mesh.remote": remote,
  });
  if (remote) carry(r, parent);
}

/** Puts `ctx`'s span into a request for the wire. */
export function carry(r: WireRequest, ctx: Context): void {
  r.trace = traceparentOf(ctx);
  r.traceState = r.trace !== undefined ? tracestateOf(ctx) : undefined;
}

/**
 * The owner node's span of a request from another node (the remote hop),
 * under the caller's span the request carries (an event's: the one its
 * message's headers carry; a new trace when there is none). It ends when
 * the reply goes back, or, for a cast, when it is in the mailbox.
 */
export function serveSpan(req: WireRequest, node: string, bytes: number): { span: Span; ctx: Context } {
  const method = req.kind === 1 ? "cast" : req.kind === 2 ? "event" : "call";
  const parent =
    req.trace !== undefined
      ? contextOf(req.trace, req.traceState)
      : req.kind === 2 && Array.isArray(req.payload)
        ? headersContext(req.payload[5])
        : ROOT_CONTEXT; // a wire event's headers: element 5
  return startSpan(
    `serve ${req.actorType}`,
    req.kind === Kind.CALL ? SpanKind.SERVER : SpanKind.CONSUMER,
    {
      "rpc.system": "mesh",
      "rpc.service": req.actorType,
      "rpc.method": method,
      "messaging.system": "nats",
      "messaging.message.body.size": bytes,
      "mesh.node": node,
      "mesh.actor.type": req.actorType,
      "mesh.actor.id": req.id,
      "mesh.capability": req.capability,
      "mesh.hops": req.hops,
    },
    parent,
  );
}

/** A reply that ends a span as it goes: well, or with the call's error code. */
export class SpanReply implements ReplyTo {
  constructor(
    private readonly span: Span,
    private readonly inner: ReplyTo,
  ) {}
  succeed(pid: string, result: unknown, shared?: boolean): void {
    endSpan(this.span);
    this.inner.succeed(pid, result, shared);
  }
  fail(err: Error): void {
    endSpan(this.span, err);
    this.inner.fail(err);
  }
  bytes(data: Uint8Array): void {
    endSpan(this.span);
    this.inner.bytes(data);
  }
}

/** The ingress's span of a foreign client's request, continuing its `traceparent` header (a new trace without one). */
export function ingressSpan(
  subject: string,
  method: "call" | "cast",
  traceparent: string | undefined,
  tracestate: string | undefined,
): { span: Span; ctx: Context } {
  return startSpan(
    `ingress ${method}`,
    SpanKind.SERVER,
    { "rpc.system": "mesh", "rpc.method": method, "messaging.system": "nats", "messaging.destination.name": subject },
    contextOf(traceparent, tracestate),
  );
}
