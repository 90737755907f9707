// The speed section: the figures of the speed issue (local calls over 10,000 and 100,000 ids, a 20-field
// payload, creation, heap per idle actor, remote calls against raw nats.js), each in a fresh process
// (figures.ts). With BENCH_AB=<commit>, every figure is measured on that commit's build too, in
// alternating rounds of the same run (this, base, then base, this, …): each claim is a pair.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const repo = here("../..");

/** One figure: how figures.ts is asked for it, which value of its answer counts, and the goal. */
interface Figure {
  readonly name: string;
  readonly args: readonly string[];
  readonly key: string;
  readonly goal?: string;
}

const FIGURES: readonly Figure[] = [
  { name: "local calls/s, 10,000 ids, number payload", args: ["local", "10000", "number"], key: "callsPerSecond", goal: ">= 2,500,000" },
  { name: "local calls/s, 100,000 ids, number payload", args: ["local", "100000", "number"], key: "callsPerSecond" },
  { name: "local calls/s, 10,000 ids, 20-field object", args: ["local", "10000", "object"], key: "callsPerSecond", goal: ">= 1,500,000" },
  { name: "local calls/s, 10,000 ids, 20-field object both ways", args: ["local", "10000", "echo"], key: "callsPerSecond" },
  { name: "creations/s, 100,000 new actors", args: ["creation", "100000"], key: "perSecond", goal: ">= 600,000" },
  { name: "creations / the floor (new instances in a Map)", args: ["creation", "100000"], key: "ratioToFloor" },
  { name: "heap per idle actor, id and entry included (B)", args: ["memory", "100000"], key: "bytesPerActor", goal: "<= 250" },
  { name: "remote calls / raw, 128 in flight", args: ["remote"], key: "ratio128", goal: ">= 2.0" },
  { name: "remote sequential p50 / raw", args: ["remote"], key: "p50", goal: "<= 1.1" },
];

/** A checkout of `commit` with its packages built, in bench/scratch (made once, then reused). */
function baseBuild(commit: string): string {
  const sha = execFileSync("git", ["rev-parse", "--short=12", commit], { cwd: repo, encoding: "utf8" }).trim();
  const dir = here(`../scratch/ab-${sha}`);
  if (existsSync(`${dir}/packages/runtime/lib/mod.js`)) return dir;
  console.log(`  building ${commit} (${sha}) in bench/scratch for the A/B mode`);
  mkdirSync(here("../scratch"), { recursive: true });
  if (!existsSync(dir)) execFileSync("git", ["worktree", "add", "--detach", dir, sha], { cwd: repo, stdio: "inherit" });
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: "inherit" });
  execFileSync("npm", ["run", "build"], { cwd: dir, stdio: "inherit" });
  return dir;
}

/** One answer of figures.ts, for the build in `root`. */
function measure(root: string, url: string, args: readonly string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", here("./figures.js"), root, url, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.once("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out) as Record<string, number>) : reject(new Error(`figures ${args.join(" ")}: exit ${code}`)),
    );
  });
}

export interface SpeedFigure {
  name: string;
  goal?: string;
  /** This build's median. */
  value: number;
  /** With BENCH_AB: the base build's median, and this / base per pair. */
  base?: number;
  pairs?: number[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const show = (v: number) => (v < 10 ? v.toFixed(2) : Math.round(v).toLocaleString("en-US"));

export async function speed(url: string, quick: boolean): Promise<SpeedFigure[]> {
  const baseCommit = process.env.BENCH_AB;
  const base = baseCommit ? baseBuild(baseCommit) : undefined;
  const rounds = Number(process.env.BENCH_AB_ROUNDS ?? (quick ? 1 : 3));
  console.log(
    `\nSpeed figures (each in a fresh process; median of ${rounds} rounds${base ? `, alternating with ${baseCommit}'s build` : ""})`,
  );
  const out: SpeedFigure[] = [];
  // Figures asked with the same arguments share their runs (remote gives two).
  const groups = new Map<string, Figure[]>();
  for (const f of FIGURES) groups.set(f.args.join(" "), [...(groups.get(f.args.join(" ")) ?? []), f]);
  for (const figs of groups.values()) {
    const mine: Record<string, number>[] = [];
    const theirs: Record<string, number>[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = base === undefined ? [repo] : r % 2 === 0 ? [repo, base] : [base, repo];
      for (const root of order) (root === repo ? mine : theirs).push(await measure(root, url, figs[0]!.args));
    }
    for (const f of figs) {
      const value = median(mine.map((m) => m[f.key]!));
      const row: SpeedFigure = { name: f.name, value, ...(f.goal ? { goal: f.goal } : {}) };
      if (base !== undefined) {
        row.base = median(theirs.map((m) => m[f.key]!));
        row.pairs = mine.map((m, i) => m[f.key]! / theirs[i]![f.key]!);
      }
      out.push(row);
      const pair =
        row.base === undefined ? "" : `  base ${show(row.base).padStart(11)}  this/base ${row.pairs!.map((p) => p.toFixed(3)).join(", ")}`;
      console.log(`  ${f.name.padEnd(52)} ${show(value).padStart(11)}${pair}${f.goal ? `   target ${f.goal}` : ""}`);
    }
  }
  return out;
}
