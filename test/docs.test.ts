// The docs say what the code does: every error code, the hash vectors and the envelope example,
// and every TypeScript snippet of README.md and docs/*.md typechecks against the built packages.
//
// The snippets' convention (issue 33), the one these tests hold the docs to:
// - Every ```ts or ```typescript block is checked: one module per block, named `<doc>#<n>.ts` (n counts
//   the file's TypeScript blocks from 1), each on its own. Nothing carries over from the blocks before it
//   and no hidden prelude is added: a block imports what it uses, as a reader's file would, and says what
//   it assumes with a short `declare` line (`declare const mesh: Mesh;`). Top-level await is allowed.
// - `./cart.js` is README.md's durable Cart (the block of "A durable actor" that exports `class Cart`),
//   as README.md tells the reader to save it: the docs' running example, imported, never copied.
// - Compiler options: test/tsconfig.json's (strict, NodeNext, ESM, the repo's lib and @types/node), with
//   modules resolved from test/ as the test workspace resolves them, except noUnusedLocals: a snippet may
//   bind a value only to show it (`const { pid, result } = …`).
// - Packages the docs show but the repo does not install (UNINSTALLED) are typed `any`; everything else,
//   @mesh/* first, must resolve.
// - Opt-out, for a block that is deliberately not checkable: ```ts nocheck <why>. Renderers (GitHub,
//   CommonMark) take the first word of the info string as the language, so it still highlights as ts; the
//   reason stays in the Markdown source next to the block. A nocheck block that typechecks fails the test
//   (drop the marker), as does one without a reason.
// One ts.Program holds every snippet; a failure names the doc, its line, the snippet, its first line past the
// imports, and the TS diagnostic.
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import test from "ava";
import ts from "typescript";
import { ErrorCode, shardFor, stateBucket, stateKey, xxh32 } from "@mesh/core";
import { Kind, encodeRequest, encodeResult, writeBatch } from "@mesh/core/internal";

/** Every .ts file under a package's src/. */
function sourceFiles(dir: URL): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => /(^|\/)src\/.*\.ts$/.test(f))
    .map((f) => fileURLToPath(new URL(f, dir)));
}

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), "utf8");

test("every durable-state error code is in state.md", (t) => {
  for (const code of ["STATE_CONFLICT", "STORAGE_UNAVAILABLE", "BAD_STATE", "PAYLOAD_TOO_LARGE"]) {
    t.true(code in ErrorCode, code);
    t.regex(doc("state.md"), new RegExp(`\\| \`${code}\` \\|`), code);
  }
});

test("PROTOCOL.md's state keys and bucket name are what the code computes", (t) => {
  const rows = [...doc("PROTOCOL.md").matchAll(/^\| `([^`]+)` \| `([^`]+)` \| (\(empty\)|`([^`]*)`( × ([\d,]+))?) \| `([^`]+)` \|$/gm)];
  t.is(rows.length, 5);
  for (const [, capability, type, idCell, id = "", , times, key] of rows) {
    const fullId = idCell === "(empty)" ? "" : id.repeat(times ? Number(times.replace(",", "")) : 1);
    t.is(stateKey(capability!, type!, fullId), key!, `${capability} ${type} ${idCell}`);
  }
  t.is(stateBucket("mesh"), "mesh_state");
  t.true(doc("PROTOCOL.md").includes("(`mesh` → `mesh_state`)"));
});

test("every error code is documented in errors.md and PROTOCOL.md", (t) => {
  for (const code of Object.values(ErrorCode)) {
    t.regex(doc("errors.md"), new RegExp(`\\| \`${code}\` \\|`), `${code} in errors.md`);
    t.true(doc("PROTOCOL.md").includes(`\`${code}\``), `${code} in PROTOCOL.md`);
  }
});

test("every code-like name in the docs is an error code the code raises, or a known other name", (t) => {
  const files = [
    ...readdirSync(new URL("../../docs/", import.meta.url))
      .filter((f) => f.endsWith(".md"))
      .map(doc),
    readFileSync(new URL("../../README.md", import.meta.url), "utf8"),
  ];
  // Backticked upper-case names that are not error codes: lifecycle states, NATS's own errors, variables, KV operations.
  const others = new Set([
    "RUNNING",
    "STOPPING",
    "SIGSTOP",
    "SIGCONT",
    "SIGKILL",
    "SIGTERM",
    "PERMISSIONS_VIOLATION",
    "SECURE_CONFIG",
    "PATH",
    "DEL",
    "PUT",
    "TEAM_A",
    "TEAM_B",
    "CHROME_BIN",
  ]);
  const named = new Set(files.flatMap((text) => [...text.matchAll(/`([A-Z][A-Z0-9_]{2,})`/g)].map((m) => m[1]!)));
  for (const name of named)
    t.true(name in ErrorCode || others.has(name) || /^MESH_|^NATS_|^ERR_/.test(name), `${name} is named in the docs but is no error code`);
  // Each code is raised somewhere in the packages' sources (not only declared).
  const sources = sourceFiles(new URL("../../packages/", import.meta.url))
    .filter((f) => !f.endsWith("core/src/errors.ts"))
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");
  for (const code of Object.values(ErrorCode)) t.true(sources.includes(`"${code}"`), `${code} is raised by the code`);
});

test("every subject the code uses, and the ingress header, is in PROTOCOL.md", async (t) => {
  const { Subjects } = await import("@mesh/transport");
  const s = new Subjects("PREFIX");
  const protocol = doc("PROTOCOL.md");
  const subjects = [
    s.status("NODEID"),
    s.node("NODEID"),
    s.heartbeat,
    s.discover,
    s.leave,
    s.forget,
    `${s.inbox("NODEID")}.…`,
    s.ingressCalls.replace(">", "CAPABILITY"),
    s.ingressCasts.replace(">", "CAPABILITY"),
    s.ingressQueue,
  ];
  for (const subject of subjects.map((x) =>
    x.replace("PREFIX", "<prefix>").replace("NODEID", "<nodeId>").replace("CAPABILITY", "<capability>"),
  )) {
    t.true(protocol.includes(`\`${subject}\``), subject);
  }
  t.true(protocol.includes("Content-Type: application/msgpack"));
});

test("PROTOCOL.md's hash vectors are what the code computes", (t) => {
  const rows = [...doc("PROTOCOL.md").matchAll(/^\| (`([^`]*)`|\(empty\)) \| (\d+) \| (\d+) \|$/gm)];
  t.is(rows.length, 4);
  for (const [, , id = "", hash, shard] of rows) {
    t.is(xxh32(id), Number(hash));
    t.is(shardFor(id), Number(shard));
  }
});

test("PROTOCOL.md's request example is the bytes the code writes", (t) => {
  const block = /```\n(99 01 00 .*)\n```/.exec(doc("PROTOCOL.md"))![1]!;
  const hex = block.replace(/"([^"]*)"/g, (_, s: string) => Buffer.from(s).toString("hex")).replace(/\s+/g, "");
  const bytes = encodeRequest({
    kind: Kind.CALL,
    capability: "counter",
    actorType: "Counter",
    id: "counter_1",
    payload: {},
    initArg: undefined,
    timeoutMs: 5000,
    hops: 0,
  });
  t.is(Buffer.from(bytes).toString("hex"), hex);
});

test("PROTOCOL.md's batch examples are the bytes the code writes", (t) => {
  const hex = (text: string) => text.replace(/"([^"]*)"/g, (_, str: string) => Buffer.from(str).toString("hex")).replace(/\s+/g, "");
  const blocks = [...doc("PROTOCOL.md").matchAll(/```\n(c1 01 [^|\n]*)\n```/g)].map((m) => hex(m[1]!));
  t.is(blocks.length, 2);
  const call = encodeRequest({
    kind: Kind.CALL,
    capability: "counter",
    actorType: "Counter",
    id: "c1",
    payload: {},
    initArg: undefined,
    timeoutMs: 5000,
    hops: 0,
  });
  const cast = encodeRequest({
    kind: Kind.CAST,
    capability: "counter",
    actorType: "Counter",
    id: "c2",
    payload: {},
    initArg: undefined,
    timeoutMs: 0,
    hops: 0,
  });
  t.is(Buffer.from(writeBatch([1, 0], [call, cast])).toString("hex"), blocks[0]!);
  t.is(Buffer.from(writeBatch([1], [encodeResult("node-b/Counter/c1#1", { ok: 1 })])).toString("hex"), blocks[1]!);
});

test("security.md names every subject the shipped nats-secure.conf grants, and every role", async (t) => {
  const { SECURE_CONFIG } = await import("@mesh/runtime/testing");
  const config = readFileSync(SECURE_CONFIG, "utf8").replace(/#.*$/gm, "");
  const security = doc("security.md");
  const granted = [...config.matchAll(/"([^"]+)"/g)].map((m) => m[1]!.split(" ")[0]!);
  t.true(granted.length > 20);
  // A subject counts as named when the doc has it whole, or the table row that lists its family (e.g. `$JS.API.STREAM.INFO/CREATE/MSG.GET.KV_mesh_state`).
  const named = (subject: string) => security.includes(`\`${subject}\``) || security.includes(subject.split(".").slice(0, 3).join("."));
  for (const subject of granted) t.true(named(subject), subject);
  for (const user of ["node", "client", "payments", "operator"]) t.regex(security, new RegExp(`\\| \`${user}\` \\|`), user);
  for (const variable of ["MESH_NODE_PASSWORD", "MESH_CLIENT_PASSWORD", "MESH_PAYMENTS_PASSWORD", "MESH_OPERATOR_PASSWORD"]) {
    t.true(config.includes(`$${variable}`) && security.includes(variable), variable);
  }
});

/** A ```ts block of a doc. */
interface Snippet {
  /** The doc, from the repository root: "README.md", "docs/timers.md". */
  doc: string;
  /** Its place among the doc's TypeScript blocks, from 1. */
  n: number;
  /** The doc's line of the block's first code line, from 1. */
  line: number;
  code: string;
  /** The reason after `nocheck`, for an opted-out block; undefined for a checked one. */
  nocheck: string | undefined;
  /** Its virtual file: `<repo>/test/docs-snippets/<doc>#<n>.ts`. */
  file: string;
}

const root = fileURLToPath(new URL("../../", import.meta.url));
const snippetDir = `${root}test/docs-snippets/`;
/** Third-party packages a doc shows that the repository does not depend on: typed `any` when they do not resolve. */
const UNINSTALLED = ["@opentelemetry/sdk-node", "@opentelemetry/exporter-trace-otlp-http"];

/** The fenced ```ts / ```typescript blocks of one Markdown file (indented fences too, as in list items). */
function snippetsOf(doc: string): Snippet[] {
  const lines = readFileSync(root + doc, "utf8").split("\n");
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent = "", fence = "", info = ""] = open;
    const close = new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end]!)) end++;
    const [lang = "", ...rest] = info.trim().split(/\s+/);
    if (lang === "ts" || lang === "typescript") {
      const n = snippets.filter((s) => s.doc === doc).length + 1;
      const code = lines
        .slice(i + 1, end)
        .map((l) => l.replace(new RegExp(`^ {0,${indent.length}}`), ""))
        .join("\n");
      const nocheck = rest[0] === "nocheck" ? rest.slice(1).join(" ") : undefined;
      snippets.push({ doc, n, line: i + 2, code, nocheck, file: `${snippetDir}${doc}#${n}.ts` });
    }
    i = end;
  }
  return snippets;
}

const docs = [
  "README.md",
  ...readdirSync(`${root}docs`)
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];
const snippets = docs.flatMap(snippetsOf);
/** The snippet's first line of its own: not blank, an import or a declaration of what it assumes. */
const firstLine = (s: Snippet) => s.code.split("\n").find((l) => !/^\s*(import\b|declare\b|$)/.test(l)) ?? "";
const where = (s: Snippet) => {
  const first = firstLine(s).trim();
  return `${s.doc} snippet ${s.n} (line ${s.line}: ${first.length > 72 ? `${first.slice(0, 71)}…` : first})`;
};

/** Typechecks every snippet in one program; the diagnostics of each snippet, and those of no snippet. */
function typecheck(): { bySnippet: Map<Snippet, string[]>; others: string[]; ms: number } {
  const started = performance.now();
  const configFile = `${root}test/tsconfig.json`;
  const unreadable = (d: ts.Diagnostic) => {
    throw new Error(`${configFile}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
  };
  const config = ts.getParsedCommandLineOfConfigFile(configFile, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: unreadable })!;
  const options: ts.CompilerOptions = {
    ...config.options,
    noEmit: true,
    noUnusedLocals: false,
    moduleDetection: ts.ModuleDetectionKind.Force,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
  };
  const host = ts.createCompilerHost(options);
  const virtual = new Map(snippets.map((s) => [s.file, s.code]));
  const cart = snippets.find((s) => s.doc === "README.md" && /^export class Cart\b/m.test(s.code));
  const cartFiles = new Set(snippets.map((s) => `${s.file.slice(0, s.file.lastIndexOf("/"))}/cart.ts`));
  if (cart) for (const file of cartFiles) virtual.set(file, cart.code);
  const untyped = UNINSTALLED.filter((m) => !ts.resolveModuleName(m, snippets[0]!.file, options, host).resolvedModule);
  const ambient = `${snippetDir}uninstalled.d.ts`;
  virtual.set(ambient, untyped.map((m) => `declare module "${m}";`).join("\n"));
  const { getSourceFile, fileExists, readFile, directoryExists } = host;
  host.getSourceFile = (name, language, ...rest) => {
    const text = virtual.get(name);
    return text === undefined ? getSourceFile.call(host, name, language, ...rest) : ts.createSourceFile(name, text, language);
  };
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name);
  // Relative imports are only looked up in directories that exist.
  host.directoryExists = (dir) => [...virtual.keys()].some((f) => f.startsWith(`${dir}/`)) || (directoryExists?.call(host, dir) ?? true);

  const program = ts.createProgram({ rootNames: [...snippets.map((s) => s.file), ambient], options, host });
  const byFile = new Map(snippets.map((s) => [s.file, s]));
  const bySnippet = new Map<Snippet, string[]>(snippets.map((s) => [s, []]));
  const others = config.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  if (!cart) others.push("README.md has no snippet that exports class Cart (the module ./cart.js of the other snippets)");
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    const snippet = d.file && byFile.get(d.file.fileName);
    if (snippet && d.start !== undefined) {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start);
      bySnippet.get(snippet)!.push(`${snippet.doc}:${snippet.line + line}: ${text}`);
    } else if (!cartFiles.has(d.file?.fileName ?? "")) {
      // cart.ts is README.md's Cart snippet again: its errors are reported there.
      others.push(d.file ? `${d.file.fileName}: ${text}` : text);
    }
  }
  return { bySnippet, others, ms: performance.now() - started };
}

let checked: ReturnType<typeof typecheck> | undefined;
const diagnostics = () => (checked ??= typecheck());

test("the docs' TypeScript snippets are all found, in one program with no error outside them", (t) => {
  // Every fence line that opens a ts block, counted apart from the extractor.
  const fences = docs.flatMap(
    (doc) => readFileSync(root + doc, "utf8").match(/^[ \t]*(`{3,}|~{3,})[ \t]*(ts|typescript)([ \t].*)?$/gm) ?? [],
  );
  t.is(snippets.length, fences.length);
  t.true(snippets.length >= 10, `only ${snippets.length} snippets found`);
  const { others, ms } = diagnostics();
  t.deepEqual(others, []);
  const shown = new Set(snippets.flatMap((s) => [...s.code.matchAll(/from "([^"]+)"/g)].map((m) => m[1])));
  for (const m of UNINSTALLED) t.true(shown.has(m), `${m} is in UNINSTALLED but no snippet imports it`);
  t.log(
    `${snippets.length} snippets, ${snippets.filter((s) => s.nocheck !== undefined).length} nocheck, typechecked in ${Math.round(ms)} ms`,
  );
});

for (const s of snippets) {
  if (s.nocheck === undefined) {
    test(`${where(s)} typechecks`, (t) => {
      const errors = diagnostics().bySnippet.get(s)!;
      if (errors.length === 0) t.pass();
      else t.fail(`${where(s)} does not typecheck:\n${errors.join("\n")}`);
    });
  } else {
    test(`${where(s)} is nocheck, with a reason, and does not typecheck`, (t) => {
      t.not(s.nocheck, "", `${where(s)}: a nocheck block says why after the marker (\`\`\`ts nocheck <why>)`);
      t.not(diagnostics().bySnippet.get(s)!.length, 0, `${where(s)} typechecks: drop its nocheck`);
    });
  }
}
