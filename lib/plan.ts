// A LossPlan is what a loss object turns (input, target) into after validation: the exact native
// problem (mirrors cbloss::Problem in native/core/problem.h), ready to run on a backend.
import type { DeviceTensor } from './device-tensor';

/** cbloss::LossKind (native/core/loss_kinds.h). */
export const LossKind = {
  CrossEntropy: 0,
  BCEWithLogits: 1,
  FocalSoftmax: 2,
  FocalBinary: 3,
  SigmoidFocal: 4,
  Poly: 5,
  Asymmetric: 6,
} as const;
export type LossKind = (typeof LossKind)[keyof typeof LossKind];

/** What lib/ needs to know of each kind: the rows of native/core/loss_kinds.h's table. */
export interface LossKindTraits {
  name: keyof typeof LossKind;
  /** 'row': one output per row (softmax over the row); 'element': one output per logit. */
  family: 'row' | 'element';
  indexTargets: boolean;
  probabilityTargets: boolean;
  ignoreIndex: boolean;
  labelSmoothing: boolean;
}

/**
 * Every kind's traits (a Record over LossKind: a kind missing here does not compile). lib/native.ts
 * compares this table with the addon's (abi().lossKinds) when it loads the addon.
 */
export const LOSS_KIND_TRAITS: Readonly<Record<LossKind, LossKindTraits>> = {
  [LossKind.CrossEntropy]: { name: 'CrossEntropy', family: 'row', indexTargets: true, probabilityTargets: true, ignoreIndex: true, labelSmoothing: true },
  [LossKind.BCEWithLogits]: { name: 'BCEWithLogits', family: 'element', indexTargets: true, probabilityTargets: true, ignoreIndex: false, labelSmoothing: false },
  [LossKind.FocalSoftmax]: { name: 'FocalSoftmax', family: 'row', indexTargets: true, probabilityTargets: false, ignoreIndex: false, labelSmoothing: false },
  [LossKind.FocalBinary]: { name: 'FocalBinary', family: 'element', indexTargets: false, probabilityTargets: true, ignoreIndex: false, labelSmoothing: false },
  [LossKind.SigmoidFocal]: { name: 'SigmoidFocal', family: 'element', indexTargets: true, probabilityTargets: true, ignoreIndex: false, labelSmoothing: false },
  [LossKind.Poly]: { name: 'Poly', family: 'row', indexTargets: true, probabilityTargets: false, ignoreIndex: true, labelSmoothing: false },
  [LossKind.Asymmetric]: { name: 'Asymmetric', family: 'element', indexTargets: true, probabilityTargets: true, ignoreIndex: false, labelSmoothing: false },
};

/** One output per row (a softmax loss), rather than one per logit. */
export function isRowLoss(kind: LossKind): boolean {
  return LOSS_KIND_TRAITS[kind].family === 'row';
}

/** cbloss::Divisor — what the summed loss is divided by. */
export const Divisor = {
  None: 0,
  One: 1,
  Elements: 2,
  Rows: 3,
  LabelWeight: 4,
  BalanceWeight: 5,
} as const;
export type Divisor = (typeof Divisor)[keyof typeof Divisor];

/** cbloss::Balance — how class-balanced weights apply. */
export const Balance = {
  Off: 0,
  Row: 1,
  Column: 2,
} as const;
export type Balance = (typeof Balance)[keyof typeof Balance];

export interface LossPlan {
  kind: LossKind;
  rows: number;
  classes: number;
  /** Host arrays, or DeviceTensors (all data arrays of a plan are on one side). */
  logits: Float32Array | DeviceTensor;
  labels: Int32Array | DeviceTensor | null;
  targets: Float32Array | DeviceTensor | null;
  classWeight: Float64Array | null;
  posWeight: Float64Array | null;
  alpha: Float64Array | null;
  alphaScalar: number;
  gamma: number;
  labelSmoothing: number;
  ignoreIndex: number;
  /** PolyLoss ε. */
  polyEpsilon: number;
  /** AsymmetricLoss γ₊, γ₋, clip, detachFocusing. */
  gammaPos: number;
  gammaNeg: number;
  clip: number;
  detachFocusing: boolean;
  balanceWeight: Float64Array | null;
  balance: Balance;
  divisor: Divisor;
  /** The logit map (docs/semantics.md, "Logit maps"; CrossEntropy, FocalSoftmax): z' = logitScale·(z + logitBias − margin[y]·e_y). */
  logitBias: Float64Array | null;
  margin: Float64Array | null;
  logitScale: number;
  /** docs/semantics.md, "Per-call options": one weight per row, or (element losses, sampleWeightPerElement) per logit. */
  sampleWeight: Float32Array | DeviceTensor | null;
  sampleWeightPerElement: boolean;
  /** docs/semantics.md, "Per-call options": the divisor of the mean reductions, or null for their own. */
  avgFactor: number | null;
  /** Elements of the unreduced ('none') output: rows for softmax losses, logits otherwise. */
  outputLength: number;
  /** Where it runs: -1 for the CPU, N for CUDA device N (set from the loss's device option). */
  device: number;
  /** Loss.divisor: the call returns its reduction's divisor, reading no logits (lib/native.ts planDivisor). */
  divisorOnly: boolean;
}

/** A plan with the defaults of every option; losses fill in what they use. */
export function basePlan(kind: LossKind, logits: Float32Array | DeviceTensor, rows: number, classes: number): LossPlan {
  const rowLoss = isRowLoss(kind);
  return {
    kind,
    rows,
    classes,
    logits,
    labels: null,
    targets: null,
    classWeight: null,
    posWeight: null,
    alpha: null,
    alphaScalar: 1,
    gamma: 0,
    labelSmoothing: 0,
    ignoreIndex: -100,
    polyEpsilon: 1,
    gammaPos: 0,
    gammaNeg: 0,
    clip: 0,
    detachFocusing: false,
    balanceWeight: null,
    balance: Balance.Off,
    divisor: Divisor.Elements,
    logitBias: null,
    margin: null,
    logitScale: 1,
    sampleWeight: null,
    sampleWeightPerElement: false,
    avgFactor: null,
    outputLength: rowLoss ? rows : rows * classes,
    device: -1,
    divisorOnly: false,
  };
}
