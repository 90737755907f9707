// The cluster section of `npm run bench`: raw JetStream KV against Mesh
// durable actors, in one run on three nats-servers joined into a cluster, the
// state bucket at three replicas. Every client sits on a server that does not
// lead the bucket's stream, so each read and write crosses one route, as it
// does for two clients in three on a real cluster.
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh } from "@mesh/runtime";
import { startNatsCluster } from "@mesh/runtime/testing";
import { Tally } from "./actors.js";
import { leaderGet, rawCas, rawLeaderGet } from "./durable.js";
import type { Record } from "./durable.js";
import { load } from "./load.js";
import type { Measured } from "./load.js";

export interface ClusterFigures {
  rawLeaderGet128: Measured;
  rawGet128: Measured;
  rawCas128: Measured;
  /** A leader get, then a compare-and-set on its revision: the two requests of a confirmed load. */
  rawConfirmed128: Measured;
  calls128: Measured;
  reactivation: Measured;
}

const BUCKET = "bench_cluster_state";
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** Retries `f` while the cluster's JetStream elects its leaders (up to 30 s). */
async function retrying<T>(f: () => Promise<T>): Promise<T> {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export async function cluster(n: (count: number) => number, record: Record): Promise<ClusterFigures> {
  console.log("\nThree nats-servers in one cluster (JetStream, state bucket at 3 replicas)");
  const servers = await startNatsCluster(3, { config: here("../../nats.conf") });
  const conns: NatsConnection[] = [];
  const nodes: Mesh[] = [];
  try {
    for (const url of servers.urls) conns.push(await connect({ servers: url, noAsyncTraces: true }));
    // The raw side writes keys k0…k9999 into the state bucket itself (Mesh's keys hold dots: no overlap),
    // so that both sides talk to one stream leader: a second bucket's leader may sit on another server.
    await retrying(() => conns[0]!.jetstream().views.kv(BUCKET, { history: 1, replicas: 3 }));
    const jsm = await conns[0]!.jetstreamManager();
    const leaderName = await retrying(async () => {
      const name = (await jsm.streams.info(`KV_${BUCKET}`)).cluster?.leader;
      if (!name) throw new Error("the stream has no leader yet");
      return name;
    });
    const leader = conns.findIndex((c) => c.info?.server_name === leaderName);
    const [home, other] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
    console.log(
      `  stream leader: server ${leader < 0 ? "?" : leader}; raw client and node on server ${home}; fresh node on server ${other}`,
    );
    const nc = conns[home]!;
    const homeKv = await nc.jetstream().views.kv(BUCKET, { bindOnly: true });
    const homeJsm = await nc.jetstreamManager();

    const keys = 10_000; // as many as the actors below, also under BENCH_QUICK: a re-activation pass is over all of them
    const k = keys.toLocaleString("en-US");
    const rawCas128 = record("cluster-kv", `update with revision, ${k} keys, 128 in flight`, await rawCas(homeKv, keys, 128, n(50_000)));
    const rawGet128 = record(
      "cluster-kv",
      `get, ${k} keys, 128 in flight`,
      await load((i) => homeKv.get(`k${i % keys}`), { inFlight: 128, total: n(50_000) }),
      "Direct Get: any replica answers",
    );
    const rawLeaderGet128 = record(
      "cluster-kv",
      `get from the stream leader, ${k} keys, 128 in flight`,
      await rawLeaderGet(homeJsm, BUCKET, keys, 128, n(50_000)),
    );
    const rawConfirmed128 = record(
      "cluster-kv",
      `leader get, then CAS on its revision, ${k} keys, 128 in flight`,
      await load(
        async (i) => {
          const m = await leaderGet(homeJsm, BUCKET, `k${i % keys}`);
          await homeKv.update(`k${i % keys}`, m.data, m.seq);
        },
        { inFlight: 128, total: n(50_000) },
      ),
      "a confirmed load's two requests",
    );

    console.log("\nMesh durable actors on the cluster (callers local; every call a commit)");
    const start = (nodeId: string, at: number) =>
      Mesh.start({
        servers: [servers.urls[at]!, ...servers.urls.filter((_, j) => j !== at)],
        nats: { noRandomize: true },
        nodeId,
        actors: [Tally],
        capabilities: ["tally"],
        storage: { bucket: BUCKET, replicas: 3 },
      });
    const mesh = await start("bench-cluster", home);
    nodes.push(mesh);
    const ids = Array.from({ length: keys }, (_, i) => `tally_${i}`);
    const call = (i: number) => mesh.call({ actor: Tally, id: ids[i % ids.length]!, payload: {}, capability: "tally" });
    await load(call, { inFlight: 128, total: ids.length, warmup: 0 }); // activates (and stores) them all
    const calls128 = record(
      "cluster",
      `calls over ${k} actors, local owner, 128 in flight`,
      await load(call, { inFlight: 128, total: n(50_000) }),
    );

    // Re-activation: a fresh node, on another server, reads back the states the first one stored.
    await mesh.stop();
    const fresh = await start("bench-cluster-2", other);
    nodes.push(fresh);
    const reactivation = record(
      "cluster",
      `re-activation of ${k} stored actors, 128 in flight`,
      await load((i) => fresh.call({ actor: Tally, id: ids[i]!, payload: { read: true }, capability: "tally" }), {
        inFlight: 128,
        total: ids.length,
        warmup: 0,
      }),
      "a leader get and a compare-and-set each",
    );
    const after = (await jsm.streams.info(`KV_${BUCKET}`)).cluster?.leader;
    if (after !== leaderName) console.log(`  (the stream leader moved during the run: ${leaderName} → ${after})`);
    return { rawLeaderGet128, rawGet128, rawCas128, rawConfirmed128, calls128, reactivation };
  } finally {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await Promise.allSettled(conns.map((c) => c.close()));
    await servers.stop();
  }
}
