import { execFileSync, spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { freePort, onFreePorts } from "./ports.js";

/** Options of `startNatsServer` (and of `startSecureNatsServer` and `startNatsCluster`). */
export interface NatsServerOptions {
  /** A nats-server config file to start from (the launcher adds port, address and store dir). @default none: the server's defaults */
  config?: string;
  /** JetStream (durable actors, reminders), its store in a temporary directory removed by `stop()`. @default true */
  jetstream?: boolean;
  /** Extra command-line arguments for nats-server (e.g. `["--max_payload", "2MB"]`). @default [] */
  args?: readonly string[];
  /** How long to wait for the server to listen. @default 10000 */
  startTimeoutMs?: number;
  /** Environment variables for the server (a config's `$VARIABLES`, such as passwords), added to this process's. */
  env?: Record<string, string>;
  /** Serve TLS only, with a certificate for 127.0.0.1 signed by a CA made for this server (`server.caFile`). Needs `openssl`. */
  tls?: boolean;
}

/** The production configuration Mesh ships (nats-secure.conf, docs/security.md): roles node, client and payments. */
export const SECURE_CONFIG = fileURLToPath(new URL("../../nats-secure.conf", import.meta.url));

/** A user of a server started from SECURE_CONFIG, as nats.js options take it. */
export interface Credentials {
  user: string;
  pass: string;
  /** The reply prefix this role may read (client, payments, operator: `_INBOX_<user>`); undefined for nodes, which reply under `<prefix>.inbox.<nodeId>`. */
  inboxPrefix?: string;
}

/** A server started from SECURE_CONFIG, with the credentials generated for it. */
export interface SecureNatsServer {
  server: NatsServer;
  /** The "node" role: for Mesh nodes (`Mesh.start({ nats: node })`) and operators' tools. */
  node: Credentials;
  /** The "client" role: ingress calls and casts, every capability but payments. */
  client: Credentials;
  /** A client that may also use the payments capability. */
  payments: Credentials;
  /** The "operator" role: the `mesh` CLI (status, state, call, cast) and `nats micro`. */
  operator: Credentials;
}

/** A running nats-server on 127.0.0.1 and a free port. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The nats-server process id (changes with `restart`). */
  readonly pid: number;
  /** In a cluster: the route URL other servers connect to. */
  readonly routeUrl: string | undefined;
  /** With `tls`: the CA certificate that signed the server's (for nats.js `tls: { caFile }`). */
  readonly caFile: string | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its temporary files. */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL, as a crash would; `restart` brings it back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (after `kill`, or stopping it first if it runs). */
  restart(): Promise<void>;
}

/** Several nats-servers joined by routes into one NATS cluster. */
export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Every server's client URL, for a client's `servers` option. */
  readonly urls: string[];
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
  throw new Error(
    "nats-server not found on PATH: install it (Debian/Ubuntu: apt-get install nats-server; macOS: brew install nats-server) or set NATS_SERVER_BIN",
  );
}

/** True when a nats-server binary can be found and run. */
export function hasNatsServer(): boolean {
  try {
    return spawnSync(natsServerBinary(), ["--version"]).status === 0;
  } catch {
    return false;
  }
}

/**
 * Starts a real nats-server for a test: 127.0.0.1, a free port (the server
 * picks it and writes it to a ports file), JetStream on (unless
 * `jetstream: false`) with its store in a temporary directory. Always `stop()` it, e.g. in ava's `test.after.always`; a server
 * whose launching process dies, even by SIGKILL, stops too.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const server = new LaunchedServer(natsServerBinary(), options);
  await server.start("-1");
  return server;
}

/**
 * Starts a real nats-server from SECURE_CONFIG, the configuration Mesh ships
 * for production, with a fresh random password for each role (never stored
 * anywhere but this process and the server's environment). Use it to test
 * your own permissions and roles.
 */
export async function startSecureNatsServer(options: NatsServerOptions = {}): Promise<SecureNatsServer> {
  // Letters and digits, starting with a letter: the server reads the variable as a config value.
  const password = () => `p${randomBytes(16).toString("hex")}`;
  const node = { user: "node", pass: password() };
  const client = { user: "client", pass: password(), inboxPrefix: "_INBOX_client" };
  const payments = { user: "payments", pass: password(), inboxPrefix: "_INBOX_payments" };
  const operator = { user: "operator", pass: password(), inboxPrefix: "_INBOX_operator" };
  const server = await startNatsServer({
    config: SECURE_CONFIG,
    ...options,
    env: {
      ...options.env,
      MESH_NODE_PASSWORD: node.pass,
      MESH_CLIENT_PASSWORD: client.pass,
      MESH_PAYMENTS_PASSWORD: payments.pass,
      MESH_OPERATOR_PASSWORD: operator.pass,
    },
  });
  return { server, node, client, payments, operator };
}

/**
 * Starts `size` nats-servers joined by routes (cluster name "mesh-test"), each
 * on its own free client and route port. Clients given every URL fail over
 * from one to another when a server dies.
 */
export function startNatsCluster(size: number, options: NatsServerOptions = {}): Promise<NatsCluster> {
  return onFreePorts(() => startCluster(size, options));
}

async function startCluster(size: number, options: NatsServerOptions): Promise<NatsCluster> {
  const bin = natsServerBinary();
  // Route ports are chosen up front so that every server can list every route
  // (a server ignores the route to itself): JetStream in a cluster requires it.
  const routePorts = await Promise.all(Array.from({ length: size }, freePort));
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const servers = routePorts.map(
    (port, i) =>
      new LaunchedServer(bin, {
        ...options,
        args: [
          ...(options.args ?? []),
          "--name",
          `mesh-test-${process.pid}-${i}`,
          "--cluster_name",
          "mesh-test",
          "--cluster",
          `nats://127.0.0.1:${port}`,
          "--routes",
          routes,
        ],
      }),
  );
  try {
    await Promise.all(servers.map((s) => s.start("-1")));
    return { servers, urls: servers.map((s) => s.url), stop: async () => void (await Promise.all(servers.map((s) => s.stop()))) };
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
}

// The guard: runs the command in the background, stops it on SIGTERM, and also
// when its standard input (a pipe from the launching process) closes. The
// watcher that waits on the pipe is stopped with the command. The guard exits
// with the command's code: it waits first, since a command that ended at once
// may be reaped already (kill -0 then finds nothing: looking first lost the
// code about one time in four), waits again while the command still runs (a
// trapped signal interrupts wait), and once more when it is gone, for the code
// of one that ended just after an interrupted wait (127: already collected).
const GUARD = `
"$@" & child=$!
trap 'kill -TERM $child 2>/dev/null' TERM INT
exec 3<&0
( read -r _ <&3; kill -TERM $child 2>/dev/null ) & watcher=$!
while :; do wait $child; code=$?; kill -0 $child 2>/dev/null || break; done
wait $child 2>/dev/null; last=$?; [ $last -eq 127 ] || code=$last
kill $watcher 2>/dev/null
exit $code
`;

/**
 * Spawns `command` so that it never outlives this process: it runs under a
 * small shell that stops it (SIGTERM) when this process's pipe to it closes,
 * which happens however this process ends, SIGKILL included. Signals sent to
 * the returned child reach the command. For test fixtures: servers, node
 * processes.
 */
export function spawnGuarded(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; stdout?: "pipe" | "ignore" | "inherit" } = {},
): ChildProcess {
  const child = spawn("/bin/sh", ["-c", GUARD, "guard", command, ...args], {
    stdio: ["pipe", options.stdout ?? "pipe", "pipe"],
    ...(options.env ? { env: options.env } : {}),
  });
  child.stdin?.on("error", () => {}); // the guard may be gone before the pipe closes
  return child;
}

class LaunchedServer implements NatsServer {
  readonly #dir = mkdtempSync(join(tmpdir(), "mesh-nats-"));
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #port = 0;
  #pid = 0;
  #routeUrl: string | undefined;
  #caFile: string | undefined;
  #tls: { cert: string; key: string; ca: string } | undefined;
  #stderr = "";

  constructor(
    private readonly bin: string,
    private readonly options: NatsServerOptions,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }
  get port(): number {
    return this.#port;
  }
  get pid(): number {
    return this.#pid;
  }
  get routeUrl(): string | undefined {
    return this.#routeUrl;
  }
  get caFile(): string | undefined {
    return this.#caFile;
  }

  /** Spawns the server under its guard and waits until it listens on `port` ("-1": any free one). */
  async start(port: string): Promise<void> {
    if (!existsSync(this.bin)) throw new Error(`cannot run ${this.bin}: no such file`);
    for (const f of readdirSync(this.#dir)) if (f.endsWith(".ports")) rmSync(join(this.#dir, f));
    const args = ["-a", "127.0.0.1", "-p", port, "--ports_file_dir", this.#dir, "-sd", join(this.#dir, "store")];
    if (this.options.config) args.unshift("-c", resolve(this.options.config));
    if (this.options.jetstream !== false) args.push("--jetstream");
    if (this.options.tls) {
      const { cert, key, ca } = (this.#tls ??= makeCertificates(this.#dir));
      this.#caFile = ca;
      args.push("--tls", "--tlscert", cert, "--tlskey", key);
    }
    args.push(...(this.options.args ?? []));
    const child = spawnGuarded(this.bin, args, {
      stdout: "ignore",
      ...(this.options.env ? { env: { ...process.env, ...this.options.env } } : {}),
    });
    this.#child = child;
    live.add(child);
    this.#stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      if (this.#stderr.length < 10_000) this.#stderr += chunk.toString();
    });
    this.#exited = new Promise<void>((resolveExit) => {
      child.once("exit", () => resolveExit());
      child.once("error", () => resolveExit());
    });
    void this.#exited.then(() => live.delete(child));
    try {
      await this.#waitForPorts(child);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.#terminate("SIGTERM");
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async kill(): Promise<void> {
    if (this.#pid && this.#running()) {
      try {
        process.kill(this.#pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await this.#exited;
    this.#child?.stdin?.end();
  }

  async restart(): Promise<void> {
    await this.#terminate("SIGTERM");
    await this.start(String(this.#port));
  }

  #running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  async #terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (child && this.#running()) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
    child?.stdin?.end();
  }

  async #waitForPorts(child: ChildProcess): Promise<void> {
    const timeoutMs = this.options.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null)
        throw new Error(`nats-server exited with code ${child.exitCode}: ${this.#stderr.trim().split("\n").slice(-3).join(" | ")}`);
      const file = readdirSync(this.#dir).find((f) => f.endsWith(".ports"));
      if (file) {
        try {
          const ports = JSON.parse(readFileSync(join(this.#dir, file), "utf8")) as { nats?: string[]; cluster?: string[] };
          const url = ports.nats?.[0];
          if (url) {
            this.#port = Number(new URL(url).port);
            this.#pid = Number(/_(\d+)\.ports$/.exec(file)?.[1]); // the file is <executable>_<pid>.ports
            this.#routeUrl = ports.cluster?.[0] ?? this.#routeUrl;
            return;
          }
        } catch {
          // written but not complete yet: look again
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`nats-server did not listen within ${timeoutMs} ms`);
  }
}

/**
 * A CA and a server certificate for 127.0.0.1 and localhost, signed by it,
 * made with openssl in `dir` (valid one day; the keys never leave `dir`).
 */
function makeCertificates(dir: string): { cert: string; key: string; ca: string } {
  const at = (f: string) => join(dir, f);
  const openssl = (...args: string[]) => {
    try {
      execFileSync("openssl", args, { stdio: "pipe" });
    } catch (err) {
      const e = err as { code?: string; stderr?: Buffer };
      throw new Error(
        e.code === "ENOENT"
          ? "openssl not found: install it (Debian/Ubuntu: apt-get install openssl) to start a TLS server"
          : `openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? String(err)}`,
      );
    }
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", at("ca.key"), "-out", at("ca.pem"), "-days", "1", "-subj", "/CN=mesh-test-ca");
  openssl("req", ...ec, "-keyout", at("server.key"), "-out", at("server.csr"), "-subj", "/CN=127.0.0.1");
  writeFileSync(at("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-out",
    at("server.pem"),
    "-days",
    "1",
    "-extfile",
    at("san.ext"),
  );
  return { cert: at("server.pem"), key: at("server.key"), ca: at("ca.pem") };
}
