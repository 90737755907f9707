// Continuous calls while a test changes the cluster underneath.
import type { Mesh } from "@mesh/runtime";

export interface Load {
  /** Calls made so far. */
  readonly calls: number;
  readonly succeeded: number;
  /** Failures by error code. */
  readonly failures: Map<string, number>;
  /** `Date.now()` of the last failure (0 when none). */
  readonly lastFailureAt: number;
  /** `Date.now()` when the latest-made of the calls that failed was made (0 when none). */
  readonly lastFailedCallMadeAt: number;
  /** pids that answered, by id: the activations seen. */
  readonly pids: Map<string, Set<string>>;
  /** Calls that succeeded, by id. */
  readonly answered: Map<string, number>;
  stop(): Promise<void>;
}

/**
 * Calls `actor` on `ids` from `caller`, `workers` at a time, until `stop()`.
 * Each worker yields to the event loop between calls, as a caller driven by
 * I/O does (a loop of local calls that settle in microtasks would starve timers).
 */
export function continuousCalls(
  caller: Mesh,
  capability: string,
  ids: readonly string[],
  {
    actor = "Counter",
    workers = 16,
    timeoutMs,
    onResult,
  }: { actor?: string; workers?: number; timeoutMs?: number; onResult?: (id: string, result: unknown) => void } = {},
): Load {
  let running = true;
  const state = {
    calls: 0,
    succeeded: 0,
    lastFailureAt: 0,
    lastFailedCallMadeAt: 0,
    failures: new Map<string, number>(),
    pids: new Map<string, Set<string>>(),
    answered: new Map<string, number>(),
  };
  const worker = async (w: number) => {
    // Ends with its caller too: a test that failed before stop() leaves no loop behind once its node is torn down.
    for (let i = w; running && caller.state !== "STOPPED"; i += workers) {
      await new Promise((resolve) => setImmediate(resolve));
      const id = ids[i % ids.length]!;
      state.calls++;
      const madeAt = Date.now();
      try {
        const { pid, result } = await caller.call({ actor, id, capability, ...(timeoutMs ? { timeoutMs } : {}) });
        onResult?.(id, result);
        state.succeeded++;
        state.answered.set(id, (state.answered.get(id) ?? 0) + 1);
        let seen = state.pids.get(id);
        if (!seen) state.pids.set(id, (seen = new Set()));
        seen.add(pid);
      } catch (err) {
        const code = (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
        state.failures.set(code, (state.failures.get(code) ?? 0) + 1);
        state.lastFailureAt = Date.now();
        state.lastFailedCallMadeAt = Math.max(state.lastFailedCallMadeAt, madeAt);
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return {
    get calls() {
      return state.calls;
    },
    get succeeded() {
      return state.succeeded;
    },
    get lastFailureAt() {
      return state.lastFailureAt;
    },
    get lastFailedCallMadeAt() {
      return state.lastFailedCallMadeAt;
    },
    failures: state.failures,
    pids: state.pids,
    answered: state.answered,
    stop: async () => {
      running = false;
      await done;
    },
  };
}
