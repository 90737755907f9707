// The page `mesh console` serves (cli-console.ts): one HTML document with its
// style and script inline, nothing fetched from elsewhere, nothing to build.
// It polls /api/cluster every second and keeps the last 60 readings for its
// charts; the search box asks /api/actor. Every value is put in the page as
// text (textContent), never as HTML.
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mesh console</title>
<link rel="icon" href="data:,">
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 16px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; padding: 12px; }
  section { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 10px 12px; overflow-x: auto; }
  section.wide { grid-column: span 2; }
  section h2 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: #556; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: right; padding: 2px 6px; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  th { color: #667; font-weight: 600; border-bottom: 1px solid #dde1e8; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: middle; }
  .legend span { margin-right: 12px; }
  canvas { image-rendering: pixelated; border: 1px solid #dde1e8; }
  svg { width: 100%; height: 90px; background: #fbfcfd; border: 1px solid #eef0f3; }
  .chart { margin-bottom: 8px; }
  .chart b { font-weight: 600; font-size: 12px; color: #445; }
  form { display: flex; gap: 6px; margin-bottom: 8px; }
  input { font: inherit; padding: 3px 6px; border: 1px solid #c9ced8; border-radius: 4px; width: 110px; }
  pre { background: #fbfcfd; border: 1px solid #eef0f3; padding: 6px; max-height: 260px; overflow: auto; margin: 0; }
  .lapsed { color: #b3261e; font-weight: 600; }
  .muted { color: #889; }
</style>
</head>
<body>
<header><h1>Mesh console</h1><span id="summary">connecting…</span><span id="updated" class="muted"></span></header>
<main>
  <section class="wide"><h2>Nodes</h2><table id="nodes"><thead><tr><th>node</th><th>app</th><th>actors</th><th>calls/s</th><th>errors/s</th><th>p99 ms</th><th>queued</th><th>RSS MiB</th><th>loop p99</th><th>lease</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Shard ownership</h2><div id="shards"></div></section>
  <section><h2>Per node</h2><div id="node-charts"></div></section>
  <section><h2>Per actor type</h2><table id="types"><thead><tr><th>type</th><th>live</th><th>calls/s</th><th>errors</th><th>p99 ms</th></tr></thead><tbody></tbody></table><div id="type-charts"></div></section>
  <section><h2>Hottest actors, last minute</h2><table id="hot"><thead><tr><th>actor</th><th>node</th><th>calls/s</th><th>errors</th><th>p99 ms</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Find an actor</h2>
    <form id="search"><input name="capability" placeholder="capability" required><input name="type" placeholder="actor type" required><input name="id" placeholder="id" required><button>Show</button></form>
    <pre id="actor">Live view on every node, and its stored state.</pre></section>
  <section><h2>Events and reminders</h2><table id="events"><thead><tr><th>subscription</th><th>node</th><th>lag</th><th>handled</th><th>dead letters</th></tr></thead><tbody></tbody></table>
    <table id="reminders"><thead><tr><th>reminder due next</th><th>node</th><th>in s</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
"use strict";
const HISTORY = 60;
const COLORS = ["#3b6fd8", "#e0803a", "#2f9e6e", "#c2417c", "#7a5cc7", "#b09a1f", "#3aa3b8", "#8a5a44", "#5f6b7a", "#d04a4a"];
const colorOf = new Map();
const history = { nodes: new Map(), types: new Map() };
const $ = (id) => document.getElementById(id);
function color(node) {
  if (!colorOf.has(node)) colorOf.set(node, COLORS[colorOf.size % COLORS.length]);
  return colorOf.get(node);
}
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function fmt(n, digits) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
}
function rows(table, items, cells, key) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...items.map((item) => {
    const tr = el("tr", undefined, key ? { "data-key": key(item) } : {});
    for (const c of cells(item)) tr.append(c instanceof Node ? c : el("td", c));
    return tr;
  }));
}
function push(map, key, value) {
  const series = map.get(key) || [];
  series.push(value === null || value === undefined ? 0 : value);
  if (series.length > HISTORY) series.shift();
  map.set(key, series);
}
function chart(title, series) {
  const box = el("div", undefined, { class: "chart" });
  box.append(el("b", title));
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", "0 0 " + HISTORY + " 100");
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(1e-9, ...series.flatMap(([, s]) => s));
  for (const [name, s] of series) {
    const line = document.createElementNS(svgNs, "polyline");
    line.setAttribute("points", s.map((v, i) => (HISTORY - s.length + i) + "," + (98 - (v / max) * 94)).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color(name));
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  box.append(svg, el("div", "max " + fmt(max, 2), { class: "muted" }));
  return box;
}
function legend(names, labels) {
  const div = el("div", undefined, { class: "legend" });
  names.forEach((n, i) => {
    const span = el("span");
    span.append(el("i", undefined, { class: "swatch", style: "background:" + color(n) }), document.createTextNode(labels ? labels[i] : n));
    div.append(span);
  });
  return div;
}
function shardMap(capability, map) {
  const box = el("div", undefined, { "data-capability": capability });
  box.append(el("b", capability + " (" + map.shards + " shards)"));
  const side = Math.ceil(Math.sqrt(map.shards));
  const canvas = el("canvas", undefined, { width: String(side), height: String(side), style: "width:" + side * 3 + "px;height:" + side * 3 + "px;display:block;margin:4px 0" });
  const ctx = canvas.getContext("2d");
  map.owners.forEach((owner, shard) => {
    ctx.fillStyle = color(map.nodes[owner]);
    ctx.fillRect(shard % side, Math.floor(shard / side), 1, 1);
  });
  const counts = map.nodes.map((_, i) => map.owners.filter((o) => o === i).length);
  box.append(canvas, legend(map.nodes, map.nodes.map((n, i) => n + " " + counts[i])));
  return box;
}
function render(c) {
  $("summary").textContent = "prefix " + c.prefix + " · " + c.nodes.length + " node" + (c.nodes.length === 1 ? "" : "s") + (c.silent.length ? " · no answer from " + c.silent.join(", ") : "");
  $("updated").textContent = "updated " + new Date(c.at).toLocaleTimeString();
  rows("nodes", c.nodes, (n) => [
    el("td", n.node, { style: "color:" + color(n.node) }), n.appVersion, fmt(n.actors), fmt(n.callsPerSecond), fmt(n.errorsPerSecond, 1), fmt(n.p99Ms, 2),
    fmt(n.queued), fmt(n.rssBytes / 1048576), fmt(n.eventLoopP99Ms, 1), n.leaseHeld ? el("td", "held") : el("td", "lapsed", { class: "lapsed" }),
  ], (n) => n.node);
  $("shards").replaceChildren(...Object.entries(c.shards).filter(([, m]) => m).map(([cap, m]) => shardMap(cap, m)));
  const seen = new Set(c.nodes.map((n) => n.node));
  for (const n of c.nodes) push(history.nodes, n.node, { calls: n.callsPerSecond, errors: n.errorsPerSecond, p99: n.p99Ms });
  for (const key of [...history.nodes.keys()]) if (!seen.has(key)) history.nodes.delete(key);
  const of = (what) => [...history.nodes].map(([name, s]) => [name, s.map((p) => (p && p[what]) || 0)]);
  $("node-charts").replaceChildren(legend([...history.nodes.keys()]), chart("calls/s", of("calls")), chart("errors/s", of("errors")), chart("p99 latency, ms", of("p99")));
  const types = Object.keys(Object.assign({}, c.types, c.rates)).sort();
  rows("types", types, (t) => [t, fmt(c.types[t] || 0), fmt(c.rates[t] && c.rates[t].perSecond), fmt(c.rates[t] && c.rates[t].errors), fmt(c.rates[t] && c.rates[t].p99Ms, 2)], (t) => t);
  for (const t of types) push(history.types, t, c.rates[t] ? c.rates[t].perSecond : 0);
  $("type-charts").replaceChildren(chart("calls/s per type (last minute, sampled)", [...history.types]));
  rows("hot", c.hot, (a) => [a.actorType + "/" + a.id, a.node, fmt(a.perSecond), fmt(a.errors), fmt(a.p99Ms, 2)], (a) => a.actorType + "/" + a.id);
  rows("events", c.subscriptions, (s) => [s.subscription, s.node, fmt(s.lag), fmt(s.handled), fmt(s.deadLetters)]);
  rows("reminders", c.reminders, (r) => [r.actorType + "/" + r.id + " " + r.name, r.node, fmt(Math.max(0, (r.runAt - Date.now()) / 1000), 1)]);
}
async function refresh() {
  try {
    const res = await fetch("/api/cluster");
    if (res.ok) render(await res.json());
    else $("summary").textContent = "the console's server answered " + res.status;
  } catch (err) {
    $("summary").textContent = "cannot reach the console's server";
  }
  setTimeout(refresh, 1000);
}
$("search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = new URLSearchParams(new FormData(e.target));
  $("actor").textContent = "…";
  const res = await fetch("/api/actor?" + q.toString());
  $("actor").textContent = JSON.stringify(await res.json(), null, 2);
});
refresh();
</script>
</body>
</html>
`;
