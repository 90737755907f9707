// Where dead letters are kept (docs/events.md "Dead letters"). A dead letter
// no stream keeps is published to nobody and lost, so at start every
// subscription's dead-letter subject must be captured by a stream: Mesh
// creates its own, `<prefix>_dead_letters` (`<prefix>.events.dead.>`), for the
// default subjects when no stream captures them, and a subscription whose own
// `deadLetter` no stream captures fails Mesh.start. Where the node may not
// look streams up, it says so loudly and the dispatchers find out when they
// publish one. And publishing one, with why its event failed. Imports: the
// events room and the bottom floor.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import { loudError, messageOf } from "@mesh/core/internal";
import { classifyNatsError, deadLetterStream } from "@mesh/transport";
import { RetentionPolicy, StorageType } from "nats";
import type { JetStreamClient, JetStreamManager } from "nats";
import type { PendingEvent } from "./delivery.js";
import { appliedKey } from "./event.js";
import { headersOf } from "./outbox.js";
import type { ResolvedSubscription } from "./subscription.js";

/**
 * How long Mesh's own dead-letter stream keeps a dead letter, and how many it keeps at most, the oldest going first
 * (an operator may change both). A byte limit would reserve that much of JetStream's storage.
 */
export const DEAD_LETTER_RETENTION = { maxAgeDays: 30, maxMessages: 1_000_000 } as const;

/** The subject default dead letters of `prefix` go under. */
export const deadLetterSubjects = (prefix: string) => `${prefix}.events.dead.>`;

/** Makes sure a stream keeps each subscription's dead letters; throws BAD_REQUEST for a `deadLetter` no stream captures. */
export async function keepDeadLetters(
  subs: readonly ResolvedSubscription[],
  p: { jsm: JetStreamManager; prefix: string; replicas: number; log: Logger },
): Promise<void> {
  const defaults = `${p.prefix}.events.dead.`;
  for (const subject of new Set(subs.map((s) => s.deadLetter))) {
    const keeper = await streamOf(p.jsm, subject);
    if (keeper.kind === "kept") continue;
    const of = subs.filter((s) => s.deadLetter === subject).map((s) => s.id);
    if (keeper.kind === "unknown") {
      loudError(
        p.log,
        { subject, subscriptions: of, err: keeper.why },
        "mesh: cannot tell which stream keeps these dead letters (the node may not list streams); a dead letter no stream keeps waits, and its id with it",
      );
    } else if (subject.startsWith(defaults)) {
      await createDeadLetterStream(p);
      // Another stream may hold some of the default subjects (or the name): then ours could not be made.
      if ((await streamOf(p.jsm, subject)).kind === "none")
        throw new MeshError(
          "BAD_REQUEST",
          `dead letters of ${of.join(", ")} go to "${subject}", which no stream keeps, and ${deadLetterStream(p.prefix)} (subjects ${deadLetterSubjects(p.prefix)}) could not be created: another stream holds that name or some of those subjects; make it capture "${subject}", or give the subscription a deadLetter of its own`,
        );
    } else {
      throw new MeshError(
        "BAD_REQUEST",
        `dead letters of ${of.join(", ")} go to "${subject}", which no stream keeps: create a stream that captures it, or leave deadLetter unset (Mesh keeps them in ${deadLetterStream(p.prefix)})`,
      );
    }
  }
}

type Keeper = { kind: "kept" } | { kind: "none" } | { kind: "unknown"; why: string };

async function streamOf(jsm: JetStreamManager, subject: string): Promise<Keeper> {
  try {
    await jsm.streams.find(subject);
    return { kind: "kept" };
  } catch (err) {
    return /no stream matches subject/i.test(messageOf(err)) ? { kind: "none" } : { kind: "unknown", why: messageOf(err) };
  }
}

/** Creates `<prefix>_dead_letters`; another node that created it first is fine. */
async function createDeadLetterStream(p: { jsm: JetStreamManager; prefix: string; replicas: number; log: Logger }): Promise<void> {
  const name = deadLetterStream(p.prefix);
  try {
    await p.jsm.streams.add({
      name,
      subjects: [deadLetterSubjects(p.prefix)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: p.replicas,
      max_age: DEAD_LETTER_RETENTION.maxAgeDays * 24 * 3600 * 1e9,
      max_msgs: DEAD_LETTER_RETENTION.maxMessages,
    });
    p.log.info({ stream: name }, "mesh: created the dead-letter stream");
  } catch (err) {
    if (classifyNatsError(err) === "stream-exists") return;
    throw new MeshError("STORAGE_UNAVAILABLE", `cannot create the dead-letter stream ${name}: ${messageOf(err)}`);
  }
}

/** The headers of an event a dead letter keeps: all but JetStream's (`Nats-…`), which told the event's own stream what to check. */
const kept = (name: string) => !/^nats-/i.test(name);

/**
 * Publishes `event` with why it failed to its subscription's dead-letter subject (its id: the subscription and
 * sequence, so a stream keeps one copy), retrying every second until a stream keeps it. Resolves to false when
 * the dispatcher stopped first.
 */
export async function publishDeadLetter(
  event: PendingEvent,
  err: unknown,
  /** `era`: the times the stream was made again (its sequences started over): the dead letter's id names it from 1 on. */
  p: { js: JetStreamClient; sub: ResolvedSubscription; log: Logger; running(): boolean; era: number },
): Promise<boolean> {
  const { sub, log } = p;
  /** The event's headers (but JetStream's instructions to its stream, Nats-Expected-Stream…, which would refuse it), or none; and Mesh's. */
  const headers = (own: boolean) => {
    const h = headersOf(own ? event.headers : undefined, kept);
    h.set("Mesh-Subscription", sub.id);
    h.set("Mesh-Stream", sub.stream);
    h.set("Mesh-Stream-Seq", String(event.seq));
    h.set("Mesh-Subject", event.subject);
    h.set("Mesh-Deliveries", String(event.deliveries));
    h.set("Mesh-Error-Code", err instanceof MeshError ? err.code : "INTERNAL");
    h.set(
      "Mesh-Error",
      messageOf(err)
        .replace(/[\r\n]+/g, " ")
        .slice(0, 1000),
    );
    return h;
  };
  let h = headers(true);
  const msgID = `${appliedKey(sub.id, p.era)}:${event.seq}`;
  let data = event.data;
  for (let tries = 0; ; tries++) {
    try {
      await p.js.publish(sub.deadLetter, data, { msgID, headers: h });
      return true;
    } catch (e) {
      if (!p.running()) return false;
      if (classifyNatsError(e) === "max-payload" && (data.length > 0 || h.get("Mesh-Headers-Omitted") === "")) {
        // The event with Mesh's headers is past the server's max_payload: the dead letter goes without its data, and
        // if that is not enough, without its own headers.
        if (data.length === 0) (h = headers(false)).set("Mesh-Headers-Omitted", "true");
        h.set("Mesh-Data-Omitted", String(event.data.length));
        data = new Uint8Array(0);
        continue;
      }
      const where = { subscription: sub.id, subject: sub.deadLetter, err: messageOf(e) };
      // No stream keeps it (the stream was deleted since the start): an error, said loudly once; the id waits.
      if (classifyNatsError(e) === "no-responders" && tries === 0)
        loudError(log, where, "mesh: no stream keeps this dead letter; retrying every second, and its id waits");
      else log.warn(where, "mesh: cannot publish a dead letter; retrying");
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
