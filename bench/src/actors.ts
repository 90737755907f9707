/** The benchmark's actor: answers with what it got. One small field of state. */
export class Echo {
  n = 0;
  handleCall(payload: unknown): unknown {
    this.n++;
    return payload;
  }
}

/** Echo whose class shares values with local callers (no copies): the copy's share of a local call is the difference. */
export class SharedEcho extends Echo {
  static actorType = "SharedEcho";
  static shareValues = true;
}

/** An actor with one field, for the memory measurement. */
export class Idle {
  n = 0;
  handleCall(): number {
    return ++this.n;
  }
}

/** A durable tally: every call but { read: true } adds one to state.n, which is stored before the reply. */
export class Tally {
  static actorType = "Tally";
  static durable = true;
  state = { n: 0 };
  constructor(readonly id: string) {}
  handleCall(p: { read?: boolean } | undefined): number {
    if (!p?.read) this.state.n += 1;
    return this.state.n;
  }
}

/** A durable actor with one reminder: it records how late each firing was. */
export class Beeper {
  static actorType = "Beeper";
  static durable = true;
  static lateness: number[] = [];
  /** The due time of each firing, in the order they ran. */
  static dues: number[] = [];
  static lastFiredAt = 0;
  state = { beeps: 0 };
  constructor(readonly id: string) {}
  async handleCall(p: { at: number }, ctx: { remind(name: string, o: { at: number }): Promise<void> }): Promise<void> {
    await ctx.remind("beep", { at: p.at });
  }
  handleReminder(_name: string, info: { late: number; due: number }): void {
    this.state.beeps += 1;
    Beeper.lateness.push(info.late);
    Beeper.dues.push(info.due);
    Beeper.lastFiredAt = Date.now();
  }
}

/** Events into plain actors (`npm run bench`, events): stream EVB_PLAIN, subjects evb.plain.<id>, one dispatcher (partitions: 1, the default). */
export class EvPlain {
  static capability = "evb";
  static events = { stream: "EVB_PLAIN", key: { token: 2 } };
  n = 0;
  handleCall(): number {
    return this.n;
  }
  handleEvent(): void {
    this.n++;
  }
}

/** Events into durable actors: each event is one commit (its state and applied sequence). */
export class EvDurable {
  static capability = "evb";
  static durable = true;
  static events = { stream: "EVB_DURABLE", key: { token: 2 }, maxInFlight: 128 };
  state = { n: 0 };
  handleCall(): number {
    return this.state.n;
  }
  handleEvent(): void {
    this.state.n++;
  }
}

/** EvDurable on one node (its own stream, EVB_DURABLE1). */
export class EvDurableSolo extends EvDurable {
  static override events = { ...EvDurable.events, stream: "EVB_DURABLE1" };
}

/** Durable actors that publish one message per event, with their commit (to evb.out.<id>). */
export class EvPublish {
  static capability = "evb";
  static durable = true;
  static events = { stream: "EVB_PUB", key: { token: 2 }, maxInFlight: 128 };
  state = { n: 0 };
  handleCall(): number {
    return this.state.n;
  }
  handleEvent(event: { data: Uint8Array }, ctx: { id: string; publish(subject: string, data: unknown): void }): void {
    this.state.n++;
    ctx.publish(`evb.out.${ctx.id}`, event.data);
  }
}

/** An async handler (deadline.ts): each of its turns is kept by the node's turn bookkeeping (maxTurnMs, busy notes, resets). */
export class DeadlineEcho {
  static actorType = "DeadlineEcho";
  async handleCall(p: number): Promise<number> {
    return p + 1;
  }
}

/** 5 ms per message, calls and casts alike (flood.ts): a cast flood fills its mailbox, as with test/helpers/actors.ts Slow. */
export class Slow {
  static actorType = "Slow";
  async handleCall(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  async handleCast(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
