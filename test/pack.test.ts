// The packages as others get them: packed, installed into a project outside the monorepo, type-checked and run.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

const CONSUMER = `import { Mesh, MeshError, type CallContext } from "@mesh/runtime";
import { startNatsServer } from "@mesh/runtime/testing";

export class Greeter {
  handleCall(payload: { name: string }, ctx: CallContext): string {
    return \`hello \${payload.name} from \${ctx.id}\`;
  }
}

const server = await startNatsServer();
const mesh = await Mesh.start({ servers: server.url, actors: [Greeter], capabilities: ["greet"] });
try {
  const { result } = await mesh.call<string>({ actor: Greeter, id: "g1", payload: { name: "consumer" }, capability: "greet" });
  const err = await mesh.call({ actor: Greeter, id: "g1", capability: "none" }).catch((e: unknown) => e);
  console.log(JSON.stringify({ result, code: err instanceof MeshError ? err.code : "?" }));
} finally {
  await mesh.stop();
  await server.stop();
}
`;

test("npm pack of the three packages installs into a fresh project, which type-checks and makes a call", async (t) => {
  t.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), "mesh-consumer-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await run("npm", ["pack", "--silent", "--pack-destination", dir, "-w", "@mesh/core", "-w", "@mesh/transport", "-w", "@mesh/runtime"], { cwd: ROOT });
  const tarballs = readdirSync(dir).filter((f) => f.endsWith(".tgz")).sort();
  t.deepEqual(tarballs, ["mesh-core-0.1.0.tgz", "mesh-runtime-0.1.0.tgz", "mesh-transport-0.1.0.tgz"]);

  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: false, outDir: "out", types: ["node"] }, include: ["index.ts"] }));
  writeFileSync(join(dir, "index.ts"), CONSUMER);
  // Offline: everything else comes from the npm cache that installing the monorepo filled.
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs.map((f) => `./${f}`), "@types/node@20"], { cwd: dir });

  const check = await run(process.execPath, [TSC, "-p", "."], { cwd: dir }).then(
    () => "",
    (err: { stdout: string }) => err.stdout,
  );
  t.is(check, "", "tsc reports no errors");
  const { stdout } = await run(process.execPath, [join(dir, "out/index.js")], { cwd: dir });
  t.deepEqual(JSON.parse(stdout), { result: "hello consumer from g1", code: "NO_NODES" });
});
