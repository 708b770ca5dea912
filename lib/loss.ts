// The base class of every loss: argument checks shared by all losses, the call into the addon,
// caller-owned output buffers, and the async forms.
import { allocatedByCall } from './async-arrays';
import { applyCallWeights, type CallWeightOptions } from './call-weights';
import { deviceIndex, type ResolvedDevice } from './device';
import { deviceCall } from './device-call';
import { DeviceTensor } from './device-tensor';
import { describe, invalidElement, invalidElementType, invalidLength, invalidType, invalidValue } from './errors';
import {
  LogitShape,
  isTensorLike,
  readGradOutput,
  readTarget,
  toLogits,
  type IntegerArray,
  type Logits,
  type Target,
  type TensorLike,
} from './inputs';
import { CALL_INPUTS, planDivisor, runPlan, runPlanAsync, type CallInput } from './native';
import { checkCallOptionKeys } from './options';
import { Divisor, isRowLoss, type LossPlan } from './plan';
import { loadTf, tensorLoss, type TfTensor } from './tf';

export type Reduction = 'none' | 'mean' | 'sum';

/**
 * Logits: a Float32Array (row-major N×C), a Float64Array (rounded to float32), a tf.js tensor, or a
 * DeviceTensor (float32, float16 or bfloat16) on a CUDA device.
 */
export type LossInput = Float32Array | Float64Array | TensorLike | DeviceTensor;

/**
 * Class indices (an integer typed array or number[], length N) or element targets
 * (Float32Array/Float64Array with the input's length; class probabilities for CrossEntropyLoss).
 */
export type LossTarget =
  | IntegerArray
  | readonly number[]
  | Float32Array
  | Float64Array
  | TensorLike
  | DeviceTensor;

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

/** forward's per-call options (docs/semantics.md, "Per-call options"): sampleWeight, avgFactor. */
export type ForwardOptions = CallWeightOptions;

/**
 * divisor's options: forward's (the divisor is that of forward's call with them: sampleWeight changes
 * none, avgFactor replaces it), and the input's shape for what the target and the loss's options leave open.
 */
export interface DivisorOptions extends CallWeightOptions {
  /**
   * The shape of the logits the target goes with, as a tensor's: [N·C], or [N, C] (which also gives C).
   * Needed only where the target and the loss's options (numClasses, weight, samplesPerCls, …) do not
   * say: C with class indices or probabilities, and whether an element-wise loss's integer target holds
   * 0/1 per logit or one class index per row (docs/semantics.md, "Per-call options").
   */
  inputShape?: readonly number[];
}

export interface ForwardBackwardOptions extends CallWeightOptions {
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

/** With a DeviceTensor input: the reduced loss as a number, 'none' losses as a float32 DeviceTensor. */
export type DeviceLossValue<R extends AnyReduction> = R extends 'none' ? DeviceTensor<'float32'> : number;

export interface DeviceForwardBackwardOptions extends CallWeightOptions {
  /** A number, or for 'none' one value per output element (a float32 DeviceTensor, or host values). */
  gradOutput?: number | DeviceTensor | Float32Array | Float64Array | readonly number[];
  /** Caller-owned DeviceTensors: grad of the input's dtype and length (may be the input itself), loss ('none'). */
  out?: { grad?: DeviceTensor; loss?: DeviceTensor };
}

export interface DeviceForwardBackwardResult<R extends AnyReduction> {
  loss: DeviceLossValue<R>;
  /** The gradient on the input's device, in the input's dtype. */
  grad: DeviceTensor;
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
  /** The loss takes class indices only (softmax focal): one-hot rows from tf.js become indices. */
  indexTargets?: boolean;
  /** Length of a per-class vector option (weight, posWeight, alpha), if any. */
  vectorLength?: number;
  vectorName?: string;
}

/** The keys forward's and forwardBackward's options and their `out` may have. */
const FORWARD_OPTIONS = ['sampleWeight', 'avgFactor'] as const;
const DIVISOR_OPTIONS = [...FORWARD_OPTIONS, 'inputShape'] as const;
const CALL_OPTIONS = ['gradOutput', 'out', ...FORWARD_OPTIONS] as const;
const OUT_BUFFERS = ['grad', 'loss'] as const;

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

  /**
   * The loss: a number, or a Float32Array with one value per output element for 'none'. With a tf.js
   * tensor as input, a tf.js tensor whose gradient is the fused kernel's (it trains under
   * `optimizer.minimize`, `tf.grad`, `tf.variableGrads`).
   */
  forward(input: DeviceTensor, target: LossTarget, opts?: ForwardOptions): DeviceLossValue<R>;
  forward<T extends TfTensor = TfTensor>(input: TensorLike, target: LossTarget, opts?: ForwardOptions): T;
  forward(input: Float32Array | Float64Array, target: LossTarget, opts?: ForwardOptions): LossValue<R>;
  forward(input: LossInput, target: LossTarget, opts?: ForwardOptions): LossValue<R> | TfTensor | DeviceLossValue<R>;
  forward(input: LossInput, target: LossTarget, opts?: ForwardOptions): LossValue<R> | TfTensor | DeviceLossValue<R> {
    checkOptions(opts, FORWARD_OPTIONS);
    if (isTensorLike(input)) return this.tensorForward(input, target, false, opts).loss;
    return this.prepareExecution(input, target, false, opts).run().loss as LossValue<R>;
  }

  /**
   * The loss and its gradient with respect to the input, in one native pass. With a DeviceTensor
   * input, on its GPU: the gradient is a DeviceTensor.
   */
  forwardBackward(input: DeviceTensor, target: LossTarget, opts?: DeviceForwardBackwardOptions): DeviceForwardBackwardResult<R>;
  forwardBackward(input: LossInput, target: LossTarget, opts?: ForwardBackwardOptions): ForwardBackwardResult<R>;
  forwardBackward(
    input: LossInput,
    target: LossTarget,
    opts?: ForwardBackwardOptions | DeviceForwardBackwardOptions,
  ): ForwardBackwardResult<R> | DeviceForwardBackwardResult<R> {
    return this.prepareExecution(input, target, true, opts).run() as ForwardBackwardResult<R>;
  }

  /**
   * `forward` on a worker thread: the event loop keeps running. The arrays are used in place (not
   * copied) until the promise settles, so do not change them meanwhile. Invalid arguments reject
   * with the same errors as `forward`, created before the call returns.
   */
  forwardAsync(input: DeviceTensor, target: LossTarget, opts?: ForwardOptions): Promise<DeviceLossValue<R>>;
  forwardAsync(input: LossInput, target: LossTarget, opts?: ForwardOptions): Promise<LossValue<R>>;
  forwardAsync(input: LossInput, target: LossTarget, opts?: ForwardOptions): Promise<LossValue<R> | DeviceLossValue<R>> {
    try {
      checkOptions(opts, FORWARD_OPTIONS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.executeAsync(input, target, false, opts).then((r) => r.loss as LossValue<R>);
  }

  /** `forwardBackward` on a worker thread (see `forwardAsync`). */
  forwardBackwardAsync(
    input: DeviceTensor,
    target: LossTarget,
    opts?: DeviceForwardBackwardOptions,
  ): Promise<DeviceForwardBackwardResult<R>>;
  forwardBackwardAsync(input: LossInput, target: LossTarget, opts?: ForwardBackwardOptions): Promise<ForwardBackwardResult<R>>;
  forwardBackwardAsync(
    input: LossInput,
    target: LossTarget,
    opts?: ForwardBackwardOptions | DeviceForwardBackwardOptions,
  ): Promise<ForwardBackwardResult<R> | DeviceForwardBackwardResult<R>> {
    return this.executeAsync(input, target, true, opts) as Promise<ForwardBackwardResult<R>>;
  }

  /**
   * What this loss's mean reduction ('mean', 'batchmean', 'weightedmean') divides by for this target —
   * the count or weight sum forward would use — from the targets, the loss's weights, ignoreIndex and
   * class-balanced weights alone: no logits, on the CPU. Data-parallel training sums it over the workers
   * and passes the total as every worker's `avgFactor` (docs/semantics.md, "Per-call options"). C comes
   * from the loss's options, else from `opts.inputShape` (a TypeError names what is missing).
   */
  divisor(target: LossTarget, opts?: DivisorOptions): number {
    checkOptions(opts, DIVISOR_OPTIONS);
    if (this.reduction === 'none' || this.reduction === 'sum') {
      throw invalidValue('reduction', "a mean reduction ('mean', 'batchmean', 'weightedmean'): divisor() is what it divides by", this.reduction);
    }
    if (target instanceof DeviceTensor) throw invalidType('target', 'a host array (divisor() reads the targets on the CPU)', target);
    // (a tensor's values once: the loss reads the array they came as)
    const t = readTarget(target);
    const shape = opts?.inputShape === undefined ? this.impliedLogitShape(t) : readInputShape(opts.inputShape);
    const { plan } = this[PREPARE](shape, t.values);
    if (opts?.inputShape === undefined && !isRowLoss(plan.kind) && plan.labels !== null) {
      throw invalidType(
        'opts.inputShape',
        `the input's shape with integer targets of an element-wise loss (0/1 per logit, or one class index per row of ${plan.classes} logits: the input's length tells them apart)`,
        undefined,
      );
    }
    applyCallWeights(plan, opts);
    return planDivisor(plan);
  }

  // The logits a target implies without opts.inputShape: as many as it has values for element or
  // probability targets, C per class index — C from the loss's options (numClasses, or the length of
  // weight, samplesPerCls, …).
  private impliedLogitShape(t: Target): LogitShape {
    if (t.kind === 'float') return new LogitShape(t.values.length, undefined);
    const traits = this[TRAITS]();
    const classes = traits.numClasses ?? traits.vectorLength;
    if (classes === undefined) {
      throw invalidType(
        'numClasses',
        "a number of classes with class-index targets (the loss's numClasses, weight, …, or divisor()'s opts.inputShape [N, C])",
        undefined,
      );
    }
    return new LogitShape(t.values.length * classes, classes);
  }

  /**
   * A loss function for tf.js's `model.compile({ loss })`: `(yTrue, yPred) => per-row losses`, with
   * yPred the logits and yTrue one-hot/probability rows or class indices ([N] or [N, 1]). Returning
   * one loss per row lets `fit`'s classWeight and batch averaging compose (element-wise losses are
   * averaged over each row, like Keras's binary cross-entropy).
   */
  toTfLoss<T extends TfTensor = TfTensor>(): (yTrue: T, yPred: T) => T {
    return (yTrue: T, yPred: T) => {
      const target = tfTarget(yTrue, yPred, this[TRAITS]().indexTargets === true);
      const { loss, rowOutputs } = this.tensorForward(yPred, target, true);
      return (rowOutputs || yPred.shape.length < 2 ? loss : loadTf().mean(loss, -1)) as T;
    };
  }

  private tensorForward(
    input: TensorLike,
    target: LossTarget,
    perRow: boolean,
    opts?: ForwardOptions,
  ): { loss: TfTensor; rowOutputs: boolean } {
    let rowOutputs = true;
    const loss = tensorLoss(input as TfTensor, (x) => {
      const { plan } = this[PREPARE](x, target);
      plan.device = deviceIndex(this.device, plan.logits as Float32Array); // (a tf.js tensor's data: on the host)
      if (perRow) plan.divisor = Divisor.None;
      applyCallWeights(plan, opts);
      const none = plan.divisor === Divisor.None;
      const grad = new Float32Array(plan.logits.length);
      const perElement = none ? new Float32Array(plan.outputLength) : null;
      const reduced = runPlan(plan, 1, perElement, grad);
      rowOutputs = isRowLoss(plan.kind);
      return { perElement, reduced, grad, rowOutputs, rows: plan.rows, classes: plan.classes };
    });
    return { loss, rowOutputs };
  }

  // Validation errors become rejections, but are created here, in the caller's stack.
  private executeAsync(
    input: unknown,
    target: unknown,
    wantGrad: boolean,
    opts: ForwardBackwardOptions | DeviceForwardBackwardOptions | undefined,
  ): Promise<ExecutionResult<R>> {
    try {
      return this.prepareExecution(input, target, wantGrad, opts).runAsync();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private prepareExecution(
    input: unknown,
    target: unknown,
    wantGrad: boolean,
    opts: ForwardBackwardOptions | DeviceForwardBackwardOptions | undefined,
  ): Execution<R> {
    const call = this[PREPARE](input, target);
    const { plan } = call;
    if (wantGrad) {
      checkOptions(opts, CALL_OPTIONS);
      const out: unknown = opts?.out;
      if (typeof out === 'object' && out !== null) checkCallOptionKeys('opts.out', out, OUT_BUFFERS);
    }
    applyCallWeights(plan, opts);
    if (plan.logits instanceof DeviceTensor) return deviceCall(plan, this.device, wantGrad, opts) as Execution<R>;
    if (plan.labels instanceof DeviceTensor || plan.targets instanceof DeviceTensor) {
      throw invalidType('target', 'a host array (the input is not a DeviceTensor)', plan.labels ?? plan.targets);
    }
    plan.device = deviceIndex(this.device, plan.logits);
    const none = plan.divisor === Divisor.None;
    const gradOutput = readGradOutput(opts?.gradOutput, none, plan.outputLength);
    const out = readOut(opts?.out, none, wantGrad, plan);
    // (each of the call's inputs as the caller passed it: the logits and targets before any conversion)
    if (out.grad || out.loss) {
      // (else the outputs are new arrays)
      checkOverlaps(out, {
        logits: call.logits.source,
        labels: plan.labels !== null ? call.target.source : null,
        targets: plan.targets !== null ? call.target.source : null,
        sampleWeight: plan.sampleWeight,
        gradOutput: opts?.gradOutput,
      });
    }

    // (arrays made here are the call's own until it returns: an async call's worker writes them in place)
    const lossOut = none ? (out.loss ?? allocatedByCall(new Float32Array(plan.outputLength))) : null;
    const gradOut = wantGrad ? (out.grad ?? allocatedByCall(new Float32Array(plan.logits.length))) : null;
    const finish = (value: number): ExecutionResult<R> => ({
      loss: (none ? lossOut : value) as LossValue<R>,
      grad: gradOut,
    });
    return {
      run: () => finish(runPlan(plan, gradOutput, lossOut, gradOut)),
      runAsync: () => runPlanAsync(plan, gradOutput, lossOut, gradOut).then(finish),
    };
  }
}

interface ExecutionResult<R extends AnyReduction> {
  loss: LossValue<R> | DeviceTensor;
  grad: Float32Array | DeviceTensor | null;
}

/** A validated call, ready to run synchronously or on a worker thread. */
interface Execution<R extends AnyReduction> {
  run(): ExecutionResult<R>;
  runAsync(): Promise<ExecutionResult<R>>;
}

/**
 * Keras-style yTrue as a target: float32 class indices ([N] or [N, 1]) become an Int32Array; rows
 * of yPred's shape stay probabilities / 0-1 targets, or become indices (their argmax) for losses that
 * take indices only.
 */
function tfTarget(yTrue: TfTensor, yPred: TfTensor, indexTargets: boolean): Int32Array | Float32Array {
  const values = yTrue.dataSync();
  const dense = yTrue.shape.length === yPred.shape.length && yTrue.shape.every((d, i) => d === yPred.shape[i]);
  const C = yPred.shape.length >= 2 ? yPred.shape[yPred.shape.length - 1] : 1;
  if (!dense) {
    const labels = new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isInteger(values[i])) throw invalidElementType('yTrue', i, values[i], 'not an integer class index');
      labels[i] = values[i];
    }
    return labels;
  }
  if (!indexTargets || C < 2) return values instanceof Float32Array ? values : Float32Array.from(values);
  const rows = values.length / C;
  const labels = new Int32Array(rows);
  for (let n = 0; n < rows; n++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (values[n * C + c] > values[n * C + best]) best = c;
    labels[n] = best;
  }
  return labels;
}

/** divisor()'s opts.inputShape: a tensor's shape (non-negative integers), as the logits it stands for. */
function readInputShape(value: unknown): LogitShape {
  if (!Array.isArray(value) || value.length === 0) throw invalidType('opts.inputShape', 'a shape: [N·C] or [N, C]', value);
  let length = 1;
  value.forEach((d: unknown, i) => {
    if (typeof d !== 'number') throw invalidElementType('opts.inputShape', i, d, 'not a number');
    if (!Number.isSafeInteger(d) || d < 0) throw invalidElement('opts.inputShape', i, d, 'not an integer ≥ 0');
    length *= d;
  });
  const dims = value as number[];
  return new LogitShape(length, dims.length >= 2 ? dims[dims.length - 1] : undefined);
}

/** opts: undefined or an object whose keys are all in `allowed` (TypeError otherwise). */
function checkOptions(opts: unknown, allowed: readonly string[]): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null) throw invalidType('opts', `an object { ${allowed.join('?, ')}? }`, opts);
  checkCallOptionKeys('opts', opts, allowed);
}

/** Prepares the target (shared helper for subclasses). */
export function prepareArguments(input: unknown, target: unknown): { logits: Logits; target: Target } {
  return { logits: toLogits(input), target: readTarget(target) };
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

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function sameView(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.byteLength === b.byteLength;
}

// out.grad may be the input itself (in place); any other sharing of memory between the caller's
// arrays and the output buffers would let an output overwrite an input mid-pass: RangeError.
function checkOverlaps(out: OutBuffers, given: Record<CallInput, unknown>): void {
  const inputs: Array<[string, ArrayBufferView]> = [];
  for (const [argument, name] of CALL_INPUTS) {
    const view = given[argument];
    if (ArrayBuffer.isView(view)) inputs.push([name, view]);
  }
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
