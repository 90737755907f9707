// JetStream streams for the event tests: `<name>` takes `<name>.in.>`,
// `<name>_OUT` what actors publish (`<name>.out.>`), `<name>_DEAD` dead letters.
import { createInbox } from "nats";
import type { NatsConnection } from "nats";

export async function setUpStreams(nc: NatsConnection, name: string): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name, subjects: [`${name}.in.>`] });
  await jsm.streams.add({ name: `${name}_OUT`, subjects: [`${name}.out.>`] });
  await jsm.streams.add({ name: `${name}_DEAD`, subjects: [`${name}.dead`] });
}

export interface Read {
  subject: string;
  seq: number;
  headers: Record<string, string>;
  json: unknown;
}

/** Every message of `stream` once it holds at least `atLeast` (polls until then, 20 s at most). */
export async function readStream(nc: NatsConnection, stream: string, atLeast: number): Promise<Read[]> {
  const jsm = await nc.jetstreamManager();
  const deadline = Date.now() + 20_000;
  while ((await jsm.streams.info(stream)).state.messages < atLeast) {
    if (Date.now() > deadline) throw new Error(`stream ${stream} holds fewer than ${atLeast} messages`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const { first_seq, last_seq } = (await jsm.streams.info(stream)).state;
  const out: Read[] = [];
  for (let seq = first_seq; seq <= last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    const headers: Record<string, string> = {};
    if (m.header) for (const [k, v] of m.header) headers[k] = v[0] ?? "";
    let json: unknown;
    try {
      json = m.json();
    } catch {
      json = undefined;
    }
    out.push({ subject: m.subject, seq: m.seq, headers, json });
  }
  return out;
}

/**
 * Snapshots `stream` through the JetStream API, deletes it and restores it from the snapshot (an operator's
 * backup and restore: the same sequences; on a NATS cluster, another creation time).
 */
export async function snapshotAndRestore(nc: NatsConnection, stream: string): Promise<void> {
  const chunks: Uint8Array[] = [];
  const inbox = createInbox();
  const received = new Promise<void>((resolve) => {
    const sub = nc.subscribe(inbox, {
      callback: (_err, msg) => {
        if (msg.data.length === 0) {
          sub.unsubscribe();
          return resolve();
        }
        chunks.push(msg.data.slice());
        if (msg.reply) msg.respond();
      },
    });
  });
  const asked = await nc.request(`$JS.API.STREAM.SNAPSHOT.${stream}`, JSON.stringify({ deliver_subject: inbox, chunk_size: 65536 }), {
    timeout: 10_000,
  });
  const { config, state } = asked.json<{ config: unknown; state: unknown }>();
  await received;
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(stream);
  const restore = await nc.request(`$JS.API.STREAM.RESTORE.${stream}`, JSON.stringify({ config, state }), { timeout: 10_000 });
  const { deliver_subject } = restore.json<{ deliver_subject: string }>();
  for (const chunk of chunks) await nc.request(deliver_subject, chunk, { timeout: 10_000 });
  await nc.request(deliver_subject, new Uint8Array(0), { timeout: 30_000 });
}
