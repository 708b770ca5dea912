// Normalizing inputs and targets: logits to a Float32Array, class indices to a validated Int32Array,
// element targets to a Float32Array. Nothing here copies a Float32Array or an Int32Array that can be
// used as it is.
import { DeviceTensor } from './device-tensor';
import { invalidElement, invalidElementType, invalidLength, invalidType } from './errors';
import { isNumericArrayLike } from './options';

/** A tf.js tensor, or anything shaped like one: `shape`, `dtype`, `dataSync()`. */
export interface TensorLike {
  readonly shape: readonly number[];
  readonly dtype: string;
  dataSync(): ArrayLike<number>;
}

export function isTensorLike(value: unknown): value is TensorLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as TensorLike).shape) &&
    typeof (value as TensorLike).dtype === 'string' &&
    typeof (value as TensorLike).dataSync === 'function'
  );
}

export interface Logits {
  /** Host logits, or a DeviceTensor (float32, float16 or bfloat16) the loss computes on. */
  data: Float32Array | DeviceTensor;
  /** A LogitShape's M (data is then empty); see logitCount. */
  shapeLength?: number;
  /** The caller's array (for overlap checks), or null when the data came from a tensor. */
  source: ArrayBufferView | null;
  /** C from a tensor of rank ≥ 2 (its last dimension). */
  classesFromShape?: number;
}

/**
 * The shape of logits a call does not read — Loss.divisor's, which needs from the input only what the
 * shape inference does (its length, and C from a shape of rank ≥ 2) — so that a loss's own inference
 * runs unchanged on it without an N×C array being made.
 */
export class LogitShape {
  constructor(
    readonly length: number,
    readonly classesFromShape: number | undefined,
  ) {}
}

// A LogitShape's stand-in for the data: a plan made from one is only run divisor-only (lib/native.ts
// planDivisor), which passes no logits.
const NO_LOGITS = new Float32Array(0);

/** M, the number of logits: what the losses infer N and C from (docs/semantics.md, "Shapes and targets"). */
export function logitCount(logits: Logits): number {
  return logits.shapeLength ?? logits.data.length;
}

/** input: Float32Array (as is), Float64Array (rounded to float32), a float tensor, or a LogitShape. */
export function toLogits(input: unknown): Logits {
  if (input instanceof Float32Array) {
    // A detached buffer's array stands for none: in the full suite under Node 20, the losses' optimized
    // read of its length gave its length before the detach (97-properties), where its buffer's byteLength
    // is 0 — and the call reached the addon's size check instead of lib/'s RangeError.
    return { data: input.buffer.byteLength === 0 ? NO_LOGITS : input, source: input };
  }
  if (input instanceof DeviceTensor) {
    if (input.dtype === 'int32') throw invalidType('input', 'a float32, float16 or bfloat16 DeviceTensor', input);
    return { data: input, source: null };
  }
  if (input instanceof Float64Array) return { data: Float32Array.from(input), source: input };
  if (input instanceof LogitShape) {
    return { data: NO_LOGITS, shapeLength: input.length, source: null, classesFromShape: input.classesFromShape };
  }
  if (isTensorLike(input)) {
    if (input.dtype !== 'float32') throw invalidType('input', 'a float32 tensor', `${input.dtype} tensor`);
    const raw = input.dataSync();
    const data = raw instanceof Float32Array ? raw : Float32Array.from(raw);
    const shape = input.shape;
    const result: Logits = { data, source: null };
    if (shape.length >= 2) result.classesFromShape = shape[shape.length - 1];
    return result;
  }
  throw invalidType('input', 'a Float32Array or Float64Array of logits', input);
}

const INTEGER_ARRAYS = [
  Int32Array,
  Uint8Array,
  Uint8ClampedArray,
  Uint16Array,
  Int16Array,
  Int8Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
] as const;

/** The integer typed arrays accepted as class indices. */
export type IntegerArray =
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A target in one of its accepted forms. */
export type Target =
  | { kind: 'integer'; values: IntegerArray | readonly unknown[] | DeviceTensor; source: ArrayBufferView | null }
  | { kind: 'float'; values: Float32Array | Float64Array | DeviceTensor; source: ArrayBufferView | null };

export function readTarget(target: unknown): Target {
  if (target instanceof DeviceTensor) {
    if (target.dtype === 'int32') return { kind: 'integer', values: target, source: null };
    if (target.dtype === 'float32') return { kind: 'float', values: target, source: null };
    throw invalidType('target', 'an int32 or float32 DeviceTensor', target);
  }
  if (target instanceof Float32Array || target instanceof Float64Array) {
    return { kind: 'float', values: target, source: target };
  }
  if (INTEGER_ARRAYS.some((ctor) => target instanceof ctor)) {
    const values = target as IntegerArray;
    return { kind: 'integer', values, source: values };
  }
  if (Array.isArray(target)) return { kind: 'integer', values: target, source: null };
  if (isTensorLike(target)) {
    const raw = target.dataSync();
    if (target.dtype === 'int32' || target.dtype === 'bool') {
      return { kind: 'integer', values: raw instanceof Int32Array ? raw : Int32Array.from(raw), source: null };
    }
    if (target.dtype === 'float32') {
      return { kind: 'float', values: raw instanceof Float32Array ? raw : Float32Array.from(raw), source: null };
    }
    throw invalidType('target', 'an int32 or float32 tensor', `${target.dtype} tensor`);
  }
  throw invalidType(
    'target',
    'class indices (an integer typed array or number[]) or element targets (Float32Array or Float64Array)',
    target,
  );
}

function elementNumber(values: IntegerArray | readonly unknown[], i: number): number {
  const v: unknown = values[i];
  if (typeof v === 'bigint') {
    // Outside the int32 range no class index can be valid; keep the value for the message.
    return v >= -2147483648n && v <= 2147483647n ? Number(v) : Number.POSITIVE_INFINITY;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw invalidElementType('target', i, v, 'not an integer class index');
  }
  return v;
}

/**
 * Class indices as an Int32Array, each in [0, classes) or equal to `ignoreIndex` (when given). An
 * Int32Array (or DeviceTensor) is returned as it is, for the addon to check (on the host, or on the
 * device) before anything is written; other arrays are checked and converted here.
 */
export function toLabels(
  target: Target & { kind: 'integer' },
  classes: number,
  ignoreIndex?: number,
): Int32Array | DeviceTensor {
  const values = target.values;
  if (values instanceof DeviceTensor) return values; // checked on the device before anything is written
  // The common case, as it is: the addon scans it (a vectorized loop) before the call writes anything,
  // and rejects a label out of range with this function's RangeError, message for message.
  if (values instanceof Int32Array) return values;
  const n = values.length;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = elementNumber(values, i);
    if ((y < 0 || y >= classes) && y !== ignoreIndex) {
      throw invalidElement('target', i, values[i], `out of range [0, ${classes})`);
    }
    labels[i] = y;
  }
  return labels;
}

/** Integer element targets (0/1 per logit) as a Float32Array. */
export function binaryTargetsFromIntegers(target: Target & { kind: 'integer' }): Float32Array {
  const values = target.values;
  if (values instanceof DeviceTensor) {
    throw invalidType('target', 'a float32 DeviceTensor of 0/1 targets (element-wise losses)', values);
  }
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = elementNumber(values, i);
    if (v !== 0 && v !== 1) throw invalidElement('target', i, v, 'not 0 or 1');
    out[i] = v;
  }
  return out;
}

/** Float element targets as a Float32Array (a Float64Array is rounded). */
export function toFloatTargets(target: Target & { kind: 'float' }): Float32Array | DeviceTensor {
  const values = target.values;
  return values instanceof Float32Array || values instanceof DeviceTensor ? values : Float32Array.from(values);
}

/** opts.gradOutput: a number, or (reduction 'none') one value per output element as a Float32Array. */
export function readGradOutput(value: unknown, none: boolean, outputLength: number): number | Float32Array {
  if (value === undefined) return 1;
  if (typeof value === 'number') return value;
  if (!none) {
    throw invalidType('gradOutput', 'a number (the loss is reduced to one value)', value);
  }
  if (!isNumericArrayLike(value)) {
    throw invalidType('gradOutput', `a number or an array of ${outputLength} numbers`, value);
  }
  if (value.length !== outputLength) throw invalidLength('gradOutput', `${outputLength} (one per output element)`, value.length);
  if (value instanceof Float32Array) return value;
  // Values are used as given (NaN and ±Inf propagate, as in PyTorch); only their type is checked.
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== 'number') throw invalidElementType('gradOutput', i, value[i], 'not a number');
  }
  return Float32Array.from(value);
}
