// A subscription to a stream that does not exist fails Mesh.start, naming the
// stream and the streams that do (docs/events.md): with a wrong name a node
// would start, and no event would ever come. Subscriptions that say
// `waitForStream` start without it, logged loudly once. A stream the node
// cannot look up (no permission, a cluster still electing) is left to the
// dispatchers, which report what they meet (`mesh events`, the logger).
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { loudError, messageOf } from "@mesh/core/internal";
import type { JetStreamManager } from "nats";
import type { ResolvedSubscription } from "./subscription.js";

/** JetStream's error code for "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** Throws BAD_REQUEST when a subscription's stream does not exist (logs it when all of its subscriptions wait for it). */
export async function checkStreams(subs: readonly ResolvedSubscription[], jsm: JetStreamManager, log: Logger): Promise<void> {
  for (const stream of new Set(subs.map((s) => s.stream))) {
    let subjects: readonly string[] | undefined;
    try {
      const { config } = await jsm.streams.info(stream);
      // Sourced or transformed messages keep (or get) subjects outside `subjects`: then any filter may match.
      const elsewhere = config.mirror !== undefined || (config.sources?.length ?? 0) > 0 || "subject_transform" in config;
      subjects = elsewhere ? undefined : config.subjects;
    } catch (err) {
      const missing =
        (err as { api_error?: { err_code?: number } }).api_error?.err_code === STREAM_NOT_FOUND || /stream not found/i.test(messageOf(err));
      if (!missing) continue;
      const names = await streamNames(jsm).catch(() => undefined);
      const of = subs.filter((s) => s.stream === stream);
      const listed =
        names === undefined ? "the streams could not be listed" : `the streams are: ${names.length > 0 ? names.join(", ") : "none"}`;
      const missingNote = `stream "${stream}" (subscribed by ${of.map((s) => s.id).join(", ")}) does not exist; ${listed}`;
      if (of.every((s) => s.waitForStream))
        loudError(log, { stream }, `mesh: ${missingNote}. Its events are read once it is created (waitForStream)`);
      else throw new MeshError("BAD_REQUEST", `${missingNote}. Create it before the nodes start, or set waitForStream`);
      continue;
    }
    // A stream that keeps only what is published to its subjects holds nothing of a filter that none of them overlaps.
    for (const sub of subs)
      if (sub.stream === stream && sub.subject !== undefined && subjects !== undefined && subjects.length > 0)
        if (!subjects.some((s) => overlap(s, sub.subject!)))
          throw new MeshError(
            "BAD_REQUEST",
            `${sub.id} reads "${sub.subject}" from stream "${stream}", whose subjects (${subjects.join(", ")}) hold no such message`,
          );
  }
}

/** True when some subject matches both `a` and `b` (each may hold `*` and `>`). */
export function overlap(a: string, b: string): boolean {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === ">" || y[i] === ">") return true;
    if (x[i] !== "*" && y[i] !== "*" && x[i] !== y[i]) return false;
  }
  return x.length === y.length;
}

/** The streams of the account, without Mesh's and NATS's own (KV and object store buckets). */
async function streamNames(jsm: JetStreamManager): Promise<string[]> {
  const names: string[] = [];
  for await (const name of jsm.streams.names()) if (!/^(KV|OBJ)_/.test(name)) names.push(name);
  return names.sort();
}
