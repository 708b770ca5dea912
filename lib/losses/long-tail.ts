// Balanced Softmax (Ren et al., NeurIPS 2020) and LDAM (Cao et al., NeurIPS 2019): CrossEntropyLoss with
// the logit map made from the class counts (docs/semantics.md, "Logit maps"). Reference code:
//   Balanced Softmax: F.cross_entropy(logits + log(counts).unsqueeze(0), y)        (τ = 1)
//   LDAM: LDAMLoss(cls_num_list, max_m=0.5, s=30, weight) — x_m = x − m[y] at the target, then
//         F.cross_entropy(s · x_m, y, weight)
import { invalidLength } from '../errors';
import type { Reduction } from '../loss';
import { OptionReader } from '../options';
import { CROSS_ENTROPY_OPTIONS, CrossEntropyLoss, type CrossEntropyLossOptions } from './cross-entropy';
import { computeLdamMargins, computeLogitAdjustment } from './logit-map';

/** Everything CrossEntropyLoss takes, but the part of the logit map the loss sets itself. */
type BaseOptions<R extends Reduction> = Omit<CrossEntropyLossOptions<R>, 'logitBias' | 'logit_bias' | 'margin' | 'scale'>;

export interface BalancedSoftmaxLossOptions<R extends Reduction = Reduction> extends BaseOptions<R> {
  /** Training samples per class (length C, each finite > 0): C, and the bias τ·log(n_c / Σ n). */
  samplesPerCls: ArrayLike<number>;
  samples_per_cls?: ArrayLike<number>;
  /** τ: the bias is τ·log π_c (logit adjustment); 1 is Balanced Softmax. Default 1. */
  tau?: number;
  /** An extra scale s > 0 of the adjusted logits. Default 1. */
  scale?: number;
}

export interface LDAMLossOptions<R extends Reduction = Reduction> extends BaseOptions<R> {
  /** Training samples per class (length C, each finite > 0): C, and the margins. */
  samplesPerCls: ArrayLike<number>;
  samples_per_cls?: ArrayLike<number>;
  /** The rarest class's margin; m_c ∝ n_c^(−1/4). Default 0.5 (`max_m`). */
  maxMargin?: number;
  max_m?: number;
  /** s > 0, the scale of the logits (`s`). Default 30. */
  scale?: number;
  /** A logit bias on top of the margins (e.g. logit adjustment). */
  logitBias?: ArrayLike<number>;
  logit_bias?: ArrayLike<number>;
}

/** The counts' name and values, and the CrossEntropyLoss options the rest of `options` gives. */
function splitOptions(
  owner: string,
  options: unknown,
  own: ReadonlyArray<readonly [string, string?]>,
): { reader: OptionReader; base: Record<string, unknown> } {
  const reader = new OptionReader(owner, options, [...CROSS_ENTROPY_OPTIONS, ['samplesPerCls', 'samples_per_cls'], ...own]);
  reader.required('samplesPerCls', 'the number of training samples of each class');
  const base: Record<string, unknown> = {};
  for (const [camel] of CROSS_ENTROPY_OPTIONS) if (reader.has(camel)) base[camel] = reader.raw(camel);
  return { reader, base };
}

/** C comes from the counts: a numClasses that differs is a RangeError. */
function checkClasses(reader: OptionReader, classes: number): void {
  const given = reader.raw('numClasses');
  if (typeof given === 'number' && given !== classes) {
    throw invalidLength(reader.nameOf('samplesPerCls'), `${given} (numClasses)`, classes);
  }
}

/**
 * Balanced Softmax (Ren et al., NeurIPS 2020), and logit adjustment (Menon et al., ICLR 2021) for τ ≠ 1:
 * CrossEntropyLoss with logitBias = logitAdjustment(samplesPerCls, τ).
 */
export class BalancedSoftmaxLoss<R extends Reduction = 'mean'> extends CrossEntropyLoss<R> {
  readonly samplesPerCls: Float64Array;
  readonly tau: number;

  constructor(options: BalancedSoftmaxLossOptions<R>) {
    const { reader, base } = splitOptions('BalancedSoftmaxLoss', options, [['tau'], ['scale']]);
    const tau = reader.number('tau', 1);
    const bias = computeLogitAdjustment(reader.nameOf('samplesPerCls'), reader.raw('samplesPerCls'), reader.nameOf('tau'), tau);
    checkClasses(reader, bias.length);
    super({ ...base, logitBias: bias, ...(reader.has('scale') ? { scale: reader.raw('scale') as number } : {}) });
    this.samplesPerCls = Float64Array.from(reader.raw('samplesPerCls') as ArrayLike<number>);
    this.tau = tau;
  }
}

/**
 * LDAM (Cao et al., NeurIPS 2019): CrossEntropyLoss with margin = ldamMargins(samplesPerCls, maxMargin)
 * and scale s (30). For LDAM-DRW, train with `weight` unset, then switch to a loss with
 * `weight: classBalancedWeights(samplesPerCls, 0.9999)` for the last epochs.
 */
export class LDAMLoss<R extends Reduction = 'mean'> extends CrossEntropyLoss<R> {
  readonly samplesPerCls: Float64Array;
  readonly maxMargin: number;

  constructor(options: LDAMLossOptions<R>) {
    const { reader, base } = splitOptions('LDAMLoss', options, [['maxMargin', 'max_m'], ['scale'], ['logitBias', 'logit_bias']]);
    const maxMargin = reader.number('maxMargin', 0.5, { min: 0, expected: 'a finite number ≥ 0' });
    const margin = computeLdamMargins(reader.nameOf('samplesPerCls'), reader.raw('samplesPerCls'), reader.nameOf('maxMargin'), maxMargin);
    checkClasses(reader, margin.length);
    super({
      ...base,
      margin,
      scale: reader.has('scale') ? (reader.raw('scale') as number) : 30,
      ...(reader.has('logitBias') ? { logitBias: reader.raw('logitBias') as ArrayLike<number> } : {}),
    });
    this.samplesPerCls = Float64Array.from(reader.raw('samplesPerCls') as ArrayLike<number>);
    this.maxMargin = maxMargin;
  }
}
