// Hand-written msgpack for the fixed heads of envelopes: small unsigned
// integers and strings, written and read without building arrays. The bytes
// are plain msgpack, so any msgpack library reads and writes envelopes too;
// the reader returns undefined on any encoding it does not expect, and the
// caller falls back to a generic decoder.

import { Buffer } from "node:buffer"; // Node 20's global is an accessor: imported, no getter runs at each use
import { asciiText } from "./ascii-text.js";

const utf8 = new TextEncoder();

/**
 * Envelopes up to this many bytes are copied out of the head byte by byte (`done`). In a microbench, a copy of 45
 * bytes took 133 ns so against 166 ns through a view and `set`; at 120 bytes, 223 to 323 ns against 150 to 288 ns.
 */
const SHORT_COPY = 64;

/** Writes msgpack values into a growing buffer. */
export class HeadWriter {
  buf = new Uint8Array(512);
  pos = 0;

  reset(): this {
    this.pos = 0;
    return this;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** Two bytes, big-endian. */
  u16(n: number): void {
    this.room(2);
    this.buf[this.pos++] = n >>> 8;
    this.buf[this.pos++] = n & 0xff;
  }

  /** Four bytes, big-endian. */
  u32(n: number): void {
    this.room(4);
    const b = this.buf;
    b[this.pos++] = n >>> 24;
    b[this.pos++] = (n >>> 16) & 0xff;
    b[this.pos++] = (n >>> 8) & 0xff;
    b[this.pos++] = n & 0xff;
  }

  /** A DataView over the buffer as it is now. */
  view(): DataView {
    if (this.#view?.buffer !== this.buf.buffer) this.#view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.#view;
  }
  #view: DataView | undefined;

  /** An unsigned integer (< 2^32) in its shortest msgpack form. */
  uint(n: number): void {
    this.room(5);
    const b = this.buf;
    if (n < 0x80) b[this.pos++] = n;
    else if (n < 0x100) {
      b[this.pos++] = 0xcc;
      b[this.pos++] = n;
    } else if (n < 0x10000) {
      b[this.pos++] = 0xcd;
      b[this.pos++] = n >>> 8;
      b[this.pos++] = n & 0xff;
    } else {
      b[this.pos++] = 0xce;
      b[this.pos++] = n >>> 24;
      b[this.pos++] = (n >>> 16) & 0xff;
      b[this.pos++] = (n >>> 8) & 0xff;
      b[this.pos++] = n & 0xff;
    }
  }

  /**
   * A string: fixstr/str8/str16/str32 of its UTF-8 bytes. A string that UTF-8
   * cannot carry (a lone surrogate) is written with U+FFFD in its place, or,
   * given `illFormed`, refused by it (it throws).
   */
  str(s: string, illFormed?: () => never): void {
    const n = s.length;
    if (n < 0x100) {
      // ASCII up to 255 characters (ids, capabilities, actor types, most keys, pids): the code units
      // written directly (a 36-character pid: no encodeInto and no subarray for it).
      const head = n < 32 ? 1 : 2;
      this.room(head + n);
      const b = this.buf;
      const start = this.pos;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[start + head + i] = c;
      }
      if (i === n) {
        if (head === 1) b[start] = 0xa0 | n;
        else {
          b[start] = 0xd9;
          b[start + 1] = n;
        }
        this.pos = start + head + n;
        return;
      }
    }
    if (illFormed !== undefined && !s.isWellFormed()) illFormed();
    // At most 3 bytes per UTF-16 code unit; the header takes the shortest form for the real length.
    this.room(5 + 3 * n);
    const head = n * 3 < 32 ? 1 : n * 3 < 0x100 ? 2 : n * 3 < 0x10000 ? 3 : 5;
    const start = this.pos;
    const b = this.buf;
    const len = utf8.encodeInto(s, b.subarray(start + head)).written;
    const fits = len < 32 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
    if (fits !== head) b.copyWithin(start + fits, start + head, start + head + len);
    if (fits === 1) b[start] = 0xa0 | len;
    else if (fits === 2) {
      b[start] = 0xd9;
      b[start + 1] = len;
    } else if (fits === 3) {
      b[start] = 0xda;
      b[start + 1] = len >>> 8;
      b[start + 2] = len & 0xff;
    } else {
      b[start] = 0xdb;
      b[start + 1] = len >>> 24;
      b[start + 2] = (len >>> 16) & 0xff;
      b[start + 3] = (len >>> 8) & 0xff;
      b[start + 4] = len & 0xff;
    }
    this.pos = start + fits + len;
  }

  /** Appends bytes as they are (an already encoded msgpack value). */
  raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /**
   * What was written, as one new buffer (a slice of Node's buffer pool). Up to SHORT_COPY bytes (most envelopes) are
   * copied byte by byte, without the view of the head that `set` needs: one typed array less per envelope (the
   * whole copy was about 0.7 µs of a sequential remote call's request path, timed in the caller).
   */
  done(): Uint8Array {
    const n = this.pos;
    const out = Buffer.allocUnsafe(n);
    const b = this.buf;
    if (n <= SHORT_COPY) for (let i = 0; i < n; i++) out[i] = b[i]!;
    else out.set(b.subarray(0, n), 0);
    return out;
  }

  /** The head written so far followed by `tail`, as one new buffer (a slice of Node's buffer pool). */
  finish(tail: Uint8Array): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos + tail.length);
    out.set(this.buf.subarray(0, this.pos), 0);
    out.set(tail, this.pos);
    return out;
  }

  /** Makes room for `n` more bytes. */
  room(n: number): void {
    if (this.pos + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
      bigger.set(this.buf.subarray(0, this.pos));
      this.buf = bigger;
    }
  }
}

/** Strict, and a leading byte order mark is kept: it is part of the string (an id "\uFEFFbob" is not "bob"). */
const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Names a reader remembers (`name`): a power of two. */
const NAMES = 8;

/** Reads msgpack values from the start of a buffer; undefined means "not the expected form". */
export class HeadReader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;

  reset(buf: Uint8Array): this {
    this.buf = buf;
    this.pos = 0;
    return this;
  }

  /** The next byte, consumed. */
  byte(): number | undefined {
    return this.pos < this.buf.length ? this.buf[this.pos++] : undefined;
  }

  /** An unsigned integer in any msgpack uint form. */
  uint(): number | undefined {
    const b = this.buf;
    const p = this.pos;
    const t = b[p];
    if (t === undefined) return undefined;
    if (t < 0x80) {
      this.pos = p + 1;
      return t;
    }
    if (t === 0xcc && p + 1 < b.length) {
      this.pos = p + 2;
      return b[p + 1];
    }
    if (t === 0xcd && p + 2 < b.length) {
      this.pos = p + 3;
      return (b[p + 1]! << 8) | b[p + 2]!;
    }
    if (t === 0xce && p + 4 < b.length) {
      this.pos = p + 5;
      return ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0;
    }
    return undefined;
  }

  /**
   * A name that comes again and again (a capability, an actor type): a short ASCII fixstr is matched against
   * the last few read, and the same string is returned (no string built; its hash is cached for the maps it
   * keys). Anything else as `str`.
   */
  name(): string | undefined {
    const b = this.buf;
    const t = b[this.pos];
    if (t !== undefined && (t & 0xe0) === 0xa0) {
      const len = t & 0x1f;
      const start = this.pos + 1;
      if (start + len <= b.length)
        for (const known of this.#names) {
          if (known.length !== len) continue;
          let i = 0;
          while (i < len && known.charCodeAt(i) === b[start + i]) i++;
          if (i === len) {
            this.pos = start + len;
            return known;
          }
        }
    }
    const s = this.str();
    if (s !== undefined && s.length < 32 && isAscii(s)) this.#names[this.#nextName++ & (NAMES - 1)] = s; // its bytes are its code units
    return s;
  }

  readonly #names: string[] = [];
  #nextName = 0;

  /** A string in any msgpack str form. */
  str(): string | undefined {
    const b = this.buf;
    const t = b[this.pos];
    if (t === undefined) return undefined;
    let len: number;
    let start: number;
    if ((t & 0xe0) === 0xa0) {
      len = t & 0x1f;
      start = this.pos + 1;
    } else if (t === 0xd9 && this.pos + 1 < b.length) {
      len = b[this.pos + 1]!;
      start = this.pos + 2;
    } else if (t === 0xda && this.pos + 2 < b.length) {
      len = (b[this.pos + 1]! << 8) | b[this.pos + 2]!;
      start = this.pos + 3;
    } else return undefined;
    const end = start + len;
    if (end > b.length) return undefined;
    this.pos = end;
    return asciiText(b, start, end) ?? this.#utf8(start, end);
  }

  #utf8(start: number, end: number): string | undefined {
    try {
      return text.decode(this.buf.subarray(start, end));
    } catch {
      return undefined;
    }
  }
}
