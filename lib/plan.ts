// A LossPlan is what a loss object turns (input, target) into after validation: the exact native
// problem (mirrors cbloss::Problem in native/core/problem.h), ready to run on a backend.
import type { DeviceTensor } from './device-tensor';

/** cbloss::LossKind */
export const LossKind = {
  CrossEntropy: 0,
  BCEWithLogits: 1,
  FocalSoftmax: 2,
  FocalBinary: 3,
  SigmoidFocal: 4,
} as const;
export type LossKind = (typeof LossKind)[keyof typeof LossKind];

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
  balanceWeight: Float64Array | null;
  balance: Balance;
  divisor: Divisor;
  /** Elements of the unreduced ('none') output: rows for softmax losses, logits otherwise. */
  outputLength: number;
  /** Where it runs: -1 for the CPU, N for CUDA device N (set from the loss's device option). */
  device: number;
}

/** A plan with the defaults of every option; losses fill in what they use. */
export function basePlan(kind: LossKind, logits: Float32Array | DeviceTensor, rows: number, classes: number): LossPlan {
  const rowLoss = kind === LossKind.CrossEntropy || kind === LossKind.FocalSoftmax;
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
    balanceWeight: null,
    balance: Balance.Off,
    divisor: Divisor.Elements,
    outputLength: rowLoss ? rows : rows * classes,
    device: -1,
  };
}
