import { spawnSync } from "node:child_process";
import { startNatsServer } from "@mesh/runtime/testing";
const s = await startNatsServer();
const r = spawnSync(process.execPath, ["--expose-gc", "../lib/memory.js", s.url, "100000"], { encoding: "utf8" });
console.log(r.stdout, r.stderr.slice(0, 500));
await s.stop();
