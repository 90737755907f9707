// `mesh call` and `mesh cast`: one request to an actor through the ingress, its reply printed.
import { classifyNatsError } from "@mesh/transport";
import type { NatsConnection } from "nats";

export async function request(nc: NatsConnection, subject: string, body: object, isCall: boolean, timeoutMs: number): Promise<number> {
  let data: Uint8Array;
  try {
    data = (await nc.request(subject, JSON.stringify(body), { timeout: timeoutMs + 1000 })).data;
  } catch (err) {
    throw new Error(
      classifyNatsError(err) === "no-responders"
        ? `no node serves ${subject} (no Mesh node hosts any capability)`
        : `no answer on ${subject}: ${(err as Error).message}`,
    );
  }
  const reply = JSON.parse(new TextDecoder().decode(data)) as {
    ok: boolean;
    pid?: string;
    result?: unknown;
    error?: { code: string; message: string };
  };
  if (!reply.ok) throw new Error(`${reply.error?.code}: ${reply.error?.message}`);
  process.stdout.write(isCall ? `${JSON.stringify({ pid: reply.pid, result: reply.result })}\n` : "ok\n");
  return 0;
}
