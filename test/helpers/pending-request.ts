// A request for the transport's Requests, whose outcome is a promise: the decoded reply, or what failed it.
import { MeshError } from "@mesh/core";
import { decodeReply } from "@mesh/core/internal";
import type { PendingRequest } from "@mesh/transport";

/** A call's outcome as a promise (a TIMEOUT after 5 s, when Requests' sweep expires it). */
export function pending(): { p: PendingRequest; result: Promise<unknown> } {
  let p!: PendingRequest;
  const result = new Promise<unknown>((resolve, reject) => {
    p = {
      deadline: performance.now() + 5000,
      reply: (data) => resolve(decodeReply(data)),
      fail: reject,
      expire: () => reject(new MeshError("TIMEOUT", "no reply")),
    };
  });
  return { p, result };
}
