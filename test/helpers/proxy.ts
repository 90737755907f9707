// A TCP proxy on loopback in front of a nats-server, to cut one client's
// connection and restore it (the server sees the connection close at once).
import { createServer, connect } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";

export class TcpProxy {
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  private constructor(readonly target: { host: string; port: number }) {}

  /** A proxy to `url` (nats://host:port) on a free loopback port. */
  static async start(url: string): Promise<TcpProxy> {
    const u = new URL(url);
    const proxy = new TcpProxy({ host: u.hostname, port: Number(u.port) });
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

  /** Accepts connections again, on the same port. */
  async restore(): Promise<void> {
    await this.#listen(this.port);
  }

  async close(): Promise<void> {
    await this.cut();
  }

  async #listen(port: number): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("error", () => {});
        s.on("close", () => {
          this.#sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
  }
}
