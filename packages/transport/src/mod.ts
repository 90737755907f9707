// The public surface of @mesh/transport (used by @mesh/runtime).
export { connectNats, credentialsFromEnv, defaultServers, inboxPrefixFromEnv, settleWithin, withoutSecrets } from "./connection.js";
export { Membership } from "./membership.js";
export { answersProbe, claimNodeId } from "./node-id.js";
export type { MembershipParts, MembershipTiming, Revalidation } from "./membership-parts.js";
export { readAll } from "./kv-read.js";
export { KvPublisher } from "./kv-publisher.js";
export type { KvWrite } from "./kv-publisher.js";
export { NodeRecords } from "./node-records.js";
export type { NodeRecordsOptions, Renewal, Verdict } from "./node-records.js";
export { StoreRemovals } from "./store-removals.js";
export { NoResponders, Requests, publishError } from "./requests.js";
export type { OutboundLimits, PendingRequest } from "./requests.js";
export { Backlog, FRAME_COST } from "./backlog.js";
export type { ActorName, FlowWindow, OutboundReport, WaitingSend } from "./backlog.js";
export { FairQueue } from "./fair-queue.js";
export type { Queued } from "./fair-queue.js";
export { DEFAULT_INBOX_PREFIXES, Subjects } from "./subjects.js";
export { FrameQueue } from "./frame-queue.js";
export type { FlushOptions, SendGroup } from "./frame-queue.js";
export { MessageTicks } from "./message-ticks.js";
export { promptWrite } from "./prompt-write.js";
export type { PromptWrite } from "./prompt-write.js";
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
  deadLetterStream,
  isTransient,
  JETSTREAM_READY_MS,
  openBucket,
  readLatest,
  replicasFor,
} from "./jetstream.js";
export type { BucketKind, BucketOptions, LatestEntry, NatsErrorKind } from "./jetstream.js";
