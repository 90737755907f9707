// The runtime's layout shows its architecture (packages/runtime/src/README.md): no import
// circle between files, a bottom floor of shared types that imports nothing of the runtime,
// and no file past about 400 lines unless its header says why it reads better whole.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";

const packages = fileURLToPath(new URL("../../packages/", import.meta.url));

/** Every .ts file under each package's src/, with the relative imports it makes (as files under the same src/). */
function graph(pkg: string): Map<string, string[]> {
  const root = join(packages, pkg, "src");
  const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
  return new Map(
    files.map((f) => [
      f,
      [...readFileSync(join(root, f), "utf8").matchAll(/from "(\.{1,2}\/[^"]+)\.js"/g)].map(
        (m) => normalize(join(dirname(f), m[1]!)) + ".ts",
      ),
    ]),
  );
}

/** The import circles of a graph, each as the files it goes through. */
function circles(g: Map<string, string[]>): string[] {
  const found: string[] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (file: string) => {
    const at = path.indexOf(file);
    if (at >= 0) return void found.push([...path.slice(at), file].join(" -> "));
    if (done.has(file)) return;
    path.push(file);
    for (const next of g.get(file) ?? []) visit(next);
    path.pop();
    done.add(file);
  };
  for (const file of g.keys()) visit(file);
  return found;
}

test("no import circle in any package", (t) => {
  for (const pkg of ["core", "transport", "runtime"]) t.deepEqual(circles(graph(pkg)), [], pkg);
  // The check finds one when there is one.
  t.deepEqual(
    circles(
      new Map([
        ["a.ts", ["b.ts"]],
        ["b.ts", ["a.ts"]],
      ]),
    ),
    ["a.ts -> b.ts -> a.ts"],
  );
});

test("the bottom floor, types.ts, imports nothing of the runtime, and the rooms are folders by idea", (t) => {
  const g = graph("runtime");
  t.deepEqual(g.get("types.ts"), []);
  for (const room of ["actors", "calls", "state", "timers", "events", "operations", "testing"])
    t.true(
      [...g.keys()].some((f) => f.startsWith(`${room}/`)),
      room,
    );
  t.true(readFileSync(join(packages, "runtime", "src", "README.md"), "utf8").includes("imports point down this"));
});

test("no source file is past about 400 lines unless its header says why", (t) => {
  for (const pkg of ["core", "transport", "runtime"]) {
    const root = join(packages, pkg, "src");
    for (const f of (readdirSync(root, { recursive: true }) as string[]).filter((x) => x.endsWith(".ts"))) {
      const text = readFileSync(join(root, f), "utf8");
      const lines = text.split("\n").length;
      t.true(lines <= 420 || /reads better whole/.test(text.slice(0, 2000)), `${pkg}/src/${f}: ${lines} lines`);
    }
  }
});
