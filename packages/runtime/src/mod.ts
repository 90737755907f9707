// The public surface of @mesh/runtime.
export { Mesh } from "./mesh.js";
export { SERVICE_NAME } from "./operations/service.js";
export type { MeshState } from "./mesh.js";
export type { MeshOptions } from "./options.js";
export type {
  Actor,
  ActorClass,
  CallContext,
  CallPayload,
  CallReply,
  CallResult,
  CastPayload,
  DeactivateReason,
  Inferred,
  MeshRequest,
  Ref,
  RefOptions,
  ReminderInfo,
  RemindOptions,
  ReplyOf,
  TimerOptions,
  TypedRequest,
  StreamEvent,
  EventSubscription,
  EventKey,
} from "./types.js";
export { ActorRef } from "./actors/ref.js";
export type { HistogramSnapshot, MetricsSnapshot } from "./operations/metrics.js";
export type { SubscriptionReport } from "./events/sources.js";
export { ErrorCode, MeshError, shardFor } from "@mesh/core";
export type { Logger, PlacementFn, Strategy } from "@mesh/core";
