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
import type { ReminderInfo, StreamEvent } from "../types.js";

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
  readonly cast: boolean;
  readonly payload: unknown;
  readonly system?: "timer" | "reminder" | "event" | undefined;
  readonly trace: Context | undefined;
}

/** The context of each activation's latest traced turn. */
const turns = new WeakMap<object, Context>();

/** The context of `act`'s current turn (its span active); the active context when it is not traced, or tracing is off. */
export function turnContext(act: object): Context {
  return (tracing.on ? turns.get(act) : undefined) ?? context.active();
}

/** What a turn runs for. */
export type TurnKind = "call" | "cast" | "timer" | "reminder" | "event";

/**
 * Runs `handle` as the traced turn of `act`: a span `turn <actorType>` (a
 * call's or a cast's; else `timer`, `reminder` or `event <actorType>`)
 * under `parent` (a new trace when undefined), ended when the handler
 * returns or its promise settles (ACTOR_CRASHED when it throws or rejects).
 */
export function tracedTurn<T extends Turning, A>(
  act: T,
  kind: TurnKind,
  parent: Context | undefined,
  handle: (act: T, arg: A) => unknown,
  arg: A,
  detail?: Record<string, string | number>,
): unknown {
  const pid = act.pid;
  const { span, ctx } = startSpan(
    `${kind === "call" || kind === "cast" ? "turn" : kind} ${act.actorType}`,
    kind === "event" ? SpanKind.CONSUMER : SpanKind.INTERNAL,
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

/** Runs a letter's handler (`handle(act, letter)`) as a traced turn. */
export function tracedLetter<T extends Turning, L extends Posted>(act: T, letter: L, handle: (act: T, letter: L) => unknown): unknown {
  switch (letter.system) {
    case "timer":
      return tracedTurn(act, "timer", undefined, handle, letter, { "mesh.timer": letter.payload as string });
    case "reminder":
      return tracedTurn(act, "reminder", undefined, handle, letter, {
        "mesh.reminder": (letter.payload as { name: string; info: ReminderInfo }).name,
      });
    case "event": {
      const event = letter.payload as StreamEvent;
      // From another node: under the hop (whose parent is the message's context); from this node's dispatcher: under the message's.
      const from = letter.trace ?? headersContext(event.headers);
      return tracedTurn(act, "event", from, handle, letter, {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.destination.name": event.subject,
        "mesh.event.stream": event.stream,
        "mesh.event.seq": event.seq,
        "mesh.subscription": event.subscription,
      });
    }
    default:
      return tracedTurn(act, letter.cast ? "cast" : "call", letter.trace, handle, letter);
  }
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
