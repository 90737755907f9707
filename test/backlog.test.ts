// The outbound backlog's rules, without NATS (the floods of flow-control.test.ts
// show them end to end): the order sends leave in (fair-queue.ts), the window
// and its probes, deadlines, what may wait, and a reset (backlog.ts).
import test from "ava";
import { MeshError } from "@mesh/core";
import { Backlog, FairQueue } from "@mesh/transport";
import type { Queued } from "@mesh/transport";
import { eventually } from "./helpers/cluster.js";

const send = (kind: "call" | "cast", actor: string, name: string, cost = 100): Queued & { name: string } => ({ kind, actor, cost, name });

function drainAll<T extends Queued>(q: FairQueue<T>): T[] {
  const out: T[] = [];
  for (let next = q.peek(); next !== undefined; next = q.peek()) {
    q.take(next);
    out.push(next);
  }
  return out;
}

test("calls leave before casts, actors take turns, and a call never overtakes an earlier cast to its own actor", (t) => {
  const q = new FairQueue<ReturnType<typeof send>>();
  for (let i = 0; i < 3; i++) q.push(send("cast", "hot", `hot-cast-${i}`));
  q.push(send("call", "hot", "hot-call")); // behind hot's casts
  q.push(send("cast", "b", "b-cast"));
  q.push(send("call", "c", "c-call-0"));
  q.push(send("call", "c", "c-call-1"));
  q.push(send("call", "d", "d-call"));
  t.deepEqual(q.bytes, { call: 400, cast: 400 });
  t.true(q.castWaits("hot"));
  t.false(q.castWaits("c"));
  t.deepEqual(
    drainAll(q).map((s) => s.name),
    ["c-call-0", "d-call", "c-call-1", "hot-cast-0", "b-cast", "hot-cast-1", "hot-cast-2", "hot-call"],
  );
  t.is(q.size, 0);
  t.deepEqual(q.bytes, { call: 0, cast: 0 });
});

test("a send taken out of the middle (its time ran out) leaves the others in order", (t) => {
  const q = new FairQueue<ReturnType<typeof send>>();
  const sends = [send("cast", "a", "a0"), send("cast", "a", "a1"), send("cast", "a", "a2")];
  for (const s of sends) q.push(s);
  t.true(q.take(sends[1]!));
  t.false(q.take(sends[1]!), "taken once");
  t.deepEqual(
    drainAll(q).map((s) => s.name),
    ["a0", "a2"],
  );
});

/** A backlog whose probes are recorded, with a flush that runs `flushed()` when asked. */
function backlog(maxBytes: number, castWaitMs = 5000) {
  const probes: { subject: string; token: string }[] = [];
  const b: Backlog = new Backlog(
    maxBytes,
    castWaitMs,
    (subject, token) => probes.push({ subject, token }),
    () =>
      queueMicrotask(() => {
        b.flushing();
        b.flushed();
      }),
  );
  const sent: string[] = [];
  const refused: MeshError[] = [];
  const wait = (kind: "call" | "cast", id: string, cost: number, deadline = performance.now() + 5000) =>
    b.wait("n1", kind, { actorType: "A", id }, cost, deadline, {
      go: () => sent.push(`${kind}:${id}`),
      refuse: (err) => refused.push(err),
    });
  return { b, probes, sent, refused, wait };
}

const tick = () => new Promise<void>((resolve) => queueMicrotask(resolve));

test("past the limit a send waits; the probe that follows the sends frees what the node read, and waiting sends go in order", async (t) => {
  const { b, probes, sent, wait } = backlog(1000);
  t.truthy(b.admit("n1", 600));
  t.is(b.admit("n1", 600), undefined, "no room: 600 of 1000 are unread");
  wait("cast", "x", 600);
  wait("call", "y", 300);
  t.is(b.waiting, 2);
  await tick();
  t.is(probes.length, 1, "one probe, after the flush");
  t.regex(probes[0]!.token, /^_a[0-9a-z]+_[0-9a-z]+$/);
  b.answered(probes[0]!.token, false);
  t.deepEqual(sent, ["call:y", "cast:x"], "the call first");
  t.is(b.waiting, 0);
  t.is(b.report().bytes, 900);
  t.is(b.admit("n1", 200), undefined, "a probe's answer frees only what was sent before it");
});

test("a send whose time runs out while it waits is refused with OVERLOADED and never sent; so is one past what may wait", async (t) => {
  const { b, sent, refused, wait } = backlog(1000);
  t.truthy(b.admit("n1", 1000));
  wait("call", "late", 100, performance.now() + 30);
  await eventually(() => refused.length === 1, "the waiting call to be refused");
  t.is(refused[0]!.code, "OVERLOADED");
  t.deepEqual(sent, []);
  // Casts may wait up to the limit when one to their actor waits already, twice the limit otherwise.
  wait("cast", "a", 600);
  wait("cast", "a", 600);
  wait("cast", "a", 100);
  t.is(refused.length, 1, "not in this turn: a loop that awaits refusals must let the node read");
  await eventually(() => refused.length === 2, "a third cast to the same actor past the limit to be refused (on the loop's next turn)");
  wait("cast", "b", 800);
  wait("cast", "c", 100);
  await eventually(() => refused.length === 3, "past twice the limit, any cast to be refused");
  t.deepEqual(b.report().refused, { call: 1, cast: 2 });
  b.close(new MeshError("STOPPED", "stopped"));
  t.is(refused.length, 6);
  t.deepEqual(
    refused.slice(3).map((e) => e.code),
    ["STOPPED", "STOPPED", "STOPPED"],
  );
});

test("a reconnect, or a node that answers 'no responders', frees everything outstanding", async (t) => {
  const { b, probes, sent, wait } = backlog(1000);
  t.truthy(b.admit("n1", 1000));
  wait("cast", "a", 500);
  b.reset();
  t.deepEqual(sent, ["cast:a"]);
  t.truthy(b.admit("n1", 400));
  wait("cast", "b", 500);
  await tick();
  b.answered(probes.at(-1)!.token, true);
  t.deepEqual(sent, ["cast:a", "cast:b"]);
});

test("a lost probe is sent again", async (t) => {
  const { b, probes, wait } = backlog(1000);
  t.truthy(b.admit("n1", 1000));
  wait("cast", "a", 500);
  await tick();
  t.is(probes.length, 1);
  await eventually(() => probes.length === 2, "another probe once the first is lost", 5000);
  t.is(b.waiting, 1);
  b.answered(probes[1]!.token, false);
  t.is(b.waiting, 0);
  b.close(new MeshError("STOPPED", "stopped"));
});

test("an answered call confirms what was read up to it, as a probe's answer would: what waits goes, and no probe is needed", async (t) => {
  const { b, probes, sent, wait } = backlog(1000);
  const window = b.admit("n1", 600)!;
  const mark = b.mark(window);
  t.is(b.admit("n1", 600), undefined);
  wait("cast", "a", 600);
  b.confirmed(window, mark);
  t.deepEqual(sent, ["cast:a"]);
  t.is(b.report().bytes, 600);
  await tick();
  t.is(probes.length, 1, "the probe asked for when the cast began to wait; none since");
  b.close(new MeshError("STOPPED", "stopped"));
});
