import { MeshError } from "@mesh/core";
import { decodeReply, replyError } from "@mesh/core/internal";
import type { WireRequest } from "@mesh/core/internal";
import { NoResponders } from "@mesh/transport";
import type { PendingRequest } from "@mesh/transport";
import type { CallResult, ReplyTo } from "./activation.js";

/** A request with its shard and the owner it is routed to. */
export interface Routed extends WireRequest {
  shard: number;
  owner: string;
}

/** What a remote call needs from its node when the owner turns out to be gone. */
export interface Rerouter {
  reroute(call: RemoteCall): void;
}

/**
 * A call on its way to another node. It settles its promise exactly once: with
 * the owner's reply, with TIMEOUT at its deadline, or, when the owner had no
 * responders (the call was never delivered), on the owner it is re-routed to.
 */
export class RemoteCall implements PendingRequest, ReplyTo {
  reroutes = 0;

  constructor(
    readonly request: Routed,
    readonly deadline: number,
    readonly resolve: (result: CallResult) => void,
    readonly reject: (err: Error) => void,
    private readonly rerouter: Rerouter,
  ) {}

  /** The owner's reply envelope arrived. */
  reply(data: Uint8Array): void {
    try {
      const reply = decodeReply(data);
      if (reply.ok) this.resolve({ pid: reply.pid, result: reply.result });
      else this.reject(replyError(reply));
    } catch (err) {
      this.reject(err as Error);
    }
  }

  /** Re-routed to this node: the local actor answered. */
  succeed(pid: string, result: unknown): void {
    this.resolve({ pid, result });
  }

  fail(err: Error): void {
    if (err instanceof NoResponders) this.rerouter.reroute(this);
    else this.reject(err);
  }

  expire(): void {
    this.reject(new MeshError("TIMEOUT", `no reply from node ${this.request.owner} within ${this.request.timeoutMs} ms`));
  }
}
