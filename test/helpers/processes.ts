// Mesh nodes as separate OS processes, always cleaned up.
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { MeshOptions } from "@mesh/runtime";
import { spawnGuarded } from "@mesh/runtime/testing";
import type { FloodOptions, FloodResult } from "./flood-main.js";

const MAIN = fileURLToPath(new URL("./node-main.js", import.meta.url));
const FLOOD_MAIN = {
  node: fileURLToPath(new URL("./flood-main.js", import.meta.url)),
  foreign: fileURLToPath(new URL("./foreign-flood-main.js", import.meta.url)),
};

/** A node process: its id, and how it ended. */
export class NodeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = "";
  /** The node's own pid (the child is the guard around it). */
  pid = 0;

  constructor(
    readonly nodeId: string,
    options: MeshOptions,
  ) {
    // Guarded: the node process ends with this test process, however that ends.
    this.child = spawnGuarded(process.execPath, [MAIN], { env: { ...process.env, MESH_NODE: JSON.stringify({ ...options, nodeId }) } });
    this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    all.add(this);
  }

  /** Resolves when the node has started, rejects if the process exits first. */
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.child.stdout!.on("data", (chunk: Buffer) => {
        const ready = /ready \S+ (\d+)/.exec(chunk.toString());
        if (ready) {
          this.pid = Number(ready[1]);
          resolve();
        }
      });
      void this.exited.then(({ code }) => reject(new Error(`${this.nodeId} exited (${code}) before it was ready: ${this.stderr}`)));
    });
  }

  /** Graceful: SIGTERM (the guard passes it on), then waits for the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }

  /** A crash: SIGKILL to the node itself, then waits for the exit. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      // Not ready yet (no pid: process.kill(0) would signal this whole process group): the guard, whose pipe then stops the node.
      if (this.pid > 0) process.kill(this.pid, "SIGKILL");
      else this.child.kill("SIGKILL");
    }
    await this.exited;
  }
}

const all = new Set<NodeProcess>();

/** Starts a node process and waits until it is ready. */
export async function startNodeProcess(nodeId: string, options: MeshOptions): Promise<NodeProcess> {
  const node = new NodeProcess(nodeId, options);
  await node.ready();
  return node;
}

/** Flooding processes still running. */
const floods = new Set<ChildProcess>();

/** Runs a flooding process to its end, a node (flood-main.ts) or a foreign client (foreign-flood-main.ts): what it saw. */
export function runFloodProcess(options: FloodOptions, flooder: "node" | "foreign" = "node"): Promise<FloodResult> {
  const child = spawnGuarded(process.execPath, [FLOOD_MAIN[flooder]], { env: { ...process.env, MESH_FLOOD: JSON.stringify(options) } });
  floods.add(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  return new Promise((resolve, reject) =>
    // "close", not "exit": by then everything it wrote has been read.
    child.once("close", (code) => {
      floods.delete(child);
      const line = /^result (.*)$/m.exec(out);
      if (line) resolve(JSON.parse(line[1]!) as FloodResult);
      else reject(new Error(`the flooder exited (${code}) without a result: ${err}`));
    }),
  );
}

/** Kills every node process still running: for `test.after.always`. */
export async function killAllNodeProcesses(): Promise<void> {
  for (const child of floods) child.kill("SIGKILL");
  await Promise.all([...all].map((n) => n.kill()));
}
