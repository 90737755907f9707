// A subscription's layout in the progress bucket, `<subscription>.layout`
// (docs/events.md "Changing partitions"): its partition count, its generation
// (one more at each change of the count), the floor its partitions start from
// when they have no record of that generation, and what the generations before
// passed. An id's partition depends on the count, so when the count changes no
// partition's own floor says what is done for its ids: every partition of the
// new generation starts from the lowest floor the generation before stored,
// and events above it are sent again, never skipped. Imports: the events room,
// the transport's JetStream seam and the bottom floor.
import { MeshError } from "@mesh/core";
import { classifyNatsError, readLatest } from "@mesh/transport";
import type { JetStreamManager, KV } from "nats";
import { decodeFloor } from "./floor-record.js";
import type { FloorRecord, Passed } from "./floor-record.js";

export interface Layout {
  gen: number;
  partitions: number;
  /** The floor a partition of this generation starts from when it has no record of its own of it. */
  from: number;
  /** What the partitions of the generations before passed (mesh events adds it to the partitions' own). */
  passed: Passed;
}

/** Where the records are. */
export interface LayoutStore {
  readonly jsm: JetStreamManager;
  readonly floors: KV;
  readonly floorsBucket: string;
}

/** What of the subscription the layout depends on. */
export interface LayoutOf {
  readonly id: string;
  readonly partitions: number;
  readonly start: "all" | "new";
}

/** The layout record's key. */
export const layoutKey = (subscription: string): string => `${subscription}.layout`;

/** Records read at once when a layout changes. */
const READS_AT_ONCE = 64;
/** Compare-and-set attempts before giving up (another node changing the layout at the same moment). */
const ATTEMPTS = 5;

/** The stored layout of `subscription`, if any. */
export async function readLayout(jsm: JetStreamManager, bucket: string, subscription: string): Promise<Layout | undefined> {
  const entry = await readLatest(jsm, bucket, layoutKey(subscription));
  return entry?.value === undefined ? undefined : decodeLayout(entry.value);
}

/**
 * The layout for the subscription's partition count: the stored one when it has that count, else the next
 * generation, stored with compare-and-set (a node that lost the race reads the winner's). A first layout starts
 * from the lowest floor of records written before layouts (Mesh before them), else from the stream's start, or
 * its end (`lastSeq`) for `start: "new"`.
 */
export async function currentLayout(store: LayoutStore, sub: LayoutOf, lastSeq: () => Promise<number>): Promise<Layout> {
  const key = layoutKey(sub.id);
  for (let attempt = 1; ; attempt++) {
    const entry = await readLatest(store.jsm, store.floorsBucket, key);
    const stored = entry?.value === undefined ? undefined : decodeLayout(entry.value);
    if (stored?.partitions === sub.partitions) return stored;
    const next = stored === undefined ? await firstLayout(store, sub, lastSeq) : await nextLayout(store, sub, stored);
    try {
      if (entry === null) await store.floors.create(key, encodeLayout(next));
      else await store.floors.update(key, encodeLayout(next), entry.revision);
      return next;
    } catch (err) {
      if (classifyNatsError(err) !== "wrong-last-sequence") throw err;
      if (attempt === ATTEMPTS)
        throw new MeshError("STORAGE_UNAVAILABLE", `the layout of ${sub.id} changed ${ATTEMPTS} times while it was read`);
    }
  }
}

/** The generation after `stored`: from the lowest floor its partitions stored (its own `from` for one that stored none). */
async function nextLayout(store: LayoutStore, sub: LayoutOf, stored: Layout): Promise<Layout> {
  const partitions = Array.from({ length: stored.partitions }, (_, p) => p);
  const records = await readRecords(store, sub.id, partitions);
  const ofIt = records.map((r) => (r?.gen === stored.gen ? r : { floor: stored.from, passed: { applied: 0, dead: 0 }, gen: stored.gen }));
  return {
    gen: stored.gen + 1,
    partitions: sub.partitions,
    from: Math.min(...ofIt.map((r) => r.floor)),
    passed: sum([stored.passed, ...ofIt.map((r) => r.passed)]),
  };
}

/** The first generation: from the lowest floor of the records written before layouts, if any. */
async function firstLayout(store: LayoutStore, sub: LayoutOf, lastSeq: () => Promise<number>): Promise<Layout> {
  // Which partitions stored a record: their keys are the subjects the bucket's stream holds under the subscription's.
  const prefix = `$KV.${store.floorsBucket}.${sub.id}.`;
  const info = await store.jsm.streams.info(`KV_${store.floorsBucket}`, { subjects_filter: `${prefix}*` });
  const partitions = Object.keys(info.state.subjects ?? {})
    .map((subject) => subject.slice(prefix.length))
    .filter((token) => /^\d+$/.test(token))
    .map(Number);
  const records = (await readRecords(store, sub.id, partitions)).filter((r) => r !== undefined);
  const from = records.length > 0 ? Math.min(...records.map((r) => r.floor)) : sub.start === "new" ? await lastSeq() : 0;
  return { gen: 1, partitions: sub.partitions, from, passed: sum(records.map((r) => r.passed)) };
}

/** The records of `partitions`, from the bucket's stream leader (undefined: none, or deleted). */
async function readRecords(store: LayoutStore, subscription: string, partitions: number[]): Promise<(FloorRecord | undefined)[]> {
  const out: (FloorRecord | undefined)[] = [];
  for (let i = 0; i < partitions.length; i += READS_AT_ONCE) {
    const entries = await Promise.all(
      partitions.slice(i, i + READS_AT_ONCE).map((p) => readLatest(store.jsm, store.floorsBucket, `${subscription}.${p}`)),
    );
    for (const e of entries) out.push(e?.value === undefined ? undefined : decodeFloor(e.value));
  }
  return out;
}

const sum = (all: Passed[]): Passed =>
  all.reduce((a, b) => ({ applied: a.applied + b.applied, dead: a.dead + b.dead }), { applied: 0, dead: 0 });

/** The JSON stored: `{"gen": 2, "partitions": 4, "from": 1200, "applied": 1190, "dead": 2}`. */
function encodeLayout(l: Layout): Uint8Array {
  const json = { gen: l.gen, partitions: l.partitions, from: l.from, applied: l.passed.applied, dead: l.passed.dead };
  return new TextEncoder().encode(JSON.stringify(json));
}

function decodeLayout(bytes: Uint8Array): Layout {
  const j = JSON.parse(new TextDecoder().decode(bytes)) as { gen: number; partitions: number; from: number; applied: number; dead: number };
  return { gen: j.gen, partitions: j.partitions, from: j.from, passed: { applied: j.applied, dead: j.dead } };
}
