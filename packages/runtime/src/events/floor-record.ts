// A dispatcher partition's record in the progress bucket, `<subscription>.<partition>`
// (docs/PROTOCOL.md "Events"): its floor, the partition's events the floor
// passed, applied and dead-lettered, counted once whichever node ran them, and
// the generation of the subscription's layout it was written in (layout-record.ts).
// Read by the dispatchers and by `mesh events`. Imports: the bottom floor.

/** Events the floor passed: applied (now, or before: a repeat) and dead-lettered. */
export interface Passed {
  applied: number;
  dead: number;
}

/** The JSON stored: `{"seq": 1200, "applied": 1190, "dead": 2, "gen": 1}` (older records have only seq, or no gen). */
interface FloorJson {
  seq: number;
  applied?: number;
  dead?: number;
  gen?: number;
}

export interface FloorRecord {
  floor: number;
  passed: Passed;
  /** The layout's generation it was written in; undefined for records of Mesh before layouts. */
  gen: number | undefined;
}

export function encodeFloor(floor: number, passed: Passed, gen: number): Uint8Array {
  const record: FloorJson = { seq: floor, applied: passed.applied, dead: passed.dead, gen };
  return new TextEncoder().encode(JSON.stringify(record));
}

export function decodeFloor(bytes: Uint8Array): FloorRecord {
  const record = JSON.parse(new TextDecoder().decode(bytes)) as FloorJson;
  return { floor: record.seq, passed: { applied: record.applied ?? 0, dead: record.dead ?? 0 }, gen: record.gen };
}
