// Reads a msgpack value the way @msgpack/msgpack's Decoder does, without its
// per-call setup: 300 ns for `{ action, n }` with the library, the largest part
// of decoding a remote call's envelope on each side (bench: `remote calls`).
// It reads what Mesh and most clients write: nil, booleans, every integer and
// float form, UTF-8 strings, binaries (views on the message, as the library
// returns), arrays and maps with string keys. Anything else (an extension, a
// Date's timestamp, a key that is not a string, invalid UTF-8, truncated or
// trailing bytes, nesting past READ_DEPTH) is left to the library, which then
// decodes the whole value, or reports what is wrong with it, as before. One
// departure: a string's leading byte order mark is kept, at every length (the
// library's TextDecoder drops it from strings past 200 bytes).
import { Decoder } from "@msgpack/msgpack";

const library = new Decoder();
/** Strict, and a leading byte order mark is kept (TextDecoder drops it by default; so does the library past 200 bytes). */
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ASIDE = new Error("for the msgpack library");
/** Deeper than this, the library reads the value (it does not recurse). */
const READ_DEPTH = 512;

/**
 * Decodes `bytes[start..end)`, one whole msgpack value (read in place: a value at the end of an envelope
 * needs no view of its own). Throws as @msgpack/msgpack's Decoder.decode.
 */
export function decodeValue(bytes: Uint8Array, start = 0, end = bytes.length): unknown {
  if (end > bytes.length) end = bytes.length;
  reader.buf = bytes;
  reader.pos = start;
  reader.end = end;
  try {
    const value = reader.value(0);
    if (reader.pos === end) return value;
  } catch (err) {
    if (err !== ASIDE && !(err instanceof RangeError)) throw err;
  } finally {
    reader.buf = EMPTY;
  }
  return library.decode(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
}

const EMPTY = new Uint8Array(0);

class Reader {
  buf: Uint8Array = EMPTY;
  pos = 0;
  /** Where the value's bytes end: nothing at or past it is read. */
  end = 0;
  #view: DataView | undefined;

  value(depth: number): unknown {
    if (this.pos >= this.end) throw ASIDE;
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
      default:
        throw ASIDE; // extensions (0xc7-0xc9, 0xd4-0xd8) and the unused 0xc1
    }
  }

  /** An unsigned big-endian integer of `n` bytes (1, 2 or 4). */
  u(n: 1 | 2 | 4): number {
    const b = this.buf;
    const p = this.pos;
    if (p + n > this.end) throw ASIDE;
    this.pos = p + n;
    if (n === 1) return b[p]!;
    if (n === 2) return (b[p]! << 8) | b[p + 1]!;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  float(n: 4 | 8): number {
    const p = this.pos;
    if (p + n > this.end) throw ASIDE;
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
    if (end > this.end) throw ASIDE;
    this.pos = end;
    if (len < 32) {
      // Short ASCII (keys, ids, most words): built by hand, faster than a decoder call.
      let s = "";
      for (let i = start; i < end; i++) {
        const c = b[i]!;
        if (c > 0x7f) return this.utf8(start, end);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.utf8(start, end);
  }

  utf8(start: number, end: number): string {
    try {
      return strict.decode(this.buf.subarray(start, end));
    } catch {
      throw ASIDE; // invalid UTF-8: the library decides what it becomes
    }
  }

  bin(len: number): Uint8Array {
    const start = this.pos;
    if (start + len > this.end) throw ASIDE;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  array(n: number, depth: number): unknown[] {
    if (depth >= READ_DEPTH || n > this.end - this.pos) throw ASIDE;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  map(n: number, depth: number): Record<string, unknown> {
    if (depth >= READ_DEPTH || 2 * n > this.end - this.pos) throw ASIDE;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const t = this.pos < this.end ? this.buf[this.pos] : undefined;
      if (t === undefined || !((t >= 0xa0 && t < 0xc0) || t === 0xd9 || t === 0xda || t === 0xdb)) throw ASIDE; // a key that is not a string
      const key = this.value(depth + 1) as string;
      if (key === "__proto__") throw ASIDE;
      out[key] = this.value(depth + 1);
    }
    return out;
  }
}

const reader = new Reader();
