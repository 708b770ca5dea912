// PyTorch nn.CrossEntropyLoss: class weights, ignoreIndex, label smoothing, index or probability
// targets, and the logit map (logitBias, margin, scale); docs/semantics.md, "Cross entropy" and
// "Logit maps".
import { invalidLength, invalidType } from '../errors';
import { logitCount, toFloatTargets, toLabels } from '../inputs';
import { Loss, PREPARE, TRAITS, prepareArguments, type BaseLossTraits, type PreparedCall, type Reduction } from '../loss';
import { OptionReader } from '../options';
import { LossKind, Divisor, basePlan } from '../plan';
import { checkClassVector, checkElementTargetLength, shapeForElements, shapeForLabels } from '../shape';
import { COMMON_OPTIONS, REDUCTIONS, divisorFor, readDevice, readNumClasses, type CommonOptions } from './common';
import { LOGIT_MAP_OPTIONS, applyLogitMap, checkLogitMapLengths, logitMapClasses, readLogitMap, type LogitMap, type LogitMapOptions } from './logit-map';

export interface CrossEntropyLossOptions<R extends Reduction = Reduction> extends CommonOptions<R>, LogitMapOptions {
  /** Per-class weights (length C). */
  weight?: ArrayLike<number>;
  /** Rows whose class index equals this get no loss and no gradient. Default -100. */
  ignoreIndex?: number;
  ignore_index?: number;
  /** ε in [0, 1]: the target mixes (1 − ε)·onehot with ε/C uniform. Default 0. */
  labelSmoothing?: number;
  label_smoothing?: number;
}

/** CrossEntropyLoss's options, without the logit map's (BalancedSoftmaxLoss and LDAMLoss set part of it). */
export const CROSS_ENTROPY_OPTIONS = [...COMMON_OPTIONS, ['weight'], ['ignoreIndex', 'ignore_index'], ['labelSmoothing', 'label_smoothing']] as const;
const OPTIONS = [...CROSS_ENTROPY_OPTIONS, ...LOGIT_MAP_OPTIONS];

export class CrossEntropyLoss<R extends Reduction = 'mean'> extends Loss<R> {
  readonly weight: Float64Array | undefined;
  readonly ignoreIndex: number;
  readonly labelSmoothing: number;
  readonly numClasses: number | undefined;
  /** The logit map (absent parts undefined; scale 1 when not given). */
  readonly logitBias: Float64Array | undefined;
  readonly margin: Float64Array | undefined;
  readonly scale: number;
  private readonly logitMap: LogitMap;

  constructor(options?: CrossEntropyLossOptions<R>) {
    const reader = new OptionReader(new.target.name, options, OPTIONS);
    super(reader.choice('reduction', 'mean', REDUCTIONS) as R, readDevice(reader));
    this.numClasses = readNumClasses(reader, 1);
    this.weight = reader.vector('weight');
    this.ignoreIndex = reader.number('ignoreIndex', -100, {
      integer: true,
      min: -2147483648,
      max: 2147483647,
      expected: 'a 32-bit integer',
    });
    this.labelSmoothing = reader.number('labelSmoothing', 0, { min: 0, max: 1, expected: 'a number in [0, 1]' });
    this.logitMap = readLogitMap(reader);
    this.logitBias = this.logitMap.bias;
    this.margin = this.logitMap.margin;
    this.scale = this.logitMap.scale;
    const classes = this.numClasses ?? this.weight?.length;
    if (classes !== undefined) {
      checkClassVector(reader.nameOf('weight'), this.weight, classes);
      checkLogitMapLengths(this.logitMap, classes);
    } else if (this.logitMap.bias && this.logitMap.margin) {
      checkLogitMapLengths(this.logitMap, this.logitMap.bias.length);
    }
  }

  [TRAITS](): BaseLossTraits {
    const mapLength = logitMapClasses(this.logitMap);
    return {
      numClasses: this.numClasses,
      vectorLength: this.weight?.length ?? mapLength,
      vectorName: this.weight ? 'weight' : this.logitMap.bias ? this.logitMap.biasName : this.logitMap.marginName,
    };
  }

  [PREPARE](input: unknown, target: unknown, numClasses?: number): PreparedCall {
    const args = prepareArguments(input, target);
    const M = logitCount(args.logits);
    const known = numClasses ?? this.numClasses ?? this.weight?.length ?? logitMapClasses(this.logitMap) ?? args.logits.classesFromShape;
    const t = args.target;

    let plan;
    if (t.kind === 'integer') {
      const shape = shapeForLabels(M, known, t.values.length);
      plan = basePlan(LossKind.CrossEntropy, args.logits.data, shape.rows, shape.classes);
      plan.labels = toLabels(t, shape.classes, this.ignoreIndex);
    } else {
      if (known === undefined) {
        throw invalidType(
          'numClasses',
          'a number of classes (numClasses or weight) with probability targets',
          undefined,
        );
      }
      const shape = shapeForElements(M, known);
      if (t.values.length === shape.rows && shape.classes > 1) {
        throw invalidType('target', `class indices as an integer array (length ${shape.rows}), or probabilities of length ${M}`, t.values);
      }
      checkElementTargetLength(M, t.values.length);
      plan = basePlan(LossKind.CrossEntropy, args.logits.data, shape.rows, shape.classes);
      plan.targets = toFloatTargets(t);
    }
    if (this.weight && this.weight.length !== plan.classes) {
      throw invalidLength('weight', `${plan.classes} (one per class)`, this.weight.length);
    }
    plan.classWeight = this.weight ?? null;
    plan.ignoreIndex = this.ignoreIndex;
    plan.labelSmoothing = this.labelSmoothing;
    plan.divisor = divisorFor(this.reduction, Divisor.LabelWeight);
    applyLogitMap(plan, this.logitMap);
    return { plan, ...args };
  }
}
