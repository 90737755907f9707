// The public surface of @mesh/transport (used by @mesh/runtime).
export { connectNats, credentialsFromEnv, defaultServers, inboxPrefixFromEnv, settleWithin } from "./connection.js";
export { Membership, claimNodeId } from "./membership.js";
export type { MembershipTiming } from "./membership.js";
export { NoResponders, Requests, publishError } from "./requests.js";
export type { PendingRequest } from "./requests.js";
export { Subjects } from "./subjects.js";
export { FrameQueue } from "./frame-queue.js";
export type { SendGroup } from "./frame-queue.js";
export {
  BUCKET_KINDS,
  DEFAULT_REPLICAS,
  EXPECTED_LAST_SUBJECT_SEQUENCE,
  NATS_ERROR_KINDS,
  NO_MESSAGE_FOUND,
  WRONG_LAST_SEQUENCE,
  bindBucket,
  bucketName,
  classifyNatsError,
  openBucket,
  readLatest,
} from "./jetstream.js";
export type { BucketKind, BucketOptions, LatestEntry, NatsErrorKind } from "./jetstream.js";
