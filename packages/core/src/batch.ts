// Batches: several envelopes bound for the same node (or the same caller) in
// one NATS message (docs/PROTOCOL.md, "Batches"):
//
//   c1 01 | id (u32 BE) | length (u32 BE) | envelope | id | length | envelope | ...
//
// 0xc1 is the one byte msgpack never uses, so a batch can never be mistaken
// for a plain envelope (a msgpack array). `id` names the call, so the reply
// frame can find it; 0 marks a cast, which gets no reply.
import { MeshError } from "./errors.js";

/** The first byte of every batch. */
export const BATCH_MARKER = 0xc1;
/** The batch layout version, its second byte. */
export const BATCH_VERSION = 1;
/** Bytes before the first frame, and before each frame's envelope. */
export const BATCH_HEAD_BYTES = 2;
export const FRAME_HEAD_BYTES = 8;

/** True when `bytes` is a batch (else it is a plain envelope). */
export function isBatch(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === BATCH_MARKER;
}

/** The size of a batch holding `envelopes[start..end)`. */
export function batchSize(envelopes: readonly Uint8Array[], start = 0, end = envelopes.length): number {
  let size = BATCH_HEAD_BYTES;
  for (let i = start; i < end; i++) size += FRAME_HEAD_BYTES + envelopes[i]!.length;
  return size;
}

/**
 * Writes frames `start..end` of (`ids`, `envelopes`) as one batch, into a
 * buffer of exactly its size (NATS keeps a reference to what is published
 * until it flushes, so a batch's buffer is never reused).
 */
export function writeBatch(ids: readonly number[], envelopes: readonly Uint8Array[], start = 0, end = envelopes.length): Uint8Array {
  const out = new Uint8Array(batchSize(envelopes, start, end));
  const view = new DataView(out.buffer);
  out[0] = BATCH_MARKER;
  out[1] = BATCH_VERSION;
  let pos = BATCH_HEAD_BYTES;
  for (let i = start; i < end; i++) {
    const envelope = envelopes[i]!;
    view.setUint32(pos, ids[i]!);
    view.setUint32(pos + 4, envelope.length);
    out.set(envelope, pos + FRAME_HEAD_BYTES);
    pos += FRAME_HEAD_BYTES + envelope.length;
  }
  return out;
}

/**
 * Calls `frame(id, envelope)` for each frame of a batch, in order, once the
 * whole batch has been checked: it throws BAD_REQUEST, before any frame is
 * delivered, when the bytes are not a batch of this version or a frame runs
 * past the end. A batch is taken whole or not at all.
 */
export function readBatch(bytes: Uint8Array, frame: (id: number, envelope: Uint8Array) => void): void {
  if (bytes[0] !== BATCH_MARKER) throw new MeshError("BAD_REQUEST", "malformed request batch: the first byte is not 0xc1");
  if (bytes[1] !== BATCH_VERSION)
    throw new MeshError("BAD_REQUEST", `malformed request batch: unsupported batch version ${String(bytes[1])}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let pos = BATCH_HEAD_BYTES; pos < bytes.length; ) {
    if (pos + FRAME_HEAD_BYTES > bytes.length)
      throw new MeshError("BAD_REQUEST", `malformed request batch: a frame head is cut off at byte ${pos}`);
    const length = view.getUint32(pos + 4);
    const start = pos + FRAME_HEAD_BYTES;
    if (start + length > bytes.length)
      throw new MeshError(
        "BAD_REQUEST",
        `malformed request batch: frame ${view.getUint32(pos)} claims ${length} bytes, ${bytes.length - start} are left`,
      );
    pos = start + length;
  }
  for (let pos = BATCH_HEAD_BYTES; pos < bytes.length; ) {
    const start = pos + FRAME_HEAD_BYTES;
    const end = start + view.getUint32(pos + 4);
    frame(view.getUint32(pos), bytes.subarray(start, end));
    pos = end;
  }
}
