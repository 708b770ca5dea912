// The per-call weights (docs/semantics.md, "Per-call options"): opts.sampleWeight (one weight per row, or
// per logit for element losses) and opts.avgFactor (the divisor of the mean reductions), read onto a
// plan.
import { DeviceTensor } from './device-tensor';
import { invalidLength, invalidType, invalidValue } from './errors';
import { isTensorLike } from './inputs';
import { checkNumber, isNumericArrayLike, toFiniteVector } from './options';
import { Divisor, isRowLoss, type LossPlan } from './plan';

export interface CallWeightOptions {
  /**
   * One finite weight per row (for element losses it scales every element of the row), or for element
   * losses one per element: a number array, a typed array, a tf.js tensor, or (with a DeviceTensor
   * input) a float32 DeviceTensor. It multiplies each output element's loss and gradient after every
   * other weight and leaves the divisor of 'mean' as it is.
   */
  sampleWeight?: ArrayLike<number> | DeviceTensor | { dataSync(): ArrayLike<number> };
  /** The divisor of 'mean' ('batchmean', 'weightedmean'): loss = Σ ℓ / avgFactor. Finite, > 0. */
  avgFactor?: number;
}

/** Reads opts.sampleWeight and opts.avgFactor onto `plan` (RangeError/TypeError before anything runs). */
export function applyCallWeights(plan: LossPlan, opts: CallWeightOptions | undefined): void {
  if (opts === undefined) return;
  if (opts.avgFactor !== undefined) {
    plan.avgFactor = checkNumber('avgFactor', opts.avgFactor, { min: Number.MIN_VALUE, expected: 'a finite number > 0' });
    if (plan.divisor === Divisor.None || plan.divisor === Divisor.One) {
      throw invalidValue('avgFactor', "no value: it is the divisor of the mean reductions, and this loss's reduction is 'none' or 'sum'", opts.avgFactor);
    }
  }
  if (opts.sampleWeight !== undefined) readSampleWeight(plan, opts.sampleWeight);
}

function readSampleWeight(plan: LossPlan, value: unknown): void {
  const rows = plan.rows;
  const elements = plan.rows * plan.classes;
  const perElementAllowed = !isRowLoss(plan.kind);
  const expected = perElementAllowed && elements !== rows ? `${rows} (one per row) or ${elements} (one per element)` : `${rows} (one per row)`;
  const fits = (length: number): boolean => length === rows || (perElementAllowed && length === elements);

  if (value instanceof DeviceTensor) {
    if (!(plan.logits instanceof DeviceTensor)) throw invalidType('sampleWeight', 'host values (the input is not a DeviceTensor)', value);
    if (value.dtype !== 'float32') throw invalidType('sampleWeight', 'a float32 DeviceTensor', value);
    if (!fits(value.length)) throw invalidLength('sampleWeight', expected, value.length);
    plan.sampleWeight = value; // (device-resident weights are used as given: reading them back would cost a transfer)
    plan.sampleWeightPerElement = value.length !== rows;
    return;
  }
  const values: unknown = isTensorLike(value) ? value.dataSync() : value;
  if (!isNumericArrayLike(values)) throw invalidType('sampleWeight', 'an array of numbers (one per row)', value);
  if (!fits(values.length)) throw invalidLength('sampleWeight', expected, values.length);
  plan.sampleWeightPerElement = values.length !== rows;
  // A host call's Float32Array goes to the addon as it is, which finds a non-finite value (a RangeError
  // naming its index, before anything is written) in a vectorized loop: here one cost as much as the
  // loss at N = 1M. (Weights that go to a device are checked here: the device path does not look.)
  if (values instanceof Float32Array && !(plan.logits instanceof DeviceTensor)) {
    plan.sampleWeight = values;
    return;
  }
  plan.sampleWeight = Float32Array.from(toFiniteVector('sampleWeight', values));
}
