// The JetStream seam: what the runtime keeps in JetStream KV and how it gets
// there. The names of a cluster's buckets, opening (creating) and binding them,
// and what a NATS or JetStream error means, read in one place: the state,
// reminders and events rooms of @mesh/runtime ask here instead of parsing
// messages of their own.
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { JetStreamManager, KV, NatsConnection } from "nats";

/** The KV buckets of a cluster: actors' state, durable reminders, the event dispatchers' progress, the nodes' lease records. */
export const BUCKET_KINDS = ["state", "reminders", "events", "nodes"] as const;

/** One of a cluster's KV buckets. */
export type BucketKind = (typeof BUCKET_KINDS)[number];

/**
 * The default name of a cluster's `kind` bucket: its prefix, dots as
 * underscores, then `_<kind>` ("mesh" -> "mesh_state", "mesh_reminders",
 * "mesh_events", "mesh_nodes").
 */
export function bucketName(prefix: string, kind: BucketKind): string {
  return `${prefix.replaceAll(".", "_")}_${kind}`;
}

/** The stream Mesh keeps dead letters in when a subscription names no `deadLetter` of its own: "mesh" -> "mesh_dead_letters". */
export function deadLetterStream(prefix: string): string {
  return `${prefix.replaceAll(".", "_")}_dead_letters`;
}

/** Copies of each value of a bucket created without `replicas`: 3 when the server is part of a NATS cluster, else 1. */
export const DEFAULT_REPLICAS = { cluster: 3, single: 1 } as const;

/** How a bucket is opened: `replicas` (undefined: DEFAULT_REPLICAS) and how long each JetStream request may take. */
export interface BucketOptions {
  readonly replicas?: number | undefined;
  readonly timeoutMs: number;
}

/**
 * What a NATS or JetStream error means to the runtime:
 * - `no-responders`: nobody answered the subject (503): no JetStream, no stream that captures it, no node;
 * - `timeout`: no answer in time;
 * - `wrong-last-sequence`: a compare-and-set lost (the key's revision moved);
 * - `max-payload`: the message is larger than the server's max_payload;
 * - `stream-exists`: a stream with the subjects or the name is there already (nodes racing to create a bucket);
 * - `no-message`: the stream holds no message for the subject asked for (a key never written);
 * - `other`: anything else.
 */
export const NATS_ERROR_KINDS = [
  "no-responders",
  "timeout",
  "wrong-last-sequence",
  "max-payload",
  "stream-exists",
  "no-message",
  "other",
] as const;

/** One of NATS_ERROR_KINDS. */
export type NatsErrorKind = (typeof NATS_ERROR_KINDS)[number];

/** JetStream's error code for "wrong last sequence": the compare-and-set lost. */
export const WRONG_LAST_SEQUENCE = 10071;

/** JetStream's error code for "no message found" (a get of a subject the stream holds nothing of). */
export const NO_MESSAGE_FOUND = 10037;

/** The header that makes a JetStream publish a compare-and-set on the subject's last sequence. */
export const EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence";

/**
 * What `err`, thrown by nats.js or built from a JetStream answer
 * (`{ api_error, message }`), means. Its code and JetStream error code are
 * read first, then its message.
 */
export function classifyNatsError(err: unknown): NatsErrorKind {
  const e = (typeof err === "object" && err !== null ? err : {}) as { api_error?: { err_code?: number }; code?: unknown };
  if (e.api_error?.err_code === WRONG_LAST_SEQUENCE) return "wrong-last-sequence";
  if (e.code === "503") return "no-responders";
  if (e.code === "TIMEOUT") return "timeout";
  if (e.code === "MAX_PAYLOAD_EXCEEDED") return "max-payload";
  // JetStream's own code first: a 404 is also "stream not found" (the bucket is gone), which is no answer at all.
  if (e.api_error?.err_code !== undefined ? e.api_error.err_code === NO_MESSAGE_FOUND : e.code === "404") return "no-message";
  const message = messageOf(err);
  // nats-server 2.9 tells the loser of a race to create a bucket "subjects overlap with an existing stream".
  if (/overlap|already in use/i.test(message)) return "stream-exists";
  if (/503|no responders/i.test(message)) return "no-responders";
  return "other";
}

/** The replicas of what Mesh creates in JetStream: `given`, else DEFAULT_REPLICAS for the server `nc` is connected to. */
export function replicasFor(nc: NatsConnection, given: number | undefined): number {
  return given ?? (nc.info?.cluster ? DEFAULT_REPLICAS.cluster : DEFAULT_REPLICAS.single);
}

/**
 * Opens KV bucket `bucket`, creating it when missing (history 1, file
 * storage; `replicas` DEFAULT_REPLICAS unless given). Where the server has
 * JetStream, waits up to JETSTREAM_READY_MS for it to answer. Throws
 * STORAGE_UNAVAILABLE with the reason, in one line.
 */
export async function openBucket(nc: NatsConnection, what: BucketKind, bucket: string, options: BucketOptions): Promise<KV> {
  const timeout = options.timeoutMs;
  const replicas = replicasFor(nc, options.replicas);
  const readyBy = performance.now() + JETSTREAM_READY_MS;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await nc.jetstream({ timeout }).views.kv(bucket, { history: 1, replicas, timeout });
      } catch (err) {
        // Nodes starting together race to create the bucket; nats-server 2.9 may tell the loser
        // "subjects overlap with an existing stream" while the winner's stream is being set up.
        const racing = attempt < 5 && classifyNatsError(err) === "stream-exists";
        // A NATS cluster that just started has no JetStream leader yet: its requests time out or are "temporarily unavailable".
        const electing = nc.info?.jetstream === true && performance.now() < readyBy && isTransient(err);
        if (!racing && !electing) throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.min(500, 50 * attempt)));
      }
    }
  } catch (err) {
    const reason =
      classifyNatsError(err) === "no-responders"
        ? "JetStream is not enabled on the NATS server (enable it with a jetstream block in the server config)"
        : messageOf(err);
    throw new MeshError("STORAGE_UNAVAILABLE", `cannot open the ${what} bucket "${bucket}": ${reason}`, { cause: err });
  }
}

/** How long opening a bucket waits for the JetStream of a server that has it to answer (a NATS cluster still electing its leader). */
export const JETSTREAM_READY_MS = 20_000;

/** True for what a stream or JetStream without a leader answers: no responders (503), a timeout, "temporarily unavailable", or, in a cluster just started, "no suitable peers for placement". */
export function isTransient(err: unknown): boolean {
  const kind = classifyNatsError(err);
  return kind === "timeout" || kind === "no-responders" || /temporarily unavailable|no suitable peers/i.test(messageOf(err));
}

/** Binds to KV bucket `bucket`, which must exist (for tools). Throws STORAGE_UNAVAILABLE when it does not. */
export async function bindBucket(nc: NatsConnection, what: BucketKind, bucket: string, timeoutMs: number): Promise<KV> {
  try {
    const kv = await nc.jetstream({ timeout: timeoutMs }).views.kv(bucket, { bindOnly: true, timeout: timeoutMs });
    await kv.status(); // bindOnly does not look: a bucket that is not there fails here
    return kv;
  } catch (err) {
    throw new MeshError("STORAGE_UNAVAILABLE", `cannot open the ${what} bucket "${bucket}": ${messageOf(err)}`, { cause: err });
  }
}

/** The header a write may carry to name itself (KvWrite.id; docs/PROTOCOL.md): a reader can tell it from another write of the same bytes. */
export const WRITE_ID_HEADER = "Mesh-Write";

/** A key's newest entry in a KV bucket: its value (undefined once deleted or purged), its revision, and the id its write carried. */
export interface LatestEntry {
  readonly value: Uint8Array | undefined;
  readonly revision: number;
  readonly writeId: string | undefined;
}

/**
 * The newest entry of `key` in KV bucket `bucket`, or null when the key was
 * never written: read from the bucket's stream leader
 * (`$JS.API.STREAM.MSG.GET`), whatever the bucket's `allow_direct`. nats.js's
 * `kv.get` uses Direct Get on a bucket that allows it, which any replica may
 * answer, including one that has not applied the last write (ADR-8): what an
 * activation starts from, or what a node decides on, must not be read that way.
 */
export async function readLatest(jsm: JetStreamManager, bucket: string, key: string): Promise<LatestEntry | null> {
  try {
    const m = await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` });
    const operation = m.header?.get("KV-Operation");
    return {
      value: operation === "DEL" || operation === "PURGE" ? undefined : m.data,
      revision: m.seq,
      writeId: m.header?.get(WRITE_ID_HEADER) || undefined,
    };
  } catch (err) {
    if (classifyNatsError(err) === "no-message") return null;
    throw err;
  }
}
