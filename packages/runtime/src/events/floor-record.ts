// A dispatcher partition's record in the progress bucket, `<subscription>.<partition>`
// (docs/PROTOCOL.md "Events"): its floor, the partition's events the floor
// passed, applied and dead-lettered, counted once whichever node ran them, and
// the generation and partition count of the subscription's layout it was written
// in (layout-record.ts), and when the stream stored the event at the floor.
// Read by the dispatchers and by `mesh events`. Imports: the bottom floor.

/** Events the floor passed: applied (now, or before: a repeat) and dead-lettered. */
export interface Passed {
  applied: number;
  dead: number;
}

/** The JSON stored: `{"seq": 1200, "applied": 1190, "dead": 2, "gen": 1, "of": 4, "t": 1796532078123, "era": 0}` (older records have only seq, or no gen, of, t and era). */
interface FloorJson {
  seq: number;
  t?: number;
  era?: number;
  applied?: number;
  dead?: number;
  gen?: number;
  of?: number;
}

export interface FloorRecord {
  floor: number;
  passed: Passed;
  /** The layout it was written in: its generation and partition count; undefined for records of Mesh before layouts. */
  gen: number | undefined;
  of: number | undefined;
  /** When the stream stored the event at the floor (epoch ms, the server's clock); 0 when unknown. */
  time: number;
  /** The era of the layout it was written in (0 for records of Mesh before eras). */
  era: number;
}

export function encodeFloor(
  floor: number,
  passed: Passed,
  layout: { gen: number; partitions: number; era: number },
  time: number,
): Uint8Array {
  const { gen, partitions: of, era } = layout;
  const record: FloorJson = { seq: floor, applied: passed.applied, dead: passed.dead, gen, of, t: time, era };
  return new TextEncoder().encode(JSON.stringify(record));
}

/** The record, or undefined when the value is not one (written by hand): read as no record, so its partition starts lower, never higher. */
export function decodeFloor(bytes: Uint8Array): FloorRecord | undefined {
  let r: FloorJson;
  try {
    r = JSON.parse(new TextDecoder().decode(bytes)) as FloorJson;
  } catch {
    return undefined;
  }
  if (typeof r !== "object" || r === null || !isCount(r.seq)) return undefined;
  return {
    floor: r.seq,
    passed: { applied: isCount(r.applied) ? r.applied : 0, dead: isCount(r.dead) ? r.dead : 0 },
    gen: isCount(r.gen) ? r.gen : undefined,
    of: isCount(r.of) ? r.of : undefined,
    time: isCount(r.t) ? r.t : 0,
    era: isCount(r.era) ? r.era : 0,
  };
}

/** True for a whole number >= 0. */
export const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
