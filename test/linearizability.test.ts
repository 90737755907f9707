// The linearizability checker the cluster fault tests use (helpers/linearizability.ts),
// checked itself: against a brute force on small made-up histories, on large legal
// histories made from a register, and on histories with a stale read.
import test from "ava";
import fc from "fast-check";
import { checkRegister } from "./helpers/linearizability.js";
import type { RegisterOp } from "./helpers/linearizability.js";

/** Every order of the operations that respects real time, tried in turn: the definition, for a handful of operations. */
function bruteForce(history: readonly RegisterOp[], initial: unknown): boolean {
  const n = history.length;
  const placed = new Array<boolean>(n).fill(false);
  const go = (count: number, state: unknown): boolean => {
    if (count === n) return true;
    for (let i = 0; i < n; i++) {
      if (placed[i]) continue;
      const op = history[i]!;
      // Nothing still unplaced may have completed before this one was invoked.
      if (history.some((other, j) => !placed[j] && j !== i && other.ret < op.call)) continue;
      if (op.kind === "read" && op.value !== state) continue;
      placed[i] = true;
      const ok = go(count + 1, op.kind === "write" ? op.value : state);
      placed[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(0, initial);
}

const smallOp: fc.Arbitrary<RegisterOp> = fc
  .record({
    kind: fc.constantFrom<"read" | "write">("read", "write"),
    value: fc.integer({ min: 0, max: 2 }),
    call: fc.integer({ min: 0, max: 20 }),
    length: fc.integer({ min: 0, max: 10 }),
    unknown: fc.boolean(),
  })
  .map(({ kind, value, call, length, unknown }) => ({
    kind,
    value,
    call,
    ret: kind === "write" && unknown ? Infinity : call + length,
  }));

test("on small made-up histories the checker agrees with trying every order (property, seeded)", (t) => {
  let legal = 0;
  let illegal = 0;
  fc.assert(
    fc.property(fc.array(smallOp, { minLength: 1, maxLength: 7 }), (history) => {
      const expected = bruteForce(history, 0);
      if (expected) legal++;
      else illegal++;
      return checkRegister(history, 0).ok === expected;
    }),
    { seed: 30_31, numRuns: 3000 },
  );
  // The generator makes both kinds, so both verdicts were checked.
  t.true(legal > 300 && illegal > 300, `legal ${legal}, illegal ${illegal}`);
});

/**
 * A history several clients could have seen of a real register: each operation
 * takes effect at an instant within its span, in the order of those instants.
 * Some writes lose their reply (their completion is unknown).
 */
const legalHistory = fc
  .array(
    fc.record({
      client: fc.integer({ min: 0, max: 4 }),
      write: fc.boolean(),
      gap: fc.integer({ min: 0, max: 5 }),
      before: fc.integer({ min: 0, max: 8 }),
      after: fc.integer({ min: 0, max: 8 }),
      lost: fc.integer({ min: 0, max: 9 }),
    }),
    { minLength: 1, maxLength: 300 },
  )
  .map((steps) => {
    let now = 0;
    let value = 0;
    let written = 0;
    const free = new Map<number, number>(); // a client issues one operation at a time
    const history: RegisterOp[] = [];
    for (const s of steps) {
      if (free.get(s.client) === Infinity) continue; // a client whose write was lost issues nothing after it
      now += s.gap;
      const at = Math.max(now, (free.get(s.client) ?? 0) + s.before);
      const call = at - s.before;
      const lost = s.write && s.lost === 0;
      const ret = lost ? Infinity : at + s.after;
      if (s.write) value = ++written;
      history.push({ kind: s.write ? "write" : "read", value, call, ret, client: String(s.client) });
      free.set(s.client, lost ? Infinity : ret + 1);
      now = at;
    }
    return history;
  });

test("a history made from a real register, several clients at once and lost replies included, is linearizable (property, seeded)", (t) => {
  fc.assert(
    fc.property(legalHistory, (history) => checkRegister(history, 0).ok),
    { seed: 31, numRuns: 300 },
  );
  t.pass();
});

test("a read that returns the value before a write that completed before the read began is not linearizable, nor is a value never written", (t) => {
  const history: RegisterOp[] = [
    { kind: "write", value: 1, call: 0, ret: 10 },
    { kind: "read", value: 1, call: 11, ret: 12 },
    { kind: "write", value: 2, call: 13, ret: 20 },
    { kind: "read", value: 1, call: 21, ret: 25 }, // stale: 2 was acknowledged at 20
  ];
  const verdict = checkRegister(history, 0);
  t.false(verdict.ok);
  if (!verdict.ok) t.is(verdict.linearized, 3);
  // The same read, overlapping the second write, may return either value.
  t.true(checkRegister([...history.slice(0, 3), { kind: "read", value: 1, call: 15, ret: 25 }], 0).ok);
  // A write whose outcome is unknown may have happened, or not.
  const lost: RegisterOp = { kind: "write", value: 3, call: 30, ret: Infinity };
  t.true(checkRegister([...history.slice(0, 3), lost, { kind: "read", value: 2, call: 40, ret: 41 }], 0).ok);
  t.true(checkRegister([...history.slice(0, 3), lost, { kind: "read", value: 3, call: 40, ret: 41 }], 0).ok);
  t.false(checkRegister([...history.slice(0, 3), { kind: "read", value: 7, call: 40, ret: 41 }], 0).ok);
  // Once one client read the newer value, a later read may not go back.
  t.false(
    checkRegister(
      [
        { kind: "write", value: 1, call: 0, ret: 100 },
        { kind: "read", value: 1, call: 10, ret: 20 },
        { kind: "read", value: 0, call: 30, ret: 40 },
      ],
      0,
    ).ok,
  );
});
