// The reminders' layout in their KV bucket (docs/PROTOCOL.md "Reminders"):
// a page per (capability, shard, slot) holding that shard's reminders whose
// ticket falls in the slot, a directory per (capability, slot) naming the
// shards that may have a page there, and each capability's lowest slot in use.
//
// Every read is of one key, which JetStream finds in its subject index; never
// a wildcard, which nats-server 2.9 answers by walking the stream (one such
// read of a bucket of 200,000 keys took 50 ms; one key, 0.2 ms). Writes are
// compare-and-set; the changes asked of one page while its write is in flight
// go together in the next. A directory's bit is set before its page is first
// written, so a page is never stored that no directory names.
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { KvPublisher, classifyNatsError, readLatest } from "@mesh/transport";
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { JetStreamManager, NatsConnection } from "nats";
import { SETTLED_SLOTS, SLOT_MS, decodePage, dirKey, encodePage, hasShard, lowKey, pageKey, slotOf, withShard } from "./reminder-entry.js";
import type { Reminder } from "./reminder-entry.js";

/** A change to one entry of a page. */
export type PageChange =
  /** Store the entry (replacing the one of its id). */
  | { readonly kind: "put"; readonly entry: Reminder }
  /** Store the entry unless its id has one. */
  | { readonly kind: "add"; readonly entry: Reminder }
  /** Remove the id's entry if it has this ticket. */
  | { readonly kind: "remove"; readonly ticket: number };

/** How each kind of change applies to a page's entries; true when it changed them. */
const APPLY: { readonly [K in PageChange["kind"]]: (entries: Map<string, Reminder>, id: string, c: PageChange & { kind: K }) => boolean } =
  {
    put: (entries, id, c) => (entries.set(id, c.entry), true),
    add: (entries, id, c) => !entries.has(id) && (entries.set(id, c.entry), true),
    remove: (entries, id, c) => entries.get(id)?.ticket === c.ticket && entries.delete(id),
  };
const apply = (entries: Map<string, Reminder>, id: string, c: PageChange): boolean =>
  (APPLY[c.kind] as (e: Map<string, Reminder>, id: string, c: PageChange) => boolean)(entries, id, c);

/** A page as read or written: revision 0 when nothing is stored. */
export interface Page {
  entries: Map<string, Reminder>;
  revision: number;
}

interface Waiting {
  id: string;
  change: PageChange;
  /** With the page's revision that holds the change. */
  done(revision: number): void;
  failed(err: unknown): void;
}

/** The writes of one page: those waiting, and whether one is in flight. */
interface PageQueue {
  capability: string;
  shard: number;
  slot: number;
  waiting: Waiting[];
}

const encoder = new Encoder();
const decoder = new Decoder();
/** Directories cached (512 B each with 4,096 shards), besides those of the slots a node holds. */
const DIRS_CACHED = 512;
/** Compare-and-set tries of one write before it fails. */
const TRIES = 8;

/** What a node read: directories, pages and the entries in them (the scan's cost, counted). */
export interface PageReads {
  dirs: number;
  pages: number;
  entries: number;
}

export class ReminderPages {
  /** Pages of near slots (keep()), as last read or written. */
  readonly #pages = new Map<string, Page>();
  readonly #queues = new Map<string, PageQueue>();
  readonly #dirs = new Map<string, { bits: Uint8Array; revision: number }>();
  /** One change of a directory at a time, per key. */
  readonly #dirTurns = new Map<string, Promise<unknown>>();
  readonly reads: PageReads = { dirs: 0, pages: 0, entries: 0 };

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
    private readonly writes: KvPublisher,
    private readonly shards: number,
    /** The largest page, in bytes (the server's max_payload, less room for headers). */
    private readonly maxBytes: number,
    /** Whether pages of `slot` stay cached (they are near). */
    private readonly keep: (slot: number) => boolean,
  ) {}

  static async open(
    nc: NatsConnection,
    bucket: string,
    o: { timeoutMs: number; inboxPrefix?: string; shards: number; keep: (slot: number) => boolean },
  ): Promise<ReminderPages> {
    const maxBytes = (nc.info?.max_payload ?? 1024 * 1024) - 4096;
    return new ReminderPages(
      await nc.jetstreamManager({ timeout: o.timeoutMs }),
      bucket,
      new KvPublisher(nc, bucket, o.timeoutMs, o.inboxPrefix),
      o.shards,
      maxBytes,
      o.keep,
    );
  }

  /** The lowest slot of `capability` that may have a directory; set to `initial` when none is stored. */
  async low(capability: string, initial: number): Promise<number> {
    for (let tries = 1; ; tries++) {
      const stored = await this.#read(lowKey(capability));
      if (stored.value !== undefined) return decoder.decode(stored.value) as number;
      try {
        await this.#write(lowKey(capability), encoder.encode(initial), stored.revision);
        return initial;
      } catch (err) {
        if (tries >= TRIES || classifyNatsError(err) !== "wrong-last-sequence") throw this.#failed(lowKey(capability), err);
      }
    }
  }

  /** Raises the lowest slot of `capability` to `slot` (never lowers it). */
  async raiseLow(capability: string, slot: number): Promise<void> {
    for (let tries = 1; ; tries++) {
      const stored = await this.#read(lowKey(capability));
      if (stored.value !== undefined && (decoder.decode(stored.value) as number) >= slot) return;
      try {
        return void (await this.#write(lowKey(capability), encoder.encode(slot), stored.revision));
      } catch (err) {
        if (tries >= TRIES || classifyNatsError(err) !== "wrong-last-sequence") throw this.#failed(lowKey(capability), err);
      }
    }
  }

  /** The shards that may have a page in (`capability`, `slot`), read from the store; undefined when it has no directory. */
  async dir(capability: string, slot: number): Promise<Uint8Array | undefined> {
    const key = dirKey(capability, slot);
    const stored = await this.#read(key);
    this.reads.dirs++;
    if (stored.value === undefined) return undefined;
    this.#cacheDir(key, stored.value, stored.revision);
    return stored.value;
  }

  /** A page, read from the store. */
  async page(capability: string, shard: number, slot: number): Promise<Page> {
    const key = pageKey(capability, shard, slot);
    const page = await this.#readPage(key, capability);
    this.reads.pages++;
    this.reads.entries += page.entries.size;
    if (this.keep(slot) && !this.#queues.has(key)) this.#pages.set(key, page);
    return page;
  }

  /**
   * Changes entry `id` of page (`capability`, `shard`, `slot`); resolves once
   * stored, to the page's revision that holds the change. Rejects with
   * STORAGE_UNAVAILABLE (or PAYLOAD_TOO_LARGE: the page is full).
   */
  change(capability: string, shard: number, slot: number, id: string, change: PageChange): Promise<number> {
    const key = pageKey(capability, shard, slot);
    return new Promise((done, failed) => {
      let q = this.#queues.get(key);
      const first = q === undefined;
      if (q === undefined) this.#queues.set(key, (q = { capability, shard, slot, waiting: [] }));
      q.waiting.push({ id, change, done, failed });
      if (first) void this.#drain(key, q);
    });
  }

  /**
   * Lets go of a settled page (its slot is SETTLED_SLOTS behind) when it is
   * empty: purges its key, then clears its bit. Resolves to false when it
   * still has entries.
   */
  async sweep(capability: string, shard: number, slot: number): Promise<boolean> {
    const key = pageKey(capability, shard, slot);
    if ((await this.#readPage(key, capability)).entries.size > 0) return false;
    await this.#purge(key);
    this.#pages.delete(key);
    await this.#dirChange(capability, slot, shard, false);
    return true;
  }

  /** Purges a settled directory that names no shard; resolves to whether it is gone. */
  async sweepDir(capability: string, slot: number): Promise<boolean> {
    const key = dirKey(capability, slot);
    const stored = await this.#read(key);
    if (stored.value !== undefined && stored.value.some((b) => b !== 0)) return false;
    await this.#purge(key);
    this.#dirs.delete(key);
    return true;
  }

  /** Forgets cached pages of slots no longer near. */
  trim(): void {
    for (const key of this.#pages.keys())
      if (!this.keep(Number(key.slice(key.lastIndexOf(".p") + 2))) && !this.#queues.has(key)) this.#pages.delete(key);
  }

  async #drain(key: string, q: PageQueue): Promise<void> {
    while (q.waiting.length > 0) {
      const batch = q.waiting;
      q.waiting = [];
      try {
        const revision = await this.#apply(key, q, batch);
        for (const w of batch) w.done(revision);
      } catch (err) {
        for (const w of batch) w.failed(err);
      }
    }
    this.#queues.delete(key);
    if (!this.keep(q.slot)) this.#pages.delete(key);
  }

  async #apply(key: string, q: PageQueue, batch: readonly Waiting[]): Promise<number> {
    for (let tries = 1; ; tries++) {
      const page = this.#pages.get(key) ?? (await this.#readPage(key, q.capability));
      const entries = new Map(page.entries);
      let changed = false;
      for (const w of batch) changed = apply(entries, w.id, w.change) || changed;
      if (!changed) return page.revision;
      if (entries.size > 0) await this.#dirChange(q.capability, q.slot, q.shard, true);
      const bytes = encodePage(entries);
      if (bytes.length > this.maxBytes)
        throw new MeshError(
          "PAYLOAD_TOO_LARGE",
          `too many reminders of shard ${q.shard} of ${q.capability} fall in the ${SLOT_MS / 1000} s from ${new Date(q.slot * SLOT_MS).toISOString()}: their page would be ${bytes.length} bytes, the limit is ${this.maxBytes}`,
        );
      try {
        const revision = await this.#write(key, bytes, page.revision);
        this.#pages.set(key, { entries, revision });
        return revision;
      } catch (err) {
        this.#pages.delete(key);
        if (tries >= TRIES || classifyNatsError(err) !== "wrong-last-sequence") throw this.#failed(key, err);
      }
    }
  }

  /** Sets or clears `shard`'s bit in the directory of (`capability`, `slot`), one change of a directory at a time. */
  #dirChange(capability: string, slot: number, shard: number, on: boolean): Promise<void> {
    const key = dirKey(capability, slot);
    const known = this.#dirs.get(key);
    if (on && known !== undefined && hasShard(known.bits, shard)) return Promise.resolve();
    const run = (this.#dirTurns.get(key) ?? Promise.resolve()).then(() => this.#dirChangeNow(key, shard, on));
    const tail = run.catch(() => undefined);
    this.#dirTurns.set(key, tail);
    void tail.then(() => this.#dirTurns.get(key) === tail && this.#dirTurns.delete(key));
    return run;
  }

  async #dirChangeNow(key: string, shard: number, on: boolean): Promise<void> {
    for (let tries = 1; ; tries++) {
      let dir = this.#dirs.get(key);
      if (dir === undefined) {
        const stored = await this.#read(key);
        dir = { bits: stored.value ?? new Uint8Array(Math.ceil(this.shards / 8)), revision: stored.revision };
      }
      if (hasShard(dir.bits, shard) === on) return;
      const bits = withShard(dir.bits, shard, on);
      try {
        this.#cacheDir(key, bits, await this.#write(key, bits, dir.revision));
        return;
      } catch (err) {
        this.#dirs.delete(key);
        if (tries >= TRIES || classifyNatsError(err) !== "wrong-last-sequence") throw this.#failed(key, err);
      }
    }
  }

  #cacheDir(key: string, bits: Uint8Array, revision: number): void {
    this.#dirs.delete(key);
    this.#dirs.set(key, { bits, revision });
    if (this.#dirs.size > DIRS_CACHED) {
      const slotOfKey = (k: string) => Number(k.slice(k.lastIndexOf(".d") + 2));
      for (const k of this.#dirs.keys()) {
        if (this.#dirs.size <= DIRS_CACHED) break;
        if (!this.keep(slotOfKey(k))) this.#dirs.delete(k);
      }
    }
  }

  async #readPage(key: string, capability: string): Promise<Page> {
    const stored = await this.#read(key);
    if (stored.value === undefined || stored.value.length === 0) return { entries: new Map(), revision: stored.revision };
    try {
      return { entries: decodePage(capability, stored.value), revision: stored.revision };
    } catch (err) {
      throw new MeshError("STORAGE_UNAVAILABLE", `the reminders page ${key} is not one: ${messageOf(err)}`, { cause: err });
    }
  }

  /** The latest value of `key` (undefined: none or deleted) and its revision (0: nothing stored). */
  async #read(key: string): Promise<{ value: Uint8Array | undefined; revision: number }> {
    try {
      const e = await readLatest(this.jsm, this.bucket, key);
      return e === null ? { value: undefined, revision: 0 } : { value: e.value, revision: e.revision };
    } catch (err) {
      throw this.#failed(key, err);
    }
  }

  #write(key: string, bytes: Uint8Array, revision: number): Promise<number> {
    return this.writes.publish(key, bytes, { revision }, (err) => err as Error);
  }

  /** Removes every value of `key`, leaving no marker. */
  purgeKey(key: string): Promise<void> {
    return this.#purge(key);
  }

  async #purge(key: string): Promise<void> {
    try {
      await this.jsm.streams.purge(`KV_${this.bucket}`, { filter: `$KV.${this.bucket}.${key}` });
    } catch (err) {
      throw this.#failed(key, err);
    }
  }

  #failed(key: string, err: unknown): MeshError {
    if (err instanceof MeshError) return err;
    return new MeshError("STORAGE_UNAVAILABLE", `reminders: cannot read or write ${key}: ${messageOf(err)}`, { cause: err });
  }
}

/** Whether `slot` is settled at `now`: no node writes in it any more. */
export const settled = (slot: number, now: number): boolean => slot < slotOf(now) - SETTLED_SLOTS;
