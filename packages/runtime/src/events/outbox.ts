// Publishing what turns published (ctx.publish) to JetStream, each message
// with its id in Nats-Msg-Id so a stream drops a copy sent again within its
// duplicate window (docs/events.md "Events out"). Imports: the bottom floor.
import { randomBytes } from "node:crypto";
import { MeshError } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import { classifyNatsError } from "@mesh/transport";
import { headers as natsHeaders } from "nats";
import type { JetStreamClient, MsgHdrs, NatsConnection } from "nats";
import type { OutMessage } from "../state/record.js";

/** What publishing tells the node's metrics. */
export interface PublishCounts {
  published: number;
  outboxDepth: number;
}

export class Publisher {
  readonly #js: JetStreamClient;
  /** Ids of plain actors' messages: this node incarnation's own prefix, and a counter. */
  readonly #prefix = randomBytes(6).toString("hex");
  #next = 0;

  constructor(
    nc: NatsConnection,
    private readonly timeoutMs: number,
    private readonly counts: PublishCounts,
  ) {
    this.#js = nc.jetstream({ timeout: timeoutMs });
  }

  /** Gives messages their ids (unique to this node's run); a durable actor's are stored with them before they go out. */
  name(out: OutMessage[]): OutMessage[] {
    for (const m of out) m.id = `${this.#prefix}:${++this.#next}`;
    return out;
  }

  /**
   * Publishes `out`, all at once; resolves once JetStream stored every one.
   * Rejects with STORAGE_UNAVAILABLE naming the first that failed (no stream
   * captures its subject, no answer within the store timeout).
   */
  async publish(out: readonly OutMessage[]): Promise<void> {
    this.counts.outboxDepth += out.length;
    try {
      await Promise.all(out.map((m) => this.#one(m)));
    } finally {
      this.counts.outboxDepth -= out.length;
    }
  }

  async #one(m: OutMessage): Promise<void> {
    try {
      await this.#js.publish(m.subject, m.data, { msgID: m.id, headers: headersOf(m.headers), timeout: this.timeoutMs });
      this.counts.published++;
    } catch (err) {
      const reason = classifyNatsError(err) === "no-responders" ? "no JetStream stream captures that subject" : messageOf(err);
      throw new MeshError("STORAGE_UNAVAILABLE", `cannot publish to ${m.subject}: ${reason}`, { cause: err });
    }
  }
}

/** NATS headers holding `headers` (one value each), those `keep` keeps. */
export function headersOf(headers: Readonly<Record<string, string>> | null | undefined, keep?: (name: string) => boolean): MsgHdrs {
  const h = natsHeaders();
  if (headers) for (const [name, value] of Object.entries(headers)) if (keep === undefined || keep(name)) h.set(name, value);
  return h;
}
