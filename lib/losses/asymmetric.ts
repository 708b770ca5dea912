// AsymmetricLoss (ASL, Ridnik et al., ICCV 2021; docs/semantics.md, "Asymmetric loss"): an element loss
// for multi-label data — focusing γ₊ on positives, γ₋ on negatives, whose probability is shifted by
// `clip`. Targets as BCEWithLogitsLoss (0/1 or soft per element, or class indices meaning one-hot rows).
// The math is native/core/losses/asymmetric.h.
import { invalidValue } from '../errors';
import { Loss, PREPARE, TRAITS, type BaseLossTraits, type PreparedCall, type Reduction } from '../loss';
import { OptionReader } from '../options';
import { LossKind, Divisor } from '../plan';
import { COMMON_OPTIONS, REDUCTIONS, divisorFor, readDevice, readNumClasses, type CommonOptions } from './common';
import { prepareElementLoss } from './element';

export interface AsymmetricLossOptions<R extends Reduction = Reduction> extends CommonOptions<R> {
  /** γ₊ ≥ 0, focusing of the positive term. Default 1. */
  gammaPos?: number;
  gamma_pos?: number;
  /** γ₋ ≥ 0, focusing of the negative term. Default 4. */
  gammaNeg?: number;
  gamma_neg?: number;
  /** Probability shift of the negatives, in [0, 1). Default 0.05. */
  clip?: number;
  /** Hold the focusing factor constant in the gradient (the reference code's disable_torch_grad_focal_loss). Default false. */
  detachFocusing?: boolean;
  detach_focusing?: boolean;
}

const OPTIONS = [
  ...COMMON_OPTIONS,
  ['gammaPos', 'gamma_pos'],
  ['gammaNeg', 'gamma_neg'],
  ['clip'],
  ['detachFocusing', 'detach_focusing'],
] as const;

export class AsymmetricLoss<R extends Reduction = 'mean'> extends Loss<R> {
  readonly gammaPos: number;
  readonly gammaNeg: number;
  readonly clip: number;
  readonly detachFocusing: boolean;
  readonly numClasses: number | undefined;

  constructor(options?: AsymmetricLossOptions<R>) {
    const reader = new OptionReader('AsymmetricLoss', options, OPTIONS);
    super(reader.choice('reduction', 'mean', REDUCTIONS) as R, readDevice(reader));
    this.numClasses = readNumClasses(reader, 1);
    const gamma = { min: 0, expected: 'a finite number ≥ 0' };
    this.gammaPos = reader.number('gammaPos', 1, gamma);
    this.gammaNeg = reader.number('gammaNeg', 4, gamma);
    this.clip = reader.number('clip', 0.05, { min: 0, expected: 'a number in [0, 1)' });
    if (this.clip >= 1) throw invalidValue(reader.nameOf('clip'), 'a number in [0, 1)', this.clip);
    this.detachFocusing = reader.boolean('detachFocusing', false);
  }

  [TRAITS](): BaseLossTraits {
    return { numClasses: this.numClasses };
  }

  [PREPARE](input: unknown, target: unknown, numClasses?: number): PreparedCall {
    const call = prepareElementLoss(LossKind.Asymmetric, input, target, numClasses ?? this.numClasses);
    const { plan } = call;
    plan.gammaPos = this.gammaPos;
    plan.gammaNeg = this.gammaNeg;
    plan.clip = this.clip;
    plan.detachFocusing = this.detachFocusing;
    plan.divisor = divisorFor(this.reduction, Divisor.Elements);
    return call;
  }
}
