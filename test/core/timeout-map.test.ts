// The pending-call map's expiry (TimeoutMap): each entry not taken expires once,
// never before its deadline, whatever was taken or set in between, including
// entries set while others expire; taken entries never expire.
import test from "ava";
import fc from "fast-check";
import { TimeoutMap } from "@mesh/core/internal";

class Entry {
  expiredAt: number | undefined;
  expiries = 0;
  constructor(
    readonly key: number,
    readonly deadline: number,
    private readonly onExpire?: () => void,
  ) {}
  expire(): void {
    this.expiredAt = performance.now();
    this.expiries++;
    this.onExpire?.();
  }
}

async function until(done: () => boolean): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error("entries did not expire within 5 s");
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("entries not taken expire once and never early; taken ones never; entries set by an expiry expire too (property, seeded)", async (t) => {
  const step = fc.oneof(
    fc.record({ op: fc.constant("set" as const), ms: fc.integer({ min: 0, max: 40 }), chained: fc.boolean() }),
    fc.record({ op: fc.constant("take" as const), pick: fc.nat() }),
    fc.record({ op: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 15 }) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
      const map = new TimeoutMap<number, Entry>(5);
      const all: Entry[] = [];
      const taken = new Set<Entry>();
      let next = 0;
      const add = (ms: number, chained: boolean): void => {
        const key = next++;
        const entry = new Entry(key, performance.now() + ms, chained ? () => add(ms, false) : undefined);
        all.push(entry);
        map.set(key, entry);
      };
      for (const s of steps) {
        if (s.op === "set") add(s.ms, s.chained);
        else if (s.op === "take" && all.length > 0) {
          const entry = all[s.pick % all.length]!;
          if (map.take(entry.key) === entry) taken.add(entry);
        } else if (s.op === "wait") await new Promise((r) => setTimeout(r, s.ms));
      }
      await until(() => map.size === 0);
      for (const e of all) {
        if (taken.has(e)) t.is(e.expiries, 0, "a taken entry never expires");
        else {
          t.is(e.expiries, 1, "an entry not taken expires once");
          t.true(e.expiredAt! >= e.deadline, "never before its deadline");
        }
      }
    }),
    { seed: 20261130, numRuns: 25 },
  );
});
