// A message alone leaves at once. nats.js writes what `publish` queued at the
// end of the tick (a microtask), so that the tick's messages share one socket
// write. A message that is alone by design (a call with nothing else in
// flight to its node, a plain reply to one) has nobody to wait for: written at
// once, it is on its way while the rest of the tick runs (the turn's
// bookkeeping, the parser's, the microtasks queued before nats.js's flush).
// In a sequential remote call this took 1 to 4 % off the round trip (README,
// "What the speed section shows").
//
// Once per connection until the microtasks queued so far have run: a second
// message alone before then (plain replies to callers whose calls waited in
// one mailbox, answered in one loop) leaves with nats.js's flush, so such a
// loop costs one write more than before, not one a reply. Replies sent from a
// chain of microtasks (async turns that end one after the other) may each be
// written at once, up to twice the writes nats.js's flush would have made.
//
// nats.js has no public call for it (`flush()` is a round trip to the server);
// its protocol handler's `flushPending`, what its own microtask runs, is used
// where it is found: it hands what is queued to the socket's write. It writes
// nothing while the client is not connected (nats.js drops what it had not
// written when it reconnects, as before), and never throws (write errors are
// the reader's to find). Where it is missing, messages leave at the end of the
// tick, as before.
import type { NatsConnection } from "nats";
import { microtask } from "./microtask.js";

/** What of nats.js's connection this reads (not in its typings). */
interface WithProtocol {
  readonly protocol?: { flushPending?(): void };
}

/** Writes the connection's queued messages now; again only once the microtasks queued before it ran (until then it does nothing). */
export type PromptWrite = () => void;

const writers = new WeakMap<NatsConnection, PromptWrite>();

/** The prompt write of `nc`: one per connection, shared by all who send on it. */
export function promptWrite(nc: NatsConnection): PromptWrite {
  let write = writers.get(nc);
  if (write === undefined) writers.set(nc, (write = makePromptWrite(nc)));
  return write;
}

function makePromptWrite(nc: NatsConnection): PromptWrite {
  let wrote = false;
  const again = () => {
    wrote = false;
  };
  return () => {
    if (wrote) return;
    const protocol = (nc as WithProtocol).protocol;
    if (protocol?.flushPending === undefined) return;
    wrote = true;
    microtask(again);
    protocol.flushPending();
  };
}
