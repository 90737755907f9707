// A NATS cluster whose routes can be cut: three (or more) nats-servers, each
// route from server i to server j through its own TCP proxy, so a test can
// isolate one server from the others (a symmetric partition), cut two servers
// apart while both still reach a third (a bridge), and heal. The servers
// advertise no route address of their own, so they never connect around the
// proxies. Clients connect to the servers directly: a node stays on its
// server's side of a cut.
import { freePort, onFreePorts, startNatsServer } from "@mesh/runtime/testing";
import type { NatsServer, NatsServerOptions } from "@mesh/runtime/testing";
import { connect } from "nats";
import { TcpProxy } from "./proxy.js";

export interface PartitionableCluster {
  readonly servers: readonly NatsServer[];
  readonly urls: readonly string[];
  /** Cuts every route between server `i` and the others. */
  isolate(i: number): Promise<void>;
  /** Cuts the routes between servers `i` and `j` only. */
  cut(i: number, j: number): Promise<void>;
  /** Restores every route. */
  heal(): Promise<void>;
  /** The index of the server that leads stream `stream` now (undefined while none does). */
  leaderOf(stream: string): Promise<number | undefined>;
  /** True when a write to a three-replica KV bucket (made on first use: call it once before a fault) is acknowledged through every server. */
  jetStreamWorks(): Promise<boolean>;
  stop(): Promise<void>;
}

/** `routes.delayMs`: every route is a slow link, each way (proxy.ts). */
export function startPartitionableCluster(
  size: number,
  options: NatsServerOptions = {},
  routes: { delayMs?: number } = {},
): Promise<PartitionableCluster> {
  return onFreePorts(() => startCluster(size, options, routes));
}

async function startCluster(size: number, options: NatsServerOptions, routes: { delayMs?: number }): Promise<PartitionableCluster> {
  const routePorts = await Promise.all(Array.from({ length: size }, freePort));
  // proxies[i][j]: server i's route to server j.
  const proxies: TcpProxy[][] = [];
  const servers: NatsServer[] = [];
  const name = (i: number) => `part-${process.pid}-${i}`;
  const all = () => proxies.flat();
  try {
    for (let i = 0; i < size; i++) {
      proxies.push(await Promise.all(routePorts.map((port) => TcpProxy.start(`nats://127.0.0.1:${port}`, routes))));
    }
    // Settled one by one: when one server cannot start (its port was taken), those that did are stopped below too.
    const started = await Promise.allSettled(
      routePorts.map((port, i) =>
        startNatsServer({
          ...options,
          args: [
            ...(options.args ?? []),
            "--name",
            name(i),
            "--cluster_name",
            `part-${process.pid}`,
            "--cluster",
            `nats://127.0.0.1:${port}`,
            "--routes",
            proxies[i]!.filter((_, j) => j !== i)
              .map((p) => p.url)
              .join(","),
            // No gossip of the real route address: every route goes through its proxy.
            "--cluster_advertise",
            "127.0.0.1:1",
          ],
        }),
      ),
    );
    for (const s of started) if (s.status === "fulfilled") servers.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(all().map((p) => p.close()));
    throw err;
  }
  let probeMade = false;
  const pair = (i: number, j: number) => [proxies[i]![j]!, proxies[j]![i]!];
  const cut = new Set<TcpProxy>();
  const cutPair = async (i: number, j: number) => {
    for (const p of pair(i, j)) cut.add(p);
    await Promise.all(pair(i, j).map((p) => p.cut()));
  };
  return {
    servers,
    urls: servers.map((s) => s.url),
    isolate: async (i) => {
      for (let j = 0; j < size; j++) if (j !== i) await cutPair(i, j);
    },
    cut: cutPair,
    heal: async () => {
      for (const p of cut) await p.restore();
      cut.clear();
    },
    leaderOf: async (stream) => {
      for (const server of servers) {
        const nc = await connect({ servers: server.url, timeout: 1000 }).catch(() => undefined);
        if (nc === undefined) continue;
        try {
          const info = await (await nc.jetstreamManager({ timeout: 1000 })).streams.info(stream);
          const leader = info.cluster?.leader;
          if (leader !== undefined) return servers.findIndex((_, i) => name(i) === leader);
        } catch {
          // this server does not know: ask the next
        } finally {
          await nc.close();
        }
      }
      return undefined;
    },
    jetStreamWorks: async () => {
      for (const server of servers) {
        const nc = await connect({ servers: server.url, timeout: 1000 }).catch(() => undefined);
        if (nc === undefined) return false;
        try {
          const js = nc.jetstream({ timeout: 1000 });
          // Made once (the meta leader creates streams); then a write needs only the bucket's own stream leader and quorum.
          if (!probeMade) await js.views.kv("probe", { replicas: size, history: 1, timeout: 1000 });
          probeMade = true;
          await js.publish("$KV.probe.probe", "1", { timeout: 1000 });
        } catch {
          return false;
        } finally {
          await nc.close();
        }
      }
      return true;
    },
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
      await Promise.all(all().map((p) => p.close()));
    },
  };
}
