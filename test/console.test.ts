/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// `mesh console` in a real browser: headless Chromium (the Debian package, or
// CHROME_BIN) driven over its DevTools protocol with puppeteer-core. The page
// loads with no console errors, shows the nodes and a shard map, the hot actor
// of the test in its top list, an actor's live view and stored state, and
// follows a node joining and leaving. It saves a screenshot
// (test/build/console.png; docs/console.png is one of them).
import { execFileSync, spawn } from "node:child_process";
import { connect } from "node:net";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import anyTest from "ava";
import type { TestFn } from "ava";
import puppeteer from "puppeteer-core";
import type { Browser } from "puppeteer-core";
import { Counter, DurableCounter } from "./helpers/actors.js";
import { CLI } from "./helpers/cli.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

/** The Chromium to drive: CHROME_BIN, else `chromium` on PATH (quickstart installs it). */
function chromium(): string {
  if (process.env.CHROME_BIN) return process.env.CHROME_BIN;
  try {
    return execFileSync("sh", ["-c", "command -v chromium || command -v chromium-browser"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("no Chromium on PATH: install the chromium package (./quickstart test does where it can), or set CHROME_BIN");
  }
}

/** Starts `mesh console --port 0` and resolves with its URL. */
function startConsole(url: string, prefix: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, "console", "--port", "0", "-s", url, "-p", prefix, "--wait", "250"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /(http:\/\/\S+\/)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.once("exit", (code) => reject(new Error(`mesh console exited (${code}): ${err}`)));
  });
}

/** A raw HTTP/1.1 request to the console (any request line, any Host): its status line. */
function raw(consoleUrl: string, request: string): Promise<string> {
  const { port } = new URL(consoleUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => socket.end(request));
    let out = "";
    socket.on("data", (d: Buffer) => (out += d.toString()));
    socket.on("close", () => resolve(out.split("\r\n")[0] ?? ""));
    socket.on("error", reject);
  });
}

test.serial("the console's server answers only to its own address, GET only, and a malformed request does not stop it", async (t) => {
  const served = await startConsole(t.context.server.url, "consolehttp");
  t.teardown(() => void served.child.kill("SIGTERM"));
  const { host } = new URL(served.url);
  t.regex(
    await raw(served.url, `GET / HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n`),
    / 421 /,
    "another Host (DNS rebinding)",
  );
  t.regex(await raw(served.url, `GET //%zz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`), / [45]\d\d /);
  t.regex(await raw(served.url, `POST /api/cluster HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`), / 405 /);
  const page = await fetch(served.url);
  t.is(page.status, 200, "still serving");
  t.regex(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  t.is(served.child.exitCode, null);
});

test.serial(
  "the console page in headless Chromium: nodes, a shard map, the hot actor, an actor's state, a node joining and leaving, no console errors",
  async (t) => {
    t.timeout(120_000);
    const prefix = "console";
    const url = t.context.server.url;
    const options = { prefix, actors: [Counter, DurableCounter], capabilities: ["c"] };
    const a = await startNode(t, { ...options, nodeId: nodeId("a") });
    const b = await startNode(t, { ...options, nodeId: nodeId("b") });
    const caller = await startNode(t, { prefix, nodeId: nodeId("caller") });
    await eventually(() => caller.nodesFor("c").length === 2, "the caller to see both nodes");
    for (let i = 0; i < 3; i++) await caller.call({ actor: DurableCounter, id: "d", capability: "c", payload: {} });
    let calling = true;
    const load = (async () => {
      while (calling) await caller.call({ actor: Counter, id: "hot", capability: "c" }).catch(() => {}); // a rebalance may fail one
    })();
    t.teardown(async () => {
      calling = false;
      await load;
    });
    const served = await startConsole(url, prefix);
    t.teardown(() => void served.child.kill("SIGTERM"));
    let browser: Browser | undefined;
    try {
      browser = await puppeteer.launch({
        executablePath: chromium(),
        headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
      });
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 1000 });
      const errors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(served.url);
      const rowsOf = (table: string) => page.$$eval(`#${table} tbody tr`, (trs) => trs.map((tr) => tr.getAttribute("data-key")));
      await page.waitForFunction(() => document.querySelectorAll("#nodes tbody tr").length === 2, { timeout: 15_000 });
      t.deepEqual((await rowsOf("nodes")).sort(), [a.nodeId, b.nodeId].sort());
      // The shard map: one picture for capability c, its legend names both nodes, 4,096 shards between them.
      const legend = await page.$eval('#shards [data-capability="c"] .legend', (e) => e.textContent ?? "");
      for (const m of [a, b]) t.regex(legend, new RegExp(m.nodeId));
      t.true(await page.$eval('#shards [data-capability="c"] canvas', (c) => (c as HTMLCanvasElement).width === 64));
      const shardCounts = [...legend.matchAll(/ (\d+)/g)].map((m) => Number(m[1]));
      t.is(
        shardCounts.reduce((x, y) => x + y, 0),
        4096,
        legend,
      );
      // The hot actor of the test tops the list.
      await page.waitForFunction(() => document.querySelector("#hot tbody tr")?.getAttribute("data-key") === "Counter/hot", {
        timeout: 20_000,
      });
      // Calls per second per node, once two readings are in.
      await page.waitForFunction(
        () => [...document.querySelectorAll("#nodes tbody tr")].some((tr) => Number(tr.children[3]?.textContent?.replace(/,/g, "")) > 0),
        {
          timeout: 15_000,
        },
      );
      // One actor: its live view and its stored state.
      await page.type('#search input[name="capability"]', "c");
      await page.type('#search input[name="type"]', "DurableCounter");
      await page.type('#search input[name="id"]', "d");
      await page.click("#search button");
      await page.waitForFunction(() => (document.querySelector("#actor")?.textContent ?? "").includes('"stored"'), { timeout: 10_000 });
      const found = JSON.parse(await page.$eval("#actor", (e) => e.textContent ?? "")) as {
        live: { node: string; activations: { queue: number }[] }[];
        stored: { found: boolean; state: { count: number } };
      };
      t.is(found.live.length, 1, "live on one node");
      t.like(found.stored, { found: true, state: { count: 3 } });
      // A node joins, then leaves: the page follows.
      const c = await startNode(t, { ...options, nodeId: nodeId("c") });
      await page.waitForFunction(
        (id) => [...document.querySelectorAll("#nodes tbody tr")].some((tr) => tr.getAttribute("data-key") === id),
        { timeout: 15_000 },
        c.nodeId,
      );
      await c.stop();
      await page.waitForFunction(() => document.querySelectorAll("#nodes tbody tr").length === 2, { timeout: 15_000 });
      await page.screenshot({ path: fileURLToPath(new URL("./console.png", import.meta.url)), fullPage: true });
      t.deepEqual(errors, [], "no console errors");
    } finally {
      calling = false;
      await load;
      await browser?.close();
      served.child.kill("SIGTERM");
    }
  },
);
