// What membership is made with, and what it answers (membership.ts).
import type { Announcement, Logger } from "@mesh/core";
import type { NatsConnection } from "nats";
import type { RecordedNode } from "./node-records.js";
import type { StoreRemovals } from "./store-removals.js";
import type { Subjects } from "./subjects.js";

/** Timing of membership. */
export interface MembershipTiming {
  /** How often a node publishes its heartbeat. */
  heartbeatMs: number;
  /** A node silent for this long is removed from the view. */
  nodeTimeoutMs: number;
  /** Discovery ends once no answer arrived for this long. */
  discoveryQuietMs: number;
}

/** What a lease re-validation learned (see Membership.revalidate). */
export interface Revalidation {
  /** The server took our announcement: peers heard us at or after the round began. */
  confirmed: boolean;
  /** A member removed this node meanwhile, or did not answer: it may have served this node's shards. */
  replaced: boolean;
}

/** What membership is made with. */
export interface MembershipParts {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly self: Announcement;
  readonly timing: MembershipTiming;
  readonly log: Logger;
  /** Called with the whole view (self included) whenever it changes. */
  readonly onChange: (members: ReadonlyMap<string, Announcement>) => void;
  /** Where replies to discovery come (the node's inbox prefix). @default "_INBOX" */
  readonly inboxPrefix?: string;
  /** The server delivered back a heartbeat this node sent at `sentAt` (performance.now()): every member heard it then or later. */
  readonly onHeard?: (sentAt: number) => void;
  /**
   * Where the JetStream quorum keeps the nodes' records (store-removals.ts):
   * a node that keeps one is removed only by the store's verdict, never for
   * silence or, on a NATS cluster, for no responders.
   */
  readonly removals?: StoreRemovals | undefined;
}

/** A discovery, announcement or re-validation round under way: whom it waits for, and what it heard. */
export interface Round {
  /** Whom we still wait for: the known members (announce), or the members that answers named (discovery). */
  readonly expected: Set<string>;
  readonly heard: Set<string>;
  /** Discovery: members given the presence probe; one no process serves is not waited for, even when answers name it. */
  readonly probed: Set<string>;
  /** Discovery: each answer names its members, and we wait for those too. */
  readonly open: boolean;
  /** Answers so far. */
  answers: number;
  /** A lease re-validation: answers' removal counts are compared with the last ones and recorded. */
  readonly revalidation: boolean;
  /** An answer said its node removed us since we last asked it. */
  replaced: boolean;
  done(): void;
}

/** What a round asks: announce to `expected`, or discover (none given), waiting for `recorded` too. */
export interface RoundAsk {
  expected?: Set<string>;
  maxMs?: number;
  revalidation?: boolean;
  recorded?: RecordedNode[];
}
