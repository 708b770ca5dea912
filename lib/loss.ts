// The base class of every loss: argument checks shared by all losses, the call into the addon,
// caller-owned output buffers, and the async forms.
import type { ResolvedDevice } from './device';
import { describe, invalidElementType, invalidLength, invalidType } from './errors';
import { readTarget, toLogits, type Logits, type Target, type TensorLike } from './inputs';
import { runPlan } from './native';
import { isNumericArrayLike } from './options';
import { Divisor, type LossPlan } from './plan';

export type Reduction = 'none' | 'mean' | 'sum';

/** Logits: a Float32Array (row-major N×C), a Float64Array (rounded to float32), or a tf.js tensor. */
export type LossInput = Float32Array | Float64Array | TensorLike;

/**
 * Class indices (an integer typed array or number[], length N) or element targets
 * (Float32Array/Float64Array with the input's length; class probabilities for CrossEntropyLoss).
 */
export type LossTarget =
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | readonly number[]
  | Float32Array
  | Float64Array
  | TensorLike;

/** What each reduction returns: one number, or one value per output element for 'none'. */
export interface LossValueByReduction {
  none: Float32Array;
  mean: number;
  sum: number;
  batchmean: number;
  weightedmean: number;
}

/** Every reduction name of every loss (ClassBalancedLoss adds 'batchmean' and 'weightedmean'). */
export type AnyReduction = keyof LossValueByReduction;

/** The loss a reduction gives (number | Float32Array when the reduction is not known statically). */
export type LossValue<R extends AnyReduction> = LossValueByReduction[R];

export interface ForwardBackwardOptions {
  /**
   * The upstream gradient: a number (broadcast), or for reduction 'none' one value per output
   * element. Default 1.
   */
  gradOutput?: number | Float32Array | Float64Array | readonly number[];
  /** Caller-owned buffers, filled and returned instead of new arrays. */
  out?: {
    /** The input's length. May be the input itself: the logits are then overwritten in place. */
    grad?: Float32Array;
    /** Reduction 'none' only: one value per output element. */
    loss?: Float32Array;
  };
}

export interface ForwardBackwardResult<R extends AnyReduction> {
  loss: LossValue<R>;
  /** d(reduced loss)/d(input) × gradOutput, the input's length. */
  grad: Float32Array;
}

/** What a loss turns its arguments into: a validated plan plus the caller's arrays. */
export interface PreparedCall {
  plan: LossPlan;
  logits: Logits;
  target: Target;
}

/** Properties a ClassBalancedLoss needs to know about its base loss. */
export interface BaseLossTraits {
  /** numClasses as given to the base loss, if any. */
  numClasses?: number;
  /** Length of a per-class vector option (weight, posWeight, alpha), if any. */
  vectorLength?: number;
  vectorName?: string;
}

/** Internal hooks; not part of the public API. */
export const PREPARE = Symbol('cbloss.prepare');
export const TRAITS = Symbol('cbloss.traits');

export abstract class Loss<R extends AnyReduction = AnyReduction> {
  /** The reduction applied to the per-element losses. */
  readonly reduction: R;
  /** The device option as given ('auto' unless set, or CBLOSS_DEVICE). */
  readonly device: ResolvedDevice;

  protected constructor(reduction: R, device: ResolvedDevice) {
    this.reduction = reduction;
    this.device = device;
  }

  /** Validates (input, target) and builds the native problem. `numClasses` comes from a wrapper. */
  abstract [PREPARE](input: unknown, target: unknown, numClasses?: number): PreparedCall;

  abstract [TRAITS](): BaseLossTraits;

  /** The loss: a number, or a Float32Array with one value per output element for 'none'. */
  forward(input: LossInput, target: LossTarget): LossValue<R> {
    return this.execute(input, target, false, undefined).loss;
  }

  /** The loss and its gradient with respect to the input, in one native pass. */
  forwardBackward(input: LossInput, target: LossTarget, opts?: ForwardBackwardOptions): ForwardBackwardResult<R> {
    return this.execute(input, target, true, opts) as ForwardBackwardResult<R>;
  }

  /** `forward`, as a Promise; invalid arguments reject with the same errors. */
  async forwardAsync(input: LossInput, target: LossTarget): Promise<LossValue<R>> {
    return this.forward(input, target);
  }

  /** `forwardBackward`, as a Promise; invalid arguments reject with the same errors. */
  async forwardBackwardAsync(
    input: LossInput,
    target: LossTarget,
    opts?: ForwardBackwardOptions,
  ): Promise<ForwardBackwardResult<R>> {
    return this.forwardBackward(input, target, opts);
  }

  private execute(
    input: unknown,
    target: unknown,
    wantGrad: boolean,
    opts: ForwardBackwardOptions | undefined,
  ): { loss: LossValue<R>; grad: Float32Array | null } {
    const call = this[PREPARE](input, target);
    const { plan } = call;
    const none = plan.divisor === Divisor.None;
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
      throw invalidType('opts', 'an object { gradOutput?, out? }', opts);
    }
    const gradOutput = readGradOutput(opts?.gradOutput, none, plan.outputLength);
    const out = readOut(opts?.out, none, wantGrad, plan);
    checkOverlaps(call, out, opts?.gradOutput);

    const lossOut = none ? (out.loss ?? new Float32Array(plan.outputLength)) : null;
    const gradOut = wantGrad ? (out.grad ?? new Float32Array(plan.logits.length)) : null;
    const value = runPlan(plan, gradOutput, lossOut, gradOut);
    return { loss: (none ? lossOut : value) as LossValue<R>, grad: gradOut };
  }
}

/** Prepares the target (shared helper for subclasses). */
export function prepareArguments(input: unknown, target: unknown): { logits: Logits; target: Target } {
  return { logits: toLogits(input), target: readTarget(target) };
}

function readGradOutput(value: unknown, none: boolean, outputLength: number): number | Float32Array {
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

interface OutBuffers {
  grad?: Float32Array;
  loss?: Float32Array;
}

function readOut(value: unknown, none: boolean, wantGrad: boolean, plan: LossPlan): OutBuffers {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null) throw invalidType('out', 'an object { grad?, loss? }', value);
  const { grad, loss } = value as { grad?: unknown; loss?: unknown };
  const result: OutBuffers = {};
  if (wantGrad && grad !== undefined) {
    if (!(grad instanceof Float32Array)) throw invalidType('out.grad', 'a Float32Array', grad);
    if (grad.length !== plan.logits.length) {
      throw invalidLength('out.grad', `${plan.logits.length} (the input's length)`, grad.length);
    }
    result.grad = grad;
  }
  if (none && loss !== undefined) {
    if (!(loss instanceof Float32Array)) throw invalidType('out.loss', 'a Float32Array', loss);
    if (loss.length !== plan.outputLength) {
      throw invalidLength('out.loss', `${plan.outputLength} (one per output element)`, loss.length);
    }
    result.loss = loss;
  }
  return result;
}

function byteRange(view: ArrayBufferView): [ArrayBufferLike, number, number] {
  return [view.buffer, view.byteOffset, view.byteOffset + view.byteLength];
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const [bufA, startA, endA] = byteRange(a);
  const [bufB, startB, endB] = byteRange(b);
  return bufA === bufB && startA < endB && startB < endA && a.byteLength > 0 && b.byteLength > 0;
}

function sameView(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.byteLength === b.byteLength;
}

// out.grad may be the input itself (in place); any other sharing of memory between the caller's
// arrays and the output buffers would let an output overwrite an input mid-pass: RangeError.
function checkOverlaps(call: PreparedCall, out: OutBuffers, gradOutput: unknown): void {
  const inputs: Array<[string, ArrayBufferView]> = [];
  if (call.logits.source) inputs.push(['input', call.logits.source]);
  if (call.target.source) inputs.push(['target', call.target.source]);
  if (ArrayBuffer.isView(gradOutput)) inputs.push(['gradOutput', gradOutput]);
  const outputs: Array<[string, ArrayBufferView]> = [];
  if (out.grad) outputs.push(['out.grad', out.grad]);
  if (out.loss) outputs.push(['out.loss', out.loss]);

  for (const [outName, outView] of outputs) {
    for (const [inName, inView] of inputs) {
      if (!overlaps(outView, inView)) continue;
      const inPlace =
        outName === 'out.grad' && inName === 'input' && inView instanceof Float32Array && sameView(outView, inView);
      if (inPlace) continue;
      throw new RangeError(
        `Expected ${outName} not to share memory with ${inName} (only out.grad may be the input itself) ` +
          `but received ${describe(outView)} overlapping it`,
      );
    }
  }
  if (out.grad && out.loss && overlaps(out.grad, out.loss)) {
    throw new RangeError('Expected out.grad and out.loss not to share memory but received overlapping buffers');
  }
}
