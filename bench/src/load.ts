// Drives an async operation at a fixed number in flight and measures it.

export interface Measured {
  ops: number;
  seconds: number;
  perSecond: number;
  /** Latency percentiles in µs, when sampled. */
  p50?: number;
  p95?: number;
  p99?: number;
}

/**
 * Runs `op(i)` `total` times with `inFlight` workers, after `warmup` calls.
 * With `latency`, records every call's duration.
 */
export async function load(
  op: (i: number) => Promise<unknown>,
  options: { inFlight: number; total: number; warmup?: number; latency?: boolean },
): Promise<Measured> {
  const { inFlight, total, warmup = Math.min(total, 5000), latency = false } = options;
  await run(op, inFlight, warmup, undefined);
  const samples = latency ? new Float64Array(total) : undefined;
  const started = performance.now();
  await run(op, inFlight, total, samples);
  const seconds = (performance.now() - started) / 1000;
  const result: Measured = { ops: total, seconds, perSecond: total / seconds };
  if (samples) {
    samples.sort();
    const at = (q: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]! * 1000);
    Object.assign(result, { p50: at(0.5), p95: at(0.95), p99: at(0.99) });
  }
  return result;
}

async function run(op: (i: number) => Promise<unknown>, inFlight: number, total: number, samples: Float64Array | undefined): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      if (samples) {
        const t = performance.now();
        await op(i);
        samples[i] = performance.now() - t;
      } else {
        await op(i);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
}

/** The round with the median throughput; latency percentiles are medians of their own. */
export function median(ms: Measured[]): Measured {
  const mid = <T>(xs: T[], key: (x: T) => number) => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
  const m = { ...mid(ms, (x) => x.perSecond) };
  if (m.p50 !== undefined) for (const p of ["p50", "p95", "p99"] as const) m[p] = mid(ms, (x) => x[p]!)[p];
  return m;
}

/** Runs `op(i)` one at a time until `done()`: every call's duration in ms (failed ones too), and how many failed. */
export async function sequential(
  op: (i: number) => Promise<unknown>,
  done: () => boolean,
): Promise<{ ms: number[]; failed: number; seconds: number }> {
  const ms: number[] = [];
  let failed = 0;
  const started = performance.now();
  for (let i = 0; !done(); i++) {
    const t = performance.now();
    await op(i).catch(() => failed++);
    ms.push(performance.now() - t);
  }
  return { ms, failed, seconds: (performance.now() - started) / 1000 };
}

/**
 * Runs `a(i)` and `b(i)` one at a time, alternating call by call, `total` times each after `warmup` pairs:
 * each one's latency percentiles. A sequential p50 measured in blocks (all of one, then all of the other) is
 * at the mercy of the machine's drift: on the 2-core bench machine, raw nats.js's p50 measured twice in a
 * row differed by 0.67 to 1.21x; call by call, each pair sees the same moment.
 */
export async function interleaved(
  a: (i: number) => Promise<unknown>,
  b: (i: number) => Promise<unknown>,
  options: { total: number; warmup: number },
): Promise<[Measured, Measured]> {
  const ms: [number[], number[]] = [[], []];
  for (let i = 0; i < options.warmup + options.total; i++) {
    let t = performance.now();
    await a(i);
    const took = performance.now() - t;
    t = performance.now();
    await b(i);
    if (i < options.warmup) continue;
    ms[1].push(performance.now() - t);
    ms[0].push(took);
  }
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / 1000;
  return [measured(ms[0], sum(ms[0])), measured(ms[1], sum(ms[1]))];
}

/** Measured, with latency percentiles as `load` gives them, from durations in ms over `seconds`. */
export function measured(ms: readonly number[], seconds: number): Measured {
  const samples = Float64Array.from(ms).sort();
  const at = (q: number) => Math.round((samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0) * 1000);
  return { ops: samples.length, seconds, perSecond: samples.length / seconds, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}
