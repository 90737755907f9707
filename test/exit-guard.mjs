// Loaded by ava in every test worker (the `require` of ava's config), before
// the test file. A worker whose tests are over must then exit by itself; ava
// waits for ever for one that does not (a leaked ref'd timer or socket), and
// prints nothing meanwhile. So:
//  - MESH_TEST_EXIT_GRACE_MS (default 30000; 0: off) after the file's tests
//    (and hooks) are over, a worker still running prints what holds it and
//    exits 1: ava then fails the run with "<file> exited with a non-zero exit
//    code: 1". The timer is unref'd: a worker that exits by itself never sees it.
//  - With MESH_TEST_WATCHDOG_DIR set (run-tests.mjs sets it), the worker keeps a
//    file <pid>.json there, { file, pid, started, testsDone }, removed when it
//    exits, so that the watchdog can name the test files still running.
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import test, { registerCompletionHandler } from "ava";

const file = relative(process.cwd(), fileURLToPath(test.meta.file));
const graceMs = Number(process.env.MESH_TEST_EXIT_GRACE_MS ?? 30_000);
const dir = process.env.MESH_TEST_WATCHDOG_DIR;
const marker = dir ? join(dir, `${process.pid}.json`) : undefined;
const state = { file, pid: process.pid, started: Date.now(), testsDone: undefined };
/** What every worker holds before its test file loads (its stdio, ava's channel): not worth naming. */
const baseline = process.getActiveResourcesInfo();

/** The resources that hold the process now, less those of the baseline. */
function holding() {
  const left = [...baseline];
  return process.getActiveResourcesInfo().filter((r) => {
    const i = left.indexOf(r);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

function mark() {
  if (!marker) return;
  try {
    // Written whole, then renamed: the watchdog never reads half a file.
    writeFileSync(`${marker}.tmp`, JSON.stringify(state));
    renameSync(`${marker}.tmp`, marker);
  } catch {
    // the watchdog's directory is gone: it has finished
  }
}

mark();
process.on("exit", () => {
  if (marker) rmSync(marker, { force: true });
});

registerCompletionHandler(() => {
  state.testsDone = Date.now();
  mark();
  if (!(graceMs > 0)) return;
  setTimeout(() => {
    process.stderr.write(
      `\n✘ ${file}: its tests were over ${graceMs} ms ago, but its worker has not exited; ` +
        `what holds it: ${holding().join(", ") || `nothing Node.js names besides ${process.getActiveResourcesInfo().join(", ")}`}. ` +
        `Something the tests started is still ref'd (a timer, a socket, a child process): stop it in an after.always hook.\n`,
    );
    process.exit(1);
  }, graceMs).unref();
});
