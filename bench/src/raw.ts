// Raw nats.js request/reply, the baseline the bench measures Mesh against.
import { createInbox } from "nats";
import type { NatsConnection } from "nats";

export /** Request/reply the fastest way nats.js allows: one reply subscription, our own correlation ids. */
function ownInbox(nc: NatsConnection): (subject: string, data: Uint8Array) => Promise<Uint8Array> {
  const inbox = `${createInbox()}.`;
  const pending = new Map<string, (data: Uint8Array) => void>();
  nc.subscribe(`${inbox}*`, {
    callback: (_err, msg) => {
      const id = msg.subject.slice(inbox.length);
      const resolve = pending.get(id);
      pending.delete(id);
      resolve?.(msg.data);
    },
  });
  let next = 0;
  return (subject, data) =>
    new Promise((resolve) => {
      const id = (next++).toString(36);
      pending.set(id, resolve);
      nc.publish(subject, data, { reply: inbox + id });
    });
}
