// Actors used by the tests: the Elixir guide's, ported, and a few for edge cases.
import { existsSync } from "node:fs";
import type { CallContext } from "@mesh/runtime";

/** The guide's Counter: every call increments and returns { ok: count }. */
export class Counter {
  static actorType = "Counter";
  count = 0;
  constructor(
    readonly id: string,
    initArg?: { start?: number },
  ) {
    this.count = initArg?.start ?? 0;
  }
  handleCall(_payload: unknown): { ok: number } {
    this.count += 1;
    return { ok: this.count };
  }
  handleCast(payload: { action?: string }): void {
    if (payload?.action === "reset") this.count = 0;
  }
}

/** The guide's GameActor: level from initArg.starting_level (default 1), score. */
export class GameActor {
  level: number;
  score = 0;
  log: string[] = [];
  constructor(
    readonly id: string,
    initArg?: { starting_level: number },
  ) {
    this.level = initArg?.starting_level ?? 1;
  }
  handleCall(payload: { action: string }): { ok: unknown } {
    if (payload.action === "increment") {
      this.score += 1;
      return { ok: this.score };
    }
    return { ok: { id: this.id, level: this.level, score: this.score, log: this.log } };
  }
  handleCast(payload: { action: string }): void {
    this.log.push(payload.action);
  }
}

/** The guide's Crasher: { action: "crash" } throws "boom!". */
export class Crasher {
  crashes = 0;
  calls = 0;
  constructor(readonly id: string) {}
  handleCall(payload: { action?: string }): { ok: number } {
    if (payload?.action === "crash") throw new Error("boom!");
    this.calls += 1;
    return { ok: this.crashes };
  }
}

/**
 * Waits for a release: { wait: key } blocks until { release: key } comes to
 * any Gate. Replies with its pid and every payload it has run, in order.
 */
const gates = new Map<string, () => void>();
export class Gate {
  ran: unknown[] = [];
  async handleCall(payload: { wait?: string; release?: string }, ctx: CallContext): Promise<unknown> {
    this.ran.push(payload);
    if (payload.release) gates.get(payload.release)?.();
    if (payload.wait) await new Promise<void>((resolve) => gates.set(payload.wait!, resolve));
    return { pid: ctx.pid, ran: this.ran };
  }
}

/** Never answers: its handler's promise never settles. */
export class Hung {
  handleCall(payload: { hang?: boolean }): unknown {
    if (payload?.hang) return new Promise(() => {});
    return "awake";
  }
}

/** Echoes what it gets; sorted order of arrival is kept in `seen`. */
export class Echo {
  seen: unknown[] = [];
  async handleCall(payload: unknown): Promise<unknown> {
    this.seen.push(payload);
    await Promise.resolve();
    return { payload, seen: this.seen.length };
  }
  handleCast(payload: unknown): void {
    this.seen.push(payload);
  }
}

/** Its constructor throws while `FailingConstructor.fail` is true. */
export class FailingConstructor {
  static fail = true;
  static attempts = 0;
  constructor(readonly id: string) {
    FailingConstructor.attempts += 1;
    if (FailingConstructor.fail) throw new Error("cannot start");
  }
  handleCall(): string {
    return "started";
  }
}

/** Its async onActivate rejects. */
export class FailingActivate {
  async onActivate(): Promise<void> {
    await Promise.resolve();
    throw new Error("not today");
  }
  handleCall(): string {
    return "never";
  }
}

/** Replies with something msgpack cannot encode. */
export class BadReply {
  handleCall(): unknown {
    return { fn: () => 1 };
  }
}

/** What DurableCounter can be told to do besides counting. */
export interface DurableCounterCall {
  /** Reply with the state, change nothing. */
  get?: boolean;
  /** Count, then throw: the turn crashes. */
  crash?: boolean;
  /** Count, then put something msgpack cannot store into the state. */
  poison?: "function" | "cycle" | "map" | "big";
  /** Count, then delete the stored state (clearState). */
  clear?: boolean;
  /** Wait this long (ms) before replying: an async turn. */
  delayMs?: number;
  /** Count, then block the event loop until this file exists (20 s at most): a pause between the turn and its commit. */
  stallUntil?: string;
}

/** A durable counter: every call but `get` adds one to `state.count` and replies with a copy of the state. */
export class DurableCounter {
  static actorType = "DurableCounter";
  static durable = true;
  static deactivations: string[] = [];
  state: { count: number; extra?: unknown } = { count: 0 };
  constructor(
    readonly id: string,
    initArg?: { start?: number },
  ) {
    if (initArg?.start !== undefined) this.state.count = initArg.start;
  }
  async handleCall(p: DurableCounterCall | undefined, ctx: CallContext): Promise<unknown> {
    if (p?.delayMs) await new Promise((resolve) => setTimeout(resolve, p.delayMs));
    if (p?.get) return { ...this.state };
    this.state.count += 1;
    if (p?.crash) throw new Error("boom after counting");
    if (p?.poison === "function") this.state.extra = () => 1;
    if (p?.poison === "cycle") {
      const a: Record<string, unknown> = {};
      a.self = a;
      this.state.extra = a;
    }
    if (p?.poison === "map") this.state.extra = new Map([["a", 1]]);
    if (p?.poison === "big") this.state.extra = "x".repeat(2 * 1024 * 1024);
    if (p?.clear) ctx.clearState();
    if (p?.stallUntil !== undefined) for (const end = Date.now() + 20_000; !existsSync(p.stallUntil) && Date.now() < end; );
    return { count: this.state.count };
  }
  handleCast(): void {
    this.state.count += 1;
  }
  onDeactivate(reason: string): void {
    DurableCounter.deactivations.push(`${this.id}:${reason}`);
  }
}

/** Records its timers' firings and its calls, in the order they ran. */
export class Ticker {
  static log: string[] = [];
  events: string[] = [];
  constructor(readonly id: string) {}
  async handleCall(
    p: { set?: { name: string; ms: number; every?: boolean }; clear?: string; slowMs?: number; crash?: boolean; clearAfterSlow?: string },
    ctx: CallContext,
  ): Promise<string[]> {
    if (p.set) ctx.setTimer(p.set.name, p.set.ms, { every: p.set.every ?? false });
    if (p.clear) ctx.clearTimer(p.clear);
    if (p.crash) throw new Error("crash on purpose");
    this.events.push(p.slowMs ? "slow call" : "call");
    if (p.slowMs) await new Promise((resolve) => setTimeout(resolve, p.slowMs));
    if (p.clearAfterSlow) this.events.push(`cleared ${String(ctx.clearTimer(p.clearAfterSlow))}`);
    return [...this.events];
  }
  handleTimer(name: string, ctx: CallContext): void {
    this.events.push(`timer ${name}`);
    Ticker.log.push(`${ctx.pid} ${name}`);
  }
}

/** A hop in a chain of calls between actors. */
export interface Hop {
  actor: string;
  id: string;
  capability: string;
}

/**
 * Calls the first hop of `via` with the rest, and replies with the ids the
 * chain went through; a failure on the way comes back as { error, message }.
 */
export class Relay {
  static actorType = "Relay";
  async handleCall(p: { via?: Hop[] }, ctx: CallContext): Promise<unknown> {
    const [next, ...rest] = p?.via ?? [];
    if (next === undefined) return [`${ctx.nodeId}:${ctx.id}`];
    try {
      const { result } = await ctx.call<unknown>({ actor: next.actor, id: next.id, capability: next.capability, payload: { via: rest } });
      return Array.isArray(result) ? [`${ctx.nodeId}:${ctx.id}`, ...result] : result;
    } catch (err) {
      return { error: (err as { code?: string }).code, message: (err as Error).message };
    }
  }
}

/** A Relay whose class lets calls of its own chain in (static reentrant = true). */
export class ReentrantRelay extends Relay {
  static override actorType = "ReentrantRelay";
  static reentrant = true;
}

/** A durable actor with reminders: it records every firing (its name, node, lateness, earlier failures) in its state. */
export class Alarm {
  static actorType = "Alarm";
  static durable = true;
  /** "<id>/<name>" -> how many firings to fail on purpose (in this process). */
  static failures = new Map<string, number>();
  state = { fired: [] as { name: string; node: string; late: number; failures: number }[] };
  constructor(readonly id: string) {}
  async handleCall(
    p: { remind?: { name: string; afterMs?: number; at?: number; everyMs?: number }; forget?: string } | undefined,
    ctx: CallContext,
  ): Promise<unknown> {
    if (p?.remind) {
      const { name, ...when } = p.remind;
      await ctx.remind(name, when);
    }
    if (p?.forget) await ctx.forget(p.forget);
    return this.state.fired.map((f) => ({ ...f }));
  }
  handleReminder(name: string, info: { late: number; failures: number }, ctx: CallContext): void {
    const key = `${ctx.id}/${name}`;
    const fail = Alarm.failures.get(key) ?? 0;
    if (fail > 0) {
      Alarm.failures.set(key, fail - 1);
      throw new Error("not yet");
    }
    this.state.fired.push({ name, node: ctx.nodeId, late: info.late, failures: info.failures });
  }
}

/** A payments-only durable ledger: bound to the payments capability, so no other capability reaches it. */
export class Ledger {
  static actorType = "ledger";
  static capabilities = ["payments"];
  static durable = true;
  state = { balance: 100, owner: "alice" };
  handleCall(p: { set?: { balance: number; owner: string } } | undefined): { balance: number; owner: string } {
    if (p?.set) this.state = { ...p.set };
    return { ...this.state };
  }
}

/** The same ledger, unbound: every capability that reaches it reaches its own actor, with its own state. */
export class OpenLedger {
  static actorType = "open-ledger";
  static durable = true;
  state = { balance: 100, owner: "alice" };
  handleCall(p: { set?: { balance: number; owner: string } } | undefined): { balance: number; owner: string } {
    if (p?.set) this.state = { ...p.set };
    return { ...this.state };
  }
}

/** A slow actor: each call or cast takes `ms` (default 5); `{ count: true }` says how many of each ran. */
export class Slow {
  static actorType = "Slow";
  calls = 0;
  casts = 0;
  async handleCall(p: { ms?: number; count?: true } | undefined): Promise<{ calls: number; casts: number }> {
    if (!p?.count) {
      this.calls++;
      await new Promise((resolve) => setTimeout(resolve, p?.ms ?? 5));
    }
    return { calls: this.calls, casts: this.casts };
  }
  async handleCast(p: { ms?: number } | undefined): Promise<void> {
    this.casts++;
    await new Promise((resolve) => setTimeout(resolve, p?.ms ?? 5));
  }
}

/** Slow, with a mailbox of 50. */
export class SmallMailbox extends Slow {
  static override actorType = "SmallMailbox";
  static maxMailbox = 50;
}
