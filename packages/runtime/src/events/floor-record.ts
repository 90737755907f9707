// A dispatcher partition's record in the progress bucket, `<subscription>.<partition>`
// (docs/PROTOCOL.md "Events"): its floor, and the partition's events the floor
// passed, applied and dead-lettered, counted once whichever node ran them.
// Read by the dispatchers and by `mesh events`. Imports: the bottom floor.

/** Events the floor passed: applied (now, or before: a repeat) and dead-lettered. */
export interface Passed {
  applied: number;
  dead: number;
}

/** The JSON stored: `{"seq": 1200, "applied": 1190, "dead": 2}` (records of Mesh before the counts have only seq: 0 each). */
interface FloorJson {
  seq: number;
  applied?: number;
  dead?: number;
}

export function encodeFloor(floor: number, passed: Passed): Uint8Array {
  const record: FloorJson = { seq: floor, applied: passed.applied, dead: passed.dead };
  return new TextEncoder().encode(JSON.stringify(record));
}

export function decodeFloor(bytes: Uint8Array): { floor: number; passed: Passed } {
  const record = JSON.parse(new TextDecoder().decode(bytes)) as FloorJson;
  return { floor: record.seq, passed: { applied: record.applied ?? 0, dead: record.dead ?? 0 } };
}
