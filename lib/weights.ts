// Class-balanced weights of Cui et al. (CVPR 2019), in float64 (docs/semantics.md, "Class-balanced
// weights and reductions").
import { invalidType } from './errors';
import { checkNumber, isNumericArrayLike, toFiniteVector } from './options';

/**
 * w_c = (1 − β) / (1 − β^{n_c}) — the inverse of the effective number of samples — normalized so that
 * the weights sum to C. β = 0 gives all ones; β = 1 is the limit, inverse frequency w_c ∝ 1/n_c.
 */
export function classBalancedWeights(samplesPerCls: ArrayLike<number>, beta: number): Float64Array {
  return computeClassBalancedWeights('samplesPerCls', samplesPerCls, 'beta', beta);
}

/** Training samples per class: finite numbers > 0 (TypeError / RangeError naming the element), as float64. */
export function readSampleCounts(name: string, counts: unknown): Float64Array {
  return toFiniteVector(name, counts, { expected: 'an array of sample counts', positive: true });
}

export function computeClassBalancedWeights(
  countsName: string,
  counts: unknown,
  betaName: string,
  beta: unknown,
): Float64Array {
  if (!isNumericArrayLike(counts)) throw invalidType(countsName, 'an array of sample counts', counts);
  const b = checkNumber(betaName, beta, { min: 0, max: 1, expected: 'a number in [0, 1]' });
  const n = readSampleCounts(countsName, counts);
  const C = n.length;
  const weights = new Float64Array(C);
  // 1 − β^n = −expm1(n·log β): exact for β near 1, where 1 − β^n loses digits.
  const logBeta = Math.log(b);
  let sum = 0;
  for (let c = 0; c < C; c++) {
    let w: number;
    if (b === 1) w = 1 / n[c];
    else if (b === 0) w = 1;
    else w = (1 - b) / -Math.expm1(n[c] * logBeta);
    weights[c] = w;
    sum += w;
  }
  for (let c = 0; c < C; c++) weights[c] = (weights[c] / sum) * C;
  return weights;
}
