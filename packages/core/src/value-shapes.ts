// Copies of plain objects by their shape. An object with many keys is copied
// by a function made for its keys, in their order: it reads each of them and
// builds the copy as one object literal. Symbol keys, which the value model
// drops, are not read, so no object is asked for them
// (Object.getOwnPropertySymbols, a quarter of the general copy of a 20-field
// object), and the literal gives the copy its final shape at once. A 20-field
// object: about 170 ns so, about 300 ns by the general copy (value.ts).
//
// An object takes its shape's function only when its keys, as for-in lists
// them, are exactly the shape's, in order; the function hands back NOT_HERE
// for what the general copy must decide (a value that is undefined, an
// ill-formed string, anything but a primitive of the model or an object), so
// every refusal and its message come from one place. A shape is remembered by
// its first key, one per first key and MAX_SHAPES in all, the first time an
// object of it is copied, and its function is made the second time: objects
// used as dictionaries, whose keys seldom come twice, cost no function. A
// first key's shape is replaced by another until its function is made. Keys
// that are "__proto__" or ill-formed never make a shape (a literal's
// "__proto__" would set the prototype). Where code cannot be made from
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

interface Shape {
  readonly keys: readonly string[];
  /** Made the second time an object of this shape comes: an object whose keys come once never costs a function. */
  copy: Copy | undefined;
}

export class ShapeCopies {
  readonly #byFirstKey = new Map<string, Shape>();
  #makes = true;

  constructor(private readonly parts: ShapeParts) {}

  /**
   * The copy of `value`, a plain object with no inherited enumerable keys at `depth` (below the deepest allowed), by
   * its shape's function; NOT_HERE when its shape has no function yet, or the function leaves it to the general copy.
   */
  copy(value: object, depth: number): unknown {
    let shape: Shape | undefined;
    let i = 0;
    for (const key in value) {
      if (i === 0 && (shape = this.#byFirstKey.get(key)) === undefined) break;
      if (shape!.keys[i++] !== key) {
        shape = undefined;
        break;
      }
    }
    if (shape !== undefined && i === shape.keys.length) {
      const copy = shape.copy ?? this.#make(shape);
      return copy === undefined ? NOT_HERE : copy(value, depth);
    }
    this.#remember(value);
    return NOT_HERE;
  }

  /** Remembers the keys of `value`, unless its first key has a shape with a function already, or there are too many. */
  #remember(value: object): void {
    const keys: string[] = [];
    for (const key in value) {
      if (key === "__proto__" || !key.isWellFormed()) return;
      keys.push(key);
    }
    const first = keys[0]!;
    const known = this.#byFirstKey.get(first);
    if (known === undefined ? this.#byFirstKey.size < MAX_SHAPES : known.copy === undefined)
      this.#byFirstKey.set(first, { keys, copy: undefined });
  }

  #make(shape: Shape): Copy | undefined {
    if (!this.#makes) return undefined;
    try {
      return (shape.copy = copier(shape.keys, this.parts));
    } catch {
      this.#makes = false; // code from strings is not allowed here
      return undefined;
    }
  }
}

/** The function that copies objects whose keys are `keys`, in that order. */
function copier(keys: readonly string[], parts: ShapeParts): Copy {
  const reads = keys.map((key, i) => {
    const k = JSON.stringify(key);
    return (
      `let v${i} = o[${k}];\n` +
      `if (typeof v${i} === "object") { if (v${i} !== null) try { v${i} = nested(v${i}, d + 1); } catch (err) { throw under(err, ${k}); } }\n` +
      `else if ((v${i} = primitive(v${i})) === NOT_HERE) return NOT_HERE;`
    );
  });
  const literal = keys.map((key, i) => `${JSON.stringify(key)}: v${i}`).join(", ");
  const body = `"use strict";\nreturn function copyShape(o, d) {\n${reads.join("\n")}\nreturn { ${literal} };\n};`;
  // The keys go in as string literals (JSON.stringify), well-formed and never "__proto__" (#remember).
  const make = new Function("nested", "primitive", "under", "NOT_HERE", body) as (...args: unknown[]) => Copy;
  return make(parts.nested, parts.primitive, parts.under, NOT_HERE);
}
