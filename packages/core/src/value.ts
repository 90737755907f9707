// The value model: what crosses an actor boundary (payloads, initArg, replies,
// durable state, reminder data), the same whether the actor is on this node or
// another (docs/PROTOCOL.md "Values"). It is what msgpack carries losslessly,
// with JSON's rule for undefined:
//
//   null, booleans, numbers (-0 is carried as 0, as msgpack writes it),
//   well-formed strings, arrays (holes and undefined become null), plain
//   objects (prototype Object.prototype or null; string keys, "__proto__"
//   refused; properties whose value is undefined are left out),
//   Uint8Array (it arrives as a Node Buffer, which is one), Date (valid ones).
//   undefined alone is carried as null.
//
// Everything else is refused before anything runs: Map, Set, class instances,
// other typed arrays and ArrayBuffers, functions, symbols, bigints, invalid
// dates, ill-formed strings (lone surrogates, which UTF-8 cannot carry), and
// values nested deeper than MAX_DEPTH below the top (cycles included).
//
// `copyValue` makes the copy a local call hands over: what the other side
// would get from encoding and decoding, as a value of its own. `checkValue`
// only checks, before a value is encoded for the wire.

import { MeshError } from "./errors.js";

/** The deepest a value may sit below the top one (the msgpack encoder's own limit, counted as it counts). */
export const MAX_DEPTH = 100;

/** A value outside the value model; `message` says what and where. */
export class ValueError extends Error {
  override readonly name = "ValueError";
}

/** What refuses a value: a caller's payload or initArg, an actor's reply, a durable state. */
export type Refusal = "BAD_REQUEST" | "BAD_REPLY" | "BAD_STATE";

/** `copyValue` for one side of a local call; throws MeshError `code`: "<what> cannot be encoded: <why>". */
export function copyAcross(value: unknown, code: Refusal, what: string): unknown {
  try {
    return copyValue(value);
  } catch (err) {
    throw refused(err, code, what);
  }
}

/** `checkValue` before `value` is encoded; returns it. Throws as copyAcross. */
export function checkAcross<T>(value: T, code: Refusal, what: string): T {
  try {
    checkValue(value);
  } catch (err) {
    throw refused(err, code, what);
  }
  return value;
}

function refused(err: unknown, code: Refusal, what: string): MeshError {
  return new MeshError(code, `${what} cannot be encoded: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** A copy of `value` as the value model carries it. Throws ValueError. Primitives come back as they are. */
export function copyValue(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return primitive(value, "");
  return copyObject(value, 0, "");
}

/** Throws ValueError when `value` is outside the value model. */
export function checkValue(value: unknown): void {
  if (typeof value !== "object" || value === null) primitive(value, "");
  else checkObject(value, 0, "");
}

function primitive(value: unknown, at: string): unknown {
  switch (typeof value) {
    case "number":
      return value === 0 ? 0 : value;
    case "string":
      if (!value.isWellFormed()) throw refuse("an ill-formed string (a lone surrogate)", at);
      return value;
    case "boolean":
      return value;
    case "undefined":
      return null;
    case "object":
      return null; // null
    case "bigint":
      throw refuse("a bigint (send it as a string)", at);
    case "symbol":
      throw refuse("a symbol", at);
    default:
      throw refuse("a function", at);
  }
}

function copyObject(value: object, depth: number, at: string): unknown {
  if (depth > MAX_DEPTH) throw tooDeep(at);
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    if (value.length > 0 && depth === MAX_DEPTH) throw tooDeep(`${at}[0]`);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out[i] = typeof v === "object" && v !== null ? copyObject(v, depth + 1, `${at}[${i}]`) : primitive(v, `${at}[${i}]`);
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const v: unknown = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      checkKey(key, at);
      if (depth === MAX_DEPTH) throw tooDeep(`${at}.${key}`);
      out[key] = typeof v === "object" && v !== null ? copyObject(v, depth + 1, `${at}.${key}`) : primitive(v, `${at}.${key}`);
    }
    return out;
  }
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (value instanceof Date) return new Date(checkDate(value, at));
  throw refuse(describe(value), at);
}

function checkObject(value: object, depth: number, at: string): void {
  if (depth > MAX_DEPTH) throw tooDeep(at);
  if (Array.isArray(value)) {
    if (value.length > 0 && depth === MAX_DEPTH) throw tooDeep(`${at}[0]`);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === "object" && v !== null) checkObject(v, depth + 1, `${at}[${i}]`);
      else primitive(v, `${at}[${i}]`);
    }
    return;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    for (const key of Object.keys(value)) {
      const v: unknown = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      checkKey(key, at);
      if (depth === MAX_DEPTH) throw tooDeep(`${at}.${key}`);
      if (typeof v === "object" && v !== null) checkObject(v, depth + 1, `${at}.${key}`);
      else primitive(v, `${at}.${key}`);
    }
    return;
  }
  if (value instanceof Uint8Array) return;
  if (value instanceof Date) {
    checkDate(value, at);
    return;
  }
  throw refuse(describe(value), at);
}

function tooDeep(at: string): ValueError {
  return refuse(`a value nested deeper than ${MAX_DEPTH} levels (or a cycle)`, at);
}

function checkKey(key: string, at: string): void {
  if (key === "__proto__") throw refuse('a "__proto__" key', at);
  if (!key.isWellFormed()) throw refuse("a key that is an ill-formed string", at);
}

function checkDate(d: Date, at: string): number {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw refuse("an invalid Date", at);
  return ms;
}

function describe(value: object): string {
  if (value instanceof Map) return "a Map (use a plain object or an array of pairs)";
  if (value instanceof Set) return "a Set (use an array)";
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `a ${value.constructor.name} (only Uint8Array is carried)`;
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return `an instance of ${name || "a class"} (only plain objects are carried; its prototype would be lost)`;
}

function refuse(what: string, at: string): ValueError {
  return new ValueError(`${what}${at ? ` at ${at.startsWith(".") ? at.slice(1) : at}` : ""} is not carried across an actor boundary`);
}
