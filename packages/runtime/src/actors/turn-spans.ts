// The spans of an actor's turns (docs/observability.md "Traces"): one per
// turn, under the span of the call that asked for it (a timer's or a
// reminder's starts a trace; an event's continues the trace of the message it
// came from), active while the handler runs so that the handler's own spans,
// and the calls it makes, nest under it. Made only while `tracing.on`.
// Imports: the actors room, operations/tracing.ts, the bottom floor.
import {
  ROOT_CONTEXT,
  SpanKind,
  context,
  endSpan,
  headersContext,
  startSpan,
  tracing,
  within,
  withTraceHeaders,
} from "../operations/tracing.js";
import type { Context } from "../operations/tracing.js";
import type { StreamEvent } from "../types.js";
import type { TurnKindName } from "./turn-kind.js";

/** An activation, as its spans name it (activation.ts imports this file: no import back). */
interface Turning {
  readonly pid: string;
  readonly actorType: string;
  readonly id: string;
  readonly capability: string;
  readonly nodeId: string;
}

/** A letter, as its turn's span reads it. */
interface Posted {
  readonly kind: { readonly name: TurnKindName };
  readonly payload: unknown;
  readonly trace: Context | undefined;
}

/** The context of each activation's latest traced turn. */
const turns = new WeakMap<object, Context>();

/** The context of `act`'s current turn (its span active); the active context when it is not traced, or tracing is off. */
export function turnContext(act: object): Context {
  return (tracing.on ? turns.get(act) : undefined) ?? context.active();
}

/**
 * Runs `handle` as the traced turn of `act`: a span `turn <actorType>` (a
 * call's or a cast's; else `timer`, `reminder` or `event <actorType>`)
 * under `parent` (a new trace when undefined), ended when the handler
 * returns or its promise settles (ACTOR_CRASHED when it throws or rejects).
 */
export function tracedTurn<T extends Turning, A>(
  act: T,
  kind: TurnKindName,
  parent: Context | undefined,
  handle: (act: T, arg: A) => unknown,
  arg: A,
  detail?: Record<string, string | number>,
): unknown {
  const pid = act.pid;
  const { span, ctx } = startSpan(
    `${SPANS[kind].name} ${act.actorType}`,
    SPANS[kind].spanKind,
    {
      "mesh.actor.type": act.actorType,
      "mesh.actor.id": act.id,
      "mesh.capability": act.capability,
      "mesh.node": act.nodeId,
      "mesh.actor.pid": pid,
      "mesh.incarnation": Number(pid.slice(pid.lastIndexOf("#") + 1)),
      "mesh.turn": kind,
      ...detail,
    },
    parent ?? ROOT_CONTEXT,
  );
  turns.set(act, ctx);
  let out: unknown;
  try {
    out = within(ctx, () => context.with(ctx, handle, undefined, act, arg));
  } catch (err) {
    endSpan(span, err, "ACTOR_CRASHED");
    throw err;
  }
  if (typeof (out as PromiseLike<unknown> | undefined)?.then === "function") {
    (out as PromiseLike<unknown>).then(
      () => endSpan(span),
      (err: unknown) => endSpan(span, err, "ACTOR_CRASHED"),
    );
  } else {
    endSpan(span);
  }
  return out;
}

/** How each kind of turn's span reads: its name, its kind, its parent and its own attributes. */
const SPANS: {
  readonly [N in TurnKindName]: {
    readonly name: string;
    readonly spanKind: SpanKind;
    /** The span it goes under (undefined: it starts a trace), and what only this kind says. */
    of(letter: Posted): { parent: Context | undefined; detail?: Record<string, string | number> };
  };
} = {
  call: { name: "turn", spanKind: SpanKind.INTERNAL, of: (letter) => ({ parent: letter.trace }) },
  cast: { name: "turn", spanKind: SpanKind.INTERNAL, of: (letter) => ({ parent: letter.trace }) },
  timer: {
    name: "timer",
    spanKind: SpanKind.INTERNAL,
    of: (letter) => ({ parent: undefined, detail: { "mesh.timer": (letter.payload as { name: string }).name } }),
  },
  reminder: {
    name: "reminder",
    spanKind: SpanKind.INTERNAL,
    of: (letter) => ({ parent: undefined, detail: { "mesh.reminder": (letter.payload as { name: string }).name } }),
  },
  event: {
    name: "event",
    spanKind: SpanKind.CONSUMER,
    of: (letter) => {
      const event = letter.payload as StreamEvent;
      return {
        // From another node: under the hop (whose parent is the message's context); from this node's dispatcher: under the message's.
        parent: letter.trace ?? headersContext(event.headers),
        detail: {
          "messaging.system": "nats",
          "messaging.operation.type": "process",
          "messaging.destination.name": event.subject,
          "mesh.event.stream": event.stream,
          "mesh.event.seq": event.seq,
          "mesh.subscription": event.subscription,
        },
      };
    },
  },
};

/** Runs a letter's handler (`handle(act, letter)`) as a traced turn. */
export function tracedLetter<T extends Turning, L extends Posted>(act: T, letter: L, handle: (act: T, letter: L) => unknown): unknown {
  const { parent, detail } = SPANS[letter.kind.name].of(letter);
  return tracedTurn(act, letter.kind.name, parent, handle, letter, detail);
}

/**
 * The headers of a message `act`'s turn publishes, with the W3C context of a
 * `create <subject>` span (messaging's creation context) under the turn.
 */
export function publishHeaders(
  act: Turning,
  subject: string,
  headers: Record<string, string> | undefined,
): Record<string, string> | undefined {
  const { span, ctx } = startSpan(
    `create ${subject}`,
    SpanKind.PRODUCER,
    { "messaging.system": "nats", "messaging.operation.type": "create", "messaging.destination.name": subject, "mesh.actor.pid": act.pid },
    turnContext(act),
  );
  span.end();
  return withTraceHeaders(headers, ctx);
}
