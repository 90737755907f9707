// Copies of plain objects by their shape. An object is copied by a function
// made for its keys, in their order: it reads each of them and builds the copy
// as one object literal. Symbol keys, which the value model drops, are not
// read, so no object is asked for them (Object.getOwnPropertySymbols, a
// quarter of the general copy of a 20-field object), and the literal gives the
// copy its final shape at once, with no key added one by one. A 20-field
// object: 130 to 170 ns so, 310 to 350 ns by the general copy (value.ts);
// `{ action, n }`: about 40 ns, against about 70.
//
// An object takes its shape's function only when its keys, as for-in lists
// them, are exactly the shape's, in order; the function hands back NOT_HERE
// for what the general copy must decide (a value that is undefined, an
// ill-formed string, anything but a primitive of the model or an object), so
// every refusal and its message come from one place. A shape is remembered by
// its first key (PER_FIRST_KEY of them per first key, MAX_SHAPES in all,
// none of more than MAX_SHAPE_KEYS keys) the first time an object of it is
// copied, and its function is made the second time: objects used as
// dictionaries, whose keys seldom come twice, cost no function, and no shape
// is forgotten. Keys that are "__proto__" or ill-formed never make a shape (a
// literal's "__proto__" would set the prototype). Where code cannot be made from
// strings (`--disallow-code-generation-from-strings`), every object takes the
// general copy.

/** What a shape's function hands back when the general copy must copy the object. */
export const NOT_HERE: unique symbol = Symbol("not here");

/** The most shapes remembered; objects of other shapes take the general copy. */
export const MAX_SHAPES = 256;

/** What a shape's function uses of the general copy: plain functions (they are called with no `this`). */
export interface ShapeParts {
  /** Copies a nested object (array, plain object, binary, date) at `depth`. Throws ValueError. */
  nested(value: object, depth: number): unknown;
  /** The value model's copy of a primitive, or NOT_HERE for one it refuses or drops (undefined). Never throws. */
  primitive(value: unknown): unknown;
  /** `err` with `step` added to its path (a refusal inside the value at key `step`). */
  under(err: unknown, step: string): unknown;
}

type Copy = (value: object, depth: number) => unknown;

/** The most keys a shape has: an object of more takes the general copy (a function's source and code grow with its keys). */
export const MAX_SHAPE_KEYS = 64;

/** The most shapes that share a first key (unions such as `{ type, ... }`). */
const PER_FIRST_KEY = 4;

interface Shape {
  readonly keys: readonly string[];
  /**
   * Made the second time an object of this shape comes (an object whose keys come once never costs a function).
   * Null: none is made for this first key (too many keys, or the function could not be made).
   */
  copy: Copy | undefined | null;
}

export class ShapeCopies {
  readonly #byFirstKey = new Map<string, Shape[]>();
  #count = 0;
  #makes = true;

  constructor(private readonly parts: ShapeParts) {}

  /**
   * The copy of `value`, a plain object with no inherited enumerable keys at `depth` (below the deepest allowed), by
   * its shape's function; NOT_HERE when its shape has no function yet, or the function leaves it to the general copy.
   */
  copy(value: object, depth: number): unknown {
    let first: string | undefined;
    for (const key in value) {
      first = key;
      break;
    }
    if (first === undefined) return NOT_HERE;
    const shapes = this.#byFirstKey.get(first);
    if (shapes !== undefined)
      for (const shape of shapes) {
        if (!hasKeys(value, shape.keys)) continue;
        const copy = shape.copy === undefined ? this.#make(shape) : shape.copy;
        return copy === null ? NOT_HERE : copy(value, depth);
      }
    this.#remember(value, first, shapes);
    return NOT_HERE;
  }

  /** Remembers the keys of `value`, unless there are too many shapes, for its first key or in all. */
  #remember(value: object, first: string, shapes: Shape[] | undefined): void {
    if (this.#count >= MAX_SHAPES) return;
    if (shapes !== undefined && (shapes.length >= PER_FIRST_KEY || shapes.some((s) => s.copy === null))) return;
    const keys: string[] = [];
    let shape: Shape = { keys, copy: undefined };
    for (const key in value) {
      if (key === "__proto__" || !key.isWellFormed()) return;
      if (keys.length === MAX_SHAPE_KEYS) {
        shape = { keys: [first], copy: null }; // no function for this first key: the next object of it looks no further
        break;
      }
      keys.push(key);
    }
    if (shapes === undefined) this.#byFirstKey.set(first, [shape]);
    else shapes.push(shape);
    this.#count++;
  }

  #make(shape: Shape): Copy | null {
    if (!this.#makes) return null;
    try {
      return (shape.copy = copier(shape.keys, this.parts));
    } catch (err) {
      if (err instanceof EvalError) this.#makes = false; // code from strings is not allowed here
      return (shape.copy = null);
    }
  }
}

/** True when for-in lists exactly `keys` for `value`, in that order. */
function hasKeys(value: object, keys: readonly string[]): boolean {
  let i = 0;
  for (const key in value) if (keys[i++] !== key) return false;
  return i === keys.length;
}

/**
 * The function that copies objects whose keys are `keys`, in that order. It reads every value first (as a spread
 * does), then hands back NOT_HERE if one is not for it, before it copies any nested value: a nested value is never
 * copied twice.
 */
function copier(keys: readonly string[], parts: ShapeParts): Copy {
  const k = keys.map((key) => JSON.stringify(key));
  const reads = k.map((key, i) => `const v${i} = o[${key}];`);
  const primitives = k.map(
    (_, i) => `let c${i} = v${i};\nif (typeof v${i} !== "object" && (c${i} = primitive(v${i})) === NOT_HERE) return NOT_HERE;`,
  );
  const nested = k.map(
    (key, i) =>
      `if (typeof v${i} === "object" && v${i} !== null) try { c${i} = nested(v${i}, d + 1); } catch (err) { throw under(err, ${key}); }`,
  );
  const literal = k.map((key, i) => `${key}: c${i}`).join(", ");
  const body = [...reads, ...primitives, ...nested, `return { ${literal} };`].join("\n");
  // The keys go in as string literals (JSON.stringify), well-formed and never "__proto__" (#remember).
  const make = new Function("nested", "primitive", "under", "NOT_HERE", `"use strict";\nreturn function copyShape(o, d) {\n${body}\n};`);
  return (make as (...args: unknown[]) => Copy)(parts.nested, parts.primitive, parts.under, NOT_HERE);
}
