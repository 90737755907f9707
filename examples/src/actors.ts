// The demo's actors: plain classes, as a user writes them. Each binds itself to
// its capability, so no other capability reaches it (docs/security.md).
import type { CallContext, StreamEvent } from "@mesh/runtime";

/** A counter: every call adds one; a cast { action: "reset" } sets it back. */
export class Counter {
  static actorType = "counter";
  static capabilities = ["counter"];
  count = 0;
  constructor(
    readonly id: string,
    initArg?: { start?: number },
  ) {
    this.count = initArg?.start ?? 0;
  }
  handleCall() {
    this.count += 1;
    return { ok: this.count };
  }
  handleCast(payload: { action?: string }) {
    if (payload.action === "reset") this.count = 0;
  }
}

/** A game session: a level set by initArg on first activation, and a score. */
export class GameActor {
  static actorType = "game";
  static capabilities = ["game"];
  level: number;
  score = 0;
  constructor(
    readonly id: string,
    initArg?: { starting_level?: number },
  ) {
    this.level = initArg?.starting_level ?? 1;
  }
  handleCall(payload: { action: "score" | "get_state"; points?: number }) {
    if (payload.action === "score") this.score += payload.points ?? 1;
    return { level: this.level, score: this.score };
  }
}

/** A chat room: keeps the last 20 messages. */
export class ChatRoom {
  static actorType = "chat";
  static capabilities = ["chat"];
  messages: string[] = [];
  async handleCall(payload: { say?: string }, ctx: CallContext) {
    if (payload.say) this.messages = [...this.messages, payload.say].slice(-20);
    return { room: ctx.id, messages: this.messages };
  }
}

/** A shopping cart whose items survive crashes, moves and restarts: its state is stored in JetStream KV. */
export class Cart {
  static actorType = "cart";
  static capabilities = ["cart"];
  static durable = true;
  state = { items: [] as string[] };
  handleCall(payload: { add?: string; checkout?: boolean }, ctx: CallContext) {
    if (payload.add) this.state.items.push(payload.add);
    if (payload.checkout) ctx.clearState();
    return { items: this.state.items };
  }
}

/**
 * An order, fed by the JetStream stream ORDERS (docs/events.md): its events are
 * orders.<id>.line ({ amount }) and orders.<id>.pay, handled in stream order.
 * Durable, so each event is applied once, across crashes and moves. A payment
 * ships the order: ctx.publish to shipments.<id>, which goes out only if the
 * turn commits (the stream SHIPMENTS keeps it).
 */
export class Order {
  static actorType = "order";
  static capabilities = ["order"];
  static durable = true;
  static events = { stream: "ORDERS", subject: "orders.*.*", key: { token: 1 } };
  state = { lines: 0, total: 0, shipped: false };
  handleCall() {
    return this.state;
  }
  handleEvent(event: StreamEvent, ctx: CallContext) {
    const kind = event.subject.split(".")[2];
    if (kind === "line") {
      this.state.lines += 1;
      this.state.total += event.json<{ amount: number }>().amount;
    } else if (kind === "pay" && !this.state.shipped) {
      this.state.shipped = true;
      ctx.publish(`shipments.${ctx.id}`, { order: ctx.id, lines: this.state.lines, total: this.state.total });
    }
  }
}
