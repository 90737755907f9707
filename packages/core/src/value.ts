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
import { NOT_HERE, ShapeCopies } from "./value-shapes.js";

/** The deepest a value may sit below the top one (the msgpack encoder's own limit, counted as it counts). */
export const MAX_DEPTH = 100;

/** A value outside the value model; `message` says what and where. */
export class ValueError extends Error {
  override readonly name = "ValueError";
  /** Where in the value, outermost first: keys, and indexes of arrays (added as the walk unwinds). */
  readonly path: (string | number)[] = [];
  constructor(readonly what: string) {
    super(`${what} is not carried across an actor boundary`);
  }
  /** The message, with the path the walk found. */
  placed(): this {
    const at = this.path.map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`)).join("");
    this.message = `${this.what}${at ? ` at ${at.startsWith(".") ? at.slice(1) : at}` : ""} is not carried across an actor boundary`;
    return this;
  }
}

/** What refuses a value: a caller's payload or initArg, an actor's reply, a durable state. */
export type Refusal = "BAD_REQUEST" | "BAD_REPLY" | "BAD_STATE";

/** `copyValue` for one side of a local call; throws MeshError `code`: "<what> cannot be encoded: <why>". */
export function copyAcross(value: unknown, code: Refusal, what: string): unknown {
  try {
    return copyValue(value);
  } catch (err) {
    throw valueRefused(err, code, what);
  }
}

/** `checkValue` before `value` is encoded; returns it. Throws as copyAcross. */
export function checkAcross<T>(value: T, code: Refusal, what: string): T {
  try {
    checkValue(value);
  } catch (err) {
    throw valueRefused(err, code, what);
  }
  return value;
}

/** The error of copyAcross and checkAcross: `what` (say, "the payload") cannot be encoded, with the reason `err` gives. */
export function valueRefused(err: unknown, code: Refusal, what: string): MeshError {
  return new MeshError(code, `${what} cannot be encoded: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** A copy of `value` as the value model carries it. Throws ValueError. Primitives come back as they are. */
export function copyValue(value: unknown): unknown {
  try {
    if (typeof value !== "object" || value === null) return primitive(value);
    inherited = inheritsEnumerable();
    return copyObject(value, 0);
  } catch (err) {
    throw err instanceof ValueError ? err.placed() : err;
  }
}

/** Throws ValueError when `value` is outside the value model. */
export function checkValue(value: unknown): void {
  try {
    if (typeof value !== "object" || value === null) primitive(value);
    else {
      inherited = inheritsEnumerable();
      checkObject(value, 0);
    }
  } catch (err) {
    throw err instanceof ValueError ? err.placed() : err;
  }
}

// The walks build no path as they go (a string per property cost a local call with a 20-field payload
// half its time): a refusal collects its path as it unwinds (`under`), and the top places it.
// They read an object's keys with for-in, whose loads V8 serves from the object's shape (a copy of a
// 20-field object: 587 ns with Object.keys, 405 ns so); for-in also lists inherited enumerable keys,
// which only a process that added some to Object.prototype has: then each key is checked to be own.

/** Whether Object.prototype has enumerable properties now (a library added some): the walks then skip inherited keys. */
let inherited = false;

function inheritsEnumerable(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

function primitive(value: unknown): unknown {
  switch (typeof value) {
    case "number":
      return value === 0 ? 0 : value;
    case "string":
      if (!value.isWellFormed()) throw new ValueError("an ill-formed string (a lone surrogate)");
      return value;
    case "boolean":
      return value;
    case "undefined":
      return null;
    case "object":
      return null; // null
    case "bigint":
      throw new ValueError("a bigint (send it as a string)");
    case "symbol":
      throw new ValueError("a symbol");
    default:
      throw new ValueError("a function");
  }
}

/** `err`, a refusal inside the value at `step` (a key or an index), with that step in its path. */
function under(err: unknown, step: string | number): unknown {
  if (err instanceof ValueError) err.path.unshift(step);
  return err;
}

function copyObject(value: object, depth: number): unknown {
  if (depth > MAX_DEPTH) throw tooDeep();
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    if (value.length > 0 && depth === MAX_DEPTH) throw under(tooDeep(), 0);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      try {
        out[i] = typeof v === "object" && v !== null ? copyObject(v, depth + 1) : primitive(v);
      } catch (err) {
        throw under(err, i);
      }
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    if (!inherited) {
      const byShape = depth < MAX_DEPTH ? shapes.copy(value, depth) : NOT_HERE;
      if (byShape !== NOT_HERE) return byShape;
      if (manyKeys(value) && Object.getOwnPropertySymbols(value).length === 0) {
        const out = spreadCopy(value as Record<string, unknown>, depth);
        if (out !== undefined) return out;
      }
    }
    const out: Record<string, unknown> = {};
    for (const key in value) {
      if (inherited && !Object.hasOwn(value, key)) continue;
      const v: unknown = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      checkKey(key);
      if (depth === MAX_DEPTH) throw under(tooDeep(), key);
      try {
        out[key] = typeof v === "object" && v !== null ? copyObject(v, depth + 1) : primitive(v);
      } catch (err) {
        throw under(err, key);
      }
    }
    return out;
  }
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (value instanceof Date) return new Date(checkDate(value));
  throw new ValueError(describe(value));
}

/** Plain objects, copied by their shape (value-shapes.ts); what the shape's copy cannot decide comes back here. */
const shapes = new ShapeCopies({
  nested: copyObject,
  primitive: (v) =>
    typeof v === "number" ? (v === 0 ? 0 : v) : typeof v === "boolean" || (typeof v === "string" && v.isWellFormed()) ? v : NOT_HERE,
  under,
});

/** From this many keys, an object is copied by spreading it (`{ ...value }`, which copies its shape whole) and fixing the copy up. */
const SPREAD_FROM = 8;

function manyKeys(value: object): boolean {
  let n = 0;
  for (const _ in value) if (++n >= SPREAD_FROM) return true;
  return false;
}

/**
 * A copy of a plain object with many keys and no symbol keys (spread would copy those): its values checked and
 * nested objects copied in place, in key order, as the key-by-key copy does. Undefined when a value is undefined (the
 * copy would have to drop that key, which makes the object a slow dictionary): the key-by-key copy does it. That is
 * looked for first, so that no nested value is copied twice.
 */
function spreadCopy(value: Record<string, unknown>, depth: number): Record<string, unknown> | undefined {
  const out = { ...value };
  for (const key in out) if (out[key] === undefined) return undefined;
  for (const key in out) {
    const v = out[key];
    checkKey(key);
    if (depth === MAX_DEPTH) throw under(tooDeep(), key);
    try {
      if (typeof v === "object" && v !== null) out[key] = copyObject(v, depth + 1);
      else if (primitive(v) === 0) out[key] = 0; // -0 becomes 0 (primitive returns every other primitive it accepts as it is)
    } catch (err) {
      throw under(err, key);
    }
  }
  return out;
}

function checkObject(value: object, depth: number): void {
  if (depth > MAX_DEPTH) throw tooDeep();
  if (Array.isArray(value)) {
    if (value.length > 0 && depth === MAX_DEPTH) throw under(tooDeep(), 0);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      try {
        if (typeof v === "object" && v !== null) checkObject(v, depth + 1);
        else primitive(v);
      } catch (err) {
        throw under(err, i);
      }
    }
    return;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    for (const key in value) {
      if (inherited && !Object.hasOwn(value, key)) continue;
      const v: unknown = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      checkKey(key);
      if (depth === MAX_DEPTH) throw under(tooDeep(), key);
      try {
        if (typeof v === "object" && v !== null) checkObject(v, depth + 1);
        else primitive(v);
      } catch (err) {
        throw under(err, key);
      }
    }
    return;
  }
  if (value instanceof Uint8Array) return;
  if (value instanceof Date) {
    checkDate(value);
    return;
  }
  throw new ValueError(describe(value));
}

function tooDeep(): ValueError {
  return new ValueError(`a value nested deeper than ${MAX_DEPTH} levels (or a cycle)`);
}

function checkKey(key: string): void {
  if (key === "__proto__") throw new ValueError('a "__proto__" key');
  if (!key.isWellFormed()) throw new ValueError("a key that is an ill-formed string");
}

function checkDate(d: Date): number {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new ValueError("an invalid Date");
  return ms;
}

function describe(value: object): string {
  if (value instanceof Map) return "a Map (use a plain object or an array of pairs)";
  if (value instanceof Set) return "a Set (use an array)";
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `a ${value.constructor.name} (only Uint8Array is carried)`;
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return `an instance of ${name || "a class"} (only plain objects are carried; its prototype would be lost)`;
}
