// Messages read together are handled a tick apart (transport, message-ticks.ts):
// what the first one's handling queued for the end of its tick has run before
// the next is handled, and no message overtakes another.
import test from "ava";
import { MessageTicks } from "@mesh/transport";

/** What these tests' handlers threw: nothing, but for the test that makes them throw. */
const thrown: unknown[] = [];
const never = (err: unknown): void => void thrown.push(err);
test.after(() => {
  if (thrown.length > 0) throw new Error(`a handler threw: ${String(thrown[0])}`);
});

/** Takes `msgs` as nats.js hands over one socket read: synchronously, one after the other. */
function readTogether<M>(ticks: MessageTicks<M>, msgs: M[]): void {
  for (const msg of msgs) ticks.take(msg);
}

test("the first message of a read is handled at once, the others each after the microtasks of the one before", async (t) => {
  const log: string[] = [];
  const ticks = new MessageTicks<number>((n) => {
    log.push(`handle ${n}`);
    queueMicrotask(() => log.push(`flush ${n}`)); // what a batch's replies do: leave at the end of the tick
  }, never);
  readTogether(ticks, [1, 2, 3]);
  t.deepEqual(log, ["handle 1"]);
  t.is(ticks.waiting, 2);
  await ticks.idle();
  await Promise.resolve();
  t.deepEqual(log, ["handle 1", "flush 1", "handle 2", "flush 2", "handle 3", "flush 3"]);
  t.is(ticks.waiting, 0);
});

test("a message read later waits behind those still waiting: the order is kept", async (t) => {
  const seen: number[] = [];
  const ticks = new MessageTicks<number>((n) => seen.push(n), never);
  readTogether(ticks, [1, 2, 3]);
  await Promise.resolve(); // the read's tick is over; 2 and 3 still wait for theirs
  ticks.take(4);
  t.deepEqual(seen, [1]);
  await ticks.idle();
  t.deepEqual(seen, [1, 2, 3, 4]);
});

test("a message alone in its tick is handled at once, and idle() resolves at once when nothing waits", async (t) => {
  const seen: number[] = [];
  const ticks = new MessageTicks<number>((n) => seen.push(n), never);
  ticks.take(1);
  await new Promise((resolve) => setImmediate(resolve));
  ticks.take(2);
  t.deepEqual(seen, [1, 2]);
  await ticks.idle();
  t.is(ticks.waiting, 0);
});

test("everything read together in one loop iteration is handled in the next: nothing piles up across iterations", async (t) => {
  const seen: number[] = [];
  const ticks = new MessageTicks<number>((n) => seen.push(n), never);
  readTogether(
    ticks,
    Array.from({ length: 1000 }, (_, i) => i),
  );
  await new Promise((resolve) => setImmediate(resolve)); // queued after the 999 that wait: runs once they ran
  t.is(seen.length, 1000);
  t.deepEqual(
    seen,
    Array.from({ length: 1000 }, (_, i) => i),
  );
});

test("a handler that throws is reported, the messages after it are handled, and idle() still resolves", async (t) => {
  const seen: number[] = [];
  const failures: string[] = [];
  const ticks = new MessageTicks<number>(
    (n) => {
      if (n % 2 === 0) throw new Error(`bad ${n}`);
      seen.push(n);
    },
    (err) => {
      failures.push((err as Error).message);
      if (failures.length === 2) throw new Error("the logger threw too");
    },
  );
  readTogether(ticks, [1, 2, 3, 4]);
  await ticks.idle();
  t.deepEqual(seen, [1, 3]);
  t.deepEqual(failures, ["bad 2", "bad 4"]);
  ticks.take(5);
  t.deepEqual(seen, [1, 3, 5], "a message alone later is handled at once");
});
