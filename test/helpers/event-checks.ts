// What every events test checks at its end: each key applied its events once,
// in stream order, and every message a committed turn published is in the
// output stream exactly once.
import type { ExecutionContext } from "ava";
import type { NatsConnection } from "nats";
import type { Mesh } from "@mesh/runtime";
import { eventually } from "./cluster.js";
import type { ClusterContext } from "./cluster.js";
import type { LedgerState } from "./event-actors.js";
import { readStream } from "./streams.js";

/** Every key applied its events once, in stream order, and the output stream holds one message per event. */
export async function checkApplied(
  t: ExecutionContext<ClusterContext>,
  nc: NatsConnection,
  caller: Mesh,
  stream: string,
  sent: { key: string; seq: number; n: number }[],
): Promise<void> {
  const byKey = new Map<string, { seqs: number[]; total: number }>();
  for (const e of sent.sort((a, b) => a.seq - b.seq)) {
    const k = byKey.get(e.key) ?? { seqs: [], total: 0 };
    k.seqs.push(e.seq);
    k.total += e.n;
    byKey.set(e.key, k);
  }
  const ledger = async (key: string) =>
    (await caller.call<LedgerState>({ actor: "EventLedger", id: key, capability: "ev", timeoutMs: 5000 })).result;
  await eventually(
    async () => {
      for (const [key, want] of byKey) if ((await ledger(key).catch(() => undefined))?.seqs.length !== want.seqs.length) return false;
      return true;
    },
    "every key to have applied its events",
    90_000,
  );
  for (const [key, want] of byKey) {
    const state = await ledger(key);
    t.deepEqual(state.seqs, want.seqs, `${key}: every event applied once, in stream order`);
    t.is(state.total, want.total, `${key}: the sum of its events`);
  }
  const out = (await readStream(nc, `${stream}_OUT`, sent.length)).map((m) => Number(m.headers["Event-Seq"]));
  t.is(out.length, sent.length, "one message out per event: none lost, none twice");
  t.is(new Set(out).size, sent.length);
}
