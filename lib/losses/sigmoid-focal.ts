// torchvision.ops.sigmoid_focal_loss (docs/semantics.md, "Sigmoid focal loss"): element-wise, alpha < 0
// disables alpha_t, default reduction 'none' as in torchvision.
import { Loss, PREPARE, TRAITS, type BaseLossTraits, type PreparedCall, type Reduction } from '../loss';
import { OptionReader } from '../options';
import { LossKind, Divisor } from '../plan';
import { COMMON_OPTIONS, REDUCTIONS, divisorFor, readDevice, readNumClasses, type CommonOptions } from './common';
import { prepareElementLoss } from './element';

export interface SigmoidFocalLossOptions<R extends Reduction = Reduction> extends CommonOptions<R> {
  /** Weight of the positive class in [0, 1]; a negative value disables α_t. Default 0.25. */
  alpha?: number;
  /** Focusing parameter γ ≥ 0. Default 2. */
  gamma?: number;
}

const OPTIONS = [...COMMON_OPTIONS, ['alpha'], ['gamma']] as const;

export class SigmoidFocalLoss<R extends Reduction = 'none'> extends Loss<R> {
  readonly alpha: number;
  readonly gamma: number;
  readonly numClasses: number | undefined;

  constructor(options?: SigmoidFocalLossOptions<R>) {
    const reader = new OptionReader('SigmoidFocalLoss', options, OPTIONS);
    super(reader.choice('reduction', 'none', REDUCTIONS) as R, readDevice(reader));
    this.numClasses = readNumClasses(reader, 1);
    this.alpha = reader.number('alpha', 0.25);
    this.gamma = reader.number('gamma', 2, { min: 0, expected: 'a finite number ≥ 0' });
  }

  [TRAITS](): BaseLossTraits {
    return { numClasses: this.numClasses };
  }

  [PREPARE](input: unknown, target: unknown, numClasses?: number): PreparedCall {
    const call = prepareElementLoss(LossKind.SigmoidFocal, input, target, numClasses ?? this.numClasses);
    call.plan.alphaScalar = this.alpha;
    call.plan.gamma = this.gamma;
    call.plan.divisor = divisorFor(this.reduction, Divisor.Elements);
    return call;
  }
}
