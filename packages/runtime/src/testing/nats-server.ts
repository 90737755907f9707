import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";

/** Options of `startNatsServer`. */
export interface NatsServerOptions {
  /** A nats-server config file to start from (the launcher adds port, address and store dir). */
  config?: string;
  /** Extra command-line arguments for nats-server. */
  args?: readonly string[];
  /** How long to wait for the server to listen. @default 10000 */
  startTimeoutMs?: number;
}

/** A running nats-server on 127.0.0.1 and a free port. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The nats-server process id. */
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its temporary files. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Finds the nats-server binary: $NATS_SERVER_BIN, else PATH, else the
 * system directories the Debian package installs to. Throws with install
 * instructions when there is none.
 */
export function natsServerBinary(): string {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) return fromEnv;
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/opt/homebrew/bin"];
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error("nats-server not found on PATH: install it (Debian/Ubuntu: apt-get install nats-server; macOS: brew install nats-server) or set NATS_SERVER_BIN");
}

/**
 * Starts a real nats-server for a test: 127.0.0.1, a free port (the server
 * picks it and writes it to a ports file), JetStream storage in a temporary
 * directory. Always `stop()` it, e.g. in ava's `test.after.always`; servers
 * still running when the process exits are killed.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = natsServerBinary();
  if (!existsSync(bin)) throw new Error(`cannot run ${bin}: no such file`);
  const dir = mkdtempSync(join(tmpdir(), "mesh-nats-"));
  const args = ["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", dir, "-sd", join(dir, "store")];
  if (options.config) args.unshift("-c", resolve(options.config));
  args.push(...(options.args ?? []));
  // The server runs under a small shell that holds a pipe from this process:
  // when this process dies, even by SIGKILL, the pipe closes and the server is stopped.
  const child = spawn("/bin/sh", ["-c", GUARD, "nats-server-guard", bin, ...args], { stdio: ["pipe", "ignore", "pipe"] });
  live.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    if (stderr.length < 10_000) stderr += chunk.toString();
  });
  child.stdin?.on("error", () => {}); // the guard may be gone before we close its pipe
  const exited = new Promise<void>((resolveExit) => {
    child.once("exit", () => resolveExit());
    child.once("error", () => resolveExit());
  });
  void exited.then(() => live.delete(child));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    child.stdin?.end();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const { port, pid } = await waitForPort(dir, child, options.startTimeoutMs ?? 10_000, () => stderr);
    return { url: `nats://127.0.0.1:${port}`, port, pid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// The guard: runs the server in the background, stops it on SIGTERM, and also
// when its standard input (a pipe from the launching process) closes.
const GUARD = `
"$@" & server=$!
trap 'kill -TERM $server 2>/dev/null' TERM INT
exec 3<&0
( read -r _ <&3; kill -TERM $server 2>/dev/null ) &
code=0
while kill -0 $server 2>/dev/null; do wait $server; code=$?; done
exit $code
`;

async function waitForPort(dir: string, child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<{ port: number; pid: number }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}: ${stderr().trim().split("\n").slice(-3).join(" | ")}`);
    const file = readdirSync(dir).find((f) => f.endsWith(".ports"));
    if (file) {
      try {
        const ports = JSON.parse(readFileSync(join(dir, file), "utf8")) as { nats?: string[] };
        const url = ports.nats?.[0];
        // The file is named <executable>_<pid>.ports.
        if (url) return { port: Number(new URL(url).port), pid: Number(/_(\d+)\.ports$/.exec(file)?.[1]) };
      } catch {
        // written but not complete yet: look again
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nats-server did not listen within ${timeoutMs} ms`);
}

/** True when a nats-server binary can be found and run. */
export function hasNatsServer(): boolean {
  try {
    return spawnSync(natsServerBinary(), ["--version"]).status === 0;
  } catch {
    return false;
  }
}
