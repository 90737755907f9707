// A durable activation's start: its stored state read into its instance and
// its commits set up (state/group-commit.ts), counted in the node's metrics.
// Imports: the actors room, state, operations/metrics and the bottom floor.
import { MeshError } from "@mesh/core";
import type { Logger } from "@mesh/core";
import type { NodeMetrics } from "../operations/metrics.js";
import { loadState } from "../state/group-commit.js";
import type { GroupCommit, OutboxPublisher } from "../state/group-commit.js";
import type { StateStorage, Stored } from "../state/state-store.js";
import { UNVERSIONED } from "../state/state-version.js";
import type { StateVersioning } from "../state/state-version.js";
import type { ActorClass } from "../types.js";
import type { Activation } from "./activation.js";
import { commitSpan } from "./commit-spans.js";
import type { Lease } from "./lease.js";

/** What loading a durable actor works with: the store, where its messages go, and what a failed or settled commit tells. */
export interface DurableParts {
  readonly store: StateStorage;
  readonly publisher: OutboxPublisher;
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  /** The node's lease: a commit is sent only while it holds. */
  readonly lease: Lease;
  /** A commit failed: the activation is dropped. */
  crashed(act: Activation): void;
  /** A group commit has nothing in flight any more. */
  committed(commits: GroupCommit): void;
  /** What the actor's old owner handed over of its stored record (live migration), if anything: read instead of the store. */
  moved(act: Activation): Stored | undefined;
  /** The state is loaded: the timers its old owner handed over with the record, if any, are set again. */
  movedTimers(act: Activation): void;
  /** An actor's state was stored by newer code: true when the node gave its shard up to such a node (the activation leaves). */
  yieldShard(capability: string, shard: number): boolean;
}

/**
 * Starts a durable activation: its state (and the timers that moved with it), then onActivate. When the state was
 * stored by newer code and the node gives the shard up to a node of newer
 * code, it starts nothing: it leaves as replaced, and what waits for it goes
 * to that node.
 */
export async function startDurable(act: Activation, p: DurableParts): Promise<void> {
  try {
    await loadDurable(act, p);
  } catch (err) {
    if (!(err instanceof MeshError && err.code === "STATE_TOO_NEW" && p.yieldShard(act.capability, act.shard) && act.leaving)) throw err;
    act.reason = "replaced";
    return;
  }
  p.movedTimers(act); // before onActivate: a timer it sets replaces one of the same name
  await act.instance.onActivate?.();
}

/** Reads a durable actor's stored state into its instance and sets up its commits. */
export async function loadDurable(act: Activation, p: DurableParts): Promise<void> {
  const m = p.metrics;
  const cls = act.instance.constructor as ActorClass;
  const moved = p.moved(act);
  const epoch = p.lease.epoch; // the lease it loads under: a commit after a replacement is void, whatever became of the activation
  act.commits = await loadState(act.instance, {
    store: p.store,
    capability: act.capability,
    actorType: act.actorType,
    id: act.id,
    versioning: versioningOf(cls),
    events: {
      committed: (ms) => void (m.stateCommits++, m.commitLatency.observe(ms)),
      failed: (err) => {
        if (err.code === "STATE_CONFLICT") m.stateConflicts++;
        p.log.warn({ pid: act.pid, err: err.message }, "mesh: a commit failed; the activation is dropped");
        p.crashed(act);
      },
      settled: () => p.committed(act.commits!),
      span: commitSpan,
      fence: () =>
        p.lease.epoch === epoch && p.lease.holds(performance.now()) ? undefined : leaseFence(act, p.lease, epoch, p.store.timeoutMs),
    },
    publisher: p.publisher,
    moved,
  });
  if (moved === undefined) m.stateLoads++;
}

/**
 * A commit whose turns ended before the node paused past its lease (a SIGSTOP, a stalled event loop) waits for
 * the lease to be re-validated: sent at once, it would land after another node took the actor and loaded its
 * state, which would then answer from a state older than what this node acknowledged. When a re-validation
 * found the node replaced since the activation loaded (`epoch`: its activations dropped, and those already
 * leaving or crashed, which were not in the table, are as stale), it is not sent at all (STATE_CONFLICT); nor
 * when the re-validation did not end within the store's time (a lost connection: STORAGE_UNAVAILABLE, as a
 * write that got no answer).
 */
async function leaseFence(act: Activation, lease: Lease, epoch: number, timeoutMs: number): Promise<void> {
  if (lease.epoch !== epoch) throw replacedSince(act);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const why = `${act.pid}: the node's lease lapsed (a pause, or a lost connection) and was not re-validated within ${timeoutMs} ms: the commit was not sent`;
      reject(new MeshError("STORAGE_UNAVAILABLE", why));
    }, timeoutMs);
  });
  try {
    await Promise.race([lease.held(), late]);
  } finally {
    clearTimeout(timer);
  }
  if (lease.epoch !== epoch) throw replacedSince(act);
}

function replacedSince(act: Activation): MeshError {
  const why = `${act.pid}: the node's lease lapsed before this commit was sent, and another node may have served the actor since: nothing of its turns was stored`;
  return new MeshError("STATE_CONFLICT", why);
}

/** A class's state versions: its `static stateVersion` and `static migrateState`. */
function versioningOf(cls: ActorClass): StateVersioning {
  if (cls.stateVersion === undefined) return UNVERSIONED;
  return { version: cls.stateVersion, migrate: cls.migrateState?.bind(cls) };
}
