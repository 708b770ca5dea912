// Shape inference (docs/semantics.md, "Shapes and targets"): how many rows N and classes C a flat array
// of M logits holds.
import { invalidLength } from './errors';

export interface Shape {
  rows: number;
  classes: number;
}

/**
 * Shape for class-index targets of length `labelCount`: C is `classes` when known, else M / N.
 */
export function shapeForLabels(M: number, classes: number | undefined, labelCount: number): Shape {
  if (classes === undefined) {
    if (labelCount === 0) {
      if (M === 0) return { rows: 0, classes: 1 };
      throw invalidLength('target', `a divisor of the input's length ${M} (one class index per row)`, 0);
    }
    if (M === 0 || M % labelCount !== 0) {
      throw invalidLength('target', `a divisor of the input's length ${M} (one class index per row)`, labelCount);
    }
    return { rows: labelCount, classes: M / labelCount };
  }
  const shape = shapeForElements(M, classes);
  if (labelCount !== shape.rows) {
    throw invalidLength('target', `${shape.rows} (one class index per row of ${classes} logits)`, labelCount);
  }
  return shape;
}

/** Shape for element targets: rows of `classes` logits (1 when unknown). */
export function shapeForElements(M: number, classes: number | undefined): Shape {
  const C = classes ?? 1;
  if (M % C !== 0) throw invalidLength('input', `a multiple of ${C} (numClasses)`, M);
  return { rows: M / C, classes: C };
}

/** The length of an element-target array must be the input's. */
export function checkElementTargetLength(M: number, length: number): void {
  if (length !== M) throw invalidLength('target', `${M} (the input's length)`, length);
}

/** A per-class vector option must have C entries. */
export function checkClassVector(name: string, vector: Float64Array | undefined, classes: number): void {
  if (vector && vector.length !== classes) {
    throw invalidLength(name, `${classes} (one per class)`, vector.length);
  }
}
