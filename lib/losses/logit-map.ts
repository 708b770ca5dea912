// The logit maps (docs/semantics.md, "Logit maps") of the softmax losses (CrossEntropyLoss, the softmax
// FocalLoss): z' = scale·(z + logitBias − margin[y]·e_y), evaluated inside the fused pass
// (native/core/logit_map.h), and the helpers that make logit adjustment (Menon et al.), Balanced Softmax
// (Ren et al.) and LDAM (Cao et al.) from the class counts.
import { invalidLength, invalidType } from '../errors';
import { OptionReader, checkNumber, type OptionName } from '../options';
import { readSampleCounts } from '../weights';
import type { LossPlan } from '../plan';

export const LOGIT_MAP_OPTIONS: readonly OptionName[] = [['logitBias', 'logit_bias'], ['margin'], ['scale']];

export interface LogitMapOptions {
  /** b (length C), added to every row: z' = z + b. Logit adjustment: `logitAdjustment(counts, τ)`. */
  logitBias?: ArrayLike<number>;
  logit_bias?: ArrayLike<number>;
  /** m (length C), subtracted from the target class's logit (LDAM: `ldamMargins(counts)`). Class indices only. */
  margin?: ArrayLike<number>;
  /** s > 0: z' = s·(z + b − m_y·e_y); the gradient is s·∂ℓ/∂z'. Default 1. */
  scale?: number;
}

/** A loss's logit map as read from its options (absent parts undefined; scale 1 when not given). */
export interface LogitMap {
  bias?: Float64Array;
  biasName: string;
  margin?: Float64Array;
  marginName: string;
  scale: number;
}

export function readLogitMap(reader: OptionReader): LogitMap {
  return {
    bias: reader.vector('logitBias'),
    biasName: reader.nameOf('logitBias'),
    margin: reader.vector('margin'),
    marginName: reader.nameOf('margin'),
    scale: reader.number('scale', 1, { min: Number.MIN_VALUE, expected: 'a finite number > 0' }),
  };
}

/** Whether the map does anything. */
export function mapsLogits(map: LogitMap): boolean {
  return map.bias !== undefined || map.margin !== undefined || map.scale !== 1;
}

/** C as the map's vectors tell it (like `weight`: docs/semantics.md, "Shapes and targets"), or undefined. */
export function logitMapClasses(map: LogitMap): number | undefined {
  return map.bias?.length ?? map.margin?.length;
}

/** The map's vectors must have one value per class. */
export function checkLogitMapLengths(map: LogitMap, classes: number): void {
  if (map.bias && map.bias.length !== classes) throw invalidLength(map.biasName, `${classes} (one per class)`, map.bias.length);
  if (map.margin && map.margin.length !== classes) {
    throw invalidLength(map.marginName, `${classes} (one per class)`, map.margin.length);
  }
}

/** Puts the map on a softmax plan (after its shape is known). A margin needs class indices. */
export function applyLogitMap(plan: LossPlan, map: LogitMap): void {
  if (!mapsLogits(map)) return;
  checkLogitMapLengths(map, plan.classes);
  if (map.margin && !plan.labels) {
    throw invalidType('target', `class indices (an integer array): ${map.marginName} applies to the target class`, plan.targets);
  }
  plan.logitBias = map.bias ?? null;
  plan.margin = map.margin ?? null;
  plan.logitScale = map.scale;
}

/**
 * Logit adjustment (Menon et al., ICLR 2021): b_c = τ·log(n_c / Σ_j n_j), in float64. As `logitBias`
 * with τ = 1 it is Balanced Softmax (Ren et al., NeurIPS 2020).
 */
export function logitAdjustment(samplesPerCls: ArrayLike<number>, tau = 1): Float64Array {
  return computeLogitAdjustment('samplesPerCls', samplesPerCls, 'tau', tau);
}

export function computeLogitAdjustment(countsName: string, counts: unknown, tauName: string, tau: unknown): Float64Array {
  const n = readSampleCounts(countsName, counts);
  const t = checkNumber(tauName, tau);
  let total = 0;
  for (const v of n) total += v;
  return n.map((v) => t * Math.log(v / total));
}

/**
 * LDAM margins (Cao et al., NeurIPS 2019): m_c = maxMargin·n_c^(−1/4) / max_j n_j^(−1/4), in float64 —
 * the rarest class gets maxMargin.
 */
export function ldamMargins(samplesPerCls: ArrayLike<number>, maxMargin = 0.5): Float64Array {
  return computeLdamMargins('samplesPerCls', samplesPerCls, 'maxMargin', maxMargin);
}

export function computeLdamMargins(countsName: string, counts: unknown, maxName: string, maxMargin: unknown): Float64Array {
  const n = readSampleCounts(countsName, counts);
  const top = checkNumber(maxName, maxMargin, { min: 0, expected: 'a finite number ≥ 0' });
  const quarter = n.map((v) => Math.pow(v, -0.25));
  let largest = 0;
  for (const q of quarter) largest = Math.max(largest, q);
  return quarter.map((q) => (top * q) / largest);
}
