// Handing over idle actors on stop (live migration, docs/behaviour.md): a node
// holding 10,000 idle plain actors (a counter, a name and a short list each)
// stops, and a second node takes their shards; the stop is timed with the
// actors moving with their state, and with the same class opting out
// (static migrate = false: they deactivate and start afresh later), in
// alternating rounds on fresh pairs of nodes. The bytes are those of one
// actor's migration envelope (Kind 3) as the node writes it, times the count.
import { Mesh } from "@mesh/runtime";
import { Kind, encodeRequest } from "@mesh/core/internal";

/** An idle actor with a little state. */
class Idle {
  static actorType = "Idle";
  n = 0;
  name: string;
  recent: number[] = [];
  constructor(id: string) {
    this.name = `player ${id}`;
  }
  handleCall(p: number): number {
    this.n += p;
    this.recent = [...this.recent.slice(-4), p];
    return this.n;
  }
}

class IdleStays extends Idle {
  static override actorType = "IdleStays";
  static migrate = false;
}

/** A durable counter: on a move its old owner hands its stored record over, or (Reads) its new owner reads the store. */
class Stored {
  static actorType = "Stored";
  static durable = true;
  state = { n: 0 };
  handleCall(p: number): number {
    return (this.state.n += p);
  }
}

class Reads extends Stored {
  static override actorType = "Reads";
  static migrate = false;
}

export interface MigrationFigures {
  /** Median ms for the first calls to 10,000 durable actors moved on a stop: from handed-over records, and reading the store. */
  durableHanded: number;
  durableRead: number;
  /** Median stop time, ms, with the actors moving and with them opting out. */
  moving: number;
  staying: number;
  actors: number;
  /** Bytes on the wire per moved actor, and for all of them. */
  bytesEach: number;
  moved: number;
}

const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function stopTimed(url: string, cls: typeof Idle, count: number, round: number): Promise<{ ms: number; moved: number }> {
  const prefix = `benchmig${round}${cls.actorType}`;
  const options = { servers: url, prefix, actors: [cls], capabilities: ["idle"] };
  const b = await Mesh.start({ ...options, nodeId: `bench-mig-b-${round}` });
  const a = await Mesh.start({ ...options, nodeId: `bench-mig-a-${round}` });
  try {
    while (a.nodesFor("idle").length < 2) await new Promise((r) => setTimeout(r, 20));
    // Actors owned by a only: ids whose shard a owns.
    const ids: string[] = [];
    for (let i = 0; ids.length < count; i++) if (a.ownerNode(a.shardFor(`i${i}`), "idle") === a.nodeId) ids.push(`i${i}`);
    for (let i = 0; i < ids.length; i += 512)
      await Promise.all(ids.slice(i, i + 512).map((id, k) => a.call({ actor: cls, id, payload: k, capability: "idle" })));
    const started = performance.now();
    await a.stop();
    const ms = performance.now() - started;
    return { ms, moved: b.metrics().migrationsIn };
  } finally {
    await a.stop();
    await b.stop();
  }
}

/** Stops a node holding `count` durable actors, then times the first call to each on the node that took them (128 in flight). */
async function firstCalls(url: string, cls: typeof Stored, count: number, round: number): Promise<number> {
  const prefix = `benchdmig${round}${cls.actorType}`;
  const options = { servers: url, prefix, actors: [cls], capabilities: ["dur"] };
  const b = await Mesh.start({ ...options, nodeId: `bench-dmig-b-${round}` });
  const a = await Mesh.start({ ...options, nodeId: `bench-dmig-a-${round}` });
  try {
    while (a.nodesFor("dur").length < 2) await new Promise((r) => setTimeout(r, 20));
    const ids: string[] = [];
    for (let i = 0; ids.length < count; i++) if (a.ownerNode(a.shardFor(`d${i}`), "dur") === a.nodeId) ids.push(`d${i}`);
    for (let i = 0; i < ids.length; i += 512)
      await Promise.all(ids.slice(i, i + 512).map((id) => a.call({ actor: cls, id, payload: 1, capability: "dur" })));
    await a.stop();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 128 }, async () => {
        while (next < ids.length) await b.call({ actor: cls, id: ids[next++]!, payload: 1, capability: "dur" });
      }),
    );
    return performance.now() - started;
  } finally {
    await a.stop();
    await b.stop();
  }
}

export async function migration(url: string, n: (count: number) => number, rounds: number): Promise<MigrationFigures> {
  const actors = n(10_000);
  console.log(
    `\nHanding over ${actors.toLocaleString("en-US")} idle plain actors on stop (moving against static migrate = false), ${rounds} rounds`,
  );
  const moving: number[] = [];
  const staying: number[] = [];
  let moved = 0;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [Idle, IdleStays] : [IdleStays, Idle];
    for (const cls of order) {
      const { ms, moved: m } = await stopTimed(url, cls, actors, r);
      (cls === Idle ? moving : staying).push(ms);
      if (cls === Idle) moved = m;
    }
  }
  const sample = new Idle("i1234");
  sample.handleCall(7);
  const bytesEach = encodeRequest({
    kind: Kind.MIGRATE,
    capability: "idle",
    actorType: "Idle",
    id: "i1234",
    payload: [{ ...sample }, []],
    initArg: undefined,
    timeoutMs: 0,
    hops: 0,
  }).length;
  console.log(
    `  stop, moving: ${moving.map((x) => Math.round(x)).join(", ")} ms; opting out: ${staying.map((x) => Math.round(x)).join(", ")} ms`,
  );
  console.log(
    `  ${moved.toLocaleString("en-US")} arrived on the other node; ${bytesEach} bytes each, ${((bytesEach * actors) / 1024).toFixed(0)} KiB in all`,
  );
  const handed: number[] = [];
  const read: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const cls of r % 2 === 0 ? [Stored, Reads] : [Reads, Stored])
      (cls === Stored ? handed : read).push(await firstCalls(url, cls, actors, r));
  }
  console.log(
    `  first calls to ${actors.toLocaleString("en-US")} durable actors moved on a stop: from handed-over records ${handed.map((x) => Math.round(x)).join(", ")} ms; reading the store ${read.map((x) => Math.round(x)).join(", ")} ms`,
  );
  return { moving: mid(moving), staying: mid(staying), actors, bytesEach, moved, durableHanded: mid(handed), durableRead: mid(read) };
}
