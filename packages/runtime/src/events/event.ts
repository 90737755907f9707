// Stream events as actors see them (handleEvent), as they cross the wire to
// their owner, and the messages turns publish (ctx.publish). Imports: the
// bottom floor only.
import { MeshError, isToken } from "@mesh/core";
import type { OutMessage } from "../state/record.js";
import type { StreamEvent } from "../types.js";

/**
 * An event on the wire to its actor's owner, in a request of kind 2 (docs/PROTOCOL.md):
 * [name, stream or nil when it is the name, seq, subject, data, headers or nil, time, era?].
 * The owner makes the subscription `<capability>.<actorType>.<name>` from the request's head.
 * The era (absent: 0) counts the times the stream was deleted and made again (layout-record.ts).
 */
export type WireEvent =
  | [string, string | null, number, string, Uint8Array, { readonly [name: string]: string } | null, number]
  | [string, string | null, number, string, Uint8Array, { readonly [name: string]: string } | null, number, number];

const utf8 = new TextDecoder();

/** A stream event, as handleEvent receives it. */
export class MeshEvent implements StreamEvent {
  /** The subscription's name (the last part of `subscription`), for the wire. */
  readonly #name: string;

  constructor(
    readonly subscription: string,
    readonly stream: string,
    readonly seq: number,
    readonly subject: string,
    readonly data: Uint8Array,
    readonly headers: { readonly [name: string]: string },
    readonly time: number,
    name: string,
    /** How many times the stream was made again before this event was read: sequences start over in each era. */
    readonly era: number,
  ) {
    this.#name = name;
  }

  /** Where the actor's applied map keeps the highest sequence it applied of this subscription in this era. */
  get appliedKey(): string {
    return appliedKey(this.subscription, this.era);
  }

  text(): string {
    return utf8.decode(this.data);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }

  /** Its wire form. */
  toWire(): WireEvent {
    const w: WireEvent = [
      this.#name,
      this.stream === this.#name ? null : this.stream,
      this.seq,
      this.subject,
      this.data,
      this.headers,
      this.time,
    ];
    if (this.era > 0) w.push(this.era);
    return w;
  }

  /** The event from its wire form, sent to an actor of `actorType` under `capability`. Throws BAD_REQUEST when it is not one. */
  static from(wire: unknown, capability: string, actorType: string): MeshEvent {
    const w = wire as WireEvent;
    const ok =
      Array.isArray(w) &&
      (w.length === 7 || (w.length === 8 && Number.isSafeInteger(w[7]) && w[7] > 0)) &&
      isToken(w[0]) &&
      (w[1] === null || isToken(w[1])) &&
      Number.isSafeInteger(w[2]) &&
      w[2] > 0 &&
      typeof w[3] === "string" &&
      w[4] instanceof Uint8Array &&
      (w[5] === null || (typeof w[5] === "object" && Object.values(w[5]).every((v) => typeof v === "string"))) &&
      typeof w[6] === "number";
    if (!ok)
      throw new MeshError("BAD_REQUEST", "malformed event: expected [name, stream or nil, seq, subject, data, headers or nil, time, era?]");
    return MeshEvent.of(w, capability, actorType);
  }

  /** The event from a wire form this node made (its dispatcher's, or toWire's): not checked again. */
  static of(w: WireEvent, capability: string, actorType: string): MeshEvent {
    return new MeshEvent(`${capability}.${actorType}.${w[0]}`, w[1] ?? w[0], w[2], w[3], w[4], w[5] ?? {}, w[6], w[0], w[7] ?? 0);
  }
}

/** The applied map's key of `subscription` in `era`: the subscription's id in the first, `<id>~<era>` after (ids have no `~`). */
export const appliedKey = (subscription: string, era: number): string => (era === 0 ? subscription : `${subscription}~${era}`);

const encoder = new TextEncoder();

/** A NATS subject one may publish to: dot-separated tokens, no wildcards, no whitespace. */
export function isPublishSubject(subject: unknown): subject is string {
  return typeof subject === "string" && subject.length > 0 && subject.length <= 1024 && /^[^.\s*>]+(\.[^.\s*>]+)*$/.test(subject);
}

/** A subject filter: a subject whose tokens may be `*`, and whose last may be `>`. */
export function isFilterSubject(subject: unknown): subject is string {
  return typeof subject === "string" && subject.length > 0 && /^([^.\s*>]+|\*)(\.([^.\s*>]+|\*))*(\.>)?$|^>$/.test(subject);
}

/** A message header name: printable ASCII without ':' or spaces. */
const HEADER = /^[!-9;-~]+$/;

/**
 * Checks a message a turn publishes and encodes its data: bytes as they are,
 * a string as UTF-8, anything else as JSON. Throws BAD_REQUEST. The id is
 * given when it is published (outbox.ts, group-commit.ts).
 */
export function outgoing(subject: string, data: unknown, headers: Record<string, string> | undefined, maxBytes: number): OutMessage {
  if (!isPublishSubject(subject))
    throw new MeshError(
      "BAD_REQUEST",
      `ctx.publish: subject must be a NATS subject without wildcards or spaces, got ${JSON.stringify(subject)}`,
    );
  let bytes: Uint8Array;
  if (data instanceof Uint8Array) bytes = data.slice();
  else if (typeof data === "string") bytes = encoder.encode(data);
  else {
    let json: string | undefined;
    try {
      json = JSON.stringify(data);
    } catch (err) {
      throw new MeshError("BAD_REQUEST", `ctx.publish: data is not bytes, a string or JSON-serialisable: ${(err as Error).message}`);
    }
    if (json === undefined) throw new MeshError("BAD_REQUEST", "ctx.publish: data is not bytes, a string or JSON-serialisable");
    bytes = encoder.encode(json);
  }
  if (bytes.length > maxBytes)
    throw new MeshError("PAYLOAD_TOO_LARGE", `ctx.publish: the message is ${bytes.length} bytes; the limit is ${maxBytes}`);
  let copy: Record<string, string> | undefined;
  if (headers !== undefined) {
    if (typeof headers !== "object" || headers === null)
      throw new MeshError("BAD_REQUEST", "ctx.publish: headers must be an object of strings");
    copy = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!HEADER.test(name) || typeof value !== "string" || /[\r\n]/.test(value)) {
        throw new MeshError("BAD_REQUEST", `ctx.publish: header ${JSON.stringify(name)} must be a token name with a one-line string value`);
      }
      copy[name] = value;
    }
  }
  return { id: "", subject, data: bytes, headers: copy };
}
