// The runtime's layout shows its architecture (packages/runtime/src/README.md): no import
// circle between files, a bottom floor of shared types that imports nothing of the runtime,
// every import between rooms one the README's table allows, and no file past about 400
// lines unless its header says why it reads better whole.
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

/** One row of the rooms table: a room (a folder `x/` or a file), and the rooms and files it may import. */
interface Room {
  room: string;
  floor: boolean;
  mayImport: string[];
}

/**
 * The rows of the "| room | what it owns | may import |" table of a README, its last column read as
 * rooms and files by their paths, "every room", "every room below", "the bottom floor" (the rows whose
 * second column begins so) and "nothing of the runtime"; parentheses are notes. Throws on other words.
 */
function roomsTable(readme: string): Room[] {
  const lines = readme.split("\n");
  const header = lines.findIndex((l) => /^\| room \| what it owns \| may import \|$/.test(l));
  if (header < 0) throw new Error("no rooms table");
  const end = lines.findIndex((l, i) => i > header && !l.startsWith("|"));
  const rows = lines.slice(header + 2, end < 0 ? undefined : end).map((line) => {
    const cells = line.split(" | ").map((c) => c.replace(/^\| ?| ?\|$/g, ""));
    if (cells.length !== 3 || !/^`[^`]+`$/.test(cells[0]!)) throw new Error(`not a room row: ${line}`);
    return { room: cells[0]!.slice(1, -1), floor: cells[1]!.startsWith("the bottom floor"), cell: cells[2]! };
  });
  return rows.map(({ room, floor, cell }, at) => {
    const mayImport: string[] = [];
    let rest = cell.replace(/\([^)]*\)/g, "");
    const take = (pattern: RegExp, rooms: (match: string) => string[]) => {
      rest = rest.replace(pattern, (match) => {
        mayImport.push(...rooms(match));
        return "";
      });
    };
    take(/`[^`]+`/g, (m) => [m.slice(1, -1)]);
    take(/every room below/g, () => rows.slice(at + 1).map((r) => r.room));
    take(/every room/g, () => rows.map((r) => r.room));
    take(/the bottom floor/g, () => rows.filter((r) => r.floor).map((r) => r.room));
    take(/^nothing of the runtime$/, () => []);
    if (rest.replace(/,|\band\b|\s/g, "") !== "") throw new Error(`${room}: cannot read "${rest.trim()}" in "${cell}"`);
    return { room, floor, mayImport };
  });
}

/** The room a file is in: the row naming it, or the folder it is under. */
function roomOf(file: string, rooms: Room[]): string | undefined {
  return rooms.find((r) => r.room === file || (r.room.endsWith("/") && file.startsWith(r.room)))?.room;
}

/** The imports of a graph that its rooms table does not allow, as "from -> to"; and the files no row covers. */
function disallowed(g: Map<string, string[]>, rooms: Room[]): string[] {
  const found = new Set<string>();
  for (const [file, imports] of g) {
    const room = roomOf(file, rooms);
    if (room === undefined) {
      found.add(`${file}: in no room of the table`);
      continue;
    }
    const allowed = rooms.find((r) => r.room === room)!.mayImport;
    for (const target of imports) {
      const ok = roomOf(target, rooms) === room || allowed.some((a) => a === target || (a.endsWith("/") && target.startsWith(a)));
      if (!ok) found.add(`${file} -> ${target}`);
    }
  }
  return [...found];
}

test("every import between the runtime's rooms is one the table in src/README.md allows", (t) => {
  const src = join(packages, "runtime", "src");
  const rooms = roomsTable(readFileSync(join(src, "README.md"), "utf8"));
  const g = graph("runtime");
  // Every room and file the table names is in the tree.
  for (const name of new Set(rooms.flatMap((r) => [r.room, ...r.mayImport])))
    t.true(
      [...g.keys()].some((f) => f === name || (name.endsWith("/") && f.startsWith(name))),
      `${name} is named in the table but is not in src/`,
    );
  t.deepEqual(disallowed(g, rooms), []);
});

test("the rooms check finds an import the table does not allow, and a file in no room", (t) => {
  const rooms = roomsTable(
    [
      "| room | what it owns | may import |",
      "|---|---|---|",
      "| `top.ts` | the top | every room below |",
      "| `a/` | a room | `b/`, `floor.ts` (a note: `c/` is not read) |",
      "| `b/` | another room | `c/one.ts` and the bottom floor |",
      "| `c/` | a third room | nothing of the runtime |",
      "| `floor.ts` | the bottom floor: shared types | nothing of the runtime |",
      "",
      "Prose after the table.",
    ].join("\n"),
  );
  t.deepEqual(
    rooms.map((r) => [r.room, r.mayImport]),
    [
      ["top.ts", ["a/", "b/", "c/", "floor.ts"]],
      ["a/", ["b/", "floor.ts"]],
      ["b/", ["c/one.ts", "floor.ts"]],
      ["c/", []],
      ["floor.ts", []],
    ],
  );
  const g = new Map([
    ["top.ts", ["a/x.ts", "c/two.ts"]],
    ["a/x.ts", ["a/y.ts", "b/z.ts", "floor.ts", "c/one.ts"]],
    ["a/y.ts", []],
    ["b/z.ts", ["c/one.ts", "c/two.ts"]],
    ["c/one.ts", ["top.ts"]],
    ["c/two.ts", []],
    ["floor.ts", []],
    ["stray.ts", []],
  ]);
  t.deepEqual(disallowed(g, rooms), [
    "a/x.ts -> c/one.ts",
    "b/z.ts -> c/two.ts",
    "c/one.ts -> top.ts",
    "stray.ts: in no room of the table",
  ]);
  t.throws(() => roomsTable("| room | what it owns | may import |\n|---|---|---|\n| `a/` | a room | whatever it likes |"), {
    message: /cannot read "whatever it likes"/,
  });
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
