// Traces (docs/observability.md "Traces"): spans through @opentelemetry/api,
// for whatever SDK the application registers. With none registered, `tracing.on`
// is false and every traced path costs one property read: no span, no
// context, no byte on the wire. Between nodes the context travels in the
// request envelope (docs/PROTOCOL.md), on the ingress and in published
// messages as W3C Trace Context headers (`traceparent`, `tracestate`).
// Imports: the bottom floor only.
import {
  ROOT_CONTEXT,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  context,
  createTraceState,
  isSpanContextValid,
  trace,
} from "@opentelemetry/api";
import type { Attributes, Context, Span, Tracer } from "@opentelemetry/api";
import { ErrorCode, MeshError } from "@mesh/core";
import { version } from "../version.js";

/** The tracer provider of an API with nothing registered. */
const NOOP = new ProxyTracerProvider().getDelegate();

/**
 * `on`: a tracer provider is registered (looked at when a node starts, then
 * every second while one runs). `parent`: the context a span or letter made
 * now takes as its parent, set by `within` around a synchronous hand-off.
 */
export const tracing: { on: boolean; parent: Context | undefined } = { on: false, parent: undefined };

let tracer: Tracer | undefined;
let nodes = 0;
let watch: ReturnType<typeof setInterval> | undefined;

function look(): void {
  const provider = trace.getTracerProvider() as { getDelegate?: () => unknown };
  tracing.on = (typeof provider.getDelegate === "function" ? provider.getDelegate() : provider) !== NOOP;
  tracer = tracing.on ? trace.getTracer("@mesh/runtime", version) : undefined;
}

/** A node started: look for a tracer provider now, and every second until the last node stops. */
export function nodeStarted(): void {
  nodes++;
  look();
  watch ??= setInterval(look, 1000).unref();
}

/** A node stopped. */
export function nodeStopped(): void {
  if (--nodes > 0 || watch === undefined) return;
  clearInterval(watch);
  watch = undefined;
}

/** Runs `fn` with `parent` as the parent of the spans and letters it makes before it returns. */
export function within<T>(parent: Context | undefined, fn: () => T): T {
  const outer = tracing.parent;
  tracing.parent = parent;
  try {
    return fn();
  } finally {
    tracing.parent = outer;
  }
}

/** The parent a span started now takes: the hand-off's, else the active context. */
export function currentParent(): Context {
  return tracing.parent ?? context.active();
}

/** Starts a span under `parent`; returns it with the context whose active span it is. */
export function startSpan(name: string, kind: SpanKind, attributes: Attributes, parent: Context): { span: Span; ctx: Context } {
  const span = (tracer ?? trace.getTracer("@mesh/runtime", version)).startSpan(name, { kind, attributes }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** The span active in `ctx`, if any. */
export function spanOf(ctx: Context): Span | undefined {
  return trace.getSpan(ctx);
}

/** Ends a span: well, or with an error code (`code`, else `err`'s) in `mesh.error.code`, `err`'s message and the exception. */
export function endSpan(span: Span, err?: unknown, code?: ErrorCode): void {
  if (err === undefined) {
    span.setAttribute("mesh.outcome", "ok");
  } else {
    code ??= err instanceof MeshError ? err.code : ErrorCode.INTERNAL;
    span.setAttributes({ "mesh.outcome": "error", "mesh.error.code": code });
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${code}: ${err instanceof Error ? err.message : String(err)}` });
  }
  span.end();
}

/** Ends `span` when `promise` settles; returns the promise. */
export function endWhenSettled<T>(span: Span, promise: Promise<T>): Promise<T> {
  promise.then(
    () => endSpan(span),
    (err: unknown) => endSpan(span, err),
  );
  return promise;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The W3C `traceparent` of `ctx`'s span, or undefined when it has none that is valid. */
export function traceparentOf(ctx: Context): string | undefined {
  const sc = trace.getSpanContext(ctx);
  if (sc === undefined || !isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/** The W3C `tracestate` of `ctx`'s span, or undefined when it has none. */
export function tracestateOf(ctx: Context): string | undefined {
  const state = trace.getSpanContext(ctx)?.traceState?.serialize();
  return state ? state : undefined;
}

/**
 * The context a W3C `traceparent` (and `tracestate`) continue, as a remote
 * parent; ROOT_CONTEXT when the header is missing or malformed (a new trace
 * starts: a bad header must not fail the call).
 */
export function contextOf(traceparent: unknown, tracestate?: unknown): Context {
  if (typeof traceparent !== "string") return ROOT_CONTEXT;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (m === null || m[1] === "ff" || (m[1] === "00" && m[5] !== undefined)) return ROOT_CONTEXT;
  const sc = {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: parseInt(m[4]!, 16) & 1,
    isRemote: true,
    ...(typeof tracestate === "string" && tracestate !== "" ? { traceState: createTraceState(tracestate) } : {}),
  };
  return isSpanContextValid(sc) ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

/** The context a message's headers (name to value) carry, as `contextOf`; ROOT_CONTEXT for headers that are not an object. */
export function headersContext(headers: unknown): Context {
  if (typeof headers !== "object" || headers === null) return ROOT_CONTEXT;
  const h = headers as Record<string, unknown>;
  return contextOf(h.traceparent, h.tracestate);
}

/** Adds `traceparent` and `tracestate` for `ctx` to `headers` (unless they name a trace already). */
export function withTraceHeaders(headers: Record<string, string> | undefined, ctx: Context): Record<string, string> | undefined {
  // Headers that are not an object are left as they are, for the caller's check to refuse.
  if (headers !== undefined && (typeof headers !== "object" || headers === null || Array.isArray(headers))) return headers;
  if (headers?.traceparent !== undefined) return headers;
  const parent = traceparentOf(ctx);
  if (parent === undefined) return headers;
  const state = tracestateOf(ctx);
  return { ...headers, traceparent: parent, ...(state !== undefined ? { tracestate: state } : {}) };
}

export { ROOT_CONTEXT, SpanKind, context };
export type { Context, Span };
