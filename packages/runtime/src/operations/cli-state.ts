// `mesh state get` and `mesh state delete`: a durable actor's stored state, read
// as JSON or deleted (with every node told to end its live activation, forget.ts);
// `mesh actor reset`: every node told to drop it, even mid-turn.
import { stateKey } from "@mesh/core";
import { RequestStrategy } from "nats";
import type { NatsConnection } from "nats";
import { Subjects } from "@mesh/transport";
import { DEFAULT_STORAGE_TIMEOUT_MS } from "../options.js";
import { StateStore } from "../state/state-store.js";
import { decodeState, readRecord } from "../state/group-commit.js";
import { encodeForget } from "./forget.js";
import type { Forget } from "./forget.js";

export async function getState(nc: NatsConnection, bucket: string, actor: Forget): Promise<number> {
  const stored = await readState(nc, bucket, actor);
  if (!stored.found) {
    process.stderr.write(
      `mesh: no state stored for ${actor.actorType} ${JSON.stringify(actor.id)} (key ${stored.key} in bucket ${bucket})\n`,
    );
    return 1;
  }
  if (stored.version > 1) process.stderr.write(`mesh: stored at state version ${stored.version}\n`);
  process.stdout.write(`${JSON.stringify(stored.state, jsonValue)}\n`);
  return 0;
}

/** A durable actor's stored state (`found` false: none stored), its state version, and its key in the bucket. */
export async function readState(
  nc: NatsConnection,
  bucket: string,
  { capability, actorType, id }: Forget,
): Promise<{ found: boolean; key: string; version: number; state: unknown }> {
  const key = stateKey(capability, actorType, id);
  const stored = await (await StateStore.bind(nc, bucket, DEFAULT_STORAGE_TIMEOUT_MS)).load(key);
  if (stored.bytes === undefined) return { found: false, key, version: 0, state: null };
  const record = readRecord(stored.bytes, key);
  return { found: true, key, version: record.version, state: record.state === undefined ? null : decodeState(record.state, key) };
}

/** Deletes the stored state, then asks every node to end its live activation of the actor, and waits for their answers. */
export async function deleteState(nc: NatsConnection, bucket: string, prefix: string, actor: Forget, waitMs: number): Promise<number> {
  const { capability, actorType, id } = actor;
  await (await StateStore.bind(nc, bucket, DEFAULT_STORAGE_TIMEOUT_MS)).delete(stateKey(capability, actorType, id));
  const live = await endActor(nc, new Subjects(prefix).forget, actor, waitMs);
  process.stdout.write(`deleted the state of ${actorType} ${JSON.stringify(id)}; ${live}\n`);
  return 0;
}

/** `mesh actor reset`: every node drops its live activation of the actor, even in a turn. */
export async function resetActor(nc: NatsConnection, prefix: string, actor: Forget, waitMs: number): Promise<number> {
  const live = await endActor(nc, new Subjects(prefix).reset, actor, waitMs);
  process.stdout.write(`reset ${actor.actorType} ${JSON.stringify(actor.id)}: ${live}\n`);
  return 0;
}

/** Asks every node, on `subject`, to end its live activation of `actor`; says which did, and how many answered. */
async function endActor(nc: NatsConnection, subject: string, actor: Forget, waitMs: number): Promise<string> {
  const ended: string[] = [];
  let nodes = 0;
  let refused: string | undefined; // the server refused the publish (no permission): no node got it
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") refused ??= String(s.data);
  })();
  const replies = await nc.requestMany(subject, encodeForget(actor), { strategy: RequestStrategy.Timer, maxWait: waitMs });
  for await (const reply of replies) {
    const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { node?: string; ended?: boolean };
    nodes++;
    if (answer.ended && answer.node) ended.push(answer.node);
  }
  if (refused !== undefined) throw new Error(`the server refused ${subject}: ${refused}`);
  const live = ended.length > 0 ? `its live activation on ${ended.join(", ")} ended` : "no node had it live";
  return `${live} (${nodes} node${nodes === 1 ? "" : "s"} answered)`;
}

/** msgpack values JSON has no form for: bytes as base64, big integers as strings (a JSON.stringify replacer). */
export function jsonValue(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString("base64") };
  if (typeof value === "bigint") return value.toString();
  return value;
}
