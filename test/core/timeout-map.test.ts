// The pending-call map's expiry (TimeoutMap): each entry not taken expires once,
// never before its deadline, whatever was taken or set in between, including
// entries set while others expire; taken entries never expire.
import test from "ava";
import fc from "fast-check";
import { SlotTable, TimeoutMap } from "@mesh/core/internal";

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

for (const store of ["Map", "SlotTable"] as const)
  test(`entries not taken expire once and never early; taken ones never; entries set by an expiry expire too (${store}; property, seeded)`, async (t) => {
    const step = fc.oneof(
      fc.record({ op: fc.constant("set" as const), ms: fc.integer({ min: 0, max: 40 }), chained: fc.boolean() }),
      fc.record({ op: fc.constant("take" as const), pick: fc.nat() }),
      fc.record({ op: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 15 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const map = new TimeoutMap<number, Entry>(5, store === "Map" ? new Map() : new SlotTable(2));
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

test("a SlotTable holds what a Map would, whatever ids wait long, collide, come again or outgrow it (property, seeded)", (t) => {
  const op = fc.oneof(
    fc.record({ op: fc.constant("add" as const), skip: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ op: fc.constant("delete" as const), pick: fc.nat() }),
    fc.record({ op: fc.constant("get" as const), pick: fc.nat() }),
    fc.record({ op: fc.constant("again" as const), pick: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.array(op, { maxLength: 300 }), (start, ops) => {
      const table = new SlotTable<string>(2);
      const model = new Map<number, string>();
      const seen: number[] = [];
      let id = start;
      for (const o of ops) {
        if (o.op === "add") {
          id = (id + o.skip) >>> 0;
          table.set(id, `v${id}`);
          model.set(id, `v${id}`);
          seen.push(id);
        } else if (seen.length > 0) {
          const key = seen[o.pick % seen.length]!;
          if (o.op === "delete") t.is(table.delete(key), model.delete(key));
          else if (o.op === "again") {
            table.set(key, `w${key}`);
            model.set(key, `w${key}`);
          } else t.is(table.get(key), model.get(key));
        }
        t.is(table.size, model.size);
      }
      t.deepEqual(
        [...table].sort((a, b) => a[0] - b[0]),
        [...model].sort((a, b) => a[0] - b[0]),
      );
    }),
    { seed: 20261130, numRuns: 300 },
  );
});
