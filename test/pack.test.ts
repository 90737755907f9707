// The packages as others get them: packed, installed into a project outside the monorepo, type-checked and run.
// Nothing comes from a registry or the npm cache, so it passes on a machine whose cache is empty.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";

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

test("npm pack of the three packages, unpacked into a fresh project beside the dependencies they declare, type-checks and makes a call", async (t) => {
  t.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), "mesh-consumer-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await run("npm", ["pack", "--silent", "--pack-destination", dir, "-w", "@mesh/core", "-w", "@mesh/transport", "-w", "@mesh/runtime"], {
    cwd: ROOT,
  });
  const tarballs = readdirSync(dir)
    .filter((f) => f.endsWith(".tgz"))
    .sort();
  t.deepEqual(tarballs, ["mesh-core-0.1.0.tgz", "mesh-runtime-0.1.0.tgz", "mesh-transport-0.1.0.tgz"]);

  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        skipLibCheck: false,
        outDir: "out",
        types: ["node"],
      },
      include: ["index.ts"],
    }),
  );
  writeFileSync(join(dir, "index.ts"), CONSUMER);
  await installOffline(dir, tarballs);

  const check = await run(process.execPath, [TSC, "-p", "."], { cwd: dir }).then(
    () => "",
    (err: { stdout: string }) => err.stdout,
  );
  t.is(check, "", "tsc reports no errors");
  const { stdout } = await run(process.execPath, [join(dir, "out/index.js")], { cwd: dir });
  t.deepEqual(JSON.parse(stdout), { result: "hello consumer from g1", code: "NO_NODES" });
});

/**
 * Installs the packed tarballs into `dir` with no registry and no npm cache:
 * each tarball is unpacked as it is into node_modules, and the third-party
 * packages the tarballs declare (plus @types/node for tsc) are linked from the
 * monorepo's node_modules, which `npm ci` filled. A dependency a package uses
 * but does not declare is missing here, so the run fails as a user's would.
 */
async function installOffline(dir: string, tarballs: string[]): Promise<void> {
  const modules = join(dir, "node_modules");
  const declared = new Set(["@types/node"]);
  for (const tarball of tarballs) {
    const name = tarball.replace(/^mesh-(.*)-\d+\.\d+\.\d+\.tgz$/, "@mesh/$1");
    const target = join(modules, name);
    mkdirSync(target, { recursive: true });
    await run("tar", ["-xzf", join(dir, tarball), "-C", target, "--strip-components=1"]);
    const pkg = JSON.parse(readFileSync(join(target, "package.json"), "utf8")) as { name: string; dependencies?: Record<string, string> };
    if (pkg.name !== name) throw new Error(`${tarball} holds ${pkg.name}, not ${name}`);
    for (const dep of Object.keys(pkg.dependencies ?? {})) if (!dep.startsWith("@mesh/")) declared.add(dep);
  }
  for (const dep of declared) {
    mkdirSync(dirname(join(modules, dep)), { recursive: true });
    symlinkSync(join(ROOT, "node_modules", dep), join(modules, dep), "dir");
  }
}
