// Reads a msgpack value the way @msgpack/msgpack's Decoder does, without its
// per-call setup: 300 ns for `{ action, n }` with the library, the largest part
// of decoding a remote call's envelope on each side (bench: `remote calls`).
// It reads what Mesh and most clients write: nil, booleans, every integer and
// float form, UTF-8 strings, binaries (views on the message, as the library
// returns), arrays and maps with string keys. What it does not read (an
// extension, a Date's timestamp, a key that is not a string, invalid UTF-8, a
// `__proto__` key) is left to the library, which then decodes the whole value,
// as before, once the bytes were checked to hold one value, nested at most
// READ_DEPTH deep, each array or map with no more elements than bytes left:
// the library makes each array at the size it claims, so five bytes claiming
// 2^32 - 1 elements took 134 MB and a few of them nested ran a node out of
// memory (a 65-byte ingress request). Bytes that are not one such value are
// refused here (MalformedValue), never handed on. Departures from the library:
// a string's leading byte order mark is kept, at every length (its
// TextDecoder drops it from strings past 200 bytes), and nesting past
// READ_DEPTH is refused (the value model refuses past 100 levels anyway).
import { Decoder } from "@msgpack/msgpack";
import { asciiText } from "./ascii-text.js";

const library = new Decoder();
/** Strict, and a leading byte order mark is kept (TextDecoder drops it by default; so does the library past 200 bytes). */
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ASIDE = new Error("for the msgpack library");
/** Deeper than this, a value is refused. */
const READ_DEPTH = 512;

/** Bytes that are not one msgpack value (truncated, padded, a count past the bytes left, an unused type), or nested too deep. */
export class MalformedValue extends Error {
  override readonly name = "MalformedValue";
}

/**
 * Decodes `bytes[start..end)`, one whole msgpack value (read in place: a value at the end of an envelope
 * needs no view of its own). Throws MalformedValue for bytes that are not one value, and what
 * @msgpack/msgpack's Decoder.decode throws for one it refuses (an unknown extension's reader).
 */
export function decodeValue(bytes: Uint8Array, start = 0, end = bytes.length): unknown {
  if (end > bytes.length) end = bytes.length;
  reader.buf = bytes;
  reader.pos = start;
  reader.end = end;
  try {
    try {
      const value = reader.value(0);
      reader.done();
      return value;
    } catch (err) {
      if (err !== ASIDE) throw err;
    }
    reader.pos = start; // the library's: its bytes are checked first
    reader.skip(0);
    reader.done();
  } finally {
    reader.buf = EMPTY;
  }
  return library.decode(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
}

/**
 * `decodeValue`, refusing (MalformedValue) what the library would read leniently: a string that is not UTF-8
 * (two byte strings would read as one), a map key that is not a string. For what comes from outside (the ingress).
 */
export function decodeStrict(bytes: Uint8Array): unknown {
  reader.strict = true;
  try {
    return decodeValue(bytes);
  } finally {
    reader.strict = false;
  }
}

/** The bytes each fixed-size type's value takes after its type byte (floats, integers, fixed extensions). */
const FIXED = new Map([
  [0xca, 4],
  [0xcb, 8],
  [0xcc, 1],
  [0xcd, 2],
  [0xce, 4],
  [0xcf, 8],
  [0xd0, 1],
  [0xd1, 2],
  [0xd2, 4],
  [0xd3, 8],
  [0xd4, 2],
  [0xd5, 3],
  [0xd6, 5],
  [0xd7, 9],
  [0xd8, 17],
]);

const EMPTY = new Uint8Array(0);

class Reader {
  buf: Uint8Array = EMPTY;
  /** decodeStrict: invalid UTF-8 and keys that are not strings are refused, not left to the library. */
  strict = false;
  pos = 0;
  /** Where the value's bytes end: nothing at or past it is read. */
  end = 0;
  #view: DataView | undefined;

  value(depth: number): unknown {
    if (this.pos >= this.end) throw TRUNCATED();
    const t = this.buf[this.pos++]!;
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t >= 0xa0 && t < 0xc0) return this.str(t & 0x1f);
    if (t >= 0x90 && t < 0xa0) return this.array(t & 0x0f, depth);
    if (t >= 0x80 && t < 0x90) return this.map(t & 0x0f, depth);
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.u(1));
      case 0xc5:
        return this.bin(this.u(2));
      case 0xc6:
        return this.bin(this.u(4));
      case 0xca:
        return this.float(4);
      case 0xcb:
        return this.float(8);
      case 0xcc:
        return this.u(1);
      case 0xcd:
        return this.u(2);
      case 0xce:
        return this.u(4);
      case 0xcf: {
        const high = this.u(4);
        return high * 0x100000000 + this.u(4);
      }
      case 0xd0:
        return (this.u(1) << 24) >> 24;
      case 0xd1:
        return (this.u(2) << 16) >> 16;
      case 0xd2:
        return this.u(4) | 0;
      case 0xd3: {
        const high = this.u(4) | 0;
        return high * 0x100000000 + this.u(4);
      }
      case 0xd9:
        return this.str(this.u(1));
      case 0xda:
        return this.str(this.u(2));
      case 0xdb:
        return this.str(this.u(4));
      case 0xdc:
        return this.array(this.u(2), depth);
      case 0xdd:
        return this.array(this.u(4), depth);
      case 0xde:
        return this.map(this.u(2), depth);
      case 0xdf:
        return this.map(this.u(4), depth);
      case 0xc1:
        throw new MalformedValue("0xc1 is not a msgpack type");
      default:
        throw ASIDE; // extensions (0xc7-0xc9, 0xd4-0xd8)
    }
  }

  /** Throws MalformedValue when bytes are left after the value. */
  done(): void {
    if (this.pos !== this.end) throw new MalformedValue(`${this.end - this.pos} extra byte(s) after the msgpack value`);
  }

  /** Goes past one value without making it, checking its structure (what the library is handed). */
  skip(depth: number): void {
    if (this.pos >= this.end) throw TRUNCATED();
    const t = this.buf[this.pos++]!;
    if (t < 0x80 || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return;
    if (t >= 0xa0 && t < 0xc0) return this.text(t & 0x1f);
    if (t >= 0x90 && t < 0xa0) return this.items(t & 0x0f, depth);
    if (t >= 0x80 && t < 0x90) return this.entries(t & 0x0f, depth);
    const fixed = FIXED.get(t);
    if (fixed !== undefined) return this.bytes(fixed);
    switch (t) {
      case 0xc4:
        return this.bytes(this.u(1));
      case 0xc5:
        return this.bytes(this.u(2));
      case 0xc6:
        return this.bytes(this.u(4));
      case 0xd9:
        return this.text(this.u(1));
      case 0xda:
        return this.text(this.u(2));
      case 0xdb:
        return this.text(this.u(4));
      case 0xc7:
        return this.bytes(this.u(1) + 1); // an extension: its length, then its type
      case 0xc8:
        return this.bytes(this.u(2) + 1);
      case 0xc9:
        return this.bytes(this.u(4) + 1);
      case 0xdc:
        return this.items(this.u(2), depth);
      case 0xdd:
        return this.items(this.u(4), depth);
      case 0xde:
        return this.entries(this.u(2), depth);
      case 0xdf:
        return this.entries(this.u(4), depth);
      default:
        throw new MalformedValue("0xc1 is not a msgpack type");
    }
  }

  bytes(n: number): void {
    if (n > this.end - this.pos) throw TRUNCATED();
    this.pos += n;
  }

  /** A string of `len` bytes, gone past (checked as UTF-8 when strict). */
  text(len: number): void {
    if (this.strict) this.str(len);
    else this.bytes(len);
  }

  /** A map's `n` keys and values, one level down (its keys strings, when strict). */
  entries(n: number, depth: number): void {
    this.fits(2 * n, depth);
    for (let i = 0; i < n; i++) {
      if (this.strict && this.pos < this.end && !isString(this.buf[this.pos]!)) throw NOT_STRING_KEY();
      this.skip(depth + 1);
      this.skip(depth + 1);
    }
  }

  /** `n` values (an array's), one level down. */
  items(n: number, depth: number): void {
    this.fits(n, depth);
    for (let i = 0; i < n; i++) this.skip(depth + 1);
  }

  /** Throws MalformedValue unless `n` values one level below `depth` may follow: not too deep, and no more than the bytes left. */
  fits(n: number, depth: number): void {
    if (depth >= READ_DEPTH) throw new MalformedValue(`a msgpack value nested deeper than ${READ_DEPTH} levels`);
    if (n > this.end - this.pos)
      throw new MalformedValue(`a msgpack array or map claims ${n} items with ${this.end - this.pos} bytes left`);
  }

  /** An unsigned big-endian integer of `n` bytes (1, 2 or 4). */
  u(n: 1 | 2 | 4): number {
    const b = this.buf;
    const p = this.pos;
    if (p + n > this.end) throw TRUNCATED();
    this.pos = p + n;
    if (n === 1) return b[p]!;
    if (n === 2) return (b[p]! << 8) | b[p + 1]!;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  float(n: 4 | 8): number {
    const p = this.pos;
    if (p + n > this.end) throw TRUNCATED();
    this.pos = p + n;
    const view = this.view();
    return n === 4 ? view.getFloat32(p) : view.getFloat64(p);
  }

  view(): DataView {
    const b = this.buf;
    if (this.#view?.buffer !== b.buffer || this.#view.byteOffset !== b.byteOffset || this.#view.byteLength !== b.byteLength)
      this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return this.#view;
  }

  str(len: number): string {
    const b = this.buf;
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw TRUNCATED();
    this.pos = end;
    return asciiText(b, start, end) ?? this.utf8(start, end);
  }

  utf8(start: number, end: number): string {
    try {
      return strict.decode(this.buf.subarray(start, end));
    } catch {
      throw this.strict ? new MalformedValue("a msgpack string that is not UTF-8") : ASIDE; // else the library decides what it becomes
    }
  }

  bin(len: number): Uint8Array {
    const start = this.pos;
    if (start + len > this.end) throw TRUNCATED();
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  array(n: number, depth: number): unknown[] {
    this.fits(n, depth);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  map(n: number, depth: number): Record<string, unknown> {
    this.fits(2 * n, depth);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const t = this.pos < this.end ? this.buf[this.pos] : undefined;
      if (t === undefined || !isString(t)) throw this.strict && t !== undefined ? NOT_STRING_KEY() : ASIDE; // a key that is not a string
      const key = this.value(depth + 1) as string;
      if (key === "__proto__") throw ASIDE;
      out[key] = this.value(depth + 1);
    }
    return out;
  }
}

const NOT_STRING_KEY = () => new MalformedValue("a msgpack map key that is not a string");

/** A type byte of a string: fixstr, str8, str16, str32. */
function isString(t: number): boolean {
  return (t >= 0xa0 && t < 0xc0) || t === 0xd9 || t === 0xda || t === 0xdb;
}

const TRUNCATED = () => new MalformedValue("truncated msgpack: a value goes past the bytes given");

const reader = new Reader();
