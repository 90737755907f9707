#!/usr/bin/env node
// Runs ava (with this script's arguments) under a watchdog, so that the test
// command cannot hang. ava's output is passed through as it comes, and its
// exit code is this script's. But when ava prints nothing for
// MESH_TEST_SILENCE_MS (default 4 minutes), or runs for longer than
// MESH_TEST_TOTAL_MS (default 14 minutes), the watchdog names the test files
// whose workers are still running (from the files exit-guard.mjs keeps in
// MESH_TEST_WATCHDOG_DIR: whether their tests are over or still running), asks
// ava to stop (SIGINT: ava lists the tests it was waiting for), kills ava's
// process group (ava, its workers and what they started) and exits 124.
// SIGINT and SIGTERM are passed on to ava; a second one kills its group at
// once. Whatever ends ava, what is left of its process group is killed.
//
// The first line of defence is in the workers themselves (exit-guard.mjs): a
// worker still running MESH_TEST_EXIT_GRACE_MS after its tests fails its file
// within seconds, naming what holds it. This watchdog catches the rest: a
// worker that hangs in a way ava's own timeout does not see, or ava itself.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";

/** A duration from the environment, in ms. */
function ms(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`run-tests: ${name} must be a number of milliseconds > 0, got "${raw}"\n`);
    process.exit(2);
  }
  return value;
}

const SILENCE_MS = ms("MESH_TEST_SILENCE_MS", 4 * 60_000);
const TOTAL_MS = ms("MESH_TEST_TOTAL_MS", 14 * 60_000);
/** After SIGINT, how long ava has to stop before its process group is killed. */
const STOP_GRACE_MS = 5000;
/** The watchdog's own exit code when it stopped ava (as timeout(1)). */
const TIMED_OUT = 124;

const require = createRequire(import.meta.url);
const avaCli = join(dirname(require.resolve("ava")), "cli.mjs");
const markers = mkdtempSync(join(tmpdir(), "mesh-tests-"));
const say = (line) => process.stderr.write(`run-tests: ${line}\n`);

// ava leads a process group of its own (detached), so that it, its workers and
// whatever they started can be killed together.
const ava = spawn(process.execPath, [avaCli, ...process.argv.slice(2)], {
  detached: true,
  stdio: ["ignore", "pipe", "pipe"],
  env: {
    ...process.env,
    MESH_TEST_WATCHDOG_DIR: markers,
    // ava's colours when this script writes to a terminal, as if ava did.
    ...(process.stdout.isTTY && process.env.FORCE_COLOR === undefined ? { FORCE_COLOR: "1" } : {}),
  },
});

const started = Date.now();
let lastOutput = started;
for (const [from, to] of [
  [ava.stdout, process.stdout],
  [ava.stderr, process.stderr],
]) {
  from.on("data", (chunk) => {
    lastOutput = Date.now();
    to.write(chunk);
  });
}
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {}); // a reader that went away

function killGroup(signal) {
  try {
    process.kill(-ava.pid, signal);
  } catch {
    // nothing left in the group
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

/** The test files whose workers are running, from exit-guard.mjs's files. */
function runningFiles() {
  const now = Date.now();
  const lines = [];
  for (const name of readdirSync(markers)) {
    if (!name.endsWith(".json")) continue;
    let m;
    try {
      m = JSON.parse(readFileSync(join(markers, name), "utf8"));
    } catch {
      continue;
    }
    if (!alive(m.pid)) continue;
    const what = m.testsDone
      ? `its tests were over ${Math.round((now - m.testsDone) / 1000)} s ago, but its worker (pid ${m.pid}) has not exited`
      : `its tests are still running (worker pid ${m.pid}, started ${Math.round((now - m.started) / 1000)} s ago)`;
    lines.push(`  ${m.file}: ${what}`);
  }
  return lines;
}

let stopping = false;
let exitCode;

/** Stops ava: SIGINT (ava reports what it waited for), then, after STOP_GRACE_MS, SIGKILL to its group. */
function stop(code, why) {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  if (why) {
    say(why);
    const files = runningFiles();
    if (files.length > 0) say(`test files still running:\n${files.join("\n")}`);
    else say("no test file is running (none has started, or all have exited): ava itself is stuck");
  }
  try {
    process.kill(ava.pid, "SIGINT");
  } catch {
    // ava is gone already
  }
  setTimeout(() => killGroup("SIGKILL"), STOP_GRACE_MS).unref();
}

const watchdog = setInterval(
  () => {
    const now = Date.now();
    if (now - started > TOTAL_MS)
      stop(TIMED_OUT, `ava has run for ${((now - started) / 1000).toFixed(1)} s, over MESH_TEST_TOTAL_MS=${TOTAL_MS}: stopping it`);
    else if (now - lastOutput > SILENCE_MS)
      stop(
        TIMED_OUT,
        `ava has printed nothing for ${((now - lastOutput) / 1000).toFixed(1)} s, over MESH_TEST_SILENCE_MS=${SILENCE_MS}: stopping it`,
      );
  },
  Math.min(1000, SILENCE_MS / 4, TOTAL_MS / 4),
);

for (const [signal, number] of [
  ["SIGINT", 2],
  ["SIGTERM", 15],
]) {
  process.on(signal, () => {
    if (stopping) return killGroup("SIGKILL"); // a second one: at once
    stop(128 + number);
  });
}

let finishing = false;
function finish(code, signal) {
  if (finishing) return;
  finishing = true;
  rmSync(markers, { recursive: true, force: true });
  if (signal && exitCode === undefined) say(`ava was killed by ${signal}`);
  process.exit(exitCode ?? code ?? 1);
}

ava.on("exit", (code, signal) => {
  clearInterval(watchdog);
  // Whatever ava left behind in its group (a worker, a server a test started) goes with it.
  killGroup("SIGKILL");
  // "close" follows once ava's output has all come through; a pipe held open outside the group must not hold this up.
  setTimeout(() => finish(code, signal), 2000).unref();
});
ava.on("close", finish);
ava.on("error", (err) => {
  say(`cannot run ava: ${err.message}`);
  rmSync(markers, { recursive: true, force: true });
  process.exit(1);
});
