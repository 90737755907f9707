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
import { decodeValue, messageOf } from "@mesh/core/internal";
import { KvPublisher, readLatest } from "@mesh/transport";
import { Encoder } from "@msgpack/msgpack";
import type { JetStreamManager, NatsConnection } from "nats";
import { SETTLED_SLOTS, SLOT_MS, decodePage, dirKey, encodePage, lowKey, pageKey, slotOf, withShard } from "./reminder-entry.js";
import { CasKeys } from "./cas-keys.js";
import type { Versioned } from "./cas-keys.js";
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

/** A page as read: revision 0 when nothing is stored. */
export type Page = Versioned<Map<string, Reminder>>;

/** A change to one entry of a page. */
interface EntryChange {
  id: string;
  change: PageChange;
}

/** A change to a directory: name `shard` or not. */
interface BitChange {
  shard: number;
  on: boolean;
}

const encoder = new Encoder();
/** Directories cached (512 B each with 4,096 shards), besides those of the slots a node holds. */
const DIRS_CACHED = 512;

/** What a node read: directories, pages and the entries in them (the scan's cost, counted). */
export interface PageReads {
  dirs: number;
  pages: number;
  entries: number;
}

/** The slot a page's or directory's key ends with (`.p<slot>`, `.d<slot>`). */
const slotIn = (key: string) => Number(key.slice(key.lastIndexOf(".") + 2));

export class ReminderPages {
  readonly #pages: CasKeys<Map<string, Reminder>, EntryChange>;
  readonly #dirs: CasKeys<Uint8Array, BitChange>;
  readonly #lows: CasKeys<number | undefined, number>;
  readonly reads: PageReads = { dirs: 0, pages: 0, entries: 0 };

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly bucket: string,
    writes: KvPublisher,
    shards: number,
    /** The largest page, in bytes (the server's max_payload, less room for headers). */
    maxBytes: number,
    /** Whether pages of `slot` stay cached (they are near). */
    private readonly keep: (slot: number) => boolean,
  ) {
    // JetStream's refusal keeps its api_error (classifyNatsError reads it) in an Error that says what it was.
    const refusal = (err: unknown) =>
      err instanceof Error ? err : Object.assign(new Error((err as { message?: string }).message ?? String(err)), err);
    const write = (key: string, bytes: Uint8Array, revision: number) => writes.publish(key, bytes, { revision }, refusal);
    this.#pages = new CasKeys(
      {
        read: (key) => this.#readPage(key),
        apply: (entries, changes) => {
          const next = new Map(entries);
          let changed = false;
          for (const { id, change } of changes) changed = apply(next, id, change) || changed;
          return changed ? next : undefined;
        },
        encode: (entries, key) => {
          const bytes = encodePage(entries);
          if (bytes.length > maxBytes)
            throw new MeshError(
              "PAYLOAD_TOO_LARGE",
              `too many reminders fall in the ${SLOT_MS / 1000} s of page ${key}: it would be ${bytes.length} bytes, the limit is ${maxBytes}`,
            );
          return bytes;
        },
        // A page is never stored that no directory names.
        before: async (key, entries) => {
          if (entries.size === 0) return;
          const [capability, shard] = key.split(".");
          await this.#dirs.change(dirKey(capability!, slotIn(key)), { shard: Number(shard), on: true });
        },
        write,
        keep: (key) => keep(slotIn(key)),
      },
      "reminders page",
    );
    this.#dirs = new CasKeys(
      {
        read: async (key) => {
          const stored = await this.#read(key);
          return { value: stored.value ?? new Uint8Array(Math.ceil(shards / 8)), revision: stored.revision };
        },
        apply: (bits, changes) => {
          const next = changes.reduce((b, c) => withShard(b, c.shard, c.on), bits);
          return next.every((b, i) => b === bits[i]) ? undefined : next;
        },
        encode: (bits) => bits,
        write,
        keep: (key) => keep(slotIn(key)) || this.#dirs.cache.size <= DIRS_CACHED,
      },
      "reminders directory",
    );
    this.#lows = new CasKeys(
      {
        read: async (key) => {
          const stored = await this.#read(key);
          return { value: stored.value === undefined ? undefined : (decodeValue(stored.value) as number), revision: stored.revision };
        },
        apply: (low, raises) => {
          const to = Math.max(...raises);
          return low === undefined || to > low ? to : undefined;
        },
        encode: (low) => encoder.encode(low),
        write,
        keep: () => false,
      },
      "reminders lowest slot",
    );
  }

  static async open(
    nc: NatsConnection,
    bucket: string,
    o: { timeoutMs: number; inboxPrefix?: string; shards: number; keep: (slot: number) => boolean },
  ): Promise<ReminderPages> {
    const maxBytes = (nc.info?.max_payload ?? 1024 * 1024) - 4096;
    return new ReminderPages(
      await nc.jetstreamManager({ timeout: o.timeoutMs, checkAPI: false }), // the bucket just answered (node-records.ts)
      bucket,
      new KvPublisher(nc, bucket, o.timeoutMs, o.inboxPrefix),
      o.shards,
      maxBytes,
      o.keep,
    );
  }

  /** The lowest slot of `capability` that may have a directory; set to `initial` when none is stored. */
  async low(capability: string, initial: number): Promise<number> {
    const key = lowKey(capability);
    const stored = await this.#lows.kind.read(key);
    if (stored.value !== undefined) return stored.value;
    await this.#lows.change(key, initial);
    return (await this.#lows.kind.read(key)).value ?? initial;
  }

  /** Raises the lowest slot of `capability` to `slot` (never lowers it). */
  async raiseLow(capability: string, slot: number): Promise<void> {
    await this.#lows.change(lowKey(capability), slot);
  }

  /** The shards that may have a page in (`capability`, `slot`), read from the store; undefined when it has no directory. */
  async dir(capability: string, slot: number): Promise<Uint8Array | undefined> {
    const key = dirKey(capability, slot);
    const stored = await this.#read(key);
    this.reads.dirs++;
    if (stored.value === undefined) return undefined;
    if (!this.#dirs.busy(key)) this.#dirs.cache.set(key, { value: stored.value, revision: stored.revision });
    return stored.value;
  }

  /**
   * A page, read from the store; or, when this node wrote a newer revision
   * while the read was under way, that one (a scan must not hold again an
   * entry that a retry has just moved on).
   */
  async page(capability: string, shard: number, slot: number): Promise<Page> {
    const key = pageKey(capability, shard, slot);
    const page = await this.#readPage(key);
    this.reads.pages++;
    this.reads.entries += page.value.size;
    const known = this.#pages.cache.get(key);
    if (known !== undefined && known.revision > page.revision) return known;
    if (this.keep(slot) && !this.#pages.busy(key)) this.#pages.cache.set(key, page);
    return page;
  }

  /**
   * Changes entry `id` of page (`capability`, `shard`, `slot`); resolves once
   * stored, to the page's revision that holds the change. Rejects with
   * STORAGE_UNAVAILABLE (or PAYLOAD_TOO_LARGE: the page is full).
   */
  change(capability: string, shard: number, slot: number, id: string, change: PageChange): Promise<number> {
    return this.#pages.change(pageKey(capability, shard, slot), { id, change });
  }

  /**
   * Lets go of a settled page (its slot is SETTLED_SLOTS behind) when it is
   * empty: purges its key, then clears its bit. Resolves to false when it
   * still has entries.
   */
  async sweep(capability: string, shard: number, slot: number): Promise<boolean> {
    const key = pageKey(capability, shard, slot);
    if ((await this.#readPage(key)).value.size > 0) return false;
    await this.purgeKey(key);
    this.#pages.cache.delete(key);
    await this.#dirs.change(dirKey(capability, slot), { shard, on: false });
    return true;
  }

  /** Purges a settled directory that names no shard; resolves to whether it is gone. */
  async sweepDir(capability: string, slot: number): Promise<boolean> {
    const key = dirKey(capability, slot);
    const stored = await this.#read(key);
    if (stored.value !== undefined && stored.value.some((b) => b !== 0)) return false;
    await this.purgeKey(key);
    this.#dirs.cache.delete(key);
    return true;
  }

  /** Forgets cached pages and directories of slots no longer near. */
  trim(): void {
    for (const keys of [this.#pages, this.#dirs] as const)
      for (const key of keys.cache.keys()) if (!this.keep(slotIn(key)) && !keys.busy(key)) keys.cache.delete(key);
  }

  /** Removes every value of `key`, leaving no marker. */
  async purgeKey(key: string): Promise<void> {
    try {
      await this.jsm.streams.purge(`KV_${this.bucket}`, { filter: `$KV.${this.bucket}.${key}` });
    } catch (err) {
      throw failed(key, err);
    }
  }

  async #readPage(key: string): Promise<Page> {
    const stored = await this.#read(key);
    if (stored.value === undefined || stored.value.length === 0) return { value: new Map(), revision: stored.revision };
    try {
      return { value: decodePage(key.slice(0, key.indexOf(".")), stored.value), revision: stored.revision };
    } catch (err) {
      throw new MeshError("STORAGE_UNAVAILABLE", `the reminders page ${key} is not one: ${messageOf(err)}`, { cause: err });
    }
  }

  /** The latest value of `key` (undefined: none or deleted) and its revision (0: nothing stored). */
  async #read(key: string): Promise<Versioned<Uint8Array | undefined>> {
    try {
      const e = await readLatest(this.jsm, this.bucket, key);
      return e === null ? { value: undefined, revision: 0 } : { value: e.value, revision: e.revision };
    } catch (err) {
      throw failed(key, err);
    }
  }
}

function failed(key: string, err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  return new MeshError("STORAGE_UNAVAILABLE", `reminders: cannot read or write ${key}: ${messageOf(err)}`, { cause: err });
}

/** Whether `slot` is settled at `now`: no node writes in it any more. */
export const settled = (slot: number, now: number): boolean => slot < slotOf(now) - SETTLED_SLOTS;
