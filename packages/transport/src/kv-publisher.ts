// Writes to a KV bucket as nats.js's kv.put, kv.update and kv.delete send
// them (a publish to `$KV.<bucket>.<key>`, the expected-revision header, a
// delete marker), answered by JetStream's PubAck, without their per-request
// promise race, timer and cancellation error (a third of the CPU of a commit,
// measured with --cpu-prof): replies come through one subscription with our
// own correlation ids (Requests), and writes made in one tick go out together.
import type { MsgHdrs, NatsConnection } from "nats";
import { headers } from "nats";
import { EXPECTED_LAST_SUBJECT_SEQUENCE, WRITE_ID_HEADER } from "./jetstream.js";
import { NoResponders, Requests } from "./requests.js";
import type { PendingRequest } from "./requests.js";

/** JetStream's answer to a publish: the stored sequence, or an error. */
interface PubAck {
  seq?: number;
  error?: { code?: number; err_code?: number; description?: string };
}

/** What one write stores: a value (a delete marker with `deleted`), if the key is still at `revision` when given (0: never written). */
export interface KvWrite {
  readonly revision?: number;
  readonly deleted?: boolean;
  /** Names this write (header WRITE_ID_HEADER), so that a reader can tell it from another of the same bytes. */
  readonly id?: string;
}

export class KvPublisher {
  readonly #requests: Requests;
  readonly #subject: string;
  #queued: [string, Uint8Array, PendingRequest, MsgHdrs | undefined][] = [];

  constructor(
    nc: NatsConnection,
    readonly bucket: string,
    private readonly timeoutMs: number,
    /** Where replies come. @default "_INBOX" */
    inboxPrefix?: string,
  ) {
    this.#requests = new Requests(nc, undefined, undefined, inboxPrefix);
    this.#subject = `$KV.${bucket}.`;
  }

  /**
   * Stores `bytes` under `key` as `how` says; resolves with the new revision.
   * On a failure, rejects with what `fail` makes of it: JetStream's refusal
   * (`{ api_error, message }`, which classifyNatsError reads), or an Error
   * (no answer in time, no stream for the bucket, the publish failed).
   */
  publish(key: string, bytes: Uint8Array, how: KvWrite, fail: (err: unknown) => Error): Promise<number> {
    return new Promise((resolve, reject) => {
      let h: MsgHdrs | undefined;
      if (how.revision !== undefined || how.deleted || how.id !== undefined) {
        h = headers();
        if (how.revision !== undefined) h.set(EXPECTED_LAST_SUBJECT_SEQUENCE, String(how.revision));
        if (how.deleted) h.set("KV-Operation", "DEL");
        if (how.id !== undefined) h.set(WRITE_ID_HEADER, how.id);
      }
      const pending: PendingRequest = {
        deadline: performance.now() + this.timeoutMs,
        reply(data) {
          let ack: PubAck;
          try {
            ack = JSON.parse(new TextDecoder().decode(data)) as PubAck;
          } catch {
            return reject(fail(new Error("JetStream's answer is not JSON")));
          }
          if (typeof ack.seq === "number" && ack.error === undefined) resolve(ack.seq);
          else reject(fail({ api_error: ack.error, message: ack.error?.description ?? "no sequence in JetStream's answer" }));
        },
        fail: (err) =>
          reject(fail(err instanceof NoResponders ? new Error(`no stream answers for bucket "${this.bucket}" (it was deleted?)`) : err)),
        expire: () => reject(fail(new Error(`no answer from JetStream within ${this.timeoutMs} ms`))),
      };
      if (this.#queued.length === 0) setImmediate(() => this.#flush());
      this.#queued.push([this.#subject + key, bytes, pending, h]);
    });
  }

  #flush(): void {
    const q = this.#queued;
    this.#queued = [];
    for (const [s, b, p, h] of q) this.#requests.request(s, b, p, h);
  }
}
