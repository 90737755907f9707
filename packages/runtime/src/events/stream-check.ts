// A subscription to a stream that does not exist fails Mesh.start, naming the
// stream and the streams that do (docs/events.md): with a wrong name a node
// would start, and no event would ever come. A stream the node cannot look
// up (no permission, a cluster still electing) is left to the dispatchers,
// which report what they meet (`mesh events`, the logger).
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { JetStreamManager } from "nats";
import type { ResolvedSubscription } from "./subscription.js";

/** JetStream's error code for "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** Throws BAD_REQUEST when a subscription's stream does not exist. */
export async function checkStreams(subs: readonly ResolvedSubscription[], jsm: JetStreamManager): Promise<void> {
  for (const stream of new Set(subs.map((s) => s.stream))) {
    try {
      await jsm.streams.info(stream);
    } catch (err) {
      const missing =
        (err as { api_error?: { err_code?: number } }).api_error?.err_code === STREAM_NOT_FOUND || /stream not found/i.test(messageOf(err));
      if (!missing) continue;
      const names = await streamNames(jsm).catch(() => undefined);
      const of = subs.filter((s) => s.stream === stream).map((s) => s.id);
      throw new MeshError(
        "BAD_REQUEST",
        `stream "${stream}" (subscribed by ${of.join(", ")}) does not exist; ${
          names === undefined ? "the streams could not be listed" : `the streams are: ${names.length > 0 ? names.join(", ") : "none"}`
        }. Create it before the nodes start`,
      );
    }
  }
}

/** The streams of the account, without Mesh's and NATS's own (KV and object store buckets). */
async function streamNames(jsm: JetStreamManager): Promise<string[]> {
  const names: string[] = [];
  for await (const name of jsm.streams.names()) if (!/^(KV|OBJ)_/.test(name)) names.push(name);
  return names.sort();
}
