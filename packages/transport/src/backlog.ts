// The bounded outbound backlog (docs/behaviour.md "Flow control"): per node
// this node sends to, the bytes of calls, casts and events it sent that that
// node has not read yet. They are counted end to end, with the presence probe
// every node answers (PROTOCOL.md): an empty request on the node's subject,
// sent after the frames it follows, which the node answers once it has read
// them. Past the limit a send waits for room (fair-queue.ts) until its
// deadline, then fails with OVERLOADED, never sent.
import { MeshError, SlotTable, TimeoutMap } from "@mesh/core/internal";
import type { Expiring } from "@mesh/core/internal";
import { FairQueue } from "./fair-queue.js";
import type { Queued } from "./fair-queue.js";

/** What each message counts besides its own bytes: what reading it costs the node (so 256 KiB is about 1,600 small calls). */
export const FRAME_COST = 128;
/** A probe unanswered this long counts as lost: another goes. */
const PROBE_LOST_MS = 2000;
/** While anything is outstanding and no probe is in flight, one goes this often. */
const IDLE_PROBE_MS = 1000;
/** How often the windows are looked at for lost and idle probes, while any has something outstanding. */
const LOOK_MS = 250;
/** Waiting calls may hold this many times the limit; casts twice the limit (once, when one to their actor waits already). */
const CALLS_WAITING = 16;

/** The reply-subject token of a probe starts with this: `_a<window>_<mark>`, both base 36. */
export const PROBE_TOKEN = "_a";

/** The names of one actor: turns are taken per actor. */
export interface ActorName {
  readonly actorType: string;
  readonly id: string;
}

/** A node's window (opaque outside this file): a call keeps the one it was counted in, for `confirmed`. */
export type FlowWindow = object;

/** What a waiting send does when its turn comes, or when it cannot wait. */
export interface WaitingSend {
  /** Room: send it now (it is counted already, in `window`). */
  go(window: FlowWindow): void;
  /** OVERLOADED: it was not sent. */
  refuse(err: MeshError): void;
}

/** What flow control did, for metrics. */
export interface OutboundReport {
  /** Bytes (costs) sent and not yet read, over all nodes. */
  bytes: number;
  /** Sends waiting for room now. */
  waiting: number;
  /** Sends that waited for room, by kind. */
  waits: { call: number; cast: number };
  /** Sends refused with OVERLOADED by the backlog (no room within their time, or too many waiting), by kind; never sent. */
  refused: { call: number; cast: number };
  /** Per node with anything outstanding or waiting: its subject, bytes and waiting sends. */
  nodes: { subject: string; bytes: number; waiting: number }[];
}

class Waiting implements Queued, Expiring {
  constructor(
    readonly id: number,
    readonly window: Window,
    readonly kind: "call" | "cast",
    readonly actor: string,
    readonly cost: number,
    readonly deadline: number,
    readonly send: WaitingSend,
    readonly backlog: Backlog,
  ) {}
  expire(): void {
    this.backlog.expired(this);
  }
}

/** One node's window: cumulative costs sent and read (as its answered probes say). */
class Window {
  sent = 0;
  read = 0;
  /** The mark of the latest probe sent, and when. */
  probed = 0;
  probedAt = 0;
  /** `read` when the windows were last looked at: a window whose calls are answered needs no idle probe. */
  readLooked = 0;
  readonly queue = new FairQueue<Waiting>();
  constructor(
    readonly n: number,
    readonly subject: string,
  ) {}
  get outstanding(): number {
    return this.sent - this.read;
  }
  /** A probe with a mark past what was read is unanswered. */
  get probing(): boolean {
    return this.probed > this.read;
  }
}

export class Backlog {
  readonly #bySubject = new Map<string, Window>();
  readonly #byNumber = new Map<number, Window>();
  readonly #timeouts = new TimeoutMap<number, Waiting>(10, new SlotTable());
  /** Windows a probe goes to at the next flush. */
  #toProbe = new Set<Window>();
  /** The windows probed in the flush under way, each with its mark: what it had sent when the flush began. */
  readonly #probing = new Map<Window, number>();
  readonly #waits = { call: 0, cast: 0 };
  readonly #refused = { call: 0, cast: 0 };
  #nextWindow = 0;
  #last: Window | undefined;
  #nextWaiting = 0;
  #waiting = 0;
  #look: ReturnType<typeof setInterval> | undefined;

  constructor(
    /** The limit per node, in bytes (costs). */
    readonly maxBytes: number,
    /** How long a cast waits for room. */
    readonly castWaitMs: number,
    /** Sends a probe: an empty request on `subject` with reply token `token`, after the frames queued now (a flush follows). */
    private readonly probe: (subject: string, token: string) => void,
    /** Asks for a flush of the frame queue at the end of this tick (probes leave after it: `flushed`). */
    private readonly scheduleFlush: () => void,
  ) {}

  /** Sends waiting for room. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Counts a send of `cost` bytes to `subject` and returns its window when it may go now; undefined: it must `wait`. */
  admit(subject: string, cost: number): FlowWindow | undefined {
    const w = this.#window(subject);
    if (w.queue.size > 0 || (w.outstanding + cost > this.maxBytes && w.outstanding > 0)) return undefined;
    this.#count(w, cost);
    return w;
  }

  /** Counts a send that never waits (a migration, a forward): it goes now, and takes room from those that wait. */
  force(subject: string, cost: number): FlowWindow {
    const w = this.#window(subject);
    this.#count(w, cost);
    return w;
  }

  /** What `window` had sent when a call went: its reply says the node read everything up to it, as a probe's answer would. */
  mark(window: FlowWindow): number {
    return (window as Window).sent;
  }

  /** A call counted in `window` at `mark` was answered: everything sent there before it was read. */
  confirmed(window: FlowWindow, mark: number): void {
    const w = window as Window;
    if (mark <= w.read) return;
    w.read = mark;
    if (w.queue.size > 0) this.#drain(w);
  }

  /** Queues a send that found no room, until `deadline` (`performance.now()` time); refuses it at once when too many wait. */
  wait(subject: string, kind: "call" | "cast", actor: ActorName, cost: number, deadline: number, send: WaitingSend): void {
    const w = this.#window(subject);
    const key = `${actor.actorType}/${actor.id}`;
    const full =
      kind === "call"
        ? w.queue.bytes.call >= CALLS_WAITING * this.maxBytes
        : w.queue.bytes.cast >= 2 * this.maxBytes || (w.queue.bytes.cast >= this.maxBytes && w.queue.castWaits(key));
    if (full) {
      this.#refused[kind]++;
      const what = `${kind === "call" ? "calls" : "casts"} wait already for room on the way to ${subject}`;
      const err = new MeshError("OVERLOADED", `too many ${what} (it holds ${w.outstanding} bytes unread): the ${kind} was not sent`);
      // On the loop's next turn: a loop that awaits refused sends must not keep this node from reading the probes' answers.
      setImmediate(() => send.refuse(err));
      return;
    }
    const waiting = new Waiting(++this.#nextWaiting >>> 0, w, kind, key, cost, deadline, send, this);
    w.queue.push(waiting);
    this.#timeouts.set(waiting.id, waiting);
    this.#waits[kind]++;
    this.#waiting++;
    if (!w.probing) this.#probeSoon(w);
    this.#lookOften();
  }

  /** A waiting send's time ran out: OVERLOADED, not sent; what waits behind it may fit now. */
  expired(waiting: Waiting): void {
    const w = waiting.window;
    if (!w.queue.take(waiting)) return;
    this.#waiting--;
    this.#refused[waiting.kind]++;
    waiting.send.refuse(
      new MeshError(
        "OVERLOADED",
        `no room on the way to ${w.subject} within the ${waiting.kind}'s time (${w.outstanding} bytes sent there are unread): the ${waiting.kind} was not sent`,
      ),
    );
    this.#drain(w);
  }

  /**
   * A flush of the frame queue begins: the probes asked for so far will
   * follow its frames, so each is marked with what its window has sent now
   * (a send counted while the flush runs leaves in the next one).
   */
  flushing(): void {
    if (this.#toProbe.size === 0) return;
    for (const w of this.#toProbe) this.#probing.set(w, w.sent);
    this.#toProbe = new Set();
  }

  /** The flush ended: its probes leave now, after its frames. */
  flushed(): void {
    if (this.#probing.size === 0) return;
    const now = performance.now();
    for (const [w, mark] of this.#probing) {
      w.probed = Math.max(w.probed, mark);
      w.probedAt = now;
      this.probe(w.subject, `${PROBE_TOKEN}${w.n.toString(36)}_${mark.toString(36)}`);
    }
    this.#probing.clear();
  }

  /** A probe's answer (its reply token), or its "no responders" (`gone`: the node left, so nothing outstanding will be read). */
  answered(token: string, gone: boolean): void {
    const [n, mark] = token
      .slice(PROBE_TOKEN.length)
      .split("_")
      .map((s) => parseInt(s, 36));
    const w = this.#byNumber.get(n!);
    if (w === undefined || !(mark! >= 0)) return;
    w.read = Math.max(w.read, gone ? w.sent : Math.min(mark!, w.sent));
    this.#drain(w);
  }

  /** The connection was re-established: what nats.js had not written is gone, so nothing is outstanding. */
  reset(): void {
    for (const w of [...this.#byNumber.values()]) {
      w.read = w.sent;
      this.#drain(w);
    }
  }

  /** Refuses every waiting send with `err`, and stops. */
  close(err: MeshError): void {
    this.#timeouts.clear();
    this.#waiting = 0;
    clearInterval(this.#look);
    this.#look = undefined;
    for (const w of this.#byNumber.values())
      for (const waiting of w.queue.clear()) {
        try {
          waiting.send.refuse(err);
        } catch {
          // one sink that throws must not leave the others waiting
        }
      }
  }

  report(): OutboundReport {
    const nodes: OutboundReport["nodes"] = [];
    let bytes = 0;
    for (const w of this.#byNumber.values()) {
      bytes += w.outstanding;
      if (w.outstanding > 0 || w.queue.size > 0) nodes.push({ subject: w.subject, bytes: w.outstanding, waiting: w.queue.size });
    }
    return { bytes, waiting: this.#waiting, waits: { ...this.#waits }, refused: { ...this.#refused }, nodes };
  }

  /** The window of `subject`: the last one used when it is the same (most sends go where the one before went), else looked up or opened. */
  #window(subject: string): Window {
    const last = this.#last;
    if (last !== undefined && last.subject === subject) return last;
    let w = this.#bySubject.get(subject);
    if (w === undefined) {
      w = new Window((this.#nextWindow = (this.#nextWindow + 1) >>> 0), subject);
      this.#bySubject.set(subject, w);
      this.#byNumber.set(w.n, w);
    }
    return (this.#last = w);
  }

  #count(w: Window, cost: number): void {
    w.sent += cost;
    // Answered calls confirm what was read too: a probe goes only when a quarter of the limit is neither.
    if (w.sent - (w.probed > w.read ? w.probed : w.read) >= this.maxBytes / 4) this.#probeSoon(w);
    this.#lookOften(); // an idle probe follows while anything is outstanding, and a lost one is sent again
  }

  #probeSoon(w: Window): void {
    this.#toProbe.add(w);
    this.scheduleFlush();
  }

  /** Sends what waits for `w` while there is room; a window with nothing outstanding or waiting goes. */
  #drain(w: Window): void {
    for (let next = w.queue.peek(); next !== undefined; next = w.queue.peek()) {
      if (w.outstanding > 0 && w.outstanding + next.cost > this.maxBytes) break;
      w.queue.take(next);
      this.#timeouts.take(next.id);
      this.#waiting--;
      this.#count(w, next.cost);
      next.send.go(w);
    }
    if (w.queue.size > 0 && !w.probing) this.#probeSoon(w);
    if (w.outstanding === 0 && w.queue.size === 0 && !this.#toProbe.has(w) && !this.#probing.has(w)) {
      this.#bySubject.delete(w.subject);
      this.#byNumber.delete(w.n);
      if (this.#last === w) this.#last = undefined;
    }
  }

  /** Looks for lost and idle probes while anything is outstanding. */
  #lookOften(): void {
    if (this.#look !== undefined) return;
    this.#look = setInterval(() => this.#lookAround(), LOOK_MS);
    this.#look.unref();
  }

  #lookAround(): void {
    const now = performance.now();
    let busy = false;
    for (const w of this.#byNumber.values()) {
      if (w.outstanding === 0 && w.queue.size === 0) continue;
      busy = true;
      const idle = w.read === w.readLooked && now - w.probedAt >= IDLE_PROBE_MS; // nothing answered since the last look
      if (w.probing ? now - w.probedAt > PROBE_LOST_MS : idle) this.#probeSoon(w);
      w.readLooked = w.read;
    }
    if (!busy) {
      clearInterval(this.#look);
      this.#look = undefined;
    }
  }
}
