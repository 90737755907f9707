// Expiring entries keyed by their own ids, which wrap (core/timeout-set.ts): a
// node's letters whose callers wait. An entry whose id a newer one took still
// expires at its own deadline, and taking either never takes the other.
import test from "ava";
import { TimeoutSet } from "@mesh/core/internal";

class Letter {
  expiries = 0;
  constructor(
    readonly id: number,
    readonly deadline: number,
  ) {}
  expire(): void {
    this.expiries++;
  }
}

async function until(done: () => boolean): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error("entries did not expire within 5 s");
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("an entry whose id a newer one took still expires, and the newer one too", async (t) => {
  const set = new TimeoutSet<Letter>(2);
  const old = new Letter(7, performance.now() + 20); // waited 2^32 letters
  const young = new Letter(7, performance.now() + 40);
  set.add(old);
  set.add(young);
  t.is(set.size, 2);
  await until(() => old.expiries === 1 && young.expiries === 1);
  t.is(set.size, 0);
  t.deepEqual([old.expiries, young.expiries], [1, 1], "each once");
});

test("taking the newer entry leaves the older one watched, and the other way round", async (t) => {
  const set = new TimeoutSet<Letter>(2);
  const far = performance.now() + 60_000;
  const [a, b] = [new Letter(3, far), new Letter(3, far)];
  set.add(a);
  set.add(b);
  t.true(set.take(b));
  t.false(set.take(b), "taken once");
  t.is(set.size, 1);
  t.true(set.take(a));
  t.is(set.size, 0);

  const [c, d] = [new Letter(3, far), new Letter(3, far)];
  set.add(c);
  set.add(d);
  t.true(set.take(c), "the older one, moved aside");
  t.deepEqual(set.clear(), [d]);
  t.deepEqual(
    [a, b, c, d].map((l) => l.expiries),
    [0, 0, 0, 0],
  );
});

test("adding an entry again changes nothing, and clear returns every entry once", (t) => {
  const set = new TimeoutSet<Letter>(2);
  const far = performance.now() + 60_000;
  const [a, b, c] = [new Letter(1, far), new Letter(1, far), new Letter(2, far)];
  set.add(a);
  set.add(a);
  set.add(b);
  set.add(b);
  set.add(c);
  t.is(set.size, 3);
  const cleared = set.clear();
  t.is(cleared.length, 3);
  t.true([a, b, c].every((l) => cleared.includes(l)));
  t.is(set.size, 0);
  t.false(set.take(a));
});

test("an entry moved aside and watched again stays aside, once: taking it leaves nothing behind to expire", (t) => {
  const set = new TimeoutSet<Letter>(2);
  const far = performance.now() + 60_000;
  const [old, young] = [new Letter(5, far), new Letter(5, far)];
  set.add(old);
  set.add(young); // old goes aside
  set.add(old); // watched again (requeued, or after its turn): still aside, young keeps its id
  t.is(set.size, 2);
  t.true(set.take(old));
  t.is(set.size, 1);
  t.deepEqual(set.clear(), [young]);
});
