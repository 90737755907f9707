// A subscription's layout in the progress bucket, `<subscription>.layout`
// (docs/events.md "Changing partitions"): its partition count, its generation
// (one more at each change of the count), the floor its partitions start from
// when they have no record of that generation, and what the generations before
// passed. An id's partition depends on the count, so when the count changes no
// partition's own floor says what is done for its ids: every partition of the
// new generation starts from the lowest floor the generation before stored,
// and events above it are sent again, never skipped. A partition resumes its
// own record only when both its generation and its count are the layout's (on
// nats-server 2.9 clusters two compare-and-sets of one revision can both
// succeed: two layouts of one generation then differ in their count). The
// layout also keeps the stream's creation time (its epoch): a stream deleted
// and made again starts its sequences over, so a layout that names another
// epoch gives way to the next generation from the new stream's start, in the
// next era (events carry it, and actors keep what they applied per era).
// Imports: the events room, the transport's JetStream seam and the bottom floor.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { classifyNatsError, readLatest } from "@mesh/transport";
import type { JetStreamManager, KV } from "nats";
import { decodeFloor, isCount } from "./floor-record.js";
import type { FloorRecord, Passed } from "./floor-record.js";

export interface Layout {
  gen: number;
  partitions: number;
  /** The floor a partition of this layout starts from when it has no record of its own of it. */
  from: number;
  /** What the partitions of the generations before passed (mesh events adds it to the partitions' own). */
  passed: Passed;
  /** The times the stream was made again since the layout began: sequences start over in each era. */
  era: number;
  /** The stream's creation time (its info's `created`); absent from layouts of Mesh before eras. */
  epoch?: string;
}

/** Where the records are. */
export interface LayoutStore {
  readonly jsm: JetStreamManager;
  readonly floors: KV;
  readonly floorsBucket: string;
  readonly log: Logger;
}

/** What of the subscription the layout depends on. */
export interface LayoutOf {
  readonly id: string;
  readonly partitions: number;
  readonly start: "all" | "new";
}

/** The layout record's key. */
export const layoutKey = (subscription: string): string => `${subscription}.layout`;

/** True when `record` was written in `layout`: its partition resumes it. */
export const ofLayout = (record: FloorRecord | undefined, layout: Layout): record is FloorRecord =>
  record !== undefined && record.gen === layout.gen && record.of === layout.partitions;

/** Records read at once when a layout changes. */
const READS_AT_ONCE = 64;
/** Compare-and-set attempts before giving up (another node changing the layout at the same moment). */
const ATTEMPTS = 5;
const NONE: Passed = { applied: 0, dead: 0 };

/** The stored layout of `subscription`, if any (undefined too when the value is not one). */
export async function readLayout(jsm: JetStreamManager, bucket: string, subscription: string): Promise<Layout | undefined> {
  const entry = await readLatest(jsm, bucket, layoutKey(subscription));
  return entry?.value === undefined ? undefined : decodeLayout(entry.value);
}

/**
 * The layout for the subscription's partition count and the stream of creation time `epoch`: the stored one
 * when it has both, else the next generation, stored with compare-and-set (a node that lost the race reads the
 * winner's). With none stored (a new subscription, records of Mesh before layouts, a deleted key or a value
 * that is not a layout), a layout after every generation the records name, from the lowest of their floors
 * (firstLayout). A stored layout of Mesh before epochs takes `epoch` as its own. Throws STORAGE_UNAVAILABLE when
 * the stored epoch is later than `epoch` (this node read the stream's info before it was made again).
 */
export async function currentLayout(store: LayoutStore, sub: LayoutOf, stream: StreamNow): Promise<Layout> {
  const { epoch } = stream;
  const key = layoutKey(sub.id);
  for (let attempt = 1; ; attempt++) {
    const entry = await readLatest(store.jsm, store.floorsBucket, key);
    const stored = entry?.value === undefined ? undefined : decodeLayout(entry.value);
    if (stored?.partitions === sub.partitions && stored.epoch === epoch) return stored;
    if (entry?.value !== undefined && stored === undefined)
      store.log.warn({ subscription: sub.id, key }, "mesh: the events layout record is not one; writing a new one from the floors");
    const next = await following(store, sub, stored, stream);
    try {
      // A key never written: expect none (a put, not kv.create, whose fallback reads through direct get).
      await store.floors.put(key, encodeLayout(next), { previousSeq: entry?.revision ?? 0 });
      return next;
    } catch (err) {
      if (classifyNatsError(err) !== "wrong-last-sequence") throw err;
      if (attempt === ATTEMPTS)
        throw new MeshError("STORAGE_UNAVAILABLE", `the layout of ${sub.id} changed ${ATTEMPTS} times while it was read`);
    }
  }
}

/** The stream as a dispatcher found it. */
export interface StreamNow {
  /** Its creation time (its info's `created`). */
  readonly epoch: string;
  /** Its info's state. */
  readonly state: { readonly first_seq: number; readonly last_seq: number };
  /** When it stored its message `seq` (epoch ms); "gone" when it has none there. */
  storedTimeAt(seq: number): Promise<number | "gone">;
  /** Its creation time, read again. */
  createdNow(): Promise<string>;
}

/**
 * Whether a stream of another creation time started its sequences over (deleted and made again), given the
 * records of the layout before. A stream restored from a backup (on a nats-server 2.9 cluster it gets the
 * restore's time as its creation time) keeps its sequences: its message at a floor is the event the floor
 * passed, stored at the time the record keeps. One made again holds other messages there, or fewer than the
 * highest floor, or nothing passed any floor yet. Where that message is gone (deleted, or removed by the
 * stream's limits), or no record says when (a Mesh before it, a partition still at its layout's start), its
 * sequences reaching the highest floor say it goes on. No clock but the stored times is read.
 */
export async function startedOver(stream: StreamNow, records: readonly FloorRecord[]): Promise<boolean> {
  const highest = Math.max(0, ...records.map((r) => r.floor));
  if (highest === 0 || stream.state.last_seq < highest) return true;
  const timed = records.filter((r) => r.time > 0 && r.floor >= stream.state.first_seq);
  if (timed.length === 0) return false;
  const top = timed.reduce((a, r) => (r.floor > a.floor ? r : a));
  const time = await stream.storedTimeAt(top.floor);
  return time !== "gone" && time !== top.time;
}

/** The layout to store after `stored` (none: the first) for `stream`. */
async function following(store: LayoutStore, sub: LayoutOf, stored: Layout | undefined, stream: StreamNow): Promise<Layout> {
  const { epoch } = stream;
  if (stored === undefined) return { ...(await firstLayout(store, sub, stream.state.last_seq)), epoch };
  if (stored.epoch === epoch && stored.partitions === sub.partitions) return stored;
  const records = await recordsOf(store, sub.id, stored);
  if (stored.epoch === undefined) {
    // Of a Mesh before epochs (or written by one, in a rolling deploy): the stream is taken to be the one it was
    // written for, in the latest era the records name.
    const era = Math.max(stored.era, ...records.map((r) => r.era));
    return stored.partitions === sub.partitions ? { ...stored, era, epoch } : { ...nextLayout(sub, stored, records), era, epoch };
  }
  if (stored.epoch === epoch) return { ...nextLayout(sub, stored, records), epoch };
  // Read before the stream was made again (another node wrote the layout since): judged again with fresh info.
  if ((await stream.createdNow()) !== epoch) throw new MeshError("STORAGE_UNAVAILABLE", `the stream of ${sub.id} changed as it was read`);
  if (await startedOver(stream, records)) {
    store.log.warn({ subscription: sub.id, era: stored.era + 1 }, "mesh: the stream was made again: its events are read from its start");
    return { ...nextLayout(sub, stored, records), from: 0, era: stored.era + 1, epoch };
  }
  store.log.warn({ subscription: sub.id }, "mesh: the stream has another creation time but kept its sequences (restored): read on");
  return stored.partitions === sub.partitions ? { ...stored, epoch } : { ...nextLayout(sub, stored, records), epoch };
}

/** The records of `stored`'s partitions, each as `stored` counts it (its own `from` for one with no record of it). */
async function recordsOf(store: LayoutStore, subscription: string, stored: Layout): Promise<FloorRecord[]> {
  const records = await readRecords(store, subscription, stored.partitions);
  const none = { floor: stored.from, passed: NONE, gen: stored.gen, of: stored.partitions, time: 0, era: stored.era };
  return records.map((r) => (ofLayout(r, stored) ? r : none));
}

/** The generation after `stored`: from the lowest floor of its partitions' `records`. */
function nextLayout(sub: LayoutOf, stored: Layout, records: readonly FloorRecord[]): Layout {
  return {
    gen: stored.gen + 1,
    partitions: sub.partitions,
    from: Math.min(...records.map((r) => r.floor)),
    passed: sum([stored.passed, ...records.map((r) => r.passed)]),
    era: stored.era,
  };
}

/**
 * A layout with none stored, after every generation the records name, in the latest era they name (a deleted
 * layout key: its stream is taken to be the one they were written for). When records exist, it starts from the
 * lowest of their floors, and from 0 when a partition below the count or the highest one found has none (a
 * partition stored nothing before its floor first moved); `start: "new"` cannot tell where such a one began,
 * and counts only the records. With no record at all, from the stream's start, or its end (`lastSeq`) for
 * `start: "new"`.
 */
async function firstLayout(store: LayoutStore, sub: LayoutOf, lastSeq: number): Promise<Layout> {
  // Which partitions stored a record: their keys are the subjects the bucket's stream holds under the subscription's.
  const prefix = `$KV.${store.floorsBucket}.${sub.id}.`;
  const info = await store.jsm.streams.info(`KV_${store.floorsBucket}`, { subjects_filter: `${prefix}*` });
  const found = Object.keys(info.state.subjects ?? {})
    .map((subject) => subject.slice(prefix.length))
    .filter((token) => /^\d+$/.test(token))
    .map(Number);
  const count = Math.max(sub.partitions, ...found.map((p) => p + 1));
  const records = await readRecords(store, sub.id, count);
  const stored = records.filter((r) => r !== undefined);
  const gen = 1 + Math.max(0, ...stored.map((r) => r.gen ?? 0));
  if (stored.length === 0) return { gen, partitions: sub.partitions, from: sub.start === "new" ? lastSeq : 0, passed: NONE, era: 0 };
  const floors = sub.start === "all" && stored.length < records.length ? [0] : stored.map((r) => r.floor);
  // The latest era the records name: the stream is taken to be the one they were written for.
  const era = Math.max(...stored.map((r) => r.era));
  return { gen, partitions: sub.partitions, from: Math.min(...floors), passed: sum(stored.map((r) => r.passed)), era };
}

/** The records of partitions 0 to `count` - 1, from the bucket's stream leader (undefined: none, deleted, or not a record). */
async function readRecords(store: LayoutStore, subscription: string, count: number): Promise<(FloorRecord | undefined)[]> {
  const out: (FloorRecord | undefined)[] = [];
  for (let i = 0; i < count; i += READS_AT_ONCE) {
    const keys = Array.from({ length: Math.min(READS_AT_ONCE, count - i) }, (_, j) => `${subscription}.${i + j}`);
    const entries = await Promise.all(keys.map((key) => readLatest(store.jsm, store.floorsBucket, key)));
    for (const e of entries) out.push(e?.value === undefined ? undefined : decodeFloor(e.value));
  }
  return out;
}

const sum = (all: Passed[]): Passed => all.reduce((a, b) => ({ applied: a.applied + b.applied, dead: a.dead + b.dead }), NONE);

/** The JSON stored: `{"gen": 2, "partitions": 4, "from": 1200, "applied": 1190, "dead": 2, "era": 0, "epoch": "2026-…Z"}`. */
function encodeLayout(l: Layout): Uint8Array {
  const { gen, partitions, from, era, epoch } = l;
  return new TextEncoder().encode(JSON.stringify({ gen, partitions, from, applied: l.passed.applied, dead: l.passed.dead, era, epoch }));
}

/** The layout, or undefined when the value is not one. */
function decodeLayout(bytes: Uint8Array): Layout | undefined {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { gen, partitions, from, applied, dead, era, epoch } = j ?? {};
  if (!isCount(gen) || !isCount(partitions) || partitions === 0 || !isCount(from) || !isCount(applied) || !isCount(dead)) return undefined;
  const known = typeof epoch === "string" && epoch !== "" ? { epoch } : {};
  return { gen, partitions, from, passed: { applied, dead }, era: isCount(era) ? era : 0, ...known };
}
