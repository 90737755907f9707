// This package's version, from its package.json (in announcements, the CLI and the tracer's name).
import { createRequire } from "node:module";

/** The version of @mesh/runtime. */
export const version = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
