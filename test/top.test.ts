// `mesh top` over a running cluster (docs/observability.md "mesh top"): what it
// prints matches what the test did, in at most 80 columns; --json once.
import anyTest from "ava";
import type { TestFn } from "ava";
import { Counter, Slow } from "./helpers/actors.js";
import { meshCli } from "./helpers/cli.js";
import { eventually, nodeId, startNode, useNatsServer } from "./helpers/cluster.js";
import type { ClusterContext } from "./helpers/cluster.js";

const test = anyTest as TestFn<ClusterContext>;
useNatsServer(test);

test.serial(
  "mesh top shows the nodes, live actors per type and the hot actor, redrawn every interval, in 80 columns; --json once",
  async (t) => {
    const prefix = "top";
    const a = await startNode(t, { prefix, nodeId: nodeId("a"), actors: [Counter, Slow], capabilities: ["c"], appVersion: "3" });
    const b = await startNode(t, { prefix, nodeId: nodeId("b"), actors: [Counter, Slow], capabilities: ["c"], appVersion: "3" });
    const caller = await startNode(t, { prefix, nodeId: nodeId("caller") });
    await eventually(() => caller.nodesFor("c").length === 2, "the caller to see both nodes");
    for (let i = 0; i < 20; i++) await caller.call({ actor: Counter, id: `n${i}`, capability: "c" });
    for (let i = 0; i < 3; i++) await caller.call({ actor: Slow, id: `s${i}`, capability: "c", payload: { ms: 0 } });
    // The hot actor keeps being called while top draws its views.
    let calling = true;
    const load = (async () => {
      while (calling) await caller.call({ actor: Counter, id: "hot", capability: "c" });
    })();
    try {
      const url = t.context.server.url;
      await eventually(
        async () => {
          const json = await meshCli("top", "--json", "--wait", "500", "-s", url, "-p", prefix);
          let view: { nodes: { node: string }[]; types: Record<string, number>; hot: { id: string }[] };
          try {
            view = JSON.parse(json.stdout) as typeof view;
          } catch {
            return false; // a node did not answer in time: the next try
          }
          return view.nodes.length === 2 && view.types.Counter === 21 && view.types.Slow === 3 && view.hot[0]?.id === "hot";
        },
        "mesh top --json: both nodes, 21 Counters and 3 Slows, the hot actor first",
        30_000,
      );
      const text = await meshCli("top", "--count", "2", "--interval", "500", "--wait", "1000", "-s", url, "-p", prefix);
      t.is(text.code, 0, text.stderr);
      t.log(text.stdout);
      const views = text.stdout.split(/\n(?=mesh top )/);
      t.is(views.length, 2, "two views");
      for (const line of text.stdout.split("\n")) t.true(line.length <= 80, `${line.length} columns: ${line}`);
      for (const view of views) {
        for (const m of [a, b]) t.regex(view, new RegExp(`^${m.nodeId.slice(0, 17)}`, "m"));
        t.regex(view, /Counter 21/);
        t.regex(view, /Slow 3/);
        t.regex(view, /^Counter\/hot /m);
      }
      t.notRegex(views[0]!, /caller/, "a node that hosts nothing is not listed");
      // The second view has calls per second for every node (the first has no earlier view to compare with).
      const rates = [...views[1]!.matchAll(/^\S+\s+3\s+\S+\s+(\S+)/gm)].map((m) => m[1]);
      t.is(rates.length, 2);
      t.true(
        rates.some((r) => r !== "-" && Number(r!.replace(/,/g, "")) > 0),
        JSON.stringify(rates),
      );
    } finally {
      calling = false;
      await load;
    }
  },
);

test("mesh top shows no control character of an actor id or app version: a terminal escape in an id cannot reach the operator's terminal", async (t) => {
  const { render } = (await import(new URL("../../packages/runtime/lib/operations/cli-top.js", import.meta.url).href)) as {
    render: (view: object, previous: undefined, intervalMs: number) => string;
  };
  const evil = "x\u001b]52;c;aGk=\u0007\u009b31m";
  const node = {
    node: "n1",
    version: "0",
    appVersion: `v\u001b[2J`,
    capabilities: ["c"],
    leaseHeld: true,
    uptimeMs: 1,
    rssBytes: 1,
    eventLoopP99Ms: 1,
  };
  const view = {
    prefix: "p",
    at: Date.now(),
    nodes: [{ ...node, actors: 1, callsServed: 1, queued: 0, errors: 0, types: { Counter: 1 }, top: [], latency: [] }],
    silent: [],
    types: { [`Evil${evil}`]: 1 },
    hot: [{ capability: "c", actorType: "Counter", id: evil, perSecond: 1, errors: 0, p99Ms: 1, node: "n1" }],
  };
  const text = render(view, undefined, 1000);
  t.false(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), JSON.stringify(text));
  t.regex(text, /Counter\/x\?\]52;c;aGk=\?\?31m/);
});
