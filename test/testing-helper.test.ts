// The nats-server launcher that @mesh/runtime/testing exports for users' own tests.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { connect } from "nats";
import { spawnGuarded, startNatsServer } from "@mesh/runtime/testing";
import { NATS_CONF, eventually } from "./helpers/cluster.js";

test.serial("startNatsServer runs a real server on a free port from a config file, and stop() ends it", async (t) => {
  const [one, two] = await Promise.all([startNatsServer({ config: NATS_CONF }), startNatsServer()]);
  t.teardown(() => Promise.all([one.stop(), two.stop()]));
  t.not(one.port, two.port);
  t.regex(one.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  const nc = await connect({ servers: one.url });
  t.is(nc.info?.max_payload, 1024 * 1024);
  t.true(nc.info?.jetstream === true, "nats.conf turns JetStream on");
  await nc.close();
  await one.stop();
  t.throws(() => process.kill(one.pid, 0), { code: "ESRCH" }, "the server process is gone");
  await t.throwsAsync(connect({ servers: one.url, reconnect: false, timeout: 1000 }));
});

test.serial("a missing nats-server binary is a clear error, not a hang", async (t) => {
  const saved = process.env.NATS_SERVER_BIN;
  process.env.NATS_SERVER_BIN = "/nonexistent/nats-server";
  t.teardown(() => {
    if (saved === undefined) delete process.env.NATS_SERVER_BIN;
    else process.env.NATS_SERVER_BIN = saved;
  });
  await t.throwsAsync(startNatsServer({ startTimeoutMs: 5000 }), { message: /cannot run \/nonexistent\/nats-server: no such file/ });
});

test.serial("a bad config file is reported with the server's own words", async (t) => {
  await t.throwsAsync(startNatsServer({ config: "/nonexistent/nats.conf" }), { message: /nats-server exited with code 1: .*no such file/ });
});

test.serial("a guarded command that ends at once passes on its exit code, every time", async (t) => {
  // The guard once looked for the command before waiting for it, and lost the code of one that had ended (about 1 in 4).
  const codes = [];
  for (let i = 0; i < 50; i++) {
    const child = spawnGuarded("/bin/sh", ["-c", "exit 3"]);
    codes.push(await new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code))));
  }
  t.deepEqual(
    codes,
    Array.from({ length: 50 }, () => 3),
  );
});

test.serial("a server outlives no test process: killing the launching process with SIGKILL stops its server", async (t) => {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./helpers/server-owner.js", import.meta.url))], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.teardown(() => child.kill("SIGKILL"));
  const pid = await new Promise<number>((resolve) =>
    child.stdout!.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
  );
  t.notThrows(() => process.kill(pid, 0), "the server runs");
  child.kill("SIGKILL");
  await eventually(() => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, "the orphaned server to stop");
});
