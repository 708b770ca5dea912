// Class-Balanced Loss (Cui et al., CVPR 2019; Python cbloss, generalized; docs/semantics.md,
// "Class-balanced weights and reductions"): a base loss of this package (reduction 'none') weighted by
// the inverse effective number of samples of each class.
import { describe, invalidLength, invalidType } from '../errors';
import { Loss, PREPARE, TRAITS, type BaseLossTraits, type PreparedCall } from '../loss';
import { OptionReader } from '../options';
import { Balance, Divisor, isRowLoss } from '../plan';
import { computeClassBalancedWeights } from '../weights';
import { readDevice, type CommonOptions } from './common';

export type ClassBalancedReduction = 'none' | 'mean' | 'sum' | 'batchmean' | 'weightedmean';

export interface ClassBalancedLossOptions<R extends ClassBalancedReduction = ClassBalancedReduction>
  extends CommonOptions<R> {
  /** Training samples per class (length C, each a finite number > 0). */
  samplesPerCls?: ArrayLike<number>;
  samples_per_cls?: ArrayLike<number>;
  /** β in [0, 1]: 0 gives no re-weighting, 1 inverse frequency. */
  beta?: number;
  /** The base loss: a loss of this package with reduction 'none'. */
  lossFunc?: Loss<'none'>;
  loss_func?: Loss<'none'>;
  /**
   * 'row' (default): the base loss of row n times w_n = Σ_c ŵ_c t_nc. 'class': element (n, c) of an
   * element-wise base loss times ŵ_c (multi-label data). Same as 'row' for softmax losses.
   */
  weighting?: 'row' | 'class';
}

const OPTIONS = [
  ['reduction'],
  ['device'],
  ['numClasses', 'num_classes'],
  ['samplesPerCls', 'samples_per_cls'],
  ['beta'],
  ['lossFunc', 'loss_func'],
  ['weighting'],
] as const;

const CB_REDUCTIONS: readonly ClassBalancedReduction[] = ['none', 'mean', 'sum', 'batchmean', 'weightedmean'];

export class ClassBalancedLoss<R extends ClassBalancedReduction = 'mean'> extends Loss<R> {
  readonly numClasses: number;
  readonly beta: number;
  /** ŵ: the normalized class-balanced weights (sum C). */
  readonly weights: Float64Array;
  readonly lossFunc: Loss<'none'>;
  readonly weighting: 'row' | 'class';

  constructor(options: ClassBalancedLossOptions<R>) {
    const reader = new OptionReader('ClassBalancedLoss', options, OPTIONS);
    super(reader.choice('reduction', 'mean', CB_REDUCTIONS) as R, readDevice(reader));
    reader.required('samplesPerCls', 'the number of training samples of each class');
    reader.required('beta', 'a number in [0, 1]');
    reader.required('numClasses', 'an integer ≥ 1');
    const base = reader.required('lossFunc', "a loss of this package with reduction 'none'");
    this.numClasses = reader.number('numClasses', 0, { integer: true, min: 1, expected: 'an integer ≥ 1' });
    this.weighting = reader.choice('weighting', 'row', ['row', 'class'] as const);
    const countsName = reader.nameOf('samplesPerCls');
    this.weights = computeClassBalancedWeights(countsName, reader.raw('samplesPerCls'), 'beta', reader.raw('beta'));
    this.beta = reader.raw('beta') as number;
    if (this.weights.length !== this.numClasses) {
      throw invalidLength(countsName, `${this.numClasses} (numClasses)`, this.weights.length);
    }

    const lossName = reader.nameOf('lossFunc');
    if (!(base instanceof Loss) || base instanceof ClassBalancedLoss) {
      throw invalidType(lossName, "a loss of this package (e.g. new FocalLoss({ ..., reduction: 'none' }))", base);
    }
    if (base.reduction !== 'none') {
      throw new RangeError(
        `Expected reduction 'none' for ${lossName} but received ${describe(base.reduction)}: ` +
          'ClassBalancedLoss weights the per-element losses itself',
      );
    }
    const traits: BaseLossTraits = base[TRAITS]();
    if (traits.numClasses !== undefined && traits.numClasses !== this.numClasses) {
      throw new RangeError(
        `Expected numClasses ${this.numClasses} for ${lossName} (the ClassBalancedLoss's numClasses) ` +
          `but received ${traits.numClasses}`,
      );
    }
    if (traits.vectorLength !== undefined && traits.vectorLength !== this.numClasses) {
      throw invalidLength(`${lossName}.${traits.vectorName}`, `${this.numClasses} (numClasses)`, traits.vectorLength);
    }
    this.lossFunc = base as Loss<'none'>;
  }

  [TRAITS](): BaseLossTraits {
    return { numClasses: this.numClasses, indexTargets: this.lossFunc[TRAITS]().indexTargets };
  }

  [PREPARE](input: unknown, target: unknown): PreparedCall {
    const call = this.lossFunc[PREPARE](input, target, this.numClasses);
    const { plan } = call;
    plan.balanceWeight = this.weights;
    const elementWise = !isRowLoss(plan.kind);
    plan.balance = this.weighting === 'class' && elementWise ? Balance.Column : Balance.Row;
    plan.divisor = CB_DIVISORS[this.reduction];
    return call;
  }
}

const CB_DIVISORS: Record<ClassBalancedReduction, Divisor> = {
  none: Divisor.None,
  sum: Divisor.One,
  mean: Divisor.Elements,
  batchmean: Divisor.Rows,
  weightedmean: Divisor.BalanceWeight,
};
