// A foreign client: plain nats.js and msgpack, nothing of Mesh's. It speaks the
// ingress protocol of docs/PROTOCOL.md as any other language would.
import { decode, encode } from "@msgpack/msgpack";
import { headers } from "nats";
import type { NatsConnection } from "nats";

export type IngressReply = { ok: true; pid?: string; result?: unknown } | { ok: false; error: { code: string; message: string } };

/** A JSON request on `mesh.call.<capability>` (or cast); the parsed JSON reply. */
export async function jsonRequest(nc: NatsConnection, subject: string, body: unknown): Promise<IngressReply> {
  const data = typeof body === "string" ? body : JSON.stringify(body);
  const reply = await nc.request(subject, new TextEncoder().encode(data), { timeout: 5000 });
  return JSON.parse(new TextDecoder().decode(reply.data)) as IngressReply;
}

/** The same in msgpack, marked with the Content-Type header; the reply must be msgpack too. */
export async function msgpackRequest(
  nc: NatsConnection,
  subject: string,
  body: unknown,
): Promise<{ reply: IngressReply; contentType: string | undefined }> {
  const h = headers();
  h.set("Content-Type", "application/msgpack");
  const data = body instanceof Uint8Array ? body : encode(body);
  const reply = await nc.request(subject, data, { timeout: 5000, headers: h });
  return { reply: decode(reply.data) as IngressReply, contentType: reply.headers?.get("Content-Type") };
}
