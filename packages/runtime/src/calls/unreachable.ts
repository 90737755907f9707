// Calls whose owner had no responders on its subject (docs/faults.md
// "Retries"): never delivered, so they may go again; but "no responders"
// removes nobody (a node whose connection the server closed may not know it
// yet, and serves until its lease ends), so they wait here, per owner: for
// the view to name another owner (the router hears of every view change), for
// the owner to answer a presence probe again (it reconnected), or for their
// deadline (NODE_UNAVAILABLE). One probe per owner, 25 ms apart doubling to
// 250 ms, however many calls wait for it: they are not sent again one by one.
// An event whose owner changed fails instead (NODE_UNAVAILABLE): its
// dispatcher sends it again itself when the node leaves the view. Imports:
// the calls room and the bottom floor.
import { MeshError } from "@mesh/core";
import { Kind } from "@mesh/core/internal";
import type { RemoteCall } from "./remote-call.js";

/** How long between two probes of an owner: doubling from `first`, at most `max`. */
const PROBE_PAUSE_MS = { first: 25, max: 250 } as const;
/** How many times a call that met "no responders" goes to another owner before NODE_UNAVAILABLE. */
const MAX_REROUTES = 3;

export interface UnreachableParts {
  /** The owner of the call's actor in the view now (undefined: no node has its capability any more). */
  ownerOf(call: RemoteCall): string | undefined;
  /** Sends the call to `call.request.owner` (or serves it here when that is this node). */
  dispatch(call: RemoteCall): void;
  /** Resolves to true when `node` answers a presence probe within `timeoutMs`. */
  answers(node: string, timeoutMs: number): Promise<boolean>;
  /** The error of a call whose capability has no node left. */
  noNodes(call: RemoteCall): Error;
  /** A call went to another owner (the node's `retries`). */
  rerouted(): void;
  readonly nodeId: string;
}

interface Waiting {
  readonly calls: Set<RemoteCall>;
  pause: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  probing: boolean;
}

export class UnreachableOwners {
  readonly #byNode = new Map<string, Waiting>();
  #closed: Error | undefined;

  constructor(private readonly p: UnreachableParts) {}

  /** `call` met no responders at its owner: it goes to the owner the view names now, or waits for one. */
  wait(call: RemoteCall): void {
    if (this.#closed !== undefined) return call.sink.fail(this.#closed);
    const node = call.request.owner;
    let w = this.#byNode.get(node);
    if (w === undefined) this.#byNode.set(node, (w = { calls: new Set(), pause: PROBE_PAUSE_MS.first, timer: undefined, probing: false }));
    w.calls.add(call);
    this.#look(node, w);
    if (this.#byNode.get(node) === w) this.#arm(node, w);
  }

  /** The view changed: calls whose actor has another owner now go to it. */
  viewChanged(): void {
    for (const [node, w] of this.#byNode) this.#look(node, w);
  }

  /** The node stopped: every call waiting fails with `err`, and so does every one that meets no responders from now on. */
  close(err: Error): void {
    this.#closed = err;
    for (const [node, w] of this.#byNode) {
      this.#done(node, w);
      for (const call of w.calls) call.sink.fail(err);
    }
  }

  /** Each call: to its new owner, failed (no node left, too many moves, its time up), or left waiting. */
  #look(node: string, w: Waiting): void {
    const now = performance.now();
    for (const call of w.calls) {
      const owner = this.p.ownerOf(call);
      if (owner === node && now < call.budgetEnd) continue;
      w.calls.delete(call);
      if (owner === undefined) call.sink.fail(this.p.noNodes(call));
      else if (owner === node || call.reroutes >= MAX_REROUTES || call.request.kind === Kind.EVENT)
        call.sink.fail(unavailable(node, this.p.nodeId));
      else {
        call.reroutes++;
        this.p.rerouted();
        call.request.owner = owner;
        this.p.dispatch(call);
      }
    }
    if (w.calls.size === 0) this.#done(node, w);
  }

  /** The next look and probe: after the pause, or at the earliest deadline if sooner. */
  #arm(node: string, w: Waiting): void {
    if (w.timer !== undefined || w.probing) return;
    w.timer = setTimeout(() => void this.#tick(node, w), Math.max(0, Math.min(w.pause, this.#earliest(w) - performance.now())));
  }

  async #tick(node: string, w: Waiting): Promise<void> {
    w.timer = undefined;
    this.#look(node, w);
    if (this.#byNode.get(node) !== w || this.#closed !== undefined) return;
    w.probing = true;
    const back = await this.p.answers(node, Math.max(1, Math.min(w.pause, this.#earliest(w) - performance.now()))).catch(() => false);
    w.probing = false;
    if (this.#byNode.get(node) !== w || this.#closed !== undefined) return;
    if (back) {
      // It answers again (it reconnected): what waits for it goes to it.
      this.#done(node, w);
      for (const call of w.calls) this.p.dispatch(call);
      return;
    }
    w.pause = Math.min(PROBE_PAUSE_MS.max, w.pause * 2);
    this.#look(node, w);
    if (this.#byNode.get(node) === w) this.#arm(node, w);
  }

  #earliest(w: Waiting): number {
    let at = Infinity;
    for (const call of w.calls) at = Math.min(at, call.budgetEnd);
    return at;
  }

  #done(node: string, w: Waiting): void {
    clearTimeout(w.timer);
    w.timer = undefined;
    if (this.#byNode.get(node) === w) this.#byNode.delete(node);
  }
}

function unavailable(node: string, self: string): MeshError {
  return new MeshError(
    "NODE_UNAVAILABLE",
    `node ${node} is unreachable from node ${self} (no responders on its subject), and the cluster has not removed it`,
  );
}
