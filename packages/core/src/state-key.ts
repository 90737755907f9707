import { createHash } from "node:crypto";

// Durable actor state lives in one JetStream KV bucket per cluster, under the
// key `<capability>.<type token>.<id token>` (docs/PROTOCOL.md, "Durable state"). A KV key
// may only hold `A-Z a-z 0-9 _ - / = .`, so each part is written as a token:
//
//   plain:   the string itself, when it is 1 or more of A-Z a-z 0-9 _ -
//            ("cart-1" -> "cart-1"), so common ids stay readable;
//   base64:  "=" + base64url(utf8(s)), unpadded, for any other string up to
//            MAX_ENCODED_TOKEN characters in all ("" -> "=", "a.b" -> "=YS5i");
//   digest:  "==" + base64url(sha256(utf8(s))), for longer ones, so that the
//            whole subject stays far below the server's 4 KiB control line.
//
// "=" is not in the plain alphabet nor in base64url, so the three forms never
// collide, and the encoding is the same in every language.

const PLAIN = /^[A-Za-z0-9_-]+$/;

/** The longest base64 token; longer strings are written as a SHA-256 digest. */
export const MAX_ENCODED_TOKEN = 1024;

/**
 * The KV key of the state of actor (`capability`, `actorType`, `id`): an
 * actor's identity includes the capability it is reached through, so one type
 * under two capabilities is two actors with two states. `capability` is a
 * token already (A-Z a-z 0-9 _ -).
 */
export function stateKey(capability: string, actorType: string, id: string): string {
  return `${capability}.${keyToken(actorType)}.${keyToken(id)}`;
}

/** One part of a state key (see the comment above). */
export function keyToken(s: string): string {
  if (s.length <= MAX_ENCODED_TOKEN && PLAIN.test(s)) return s;
  const bytes = Buffer.from(s, "utf8");
  const b64 = bytes.toString("base64url");
  if (b64.length + 1 <= MAX_ENCODED_TOKEN) return `=${b64}`;
  return `==${createHash("sha256").update(bytes).digest("base64url")}`;
}

/** The default state bucket of a cluster: its prefix, dots as underscores, then `_state` ("mesh" -> "mesh_state"). */
export function stateBucket(prefix: string): string {
  return `${prefix.replaceAll(".", "_")}_state`;
}
