// A linearizability checker for registers (Wing & Gong's search with Lowe's
// cache, as Knossos and Porcupine do it): a history of reads and writes of one
// key, each with the time it was invoked and the time it completed, is
// linearizable when some order of the operations, each placed between its
// invocation and its completion, is a legal run of a register that starts at
// `initial`. A write whose outcome is unknown (a timeout, a lost reply) may
// have taken effect at any time after it was invoked, or never: its completion
// is Infinity. A read or write that failed for sure is left out of the history.

/** One operation on a register, as a client saw it. */
export interface RegisterOp {
  readonly kind: "read" | "write";
  /** What was written, or what the read returned. */
  readonly value: unknown;
  /** When the client invoked it. */
  readonly call: number;
  /** When it completed (Infinity: the outcome is unknown, a write only). */
  readonly ret: number;
  /** Who issued it, for the report. */
  readonly client?: string;
}

/** The checker's verdict; when not linearizable, the longest prefix it could order and the operation that failed there. */
export type Verdict = { ok: true } | { ok: false; linearized: number; stuckAt: RegisterOp | undefined };

interface Entry {
  readonly op: number;
  readonly call: boolean;
  readonly time: number;
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/** Checks one key's history against a register that starts at `initial`. */
export function checkRegister(all: readonly RegisterOp[], initial: unknown): Verdict {
  for (const op of all) {
    if (!(op.call <= op.ret)) throw new Error(`an operation completes before it is invoked: ${JSON.stringify(op)}`);
    if (op.kind === "read" && op.ret === Infinity) throw new Error("a read with an unknown outcome observed nothing: leave it out");
  }
  // A write whose outcome is unknown and whose value no read returned may be taken as never done: wherever it was
  // placed, no read sits between it and the next write. Leaving it out keeps the search small (each such write
  // would otherwise double it).
  const observed = new Set(all.filter((op) => op.kind === "read").map((op) => JSON.stringify(op.value)));
  const history = all.filter((op) => op.ret !== Infinity || observed.has(JSON.stringify(op.value)));
  // Calls before returns at the same instant: operations that touch at an instant are concurrent.
  const events: Entry[] = [];
  history.forEach((op, i) => {
    const call: Entry = { op: i, call: true, time: op.call, match: undefined, prev: undefined, next: undefined };
    const ret: Entry = { op: i, call: false, time: op.ret, match: call, prev: undefined, next: undefined };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? 0 : a.call ? -1 : 1));
  const head: Entry = { op: -1, call: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  const lift = (e: Entry) => {
    for (const x of [e, e.match!]) {
      x.prev!.next = x.next;
      if (x.next) x.next.prev = x.prev;
    }
  };
  const unlift = (e: Entry) => {
    for (const x of [e.match!, e]) {
      x.prev!.next = x;
      if (x.next) x.next.prev = x;
    }
  };

  const done = new Uint8Array(history.length);
  const seen = new Set<string>();
  const stack: { entry: Entry; state: unknown }[] = [];
  let state = initial;
  let best = 0;
  let stuck: RegisterOp | undefined;
  let entry = head.next;
  while (head.next !== undefined) {
    if (entry === undefined) throw new Error("the checker ran past the end of the history");
    if (entry.call) {
      const op = history[entry.op]!;
      const legal = op.kind === "write" || same(op.value, state);
      const next = op.kind === "write" ? op.value : state;
      if (legal) {
        done[entry.op] = 1;
        const key = `${Buffer.from(done).toString("base64")}|${JSON.stringify(next)}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ entry, state });
          state = next;
          lift(entry);
          if (stack.length > best) best = stack.length;
          entry = head.next;
          continue;
        }
        done[entry.op] = 0;
      }
      entry = entry.next;
    } else {
      // A completion: the operation it closes had to be placed before here, and no order did.
      if (stack.length === 0) return { ok: false, linearized: best, stuckAt: stuck ?? history[entry.op] };
      if (stack.length === best) stuck = history[entry.op];
      const top = stack.pop()!;
      done[top.entry.op] = 0;
      state = top.state;
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { ok: true };
}
