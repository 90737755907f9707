// The test command cannot hang: run-tests.mjs (the watchdog around ava) and
// exit-guard.mjs (in every worker), run against a tiny ava project
// (fixtures/watchdog/) whose leaks.test.mjs passes but leaves a ref'd interval
// running, so that its worker never exits by itself and ava would wait for
// ever. Every run has small limits, so it ends by itself even if this process
// dies.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import test from "ava";
import type { ExecutionContext } from "ava";

const RUN_TESTS = fileURLToPath(new URL("../run-tests.mjs", import.meta.url));
const PROJECT = fileURLToPath(new URL("../fixtures/watchdog/", import.meta.url));

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (or signal) and how long the run took. */
  ended: Promise<{ code: number | null; signal: string | null; ms: number }>;
}

function runTests(files: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [RUN_TESTS, ...files], {
    cwd: PROJECT,
    stdio: ["ignore", "pipe", "pipe"],
    // No colours to match through; the limits of each case, nothing inherited from a watchdog around this file.
    env: {
      ...process.env,
      FORCE_COLOR: "0",
      MESH_TEST_WATCHDOG_DIR: "",
      MESH_TEST_EXIT_GRACE_MS: "0",
      MESH_TEST_SILENCE_MS: "20000",
      MESH_TEST_TOTAL_MS: "30000",
      ...env,
    },
  });
  const started = Date.now();
  const run: Run = {
    child,
    stdout: "",
    stderr: "",
    ended: new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal, ms: Date.now() - started }))),
  };
  child.stdout!.on("data", (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (run.stderr += chunk.toString()));
  return run;
}

/** The pid the leaking test file's worker printed. */
function leakingWorker(run: Run): number {
  const pid = /leaks\.test\.mjs worker pid (\d+)/.exec(run.stdout + run.stderr)?.[1];
  if (pid === undefined) throw new Error(`the leaking worker printed no pid:\n${run.stdout}\n${run.stderr}`);
  return Number(pid);
}

/** Whether `pid` runs (a zombie waiting for its parent to reap it does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Polls until `condition` holds, or fails after `ms`. */
async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("a worker still running after its tests fails its file within the grace, naming what holds it (exit-guard.mjs)", async (t) => {
  const run = runTests(["passes.test.mjs", "leaks.test.mjs"], { MESH_TEST_EXIT_GRACE_MS: "1000" });
  const { code, ms } = await run.ended;
  t.log(`ended with ${code} after ${ms} ms`);
  t.is(code, 1, run.stdout + run.stderr);
  t.true(ms < 30_000);
  t.regex(run.stdout, /✘ leaks\.test\.mjs exited with a non-zero exit code: 1/);
  t.regex(run.stderr, /leaks\.test\.mjs: its tests were over 1000 ms ago, but its worker has not exited; what holds it: Timeout\./);
  t.notRegex(run.stdout + run.stderr, /passes\.test\.mjs (exited|: its tests)/);
  // ava's closing lines come through as ava wrote them.
  t.regex(run.stdout, /\n {2}2 tests passed\n/);
});

/**
 * Runs the watchdog with limit `name` = `limitMs`, again with twice the limit
 * while it trips before the leaking test has passed (on a loaded machine, ava
 * and its worker can take longer than the limit to start), 4 times at most.
 */
async function tripAfterTheTests(
  t: ExecutionContext,
  files: string[],
  name: string,
  limitMs: number,
): Promise<{ run: Run; limit: number; code: number | null; ms: number }> {
  for (let limit = limitMs, tries = 1; ; limit *= 2, tries++) {
    const run = runTests(files, { [name]: String(limit) });
    const { code, ms } = await run.ended;
    t.log(`${name}=${limit}: ended with ${code} after ${ms} ms`);
    const tooEarly = /no test file is running|leaks\.test\.mjs: its tests are still running/.test(run.stderr);
    if (!tooEarly || tries === 4) return { run, limit, code, ms };
  }
}

// The two whose limit counts from the start run alone (serial, before the others): ava and its worker start sooner.
test.serial(
  "when ava prints nothing for MESH_TEST_SILENCE_MS, the watchdog names the file whose worker has not exited, kills ava's group and exits 124",
  async (t) => {
    const { run, limit, code, ms } = await tripAfterTheTests(t, ["passes.test.mjs", "leaks.test.mjs"], "MESH_TEST_SILENCE_MS", 3000);
    t.is(code, 124, run.stdout + run.stderr);
    t.true(ms < limit + 12_000);
    t.regex(run.stderr, new RegExp(`run-tests: ava has printed nothing for \\d+\\.\\d s, over MESH_TEST_SILENCE_MS=${limit}: stopping it`));
    t.regex(
      run.stderr,
      /run-tests: test files still running:\n {2}leaks\.test\.mjs: its tests were over \d+ s ago, but its worker \(pid \d+\) has not exited\n/,
    );
    t.notRegex(run.stderr, /passes\.test\.mjs:/);
    t.regex(run.stdout, /\n {2}2 tests passed\n/);
    const pid = leakingWorker(run);
    await until(() => !running(pid), `the leaking worker ${pid} to be gone`);
  },
);

test.serial("past MESH_TEST_TOTAL_MS the watchdog stops ava, whatever it prints", async (t) => {
  const { run, limit, code, ms } = await tripAfterTheTests(t, ["leaks.test.mjs"], "MESH_TEST_TOTAL_MS", 5000);
  t.is(code, 124, run.stdout + run.stderr);
  t.true(ms < limit + 12_000);
  t.regex(run.stderr, new RegExp(`run-tests: ava has run for \\d+\\.\\d s, over MESH_TEST_TOTAL_MS=${limit}: stopping it`));
  t.regex(run.stderr, /leaks\.test\.mjs: its tests were over/);
});

test("SIGTERM to the watchdog stops ava and its workers, and it exits 143", async (t) => {
  const run = runTests(["leaks.test.mjs"], {});
  // ava passes the worker's own output on separately from its ✔ line: wait for both.
  await until(
    () => /✔ passes, and leaves an interval running/.test(run.stdout) && /leaks\.test\.mjs worker pid \d+/.test(run.stdout + run.stderr),
    "the test to pass and its worker to print its pid",
    60_000,
  );
  const pid = leakingWorker(run);
  t.true(running(pid));
  run.child.kill("SIGTERM");
  const { code } = await run.ended;
  t.is(code, 143, run.stdout + run.stderr);
  await until(() => !running(pid), `the leaking worker ${pid} to be gone`);
});

test("otherwise ava's output and exit code pass through", async (t) => {
  const [passes, fails] = [runTests(["passes.test.mjs"], {}), runTests(["fails.test.mjs"], {})];
  const [passed, failed] = await Promise.all([passes.ended, fails.ended]);
  t.is(passed.code, 0, passes.stdout + passes.stderr);
  t.regex(passes.stdout, /✔ passes\n[\s\S]*\n {2}1 test passed\n$/);
  t.is(passes.stderr, "");
  t.is(failed.code, 1, fails.stdout + fails.stderr);
  t.regex(fails.stdout, /\n {2}1 test failed\n$/);
});
