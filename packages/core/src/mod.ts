// The public surface of @mesh/core.
export { ErrorCode, MeshError, isErrorCode } from "./errors.js";
export { DEFAULT_SHARDS, shardFor, shardOfHash, xxh32, xxh32Bytes } from "./hash.js";
export { modulo, rendezvous, resolveStrategy } from "./placement.js";
export type { Placement, PlacementFn, Strategy } from "./placement.js";
export { OwnerTable, RoutingTable } from "./owner-table.js";
export { compareVersions } from "./placement-keys.js";
export type { PlacedMember } from "./placement-keys.js";
export { MAX_ID_LENGTH, isToken } from "./tokens.js";
export type { Announcement } from "./announcement.js";
export { quietLogger } from "./logger.js";
export type { Logger } from "./logger.js";
export { MAX_ENCODED_TOKEN, keyToken, stateBucket, stateKey } from "./state-key.js";
