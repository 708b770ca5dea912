// PolyLoss, Poly-1 (Leng et al., ICLR 2022; docs/semantics.md, "Poly-1"): cross-entropy plus ε·(1 − s_y),
// a row loss on class indices with CrossEntropyLoss's ignoreIndex and 'mean' (the count of rows not
// ignored). The math is native/core/losses/poly.h.
import { invalidType } from '../errors';
import { logitCount, toLabels } from '../inputs';
import { Loss, PREPARE, TRAITS, prepareArguments, type BaseLossTraits, type PreparedCall, type Reduction } from '../loss';
import { OptionReader } from '../options';
import { LossKind, Divisor, basePlan } from '../plan';
import { shapeForLabels } from '../shape';
import { COMMON_OPTIONS, REDUCTIONS, divisorFor, readDevice, readNumClasses, type CommonOptions } from './common';

export interface PolyLossOptions<R extends Reduction = Reduction> extends CommonOptions<R> {
  /** ε, the weight of the first polynomial term (1 − s_y): any finite number. Default 1 (the paper also uses −1). */
  epsilon?: number;
  /** Rows whose class index equals this get no loss and no gradient. Default -100. */
  ignoreIndex?: number;
  ignore_index?: number;
}

const OPTIONS = [...COMMON_OPTIONS, ['epsilon'], ['ignoreIndex', 'ignore_index']] as const;

export class PolyLoss<R extends Reduction = 'mean'> extends Loss<R> {
  readonly epsilon: number;
  readonly ignoreIndex: number;
  readonly numClasses: number | undefined;

  constructor(options?: PolyLossOptions<R>) {
    const reader = new OptionReader('PolyLoss', options, OPTIONS);
    super(reader.choice('reduction', 'mean', REDUCTIONS) as R, readDevice(reader));
    this.numClasses = readNumClasses(reader, 1);
    this.epsilon = reader.number('epsilon', 1);
    this.ignoreIndex = reader.number('ignoreIndex', -100, {
      integer: true,
      min: -2147483648,
      max: 2147483647,
      expected: 'a 32-bit integer',
    });
  }

  [TRAITS](): BaseLossTraits {
    return { numClasses: this.numClasses, indexTargets: true };
  }

  [PREPARE](input: unknown, target: unknown, numClasses?: number): PreparedCall {
    const args = prepareArguments(input, target);
    const t = args.target;
    if (t.kind !== 'integer') throw invalidType('target', 'class indices (an integer array) for PolyLoss', t.values);
    const known = numClasses ?? this.numClasses ?? args.logits.classesFromShape;
    const shape = shapeForLabels(logitCount(args.logits), known, t.values.length);
    const plan = basePlan(LossKind.Poly, args.logits.data, shape.rows, shape.classes);
    plan.labels = toLabels(t, shape.classes, this.ignoreIndex);
    plan.ignoreIndex = this.ignoreIndex;
    plan.polyEpsilon = this.epsilon;
    plan.divisor = divisorFor(this.reduction, Divisor.LabelWeight);
    return { plan, ...args };
  }
}
