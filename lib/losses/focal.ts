// Python cbloss FocalLoss (docs/semantics.md, "Focal loss"): binary (element-wise, numClasses 2) and
// softmax forms, the stable gradient of math.h's focal_factor, scalar α or (an extension) a per-class α
// vector.
import { invalidLength, invalidType, invalidValue } from '../errors';
import { binaryTargetsFromIntegers, logitCount, toFloatTargets, toLabels } from '../inputs';
import {
  Loss,
  PREPARE,
  TRAITS,
  prepareArguments,
  type BaseLossTraits,
  type PreparedCall,
  type Reduction,
} from '../loss';
import { OptionReader, checkNumber, isNumericArrayLike, toFiniteVector, type OptionName } from '../options';
import { LossKind, Divisor, basePlan, type LossPlan } from '../plan';
import { checkElementTargetLength, shapeForLabels } from '../shape';
import { COMMON_OPTIONS, REDUCTIONS, divisorFor, readDevice, readNumClasses, type CommonOptions } from './common';
import { LOGIT_MAP_OPTIONS, applyLogitMap, checkLogitMapLengths, mapsLogits, readLogitMap, type LogitMap, type LogitMapOptions } from './logit-map';

/**
 * The logit map (logitBias, margin, scale; docs/semantics.md, "Logit maps") applies to the softmax form;
 * with numClasses 2 it selects the two-class softmax form (class-index targets, two logits a row).
 */
export interface FocalLossOptions<R extends Reduction = Reduction> extends CommonOptions<R>, LogitMapOptions {
  /** C ≥ 2 (required). 2 selects the binary form for element targets. */
  numClasses?: number;
  /** α: a number (default 1), or per class (length C; length 2 for the binary form: [α₀, α₁]). */
  alpha?: number | ArrayLike<number>;
  /** Focusing parameter γ ≥ 0. Default 2. */
  gamma?: number;
}

const OPTIONS: readonly OptionName[] = [...COMMON_OPTIONS, ['alpha'], ['gamma'], ...LOGIT_MAP_OPTIONS];

export class FocalLoss<R extends Reduction = 'mean'> extends Loss<R> {
  readonly numClasses: number;
  readonly alpha: number | Float64Array;
  readonly gamma: number;
  private readonly logitMap: LogitMap;

  constructor(options: FocalLossOptions<R>) {
    const reader = new OptionReader('FocalLoss', options, OPTIONS);
    super(reader.choice('reduction', 'mean', REDUCTIONS) as R, readDevice(reader));
    reader.required('numClasses', 'an integer ≥ 2');
    this.numClasses = readNumClasses(reader, 2) as number;
    this.gamma = reader.number('gamma', 2, { min: 0, expected: 'a finite number ≥ 0' });
    this.logitMap = readLogitMap(reader);
    checkLogitMapLengths(this.logitMap, this.numClasses);
    const alpha = reader.raw('alpha');
    const alphaName = reader.nameOf('alpha');
    if (alpha === undefined) {
      this.alpha = 1;
    } else if (isNumericArrayLike(alpha)) {
      const vector = toFiniteVector(alphaName, alpha);
      if (vector.length !== this.numClasses) {
        throw invalidLength(alphaName, `${this.numClasses} (one per class)`, vector.length);
      }
      this.alpha = vector;
    } else if (typeof alpha === 'number') {
      this.alpha = checkNumber(alphaName, alpha);
    } else {
      throw invalidType(alphaName, 'a number or an array of numbers (one per class)', alpha);
    }
  }

  [TRAITS](): BaseLossTraits {
    return {
      numClasses: this.numClasses,
      indexTargets: true,
      vectorLength: typeof this.alpha === 'number' ? undefined : this.alpha.length,
      vectorName: 'alpha',
    };
  }

  [PREPARE](input: unknown, target: unknown, numClasses?: number): PreparedCall {
    const args = prepareArguments(input, target);
    const M = logitCount(args.logits);
    const C = numClasses ?? this.numClasses;
    const t = args.target;
    let plan: LossPlan;
    // Binary form: one logit per element, element targets (float, or integer 0/1). A logit map selects
    // the two-class softmax form (docs/semantics.md, "Logit maps"): binary element targets are then a
    // TypeError.
    const mapped = mapsLogits(this.logitMap);
    const binary = C === 2 && !mapped && (t.kind === 'float' || t.values.length === M);
    if (mapped && C === 2 && (t.kind === 'float' || t.values.length === M)) {
      throw invalidType('target', 'class indices, one per row of 2 logits (a logit map selects the two-class softmax form)', t.values);
    }
    if (binary) {
      checkElementTargetLength(M, t.values.length);
      plan = basePlan(LossKind.FocalBinary, args.logits.data, M, 1);
      plan.targets = t.kind === 'integer' ? binaryTargetsFromIntegers(t) : toFloatTargets(t);
    } else {
      if (t.kind !== 'integer') {
        throw invalidType('target', `class indices (an integer array) for FocalLoss with numClasses ${C}`, t.values);
      }
      if (C === 2 && t.values.length * 2 !== M) {
        throw invalidLength('target', `${M} (binary: one target per logit) or ${M / 2} (one class index per row of 2)`, t.values.length);
      }
      const shape = shapeForLabels(M, C, t.values.length);
      plan = basePlan(LossKind.FocalSoftmax, args.logits.data, shape.rows, shape.classes);
      plan.labels = toLabels(t, C);
    }
    if (typeof this.alpha === 'number') {
      plan.alphaScalar = this.alpha;
    } else {
      if (this.alpha.length !== C) throw invalidValue('alpha', `${C} values`, this.alpha);
      plan.alpha = this.alpha;
    }
    plan.gamma = this.gamma;
    plan.divisor = divisorFor(this.reduction, Divisor.Elements);
    if (!binary) applyLogitMap(plan, this.logitMap);
    return { plan, ...args };
  }
}
