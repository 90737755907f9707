// The `mesh` CLI as a separate process, for tests that read what it prints.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The built CLI's entry point. */
export const CLI = fileURLToPath(new URL("../../../packages/runtime/lib/operations/cli.js", import.meta.url));

/** Runs the mesh CLI (20 s at most); resolves with its exit code and output. */
export function meshCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
