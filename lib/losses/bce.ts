// PyTorch nn.BCEWithLogitsLoss with per-class weight and posWeight (docs/semantics.md, "BCE with logits").
import { Loss, PREPARE, TRAITS, type BaseLossTraits, type PreparedCall, type Reduction } from '../loss';
import { OptionReader } from '../options';
import { LossKind, Divisor } from '../plan';
import { checkClassVector } from '../shape';
import { COMMON_OPTIONS, REDUCTIONS, divisorFor, readDevice, readNumClasses, type CommonOptions } from './common';
import { prepareElementLoss } from './element';

export interface BCEWithLogitsLossOptions<R extends Reduction = Reduction> extends CommonOptions<R> {
  /** Per-class weights (length C), broadcast over rows. */
  weight?: ArrayLike<number>;
  /** Per-class weights of the positive term (length C). */
  posWeight?: ArrayLike<number>;
  pos_weight?: ArrayLike<number>;
}

const OPTIONS = [...COMMON_OPTIONS, ['weight'], ['posWeight', 'pos_weight']] as const;

export class BCEWithLogitsLoss<R extends Reduction = 'mean'> extends Loss<R> {
  readonly weight: Float64Array | undefined;
  readonly posWeight: Float64Array | undefined;
  readonly numClasses: number | undefined;

  constructor(options?: BCEWithLogitsLossOptions<R>) {
    const reader = new OptionReader('BCEWithLogitsLoss', options, OPTIONS);
    super(reader.choice('reduction', 'mean', REDUCTIONS) as R, readDevice(reader));
    this.numClasses = readNumClasses(reader, 1);
    this.weight = reader.vector('weight');
    this.posWeight = reader.vector('posWeight');
    const C = this.numClasses ?? this.weight?.length;
    if (C !== undefined) {
      checkClassVector(reader.nameOf('weight'), this.weight, C);
      checkClassVector(reader.nameOf('posWeight'), this.posWeight, C);
    }
  }

  [TRAITS](): BaseLossTraits {
    const vector = this.weight ? 'weight' : 'posWeight';
    return { numClasses: this.numClasses, vectorLength: (this.weight ?? this.posWeight)?.length, vectorName: vector };
  }

  [PREPARE](input: unknown, target: unknown, numClasses?: number): PreparedCall {
    const classes = numClasses ?? this.numClasses ?? this.weight?.length ?? this.posWeight?.length;
    const call = prepareElementLoss(LossKind.BCEWithLogits, input, target, classes);
    const { plan } = call;
    checkClassVector('weight', this.weight, plan.classes);
    checkClassVector('posWeight', this.posWeight, plan.classes);
    plan.classWeight = this.weight ?? null;
    plan.posWeight = this.posWeight ?? null;
    plan.divisor = divisorFor(this.reduction, Divisor.Elements);
    return call;
  }
}
