// For the sibling packages (@mesh/transport, @mesh/runtime) only: not a public API.
export * from "./mod.js";
export {
  Kind,
  WIRE_VERSION,
  cutMessage,
  decodeReply,
  decodeRequest,
  encodeError,
  encodeRequest,
  encodeResult,
  messageOf,
  replyError,
} from "./envelope.js";
export type { WireReply, WireRequest } from "./envelope.js";
export { PROTOCOL, checkAnnouncement, decodeAnnouncement, decodeLeave, encodeJson, incompatible, sameMembership } from "./announcement.js";
export type { Leave } from "./announcement.js";
export { UNVERSIONED, heirFor, keyHolders, placementKeys } from "./placement-keys.js";
export { TimeoutMap } from "./timeout-map.js";
export { TimeoutSet } from "./timeout-set.js";
export type { Numbered } from "./timeout-set.js";
export { loudError } from "./logger.js";
export { now } from "./clock.js";
export { SlotTable } from "./slot-table.js";
export { Ids } from "./ids.js";
export { IdTable } from "./id-table.js";
export type { EntryStore } from "./slot-table.js";
export type { Expiring } from "./timeout-map.js";
export { MAX_ID_LENGTH, checkId, checkToken } from "./tokens.js";
export { MAX_DEPTH, ValueError, checkAcross, checkValue, copyAcross, copyValue, valueRefused } from "./value.js";
export { MAX_SHAPES, MAX_SHAPE_KEYS } from "./value-shapes.js";
export type { Refusal } from "./value.js";
export { encodeValue, writeValue } from "./value-writer.js";
export { HeadWriter } from "./msgpack-head.js";
export { MalformedValue, decodeStrict, decodeValue } from "./value-reader.js";
export { BATCH_HEAD_BYTES, BATCH_MARKER, BATCH_VERSION, FRAME_HEAD_BYTES, batchSize, isBatch, readBatch, writeBatch } from "./batch.js";
