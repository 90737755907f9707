import { MeshError } from "./errors.js";

// A subject token: no dots, wildcards or white space, not empty, and short
// enough to keep subjects readable. Node ids, capabilities and the prefix's
// parts are all subject tokens.
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** True when `value` can stand as one token of a NATS subject in Mesh. */
export function isToken(value: unknown): value is string {
  return typeof value === "string" && TOKEN.test(value);
}

/** Throws BAD_REQUEST naming `what` unless `value` is a valid token. */
export function checkToken(value: unknown, what: string): string {
  if (!isToken(value)) {
    throw new MeshError("BAD_REQUEST", `${what} must be 1-128 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The longest actor id, in UTF-16 code units. */
export const MAX_ID_LENGTH = 1024;

/**
 * Throws BAD_REQUEST unless `id` is a well-formed string (no lone surrogate,
 * which UTF-8 cannot carry: two such ids would name one actor) of at most
 * MAX_ID_LENGTH code units.
 */
export function checkId(id: unknown): string {
  if (typeof id !== "string") throw new MeshError("BAD_REQUEST", `id must be a string, got ${id === null ? "null" : typeof id}`);
  if (id.length > MAX_ID_LENGTH) throw new MeshError("BAD_REQUEST", `id is ${id.length} characters long; the limit is ${MAX_ID_LENGTH}`);
  if (!id.isWellFormed()) throw new MeshError("BAD_REQUEST", `id must be a well-formed string; ${JSON.stringify(id)} has a lone surrogate`);
  return id;
}
