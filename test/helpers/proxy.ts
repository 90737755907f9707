// A TCP proxy on loopback in front of a nats-server, to cut one client's
// connection and restore it (the server sees the connection close at once),
// to leave it half-open (the server sees it close, the client does not), and,
// when made with a delay, to hold what it forwards each way for that
// long (a slow link: bytes keep their order; unlike a pipe, there is no
// backpressure, and what is held when either side closes is dropped).
import { createServer, connect } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";

export class TcpProxy {
  readonly #sockets = new Set<Socket>();
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  #halfOpen = false;
  #server: Server | undefined;
  port = 0;

  private constructor(
    readonly target: { host: string; port: number },
    /** How long every chunk waits before it is forwarded (0: piped as it comes). */
    readonly delayMs: number,
  ) {}

  /** A proxy to `url` (nats://host:port) on a free loopback port; `delayMs`: a slow link, each way. */
  static async start(url: string, options: { delayMs?: number } = {}): Promise<TcpProxy> {
    const u = new URL(url);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port) }, options.delayMs ?? 0);
    await proxy.#listen(0);
    return proxy;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Closes every connection through the proxy and refuses new ones until `restore`. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /**
   * Leaves every connection half-open, as a link that failed one way: the server sees each close at once, while
   * the client's socket stays open and hears nothing (what it sends is dropped); new connections are refused.
   * `cut` closes the clients' sockets too; `restore` accepts connections again. Piped proxies only (no delay).
   */
  halfOpen(): void {
    this.#halfOpen = true;
    this.#server?.close(); // stops listening; its callback would wait for the clients' sockets
    this.#server = undefined;
    for (const { client, upstream } of this.#pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.on("data", () => {});
      upstream.destroy();
    }
  }

  /** Accepts connections again, on the same port. */
  async restore(): Promise<void> {
    this.#halfOpen = false;
    await this.#listen(this.port);
  }

  async close(): Promise<void> {
    await this.cut();
  }

  async #listen(port: number): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      const pair = { client, upstream };
      this.#pairs.add(pair);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("error", () => {});
        s.on("close", () => {
          this.#sockets.delete(s);
          if (this.#halfOpen && s === upstream) return; // the client's side stays open
          this.#pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        });
      }
      if (this.delayMs === 0) {
        client.pipe(upstream);
        upstream.pipe(client);
      } else {
        this.#delayed(client, upstream);
        this.#delayed(upstream, client);
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Forwards what `from` sends to `to`, each chunk `delayMs` after it came, in order. */
  #delayed(from: Socket, to: Socket): void {
    const queue: { at: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && queue[0]!.at <= now) to.write(queue.shift()!.chunk);
      if (queue.length > 0) timer = setTimeout(pump, Math.max(1, queue[0]!.at - now));
    };
    from.on("data", (chunk: Buffer) => {
      queue.push({ at: performance.now() + this.delayMs, chunk });
      timer ??= setTimeout(pump, this.delayMs);
    });
    from.on("close", () => clearTimeout(timer));
  }
}
