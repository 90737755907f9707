// The docs say what the code does: every error code, the hash vectors and the envelope example.
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import test from "ava";
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
