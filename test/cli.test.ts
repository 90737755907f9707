// The `mesh` command, run as a real binary against a real nats-server.
import { execFile, spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestFn } from "ava";
import anyTest from "ava";
import { spawnGuarded } from "@mesh/runtime/testing";
import { eventually, startNode, useNatsServer } from "./helpers/cluster.js";
import { Alarm, DurableCounter } from "./helpers/actors.js";
import type { ClusterContext } from "./helpers/cluster.js";

const CLI = fileURLToPath(new URL("../../packages/runtime/lib/operations/cli.js", import.meta.url));
const FIXTURE = fileURLToPath(new URL("./fixtures/two-actors.js", import.meta.url));

const test = anyTest as TestFn<ClusterContext & { cliNodes: ChildProcess[] }>;
useNatsServer(test, async (t) => {
  t.context.cliNodes = []; // created here: arrays made in a test are not seen by the after hooks
});
test.after.always((t) => {
  for (const n of t.context.cliNodes ?? []) n.kill("SIGTERM"); // the guard passes it on to the node
});

function mesh(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function meshNode(
  t: { context: ClusterContext & { cliNodes: ChildProcess[] } },
  ...args: string[]
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawnGuarded(process.execPath, [CLI, "node", ...args, "-s", t.context.server.url]);
  t.context.cliNodes.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
    child.once("exit", (code) => reject(new Error(`mesh node exited with ${code}`)));
  });
  return { child, line };
}

test.serial("mesh node serves the actor classes a module exports; mesh call and cast reach them", async (t) => {
  const { server } = t.context;
  const { line } = await meshNode(t, "--actors", FIXTURE, "--capabilities", "counter,echo", "--node-id", "cli-a");
  t.is(line, "mesh: node cli-a serving counter, Echo; capabilities: counter,echo");
  const first = await mesh("call", "counter", "counter", "c1", "-s", server.url);
  t.is(first.code, 0, first.stderr);
  t.deepEqual(JSON.parse(first.stdout), { pid: "cli-a/counter/c1#1", result: { ok: 1 } });
  t.deepEqual(JSON.parse((await mesh("call", "counter", "counter", "c1", "-s", server.url)).stdout).result, { ok: 2 });
  t.deepEqual(JSON.parse((await mesh("call", "echo", "Echo", "e1", '{"hi":[1,2]}', "-s", server.url)).stdout).result, { hi: [1, 2] });
  const cast = await mesh("cast", "counter", "counter", "c1", '{"action":"reset"}', "-s", server.url);
  t.is(cast.stdout, "ok\n");
  t.deepEqual(JSON.parse((await mesh("call", "counter", "counter", "c1", "-s", server.url)).stdout).result, { ok: 1 });
});

test.serial("mesh status shows every node, its capabilities, actors, calls and shards, as text and as JSON", async (t) => {
  const { server } = t.context;
  await meshNode(t, "--actors", FIXTURE, "--capabilities", "counter", "--node-id", "cli-b", "--app-version", "1.4.0");
  await startNode(t, { nodeId: "cli-caller", appVersion: "2.1.0" }); // a producer: it calls, and hosts nothing
  const json = await mesh("status", "--json", "--wait", "2000", "-s", server.url);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as {
    nodes: {
      node: string;
      appVersion: string;
      capabilities: string[];
      actors: number;
      callsServed: number;
      shards: Record<string, number>;
    }[];
    callers: { node: string; appVersion: string }[];
  };
  t.deepEqual(
    report.nodes.map((n) => n.node),
    ["cli-a", "cli-b"],
  );
  t.deepEqual(
    report.callers.map((n) => [n.node, n.appVersion]),
    [["cli-caller", "2.1.0"]],
  );
  t.deepEqual(
    report.nodes.map((n) => n.appVersion),
    ["unversioned", "1.4.0"],
    "each node's app version (mesh node --app-version)",
  );
  const [a, b] = report.nodes as [(typeof report.nodes)[0], (typeof report.nodes)[0]];
  t.deepEqual(a.capabilities, ["counter", "echo"]);
  t.is(a.shards.echo, 4096);
  t.is(a.shards.counter! + b.shards.counter!, 4096);
  t.true(a.callsServed >= 4, `cli-a served ${a.callsServed} calls`);
  t.true(a.actors >= 1, "the Echo actor lives on cli-a, the only node with echo");
  const text = await mesh("status", "--wait", "2000", "-s", server.url);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /2 nodes, 1 caller \(hosting nothing\), prefix "mesh", 4096 shards, rendezvous/);
  t.regex(text.stdout, /\ncallers: cli-caller \(2\.1\.0\)\n/);
  t.notRegex(text.stdout, /^cli-caller /m, "a caller is not in the nodes' table");
  t.regex(text.stdout, /cli-a\s+unversioned(\s+\d+){5}\s+counter, echo/);
  t.regex(text.stdout, /shards of "counter"\n {2}cli-a\s+█+\s+\d+ \(\d+\.\d %\)\n {2}cli-b/);
});

test.serial("mesh node stops gracefully on SIGTERM", async (t) => {
  const { child } = await meshNode(t, "--actors", FIXTURE, "--capabilities", "counter", "--node-id", "cli-c");
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.kill("SIGTERM");
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  t.is(code, 0);
  t.regex(out, /node cli-c stopped/);
});

test("every command has --help", async (t) => {
  for (const command of [[], ["node"], ["status"], ["call"], ["cast"], ["state"], ["reminders"], ["events"], ["actor"]]) {
    const { code, stdout } = await mesh(...command, "--help");
    t.is(code, 0);
    t.regex(stdout, /Usage: mesh/);
  }
});

test("bad commands, bad arguments and an unreachable server give a one-line error and a non-zero exit", async (t) => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^mesh: unknown command "frobnicate"; run "mesh --help"\n$/],
    [["call", "counter"], /^mesh: mesh call needs <capability> <actor> <id>/],
    [["call", "counter", "counter", "x", "{nope"], /^mesh: the payload is not valid JSON/],
    [["status", "--bogus"], /^mesh: Unknown option '--bogus'/],
    [["node"], /^mesh: mesh node needs --actors/],
    [["node", "--actors", "/nonexistent/module.js", "-s", "nats://127.0.0.1:1"], /^mesh: cannot load \/nonexistent\/module\.js/],
    [["status", "-s", "nats://127.0.0.1:1"], /^mesh: cannot connect to nats:\/\/127\.0\.0\.1:1/],
    [["call", "c", "a", "i", "-s", "nats://127.0.0.1:1"], /^mesh: cannot connect/],
    // A password in the URL is not printed.
    [
      ["status", "-s", "nats://operator:s3cretPass@127.0.0.1:1"],
      /^mesh: cannot connect to nats:\/\/\*\*\*@127\.0\.0\.1:1: (?!.*s3cretPass)/,
    ],
    [["status", "-s", "nats://operator:s3/cr@t@127.0.0.1:1"], /^mesh: cannot connect to nats:\/\/\*\*\*@127\.0\.0\.1:1: (?!.*cr@t)/],
    [["state", "peek", "a", "b", "c"], /^mesh: mesh state needs get\|delete <capability> <actorType> <id>/],
    [["state", "get", "a", "b"], /^mesh: mesh state needs get\|delete <capability> <actorType> <id>/],
    [
      ["state", "get", "a", "b", "c", "-s", t.context.server.url, "--bucket", "no_such_bucket"],
      /^mesh: cannot open the state bucket "no_such_bucket"/,
    ],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await mesh(...args);
    t.not(code, 0, args.join(" "));
    t.regex(stderr, message);
    t.is(stderr.trim().split("\n").length, 1, stderr);
  }
  const { code, stderr } = await mesh("call", "nobody", "counter", "x", "-s", t.context.server.url);
  t.is(code, 1);
  t.regex(stderr, /^mesh: NO_NODES: no node has registered the capability "nobody" \(the cluster knows "counter", "echo"\)[^\n]*\n$/);
});

test.serial(
  "mesh state get prints a durable actor's stored state; mesh state delete removes it and ends the live activation",
  async (t) => {
    const url = t.context.server.url;
    const node = await startNode(t as never, { prefix: "clistate", actors: [DurableCounter], capabilities: ["acct"] });
    const add = () =>
      node.call<{ count: number }>({ actor: DurableCounter, id: "cart 1", payload: {}, capability: "acct" }).then((r) => r.result.count);
    await add();
    await add();
    t.is(await add(), 3);
    const got = await mesh("state", "get", "acct", "DurableCounter", "cart 1", "-p", "clistate", "-s", url);
    t.is(got.code, 0, got.stderr);
    t.deepEqual(JSON.parse(got.stdout), { count: 3 });

    const deleted = await mesh("state", "delete", "acct", "DurableCounter", "cart 1", "-p", "clistate", "-s", url);
    t.is(deleted.code, 0, deleted.stderr);
    t.regex(deleted.stdout, new RegExp(`its live activation on ${node.nodeId} ended`));
    t.is(await add(), 1, "the live activation ended before its next turn: a fresh state");

    const gone = await mesh("state", "delete", "acct", "DurableCounter", "cart 1", "-p", "clistate", "-s", url);
    t.regex(gone.stdout, /deleted the state of DurableCounter "cart 1"/);
    const missing = await mesh("state", "get", "acct", "DurableCounter", "nobody", "-p", "clistate", "-s", url);
    t.is(missing.code, 1);
    t.regex(missing.stderr, /^mesh: no state stored for DurableCounter "nobody"/);
  },
);

test.serial("mesh reminders list counts the late ones (no node runs them) and names the oldest", async (t) => {
  const url = t.context.server.url;
  const node = await startNode(t as never, { prefix: "clilate", actors: [Alarm], capabilities: ["a"] });
  await node.call({ actor: Alarm, id: "z", payload: { remind: { name: "ping", afterMs: 60_000 } }, capability: "a" });
  await node.call({ actor: Alarm, id: "y", payload: { remind: { name: "ping", afterMs: 300 } }, capability: "a" });
  await node.stop(); // nobody fires them now
  let out = "";
  await eventually(async () => {
    out = (await mesh("reminders", "list", "-p", "clilate", "-s", url)).stdout;
    return out.startsWith('2 stored, 1 due, 1 late by over 1 s, 0 being retried; the oldest late: Alarm "y" / ping, ');
  }, "the reminder of y to show as late");
  t.regex(out, /the oldest late: Alarm "y" \/ ping, \d+\.\d s late\n/);
});

test.serial("mesh reminders list prints the stored reminders, of every actor or of one", async (t) => {
  const url = t.context.server.url;
  const node = await startNode(t as never, { prefix: "clirem", actors: [Alarm], capabilities: ["a"] });
  const at = Date.now() + 3_600_000;
  await node.call({ actor: Alarm, id: "a1", payload: { remind: { name: "expire", at } }, capability: "a" });
  await node.call({ actor: Alarm, id: "a2", payload: { remind: { name: "poll", afterMs: 7_200_000, everyMs: 60_000 } }, capability: "a" });
  const all = await mesh("reminders", "list", "-p", "clirem", "-s", url);
  t.is(all.code, 0, all.stderr);
  t.regex(all.stdout, new RegExp(`${new Date(at).toISOString()} +once +0  Alarm "a1" / expire`));
  t.regex(all.stdout, /60000 ms +0  Alarm "a2" \/ poll/);
  t.regex(all.stdout, /^2 stored, 0 due, 0 late by over 1 s, 0 being retried\n/);
  const one = await mesh("reminders", "list", "--actor", "Alarm", "--id", "a2", "--json", "-p", "clirem", "-s", url);
  const lines = one.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { id: string; name: string; every: number });
  t.deepEqual(
    lines.map((r) => [r.id, r.name, r.every]),
    [["a2", "poll", 60_000]],
  );
});

test.serial(
  "mesh node stops on SIGTERM however it was started: npm run mesh, or under a shell that does not pass the signal on (as npx runs it); nothing is left running",
  async (t) => {
    t.timeout(60_000);
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const watcher = await startNode(t, { nodeId: `cli-watch-${process.pid}` });
    for (const [how, command, args] of [
      ["npm run mesh", "npm", ["run", "--silent", "mesh", "--", "node"]],
      // npx runs the bin through `sh -c`, which a SIGTERM to npx ends without passing it on.
      ["a shell", "sh", ["-c", `"${process.execPath}" "${CLI}" node "$@"; true`, "sh"]],
    ] as const) {
      const id = `cli-sig-${how.replace(/\W/g, "")}-${process.pid}`;
      const child = spawn(command, [...args, "--actors", FIXTURE, "--capabilities", "sig", "--node-id", id, "-s", t.context.server.url], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
      });
      // Whatever happens, nothing of it stays: the node process is found by its node id.
      t.teardown(() => {
        child.kill("SIGKILL");
        spawnSync("pkill", ["-KILL", "-f", id]);
      });
      // As an operator would: once it says it serves.
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("serving") && resolve());
        child.once("exit", (code) => reject(new Error(`${how} exited with ${code}`)));
      });
      await eventually(() => watcher.nodesFor("sig").length === 1, `${how}: the node to join`);
      child.kill("SIGTERM");
      await eventually(() => watcher.nodesFor("sig").length === 0, `${how}: the node to leave after SIGTERM`, 10_000);
      await eventually(() => spawnSync("pgrep", ["-f", id]).status === 1, `${how}: no process of the node left`, 10_000);
      t.pass(how);
    }
  },
);
