// Registers for consistency tests, and what clients saw of them. A durable
// register keeps its value across activations: each key's history must be
// linearizable (linearizability.ts). A plain register lives in memory: a new
// activation starts from 0, so each key's history must show one live
// activation at a time (no operation served by one activation between two
// served by another), and each activation's own history must be linearizable.
import { MeshError } from "@mesh/runtime";
import type { CallContext } from "@mesh/runtime";
import { checkRegister } from "./linearizability.js";
import type { RegisterOp } from "./linearizability.js";

/** A durable register: write, read, or crash (so the next message starts a fresh activation that loads the state). */
export class Register {
  static durable = true;
  state = { value: 0 as unknown };
  handleCall(p: { write?: unknown; read?: true; crash?: true; clear?: true }, ctx: CallContext): unknown {
    if (p.crash) throw new Error("crash on purpose: the next message loads the state again");
    if (p.write !== undefined) this.state = { value: p.write };
    if (p.clear) ctx.clearState();
    return this.state.value;
  }
}

/** The same register in memory: a plain actor. */
export class PlainRegister {
  value: unknown = 0;
  handleCall(p: { write?: unknown; read?: true }): unknown {
    if (p.write !== undefined) this.value = p.write;
    return this.value;
  }
}

/** Codes after which a write surely did not take effect; any other failure leaves its outcome unknown. */
export const NOT_WRITTEN = new Set(["STATE_CONFLICT", "OVERLOADED", "BAD_REQUEST", "UNKNOWN_ACTOR_TYPE", "NO_NODES", "STOPPED"]);

export const codeOf = (err: unknown) => (err instanceof MeshError ? err.code : "ERROR");

/** An operation and the activation that served it (undefined when its outcome is unknown). */
export type ServedOp = RegisterOp & { readonly pid?: string };

/** A history per key, and the calls that failed by code. */
export function recorder(keys: readonly string[]) {
  const histories = new Map<string, ServedOp[]>(keys.map((k) => [k, []]));
  const failures = new Map<string, number>();
  return {
    histories,
    failures,
    fail: (code: string) => failures.set(code, (failures.get(code) ?? 0) + 1),
    /** The durable keys whose history is not linearizable, each with where the checker stopped. */
    check(): string[] {
      const bad: string[] = [];
      for (const [id, history] of histories) {
        const verdict = checkRegister(history, 0);
        if (!verdict.ok) {
          bad.push(`${id}: ${verdict.linearized} of ${history.length} ordered, stuck at ${JSON.stringify(verdict.stuckAt)}`);
          if (verdict.stuckAt !== undefined) bad.push(`${id}: around it: ${JSON.stringify(around(history, verdict.stuckAt))}`);
        }
      }
      return bad;
    },
    /** The plain keys where two activations were live at once, or one activation's history is not linearizable. */
    checkPlain(): string[] {
      const bad: string[] = [];
      for (const [id, history] of histories) bad.push(...checkIncarnations(id, history));
      return bad;
    },
    reads: () => [...histories.values()].reduce((n, h) => n + h.filter((op) => op.kind === "read").length, 0),
  };
}

/**
 * What a report needs to tell a stale read from a lost write: the writes and reads of a key that overlap the second
 * before the operation the checker stopped at and its own span, in order of invocation, at most 40 (the latest kept).
 */
function around(history: readonly ServedOp[], stuck: RegisterOp): ServedOp[] {
  const near = history.filter((op) => op.ret >= stuck.call - 1000 && op.call <= stuck.ret);
  return near.sort((x, y) => x.call - y.call).slice(-40);
}

/**
 * One plain key's history: no operation served by activation B lies wholly
 * between two served by activation A (A served before and after B: two live
 * instances), and each activation's operations, with the writes whose
 * outcome is unknown, form a linearizable register from 0, or, for one that
 * moved with its state (live migration), from a value the activations before
 * it held at their end (one of the last values their operations saw).
 */
export function checkIncarnations(id: string, history: readonly ServedOp[]): string[] {
  const bad: string[] = [];
  const byPid = new Map<string, ServedOp[]>();
  for (const op of history) if (op.pid !== undefined) byPid.set(op.pid, [...(byPid.get(op.pid) ?? []), op]);
  const unknown = history.filter((op) => op.pid === undefined);
  for (const [pid, ops] of byPid) {
    const firstRet = Math.min(...ops.map((op) => op.ret));
    const lastCall = Math.max(...ops.map((op) => op.call));
    const inside = history.find((op) => op.pid !== undefined && op.pid !== pid && op.call > firstRet && op.ret < lastCall);
    if (inside !== undefined) bad.push(`${id}: ${inside.pid} served between two operations of ${pid}: ${JSON.stringify(inside)}`);
    const before = history.filter((op) => op.pid !== undefined && op.pid !== pid && op.call < firstRet).sort((x, y) => x.call - y.call);
    const moved = [...new Set(before.slice(-16).map((op) => JSON.stringify(op.value)))].map((v) => JSON.parse(v) as unknown);
    let verdict = checkRegister([...ops, ...unknown], 0);
    for (const initial of moved) if (!verdict.ok) verdict = checkRegister([...ops, ...unknown], initial);
    if (!verdict.ok)
      bad.push(`${id} (${pid}): ${verdict.linearized} of ${ops.length} ordered, stuck at ${JSON.stringify(verdict.stuckAt)}`);
  }
  return bad;
}
