// The event subscriptions of a node's classes: which of their dispatchers run
// here. Dispatcher `p` of subscription `s` belongs to the node that owns shard
// shardFor("<s>#<p>") of the subscription's capability, as an actor would: the
// dispatchers spread over the nodes that host the class and move with the view
// (docs/events.md). Imports: the events room, the transport's JetStream seam
// and the bottom floor.
import { shardFor } from "@mesh/core";
import { messageOf } from "@mesh/core/internal";
import type { Logger } from "@mesh/core";
import { bucketName, openBucket, replicasFor } from "@mesh/transport";
import type { BucketOptions } from "@mesh/transport";
import type { KV, NatsConnection } from "nats";
import type { ReplyTo } from "../types.js";
import { checkStreams } from "./stream-check.js";
import { keepDeadLetters } from "./dead-letters.js";
import { Dispatcher } from "./dispatcher.js";
import type { DispatcherParts, SubscriptionCounts } from "./dispatcher.js";
import type { ResolvedSubscription } from "./subscription.js";
import type { WireEvent } from "./event.js";

/** One subscription as a node reports it (metrics, `mesh events`). */
export interface SubscriptionReport extends SubscriptionCounts {
  subscription: string;
  stream: string;
  /** Its dispatchers, one per partition, wherever they run (their records in the progress bucket: `<subscription>.<partition>`). */
  partitions: number;
  /** The partitions whose dispatcher runs on this node, with where each stands. */
  dispatchers: { partition: number; floor: number; lag: number; inFlight: number; error?: string }[];
}

export interface SourcesParts {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly shards: number;
  readonly log: Logger;
  readonly callTimeoutMs: number;
  /** Where this node's replies come. */
  readonly inboxPrefix: string | undefined;
  readonly drainTimeoutMs: number;
  readonly storage: BucketOptions;
  /** True when this node owns `shard` of `capability` in its view. */
  owns(capability: string, shard: number): boolean;
  deliver(sub: ResolvedSubscription, id: string, event: WireEvent, timeoutMs: number, reply: ReplyTo): string | undefined;
}

export class EventSources {
  readonly #running = new Map<string, Dispatcher>();
  readonly #counts = new Map<string, SubscriptionCounts>();
  #parts: DispatcherParts | undefined;
  #stopped = false;

  private constructor(
    private readonly subs: readonly ResolvedSubscription[],
    private readonly p: SourcesParts,
  ) {
    for (const sub of subs) this.#counts.set(sub.id, { handled: 0, duplicates: 0, redeliveries: 0, deadLetters: 0 });
  }

  /** Opens the progress bucket (creating it when missing). Throws STORAGE_UNAVAILABLE. */
  static async open(subs: readonly ResolvedSubscription[], p: SourcesParts): Promise<EventSources> {
    const sources = new EventSources(subs, p);
    const floorsBucket = bucketName(p.prefix, "events");
    const floors: KV = await openBucket(p.nc, "events", floorsBucket, p.storage);
    const js = p.nc.jetstream({ timeout: p.storage.timeoutMs });
    const jsm = await p.nc.jetstreamManager({ timeout: p.storage.timeoutMs, checkAPI: false }); // the bucket just answered (node-records.ts)
    await checkStreams(subs, jsm, p.log);
    await keepDeadLetters(subs, { jsm, prefix: p.prefix, replicas: replicasFor(p.nc, p.storage.replicas), log: p.log });
    sources.#parts = {
      nc: p.nc,
      js,
      jsm,
      floors,
      floorsBucket,
      log: p.log,
      callTimeoutMs: p.callTimeoutMs,
      inboxPrefix: p.inboxPrefix,
      deliver: p.deliver,
      remake: (d) => sources.#remake(d),
    };
    return sources;
  }

  /** A dispatcher stopped because its stream was made again: another starts in its place, from the new stream's layout. */
  #remake(d: Dispatcher): void {
    if (this.#stopped || this.#running.get(d.key) !== d) return;
    const next = new Dispatcher(d.sub, d.partition, this.#parts!, this.#counts.get(d.sub.id)!);
    this.#running.set(d.key, next);
    next.start();
  }

  /** The view changed: starts the dispatchers this node now owns, stops the others; events sent to nodes it no longer holds go again. */
  viewChanged(inView: (node: string) => boolean): void {
    if (this.#stopped) return;
    for (const sub of this.subs) {
      for (let partition = 0; partition < sub.partitions; partition++) {
        const key = `${sub.id}.${partition}`;
        const mine = this.p.owns(sub.capability, shardFor(`${sub.id}#${partition}`, this.p.shards));
        const running = this.#running.get(key);
        if (mine && running === undefined) {
          const d = new Dispatcher(sub, partition, this.#parts!, this.#counts.get(sub.id)!);
          this.#running.set(key, d);
          d.start();
        } else if (!mine && running !== undefined) {
          this.#running.delete(key);
          void running
            .stop(this.p.drainTimeoutMs)
            .catch((err: unknown) => this.p.log.warn({ subscription: sub.id, err: messageOf(err) }, "mesh: event dispatcher stop failed"));
        }
      }
    }
    for (const d of this.#running.values()) d.nodesGone(inView);
  }

  /** Connected to NATS again: each dispatcher reads on with a new consumer (a restarted server forgot them). */
  reconnected(): void {
    for (const d of this.#running.values()) d.reconnected();
  }

  /** Stops every dispatcher (each waits for its events in flight, at most `timeoutMs`) and stores their floors. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopped = true;
    const all = [...this.#running.values()];
    this.#running.clear();
    await Promise.all(all.map((d) => d.stop(timeoutMs)));
  }

  /** Each subscription: what it did on this node, and the dispatchers running here. */
  report(): SubscriptionReport[] {
    return this.subs.map((sub) => ({
      subscription: sub.id,
      stream: sub.stream,
      partitions: sub.partitions,
      ...this.#counts.get(sub.id)!,
      dispatchers: [...this.#running.values()]
        .filter((d) => d.sub === sub)
        .map((d) => ({ partition: d.partition, floor: d.floor, lag: d.lag, inFlight: d.inFlight, ...(d.error ? { error: d.error } : {}) })),
    }));
  }
}
