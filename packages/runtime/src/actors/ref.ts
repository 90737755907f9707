// Typed references: mesh.ref(Cart, "cart-1", { capability: "cart" }) and
import type { ActorClass, CallPayload, CallReply, CallResult, CastPayload, MeshRequest, Ref, RefOptions } from "../types.js";
// ctx.ref(...) inside actors. A reference's call() takes the payload type of
// the class's handleCall and resolves to what it returns (awaited); cast()
// takes handleCast's payload (handleCall's when there is none). tsc checks
// both at the call site.

/** Where a reference sends its messages: a node, or an actor's context (which adds its call chain). */
export interface Caller {
  call<R>(request: MeshRequest): Promise<CallResult<R>>;
  cast(request: MeshRequest): Promise<void>;
}

/** A typed handle on one actor: its class, id and capability. Cheap to make; holds no connection of its own. */
export class ActorRef<A> implements Ref<A> {
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
