/** The benchmark's actor: answers with what it got. One small field of state. */
export class Echo {
  n = 0;
  handleCall(payload: unknown): unknown {
    this.n++;
    return payload;
  }
}

/** An actor with one field, for the memory measurement. */
export class Idle {
  n = 0;
  handleCall(): number {
    return ++this.n;
  }
}
