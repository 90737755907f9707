// What one durable actor's KV key holds (docs/PROTOCOL.md "Durable state").
// Most actors store their state's msgpack as it is. An actor that handles
// stream events or publishes from its turns stores a record instead, so that
// the state, the stream sequences it has applied and the messages its
// committed turns publish change in one compare-and-set:
//
//   ext 32 (0xc9), type 77 ("M"), body: msgpack [1, state, applied, outbox]
//     state:   bin, the state's msgpack, or nil (cleared: the initial state)
//     applied: map of subscription → the highest stream sequence applied
//     outbox:  array of [msgId, subject, data bin, headers map or nil]
//
// A class whose `static stateVersion` is above 1 always stores a record, of
// layout 2, which adds the version: [2, state, applied, outbox, version].
// Code from before state versions refuses layout 2 as broken (BAD_STATE)
// rather than reading a state shaped by newer code.
//
// A state never starts so: the value model refuses every extension but the
// timestamp (type -1).
import { HeadWriter, decodeValue, writeValue } from "@mesh/core/internal";

/** A message a turn publishes (ctx.publish): sent after its turn, with a JetStream message id. */
export interface OutMessage {
  id: string;
  subject: string;
  data: Uint8Array;
  headers: Record<string, string> | undefined;
}

/** A stored key, read: the state's bytes (undefined: the initial state), what it applied and what it has yet to publish. */
export interface StoredRecord {
  state: Uint8Array | undefined;
  applied: Map<string, number>;
  outbox: OutMessage[];
  /** The class's `stateVersion` that wrote it: 1 for a bare state and layout 1. */
  version: number;
}

const EXT32 = 0xc9;
const RECORD_TYPE = 77;
/** Layout 1 has no state version; layout 2 has. */
const LAYOUT = 1;
const VERSIONED_LAYOUT = 2;

/** True when `bytes` are a record rather than a bare state. */
export function isRecord(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && bytes[0] === EXT32 && bytes[5] === RECORD_TYPE;
}

/** The bytes to store: the state alone when nothing else is to be kept (and its version is 1), else a record. */
export function encodeRecord(
  state: Uint8Array | undefined,
  applied: ReadonlyMap<string, number>,
  outbox: readonly OutMessage[],
  version = 1,
): Uint8Array {
  if (state === undefined) version = 1; // no state: nothing of its shape to keep from older code
  if (version === 1 && applied.size === 0 && outbox.length === 0 && state !== undefined) return state;
  // Written in one reused buffer (a new msgpack Encoder per commit allocated 2 KiB: bench, events into durable actors).
  const w = writer.reset();
  w.byte(EXT32);
  w.u32(0); // the body's length, set below
  w.byte(RECORD_TYPE);
  const body = [state ?? null, Object.fromEntries(applied), outbox.map((m) => [m.id, m.subject, m.data, m.headers ?? null])];
  writeValue(w, version === 1 ? [LAYOUT, ...body] : [VERSIONED_LAYOUT, ...body, version], "BAD_STATE", "the state record");
  w.view().setUint32(1, w.pos - 6);
  return w.done();
}
const writer = new HeadWriter();

/** Reads stored bytes: a bare state, or a record. Throws for a record that is not one. */
export function decodeRecord(bytes: Uint8Array): StoredRecord {
  if (!isRecord(bytes)) return { state: bytes, applied: new Map(), outbox: [], version: 1 };
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(1);
  const body = decodeValue(bytes.subarray(6, 6 + length)) as unknown[];
  const layout = Array.isArray(body) ? body[0] : undefined;
  const version = layout === LAYOUT && body.length === 4 ? 1 : layout === VERSIONED_LAYOUT && body.length === 5 ? body[4] : undefined;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1)
    throw new Error("not a Mesh state record (unknown version or layout)");
  const [, state, applied, outbox] = body as [
    number,
    Uint8Array | null,
    { [k: string]: number },
    [string, string, Uint8Array, { [k: string]: string } | null][],
  ];
  return {
    state: state ?? undefined,
    applied: new Map(Object.entries(applied)),
    outbox: outbox.map(([id, subject, data, headers]) => ({ id, subject, data, headers: headers ?? undefined })),
    version,
  };
}
