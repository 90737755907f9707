// Typed references: mesh.ref(Cart, "cart-1", { capability: "cart" }) and
// ctx.ref(...) inside actors. A reference's call() takes the payload type of
// the class's handleCall and resolves to what it returns (awaited); cast()
// takes handleCast's payload (handleCall's when there is none). tsc checks
// both at the call site.
import type { ActorClass } from "./actor.js";
import type { CallResult } from "./activation.js";
import type { MeshRequest } from "./request.js";

/** The payload `handleCall` of actor `A` takes. */
export type CallPayload<A> = A extends { handleCall(payload: infer P, ...rest: any[]): unknown } ? P : never;
/** What a call to actor `A` resolves to: its handleCall's return value, awaited. */
export type CallReply<A> = A extends { handleCall(...args: any[]): infer R } ? Awaited<R> : never;
/** The payload a cast to actor `A` takes: handleCast's, else handleCall's. */
export type CastPayload<A> = A extends { handleCast(payload: infer P, ...rest: any[]): unknown } ? P : CallPayload<A>;

declare const inferred: unique symbol;
/** The default of `mesh.call`'s reply type parameter: "infer it from the class". */
export type Inferred = typeof inferred;

/** A request to an actor of `C` (a class or a type name) whose payload type comes from the class's handleCall (or handleCast, with `Cast`). */
export type TypedRequest<C, Cast extends boolean = false> = Omit<MeshRequest, "actor" | "payload"> & {
  actor: C;
  payload?: C extends ActorClass ? (Cast extends true ? CastPayload<InstanceType<C>> : CallPayload<InstanceType<C>>) : unknown;
};

/** What a call to `C` resolves to: the class's handleCall reply, or `unknown` for a type name. */
export type ReplyOf<C> = C extends ActorClass ? CallReply<InstanceType<C>> : unknown;

/** Where a reference sends its messages: a node, or an actor's context (which adds its call chain). */
export interface Caller {
  call<R>(request: MeshRequest): Promise<CallResult<R>>;
  cast(request: MeshRequest): Promise<void>;
}

/** Options of a reference. */
export interface RefOptions {
  /** The capability whose nodes may own the actor. @default the first of the class's `static capabilities` */
  capability?: string;
  /** Handed to the constructor when a message activates the actor. */
  initArg?: unknown;
}

/** A typed handle on one actor: its class, id and capability. Cheap to make; holds no connection of its own. */
export class ActorRef<A> {
  constructor(
    private readonly caller: Caller,
    readonly actor: ActorClass | string,
    readonly id: string,
    private readonly options: RefOptions,
  ) {}

  /** Calls the actor; resolves to its reply. Rejects with a MeshError, as `mesh.call` does. */
  async call(payload: CallPayload<A>, options: { timeoutMs?: number } = {}): Promise<CallReply<A>> {
    const { result } = await this.caller.call<CallReply<A>>({ actor: this.actor, id: this.id, payload, ...this.options, ...options });
    return result;
  }

  /** Casts to the actor; resolves once the message is on its way, as `mesh.cast` does. */
  cast(payload: CastPayload<A>): Promise<void> {
    return this.caller.cast({ actor: this.actor, id: this.id, payload, ...this.options });
  }
}
