// Mistakes in the configuration of events are loud (docs/events.md): a stream
// that may appear later is logged, not silent, and `mesh node` prints it; dead
// letters are kept by a stream (Mesh's own by default), and a dead-letter
// subject no stream keeps fails the start, or, when its stream goes away
// later, is an error while the dead letter waits.
import { fileURLToPath } from "node:url";
import anyTest from "ava";
import type { TestFn } from "ava";
import { connect } from "nats";
import type { NatsConnection } from "nats";
import { Mesh, MeshError } from "@mesh/runtime";
import type { Logger } from "@mesh/runtime";
import { spawnGuarded } from "@mesh/runtime/testing";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";
import { readStream } from "./helpers/streams.js";

const test = anyTest as TestFn<ClusterContext & { nc: NatsConnection }>;
useNatsServer(test, async (t) => {
  t.context.nc = await connect({ servers: t.context.server.url });
});
test.after.always(async (t) => {
  await t.context.nc?.close();
});

/** A logger that keeps what it is told at error level. */
function errorLog(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const nothing = () => {};
  return {
    errors,
    debug: nothing,
    info: nothing,
    warn: nothing,
    error: (fields, message) => void errors.push(`${message} ${JSON.stringify(fields)}`),
  };
}

/** A class reading `stream`: an event whose data is "bad" throws, every time. */
function reader(stream: string, more: object = {}) {
  return class Reader {
    static actorType = "Reader";
    static capabilities = ["cfg"];
    static events = { stream, key: { token: -1 }, maxDeliveries: 1, backoffMs: 1, ...more };
    seen: string[] = [];
    handleCall() {
      return this.seen;
    }
    handleEvent(e: { text(): string }) {
      if (e.text() === "bad") throw new Error("a bad event");
      this.seen.push(e.text());
    }
  };
}

test.serial(
  "waitForStream: a node starts without its stream, says so at error level, and reads the stream once it is created",
  async (t) => {
    const log = errorLog();
    const node = await startNode(t, {
      nodeId: nodeId("late"),
      prefix: "cfglate",
      actors: [reader("LATER", { waitForStream: true })],
      capabilities: ["cfg"],
      logger: log,
    });
    t.is(log.errors.length, 1);
    t.regex(
      log.errors[0]!,
      /stream "LATER" \(subscribed by cfg\.Reader\.LATER\) does not exist; the streams are: .*Its events are read once it is created \(waitForStream\)/,
    );
    const jsm = await t.context.nc.jetstreamManager();
    await jsm.streams.add({ name: "LATER", subjects: ["later.>"] });
    await t.context.nc.jetstream().publish("later.a", "hello");
    await eventually(
      async () => (await node.call<string[]>({ actor: "Reader", id: "a", capability: "cfg" })).result.length === 1,
      "the event to be handled",
      15_000,
    );
    t.deepEqual((await node.call<string[]>({ actor: "Reader", id: "a", capability: "cfg" })).result, ["hello"]);
    // Without waitForStream the same start fails.
    const refused = await t.throwsAsync(
      Mesh.start({ servers: t.context.server.url, prefix: "cfglate2", actors: [reader("NOPE")], capabilities: ["cfg"] }),
      { instanceOf: MeshError },
    );
    t.regex(refused!.message, /stream "NOPE" .* does not exist; .*Create it before the nodes start, or set waitForStream/);
  },
);

test.serial("mesh node, with no logger, prints that a stream it waits for is missing", async (t) => {
  const cli = fileURLToPath(new URL("../../packages/runtime/lib/operations/cli.js", import.meta.url));
  const fixture = fileURLToPath(new URL("./fixtures/late-stream.js", import.meta.url));
  const child = spawnGuarded(
    process.execPath,
    [cli, "node", "--actors", fixture, "--capabilities", "late", "--node-id", nodeId("cli-late"), "-s", t.context.server.url],
    {
      env: { ...process.env, LATE_STREAM: "NOT_YET" },
    },
  );
  t.teardown(() => void child.kill("SIGTERM"));
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  await eventually(() => out.includes("serving"), "the node to serve", 15_000);
  t.regex(err, /stream "NOT_YET" \(subscribed by late\.late\.NOT_YET\) does not exist/);
});

test.serial("dead letters of a default subject are kept in Mesh's own stream, created at start", async (t) => {
  const jsm = await t.context.nc.jetstreamManager();
  await jsm.streams.add({ name: "DLIN", subjects: ["dlin.>"] });
  const node = await startNode(t, { nodeId: nodeId("dl"), prefix: "cfgdl", actors: [reader("DLIN")], capabilities: ["cfg"] });
  const info = await jsm.streams.info("cfgdl_dead_letters");
  t.deepEqual(info.config.subjects, ["cfgdl.events.dead.>"]);
  await t.context.nc.jetstream().publish("dlin.a", "bad");
  await t.context.nc.jetstream().publish("dlin.a", "good");
  const [dead] = await readStream(t.context.nc, "cfgdl_dead_letters", 1);
  t.is(dead!.subject, "cfgdl.events.dead.Reader");
  t.is(dead!.headers["Mesh-Error-Code"], "ACTOR_CRASHED");
  await eventually(
    async () => (await node.call<string[]>({ actor: "Reader", id: "a", capability: "cfg" })).result.includes("good"),
    "the next event of the id",
  );
});

test.serial("a deadLetter subject no stream keeps fails Mesh.start, naming it", async (t) => {
  const jsm = await t.context.nc.jetstreamManager();
  await jsm.streams.add({ name: "DLOWN", subjects: ["dlown.>"] });
  const err = await t.throwsAsync(
    Mesh.start({
      servers: t.context.server.url,
      prefix: "cfgown",
      actors: [reader("DLOWN", { deadLetter: "nowhere.dead" })],
      capabilities: ["cfg"],
    }),
    { instanceOf: MeshError },
  );
  t.is(err?.code, "BAD_REQUEST");
  t.regex(err!.message, /dead letters of cfg\.Reader\.DLOWN go to "nowhere\.dead", which no stream keeps/);
});

test.serial("a dead letter whose stream was deleted after start is an error: it waits, with its id, until a stream keeps it", async (t) => {
  const jsm = await t.context.nc.jetstreamManager();
  await jsm.streams.add({ name: "DLGONE", subjects: ["dlgone.in.>"] });
  await jsm.streams.add({ name: "DLGONE_DEAD", subjects: ["dlgone.dead"] });
  const log = errorLog();
  const node = await startNode(t, {
    nodeId: nodeId("dlgone"),
    prefix: "cfggone",
    actors: [reader("DLGONE", { deadLetter: "dlgone.dead" })],
    capabilities: ["cfg"],
    logger: log,
  });
  await jsm.streams.delete("DLGONE_DEAD");
  const js = t.context.nc.jetstream();
  await js.publish("dlgone.in.a", "bad");
  await js.publish("dlgone.in.a", "after");
  await eventually(() => log.errors.some((e) => /no stream keeps this dead letter/.test(e)), "the error", 15_000);
  t.deepEqual((await node.call<string[]>({ actor: "Reader", id: "a", capability: "cfg" })).result, [], "the id waits for its dead letter");
  await jsm.streams.add({ name: "DLGONE_DEAD", subjects: ["dlgone.dead"] });
  const [dead] = await readStream(t.context.nc, "DLGONE_DEAD", 1);
  t.is(dead!.headers["Mesh-Stream-Seq"], "1");
  await eventually(
    async () => (await node.call<string[]>({ actor: "Reader", id: "a", capability: "cfg" })).result.includes("after"),
    "the id to go on",
  );
});

test.serial("a subject filter the stream cannot serve fails Mesh.start; one that overlaps its subjects starts", async (t) => {
  const jsm = await t.context.nc.jetstreamManager();
  await jsm.streams.add({ name: "FILTERED", subjects: ["orders.*.placed", "returns.>"] });
  for (const subject of ["order.>", "orders.eu", "orders.*.paid", "returns"]) {
    const err = await t.throwsAsync(
      Mesh.start({ servers: t.context.server.url, prefix: "cfgfilter", actors: [reader("FILTERED", { subject })], capabilities: ["cfg"] }),
      { instanceOf: MeshError },
      subject,
    );
    t.regex(
      err!.message,
      new RegExp(
        `reads "${subject.replaceAll(".", "\\.").replaceAll("*", "\\*")}" from stream "FILTERED", whose subjects \\(orders\\.\\*\\.placed, returns\\.>\\) hold no such message`,
      ),
    );
  }
  // A stream that sources another keeps messages on the other's subjects too: no filter is refused.
  await jsm.streams.add({ name: "SOURCING", subjects: ["local.>"], sources: [{ name: "FILTERED" }] });
  const sourcing = await startNode(t, {
    nodeId: nodeId("src"),
    prefix: "cfgfilter",
    actors: [reader("SOURCING", { subject: "orders.>" })],
    capabilities: ["cfg"],
  });
  await sourcing.stop();
  for (const subject of ["orders.>", "orders.eu.*", "*.eu.placed", "returns.a.b", ">"]) {
    const node = await startNode(t, {
      nodeId: nodeId("filter"),
      prefix: "cfgfilter",
      actors: [reader("FILTERED", { subject })],
      capabilities: ["cfg"],
    });
    await node.stop();
  }
  t.pass();
});

test.serial(
  "when another stream holds some of the default dead-letter subjects, Mesh.start says so instead of starting with dead letters nothing keeps",
  async (t) => {
    const jsm = await t.context.nc.jetstreamManager();
    await jsm.streams.add({ name: "CONFIN", subjects: ["confin.>"] });
    await jsm.streams.add({ name: "THEIRS", subjects: ["cfgconf.events.dead.Other"] });
    const err = await t.throwsAsync(
      Mesh.start({ servers: t.context.server.url, prefix: "cfgconf", actors: [reader("CONFIN")], capabilities: ["cfg"] }),
      { instanceOf: MeshError },
    );
    t.is(err?.code, "BAD_REQUEST");
    t.regex(err!.message, /go to "cfgconf\.events\.dead\.Reader", which no stream keeps, and cfgconf_dead_letters .* could not be created/);
  },
);
