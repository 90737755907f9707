// The reminders section of `npm run bench`: N durable reminders due at the
// same moment on one node; how fast they all fire, and how late each was.
import { Mesh } from "@mesh/runtime";
import { Beeper } from "./actors.js";

export interface ReminderFigures {
  count: number;
  setPerSecond: number;
  firedPerSecond: number;
  lateP50: number;
  lateP99: number;
  lateMax: number;
}

export async function reminders(url: string, count: number): Promise<ReminderFigures> {
  console.log(`\nDurable reminders: ${count.toLocaleString("en-US")} due at the same moment, on one node`);
  const mesh = await Mesh.start({ servers: url, nodeId: "bench-reminders", prefix: "benchrem", actors: [Beeper], capabilities: ["beep"] });
  try {
    Beeper.lateness = [];
    const at = Date.now() + 5_000 + count / 5; // after every reminder is stored
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) await mesh.call({ actor: Beeper, id: `b${i}`, payload: { at }, capability: "beep" });
    };
    await Promise.all(Array.from({ length: 128 }, worker));
    const setPerSecond = count / ((performance.now() - started) / 1000);
    if (Date.now() >= at) console.log("  (storing took longer than planned: some were late already)");
    while (Beeper.lateness.length < count) await new Promise((resolve) => setTimeout(resolve, 20));
    const firedPerSecond = count / (Math.max(1, Beeper.lastFiredAt - at) / 1000);
    const late = [...Beeper.lateness].sort((a, b) => a - b);
    const at_ = (q: number) => late[Math.min(late.length - 1, Math.floor(q * late.length))]!;
    const figures = { count, setPerSecond, firedPerSecond, lateP50: at_(0.5), lateP99: at_(0.99), lateMax: late.at(-1)! };
    console.log(
      `  ${"set (ctx.remind, stored), 128 in flight".padEnd(52)} ${Math.round(setPerSecond).toLocaleString("en-US").padStart(11)} /s`,
    );
    console.log(
      `  ${"fired, all due at once".padEnd(52)} ${Math.round(firedPerSecond).toLocaleString("en-US").padStart(11)} /s  late p50 ${figures.lateP50} ms  p99 ${figures.lateP99} ms  max ${figures.lateMax} ms`,
    );
    return figures;
  } finally {
    await mesh.stop();
  }
}
