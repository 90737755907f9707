// Copies of one value, several times over: the first copy of a plain object is
// the general one (core/value.ts), the next ones by its shape's function once
// made (core/value-shapes.ts).
import { ValueError, copyValue } from "@mesh/core/internal";

export type Outcome = { copy: unknown } | { refused: string };

/** The outcomes of copying `value` `times` times. */
export function copies(value: unknown, times = 3): Outcome[] {
  return Array.from({ length: times }, () => {
    try {
      return { copy: copyValue(value) };
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      return { refused: err.message };
    }
  });
}

/** An object of `n` keys named with `prefix`, then `extra`'s. */
export const shaped = (prefix: string, extra: Record<string, unknown> = {}, n = 10) => ({
  ...Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i % 2 ? `v${i}` : i])),
  ...extra,
});
