// Ids for what is in flight (core/ids.ts): sequential, unsigned 32-bit, never
// 0, and never one still in use, also when the count wraps past 2^32 - 1.
import test from "ava";
import { Ids } from "@mesh/core/internal";

const none = () => false;

test("ids count up from 1", (t) => {
  const ids = new Ids();
  t.deepEqual([ids.next(none), ids.next(none), ids.next(none)], [1, 2, 3]);
});

test("past 2^32 - 1 the count wraps to 1, never 0", (t) => {
  const ids = new Ids(2 ** 32 - 2);
  t.deepEqual([ids.next(none), ids.next(none), ids.next(none)], [2 ** 32 - 1, 1, 2]);
});

test("an id still in use is skipped, when the count wraps onto it, and the count goes on after the one given", (t) => {
  const inUse = new Set([1, 2, 5]); // a call that waited 2^32 ids, and others
  const ids = new Ids(2 ** 32 - 1);
  t.is(
    ids.next((id) => inUse.has(id)),
    3,
  );
  t.is(
    ids.next((id) => inUse.has(id)),
    4,
  );
  t.is(
    ids.next((id) => inUse.has(id)),
    6,
  );
  inUse.delete(1);
  t.is(
    new Ids(0).next((id) => inUse.has(id)),
    1,
    "an id no longer in use is given again",
  );
});
