// The public surface of @mesh/runtime.
export { Mesh } from "./mesh.js";
export { SERVICE_NAME } from "./service.js";
export type { MeshState } from "./mesh.js";
export type { MeshRequest } from "./request.js";
export type { MeshOptions } from "./options.js";
export type { Actor, ActorClass, CallContext, DeactivateReason } from "./actor.js";
export type { CallResult } from "./activation.js";
export { ActorRef } from "./ref.js";
export type { CallPayload, CallReply, CastPayload, Inferred, RefOptions, ReplyOf, TypedRequest } from "./ref.js";
export type { TimerOptions } from "./timers.js";
export type { ReminderInfo, RemindOptions } from "./reminders.js";
export type { HistogramSnapshot, MetricsSnapshot } from "./metrics.js";
export { ErrorCode, MeshError, shardFor } from "@mesh/core";
export type { Logger, PlacementFn, Strategy } from "@mesh/core";
