// Writes a value as msgpack and checks it against the value model in the same
// walk (value.ts says what the model carries). Before it, a value was walked
// twice on its way to the wire, once to check it and once by the msgpack
// library to encode it; one walk halves that work on both sides of a remote
// call (bench: `remote calls`).
//
// The bytes are what @msgpack/msgpack writes for the same value (shortest
// integer forms, float64 otherwise, Date as the timestamp extension), so any
// msgpack reader reads them. The walk only says "refused": the reason, with
// where in the value it sits, comes from checkValue, run again on the refused
// value (the rare path). Should checkValue find nothing wrong, the library
// encodes the value, so a value is never refused here that checkValue allows.
import { Encoder } from "@msgpack/msgpack";
import { HeadWriter } from "./msgpack-head.js";
import { MAX_DEPTH, type Refusal, checkAcross } from "./value.js";
import { MeshError } from "./errors.js";

const library = new Encoder({ ignoreUndefined: true });
const REFUSED = new Error("refused by the value model");

/**
 * Appends `value` to `w`; throws MeshError `code` ("<what>[ of <of>] cannot be
 * encoded: <why>") for a value outside the model (`of` is joined only then).
 */
export function writeValue(w: HeadWriter, value: unknown, code: Refusal, what: string, of?: string): void {
  const start = w.pos;
  try {
    write(w, value, 0);
  } catch (err) {
    if (err !== REFUSED) throw err;
    w.pos = start;
    if (of !== undefined) what = `${what} of ${of}`;
    checkAcross(value, code, what); // throws, with the reason
    try {
      w.raw(library.encodeSharedRef(value));
    } catch (e) {
      throw new MeshError(code, `${what} cannot be encoded: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

/** `value` encoded on its own, in a buffer the next call reuses. Throws as writeValue. */
export function encodeValue(value: unknown, code: Refusal, what: string, of?: string): Uint8Array {
  const w = own.reset();
  writeValue(w, value, code, what, of);
  return w.buf.subarray(0, w.pos);
}
const own = new HeadWriter();

function write(w: HeadWriter, v: unknown, depth: number): void {
  switch (typeof v) {
    case "string":
      return w.str(v, refuse);
    case "number":
      return number(w, v);
    case "boolean":
      return w.byte(v ? 0xc3 : 0xc2);
    case "undefined":
      return w.byte(0xc0);
    case "object":
      if (v === null) return w.byte(0xc0);
      return object(w, v, depth);
    default:
      throw REFUSED; // bigint, symbol, function
  }
}

function object(w: HeadWriter, v: object, depth: number): void {
  if (Array.isArray(v)) {
    const n = v.length;
    if (n > 0 && depth === MAX_DEPTH) throw REFUSED;
    if (n < 16) w.byte(0x90 | n);
    else if (n < 0x10000) {
      w.byte(0xdc);
      w.u16(n);
    } else {
      w.byte(0xdd);
      w.u32(n);
    }
    for (let i = 0; i < n; i++) write(w, v[i], depth + 1);
    return;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return map(w, v as Record<string, unknown>, depth);
  if (v instanceof Uint8Array) return binary(w, v);
  if (v instanceof Date && !Number.isNaN(v.getTime())) return w.raw(library.encodeSharedRef(v));
  throw REFUSED;
}

function map(w: HeadWriter, v: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(v);
  let n = keys.length;
  // Properties whose value is undefined are left out: up to 15 keys, the count is patched in afterwards.
  const small = n < 16;
  const at = w.pos;
  if (small) w.byte(0x80);
  else {
    n = 0;
    for (const key of keys) if (v[key] !== undefined) n++;
    if (n < 16) w.byte(0x80 | n);
    else if (n < 0x10000) {
      w.byte(0xde);
      w.u16(n);
    } else {
      w.byte(0xdf);
      w.u32(n);
    }
  }
  let written = 0;
  for (const key of keys) {
    const value = v[key];
    if (value === undefined) continue;
    if (depth === MAX_DEPTH || key === "__proto__") throw REFUSED;
    w.str(key, refuse);
    write(w, value, depth + 1);
    written++;
  }
  if (small) w.buf[at] = 0x80 | written;
}

/** What the writer's walk throws for a value outside the model: writeValue then asks checkValue why. */
function refuse(): never {
  throw REFUSED;
}

function number(w: HeadWriter, x: number): void {
  if (Number.isSafeInteger(x)) {
    if (x >= 0) {
      if (x < 0x80) w.byte(x);
      else if (x < 0x100) {
        w.byte(0xcc);
        w.byte(x);
      } else if (x < 0x10000) {
        w.byte(0xcd);
        w.u16(x);
      } else if (x < 0x100000000) {
        w.byte(0xce);
        w.u32(x);
      } else {
        w.byte(0xcf);
        w.u32(Math.floor(x / 0x100000000));
        w.u32(x >>> 0);
      }
      return;
    }
    if (x >= -0x20) w.byte(0xe0 | (x + 0x20));
    else if (x >= -0x80) {
      w.byte(0xd0);
      w.byte(x & 0xff);
    } else if (x >= -0x8000) {
      w.byte(0xd1);
      w.u16(x & 0xffff);
    } else if (x >= -0x80000000) {
      w.byte(0xd2);
      w.u32(x >>> 0);
    } else {
      w.byte(0xd3);
      w.u32(Math.floor(x / 0x100000000) >>> 0);
      w.u32(x >>> 0);
    }
    return;
  }
  w.room(9);
  w.buf[w.pos] = 0xcb;
  w.view().setFloat64(w.pos + 1, x);
  w.pos += 9;
}

function binary(w: HeadWriter, v: Uint8Array): void {
  const n = v.byteLength;
  if (n < 0x100) {
    w.byte(0xc4);
    w.byte(n);
  } else if (n < 0x10000) {
    w.byte(0xc5);
    w.u16(n);
  } else {
    w.byte(0xc6);
    w.u32(n);
  }
  w.raw(v);
}
