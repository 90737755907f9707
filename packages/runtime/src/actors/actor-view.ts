// What the admin API shows of the actors a node holds (docs/observability.md
// "Admin API"): live activations per type, and one actor's live view. Read
// only when an operator asks. Imports: the actors room.
import type { Activation } from "./activation.js";
import type { ActorTable } from "./actor-table.js";

/** One live activation as the admin API shows it. */
export interface ActorView {
  pid: string;
  capability: string;
  shard: number;
  /** Where it is in its life: starting, running, idle, leaving, gone. */
  phase: string;
  durable: boolean;
  /** The turn it runs now (`ageMs` -1: it is busy otherwise: a commit, or its start), or none. */
  turn: { kind: string; ageMs: number } | undefined;
  /** Messages waiting in its mailbox. */
  queue: number;
  /** Its timers, and in how long each fires next. */
  timers: { name: string; inMs: number }[];
}

export class ActorViews {
  constructor(
    private readonly table: ActorTable,
    /** What an activation runs now (turn-deadline.ts). */
    private readonly turnOf: (act: Activation) => { kind: string; ageMs: number } | undefined,
  ) {}

  /** Live activations per actor type. */
  byType(): Record<string, number> {
    return countByType(this.table);
  }

  /** The live activations of (`actorType`, `id`), one per capability it was reached through. */
  of(actorType: string, id: string): ActorView[] {
    return viewsOf(this.table, this.turnOf, actorType, id);
  }
}

function countByType(table: ActorTable): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of table.types) {
    let n = 0;
    for (const slot of type.slots.values()) n += slot.activations.size;
    counts[type.name] = n;
  }
  return counts;
}

function viewsOf(
  table: ActorTable,
  turnOf: (act: Activation) => { kind: string; ageMs: number } | undefined,
  actorType: string,
  id: string,
): ActorView[] {
  const type = table.type(actorType);
  if (type === undefined) return [];
  const now = Date.now();
  const views: ActorView[] = [];
  for (const slot of type.slots.values()) {
    const act = slot.activations.get(id);
    if (act === undefined) continue;
    views.push({
      pid: act.pid,
      capability: act.capability,
      shard: act.shard,
      phase: act.phase,
      durable: type.durable,
      turn: turnOf(act) ?? (act.busy ? { kind: "busy", ageMs: -1 } : undefined),
      queue: act.waiting,
      timers: [...(act.timers ?? [])].map(([name, t]) => ({ name, inMs: Math.max(0, t.due - now) })),
    });
  }
  return views;
}
