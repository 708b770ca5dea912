// Target handling shared by the element-wise losses (BCEWithLogitsLoss, SigmoidFocalLoss): element
// targets of the input's length, or class indices meaning one-hot rows.
import { binaryTargetsFromIntegers, logitCount, toFloatTargets, toLabels } from '../inputs';
import { prepareArguments, type PreparedCall } from '../loss';
import { basePlan, type LossKind } from '../plan';
import { checkElementTargetLength, shapeForElements, shapeForLabels } from '../shape';

/**
 * Builds the plan of an element-wise loss. An integer target with the input's length holds 0/1
 * element targets; any other integer target holds one class index per row (one-hot rows).
 */
export function prepareElementLoss(kind: LossKind, input: unknown, target: unknown, classes?: number): PreparedCall {
  const args = prepareArguments(input, target);
  const M = logitCount(args.logits);
  const known = classes ?? args.logits.classesFromShape;
  const t = args.target;
  if (t.kind === 'integer' && t.values.length !== M) {
    const shape = shapeForLabels(M, known, t.values.length);
    const plan = basePlan(kind, args.logits.data, shape.rows, shape.classes);
    plan.labels = toLabels(t, shape.classes);
    return { plan, ...args };
  }
  checkElementTargetLength(M, t.values.length);
  const shape = shapeForElements(M, known);
  const plan = basePlan(kind, args.logits.data, shape.rows, shape.classes);
  plan.targets = t.kind === 'integer' ? binaryTargetsFromIntegers(t) : toFloatTargets(t);
  return { plan, ...args };
}
