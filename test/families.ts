// The loss families every precision test runs — each loss × option × reduction, and the class-balanced
// wrappers of each — with random inputs, checked against the independent float64 reference
// (test/reference.ts) for the loss and central finite differences for the gradient. The CPU tests
// (20-reference) and the CUDA tests (75-cuda) share them.
import { strict as assert } from 'node:assert';

import { CrossEntropyLoss, DeviceTensor, FocalLoss, PolyLoss, type Device, type Loss } from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose, buildLoss, normal, randomLogits, rng } from './helpers';
import { referenceGrad, referenceLoss, type LossSpec, type RefCase } from './reference';

type TargetMaker = (rand: () => number, N: number, C: number) => RefCase['target'];

const indices: TargetMaker = (rand, N, C) => ({ kind: 'int', values: Array.from({ length: N }, () => Math.floor(rand() * C)) });
const withIgnored = (ignore: number): TargetMaker => (rand, N, C) => ({
  kind: 'int',
  values: Array.from({ length: N }, (_, n) => (n % 3 === 1 ? ignore : Math.floor(rand() * C))),
});
const probabilities: TargetMaker = (rand, N, C) => {
  const values: number[] = [];
  for (let n = 0; n < N; n++) {
    const row = Array.from({ length: C }, () => Math.exp(normal(rand)));
    const s = row.reduce((a, b) => a + b, 0);
    values.push(...row.map((v) => Math.fround(v / s)));
  }
  return { kind: 'float', values };
};
const soft: TargetMaker = (rand, N, C) => ({ kind: 'float', values: Array.from({ length: N * C }, () => Math.fround(rand())) });
const hard: TargetMaker = (rand, N, C) => ({ kind: 'float', values: Array.from({ length: N * C }, () => (rand() < 0.4 ? 1 : 0)) });
const hardInt: TargetMaker = (rand, N, C) => ({ kind: 'int', values: Array.from({ length: N * C }, () => (rand() < 0.4 ? 1 : 0)) });

export interface Family {
  name: string;
  loss: LossSpec['loss'];
  options: (C: number, rand: () => number) => Record<string, unknown>;
  target: TargetMaker;
  reductions: string[];
  /** Fixed class count (binary focal: 1 logit per element but numClasses 2). */
  classes?: number;
  /** The logits are N×C but the loss sees one flat array (binary focal). */
  flat?: boolean;
  /** Per-call weights (SPEC §3.7) for a call on N rows of C (avgFactor used with the mean reductions). */
  call?: (N: number, C: number, rand: () => number) => { sampleWeight?: number[]; avgFactor?: number };
}

const weights = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(0.2 + 1.5 * rand()));
const centered = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(rand() * 4 - 2));
const counts = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => 1 + Math.floor(rand() * 1000));
const rowWeights = (n: number, rand: () => number): number[] => Array.from({ length: n }, () => Math.fround(rand() * 2));
const R3 = ['none', 'mean', 'sum'];

export const families: Family[] = [
  { name: 'CE', loss: 'CrossEntropyLoss', options: () => ({}), target: indices, reductions: R3 },
  { name: 'CE weight', loss: 'CrossEntropyLoss', options: (C, r) => ({ weight: weights(C, r) }), target: indices, reductions: R3 },
  { name: 'CE smoothing', loss: 'CrossEntropyLoss', options: () => ({ labelSmoothing: 0.15 }), target: indices, reductions: R3 },
  {
    name: 'CE weight smoothing ignore=-100',
    loss: 'CrossEntropyLoss',
    options: (C, r) => ({ weight: weights(C, r), label_smoothing: 0.3 }),
    target: withIgnored(-100),
    reductions: R3,
  },
  { name: 'CE ignore=1', loss: 'CrossEntropyLoss', options: () => ({ ignoreIndex: 1 }), target: withIgnored(1), reductions: R3 },
  { name: 'CE probabilities', loss: 'CrossEntropyLoss', options: (C) => ({ numClasses: C }), target: probabilities, reductions: R3 },
  {
    name: 'CE probabilities weight smoothing',
    loss: 'CrossEntropyLoss',
    options: (C, r) => ({ weight: weights(C, r), labelSmoothing: 0.1 }),
    target: probabilities,
    reductions: R3,
  },
  { name: 'BCE', loss: 'BCEWithLogitsLoss', options: (C) => ({ numClasses: C }), target: soft, reductions: R3 },
  { name: 'BCE flat', loss: 'BCEWithLogitsLoss', options: () => ({}), target: hard, reductions: R3 },
  {
    name: 'BCE weight posWeight',
    loss: 'BCEWithLogitsLoss',
    options: (C, r) => ({ weight: weights(C, r), pos_weight: weights(C, r) }),
    target: soft,
    reductions: R3,
  },
  { name: 'BCE index targets', loss: 'BCEWithLogitsLoss', options: () => ({}), target: indices, reductions: R3 },
  { name: 'BCE integer 0/1 targets', loss: 'BCEWithLogitsLoss', options: (C) => ({ numClasses: C }), target: hardInt, reductions: R3 },
  ...[0, 0.5, 2, 3.5].map((gamma): Family => ({
    name: `focal softmax gamma=${gamma}`,
    loss: 'FocalLoss',
    options: (C) => ({ numClasses: C, gamma, alpha: 0.3 }),
    target: indices,
    reductions: R3,
  })),
  {
    name: 'focal softmax alpha vector',
    loss: 'FocalLoss',
    options: (C, r) => ({ num_classes: C, alpha: weights(C, r), gamma: 1.5 }),
    target: indices,
    reductions: R3,
  },
  { name: 'focal softmax two classes', loss: 'FocalLoss', options: () => ({ numClasses: 2, gamma: 0.7 }), target: indices, reductions: R3, classes: 2 },
  ...[0, 0.5, 1, 2].map((gamma): Family => ({
    name: `focal binary gamma=${gamma} soft`,
    loss: 'FocalLoss',
    options: () => ({ numClasses: 2, gamma, alpha: 0.4 }),
    target: soft,
    reductions: R3,
    flat: true,
  })),
  {
    name: 'focal binary alpha pair, integer targets',
    loss: 'FocalLoss',
    options: () => ({ numClasses: 2, alpha: [0.7, 0.3] }),
    target: hardInt,
    reductions: R3,
    flat: true,
  },
  ...[0, 0.5, 1, 2].map((gamma): Family => ({
    name: `sigmoid focal gamma=${gamma}`,
    loss: 'SigmoidFocalLoss',
    options: () => ({ gamma, reduction: 'mean' }),
    target: soft,
    reductions: R3,
  })),
  { name: 'sigmoid focal alpha<0', loss: 'SigmoidFocalLoss', options: () => ({ alpha: -1, gamma: 1 }), target: hard, reductions: R3 },
  { name: 'sigmoid focal alpha<0 gamma=2', loss: 'SigmoidFocalLoss', options: () => ({ alpha: -1, gamma: 2 }), target: soft, reductions: R3 },
  { name: 'sigmoid focal index targets', loss: 'SigmoidFocalLoss', options: (C) => ({ numClasses: C }), target: indices, reductions: R3 },
  { name: 'poly', loss: 'PolyLoss', options: () => ({}), target: indices, reductions: R3 },
  ...[-1, 2.5].map((epsilon): Family => ({
    name: `poly epsilon=${epsilon} ignore=-100`,
    loss: 'PolyLoss',
    options: () => ({ epsilon }),
    target: withIgnored(-100),
    reductions: R3,
  })),
  { name: 'poly ignore=1', loss: 'PolyLoss', options: () => ({ ignore_index: 1, epsilon: 0.5 }), target: withIgnored(1), reductions: R3 },
  { name: 'asl', loss: 'AsymmetricLoss', options: (C) => ({ numClasses: C }), target: hard, reductions: R3 },
  ...[
    [0, 4, 0.05],
    [1, 1, 0],
    [0.5, 0.7, 0.2],
    [2, 0, 0.3],
  ].map(([gammaPos, gammaNeg, clip]): Family => ({
    name: `asl gammaPos=${gammaPos} gammaNeg=${gammaNeg} clip=${clip} soft`,
    loss: 'AsymmetricLoss',
    options: (C) => ({ numClasses: C, gamma_pos: gammaPos, gamma_neg: gammaNeg, clip }),
    target: soft,
    reductions: R3,
  })),
  { name: 'asl detachFocusing', loss: 'AsymmetricLoss', options: (C) => ({ numClasses: C, detachFocusing: true }), target: soft, reductions: R3 },
  { name: 'asl index targets', loss: 'AsymmetricLoss', options: () => ({ gammaNeg: 2 }), target: indices, reductions: R3 },
  // SPEC §3.6: the logit map
  {
    name: 'CE bias margin scale',
    loss: 'CrossEntropyLoss',
    options: (C, r) => ({ logitBias: centered(C, r), margin: weights(C, r), scale: 2.5 }),
    target: indices,
    reductions: R3,
  },
  {
    name: 'CE bias margin weight smoothing ignore',
    loss: 'CrossEntropyLoss',
    options: (C, r) => ({ logitBias: centered(C, r), margin: weights(C, r), weight: weights(C, r), labelSmoothing: 0.2 }),
    target: withIgnored(-100),
    reductions: R3,
  },
  { name: 'CE probabilities bias scale', loss: 'CrossEntropyLoss', options: (C, r) => ({ logitBias: centered(C, r), scale: 0.5 }), target: probabilities, reductions: R3 },
  {
    name: 'focal softmax bias margin scale',
    loss: 'FocalLoss',
    options: (C, r) => ({ numClasses: C, gamma: 2, logitBias: centered(C, r), margin: weights(C, r), scale: 3 }),
    target: indices,
    reductions: R3,
  },
  { name: 'focal two-class softmax with bias', loss: 'FocalLoss', options: (_C, r) => ({ numClasses: 2, gamma: 1, logitBias: centered(2, r) }), target: indices, reductions: R3, classes: 2 },
  { name: 'balanced softmax tau=0.7', loss: 'BalancedSoftmaxLoss', options: (C, r) => ({ samplesPerCls: counts(C, r), tau: 0.7 }), target: indices, reductions: R3 },
  { name: 'LDAM s=10 weight', loss: 'LDAMLoss', options: (C, r) => ({ samplesPerCls: counts(C, r), scale: 10, weight: weights(C, r) }), target: indices, reductions: R3 },
  // SPEC §3.7: per-call sample weights and avgFactor
  { name: 'CE sample weights', loss: 'CrossEntropyLoss', options: () => ({}), target: withIgnored(-100), reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r), avgFactor: 2.5 }) },
  { name: 'focal softmax sample weights', loss: 'FocalLoss', options: (C) => ({ numClasses: C }), target: indices, reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r) }) },
  { name: 'BCE sample weight per element avgFactor', loss: 'BCEWithLogitsLoss', options: (C) => ({ numClasses: C }), target: soft, reductions: R3, call: (N, C, r) => ({ sampleWeight: rowWeights(N * C, r), avgFactor: 7 }) },
  { name: 'asl sample weight per row', loss: 'AsymmetricLoss', options: (C) => ({ numClasses: C }), target: hard, reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r) }) },
  { name: 'poly sample weights avgFactor', loss: 'PolyLoss', options: () => ({}), target: indices, reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r), avgFactor: 3 }) },
];

const CB_REDUCTIONS = ['none', 'mean', 'sum', 'batchmean', 'weightedmean'];

export function cbFamilies(): Family[] {
  const out: Family[] = [];
  // (The per-call weights stay out: they are the call's, not the base loss's.)
  const bases = families.filter(
    (f) => !f.call && !f.name.includes('flat') && !f.name.includes('gamma=0 ') && !f.name.startsWith('focal softmax gamma=3.5'),
  );
  for (const base of bases) {
    for (const beta of [0, 0.9, 0.999, 1]) {
      const multiLabel = ['BCEWithLogitsLoss', 'SigmoidFocalLoss', 'AsymmetricLoss'].includes(base.loss);
      const weightings = multiLabel ? ['row', 'class'] : ['row'];
      for (const weighting of weightings) {
        out.push({
          name: `CB(${base.name}) beta=${beta} ${weighting}`,
          loss: 'ClassBalancedLoss',
          classes: base.classes,
          flat: base.flat,
          target: base.target,
          reductions: CB_REDUCTIONS,
          options: (C, r) => {
            const classes = base.flat ? 2 : C;
            const baseOptions = { ...base.options(C, r), reduction: 'none' };
            delete (baseOptions as Record<string, unknown>).numClasses;
            delete (baseOptions as Record<string, unknown>).num_classes;
            if (base.loss === 'FocalLoss') (baseOptions as Record<string, unknown>).numClasses = classes;
            return {
              samplesPerCls: Array.from({ length: classes }, () => 1 + Math.floor(r() * 500)),
              beta,
              numClasses: classes,
              weighting,
              lossFunc: { loss: base.loss, options: baseOptions },
            };
          },
        });
      }
    }
  }
  return out;
}

/** Where runFamily computes: the loss's device option, and whether the data goes in as DeviceTensors. */
export interface RunMode {
  device?: string;
  deviceTensors?: boolean;
  /** The shape (default: C in [2, 8], N in [1, 8]). */
  shape?: (rand: () => number) => { N: number; C: number };
}

export function runFamily(f: Family, seed: number, mode: RunMode = {}): void {
  const rand = rng(seed);
  for (const reduction of f.reductions) {
    const drawn = mode.shape?.(rand);
    const C = f.classes ?? drawn?.C ?? 2 + Math.floor(rand() * 7);
    const N = drawn?.N ?? 1 + Math.floor(rand() * 8);
    const baseOptions = f.options(C, rand);
    const options = { ...baseOptions, reduction };
    const input = randomLogits(rand, N * C);
    const target = f.target(rand, N, C);
    const perCall = f.call?.(N, C, rand);
    const avgFactor = reduction === 'mean' ? perCall?.avgFactor : undefined;
    const refCase: RefCase = { loss: f.loss, options, target, sampleWeight: perCall?.sampleWeight, avgFactor };
    const callOptions = { sampleWeight: perCall?.sampleWeight, avgFactor };
    const expected = referenceLoss(refCase, input);
    const outputs = Array.isArray(expected) ? expected.length : 1;
    const gradOutput =
      reduction === 'none' && rand() < 0.5
        ? Array.from({ length: outputs }, () => Math.fround(rand() * 2 - 0.5))
        : Math.fround(0.5 + rand());
    const loss = buildLoss(mode.device ? { ...refCase, options: { ...options, device: mode.device } } : refCase);
    const apiTarget = target.kind === 'int' ? Int32Array.from(target.values) : Float32Array.from(target.values);
    const what = `${f.name} ${reduction} N=${N} C=${C}${mode.device ? ` on ${mode.device}` : ''}${mode.deviceTensors ? ' (DeviceTensors)' : ''}`;
    let lossValue: number | Float32Array;
    let grad: Float32Array;
    if (mode.deviceTensors) {
      // 0/1 integer element targets are converted on the host; every other target goes to the device.
      const hostOnly = target.kind === 'int' && target.values.length === N * C && C > 1;
      const x = DeviceTensor.from(input, { device: mode.device });
      const t = hostOnly ? apiTarget : DeviceTensor.from(apiTarget, { device: mode.device });
      // (the sample weights as a float32 DeviceTensor too)
      const sw = callOptions.sampleWeight && DeviceTensor.from(Float32Array.from(callOptions.sampleWeight), { device: mode.device });
      const result = loss.forwardBackward(x, t, { gradOutput, ...callOptions, sampleWeight: sw });
      lossValue = result.loss instanceof DeviceTensor ? result.loss.toHost() : result.loss;
      grad = result.grad.toHost() as Float32Array;
      for (const d of [x, t, sw, result.grad, result.loss]) if (d instanceof DeviceTensor) d.dispose();
    } else {
      const result = loss.forwardBackward(input, apiTarget, { gradOutput, ...callOptions });
      lossValue = result.loss as number | Float32Array;
      grad = result.grad;
    }
    if (Array.isArray(expected)) assertLossArrayClose(lossValue as Float32Array, expected, `${what} loss`);
    else assertLossClose(lossValue as number, expected, `${what} loss`);
    const g = referenceGrad(refCase, Float64Array.from(input), gradOutput);
    assertGradClose(grad, g, `${what} grad`);
  }
}

/**
 * Confident rows (the label's logit the row's max by k): CE = log1p(Σ_{c≠y} e^{z_c − z_y}) is small,
 * down to 1e-20 here. The kernels take log S as log1p of the part of S below the max, so each row's
 * loss keeps the SPEC's 1e-5 relative precision where log(S) of S ≈ 1 in float lost it (5.5e-5 at
 * [8, 1, 1], and 0 below ~1e-7). Every row layout: C = 3 (a row a lane on the CPU), 40 (rows in
 * registers), 300 (one block), 5000 (two blocks, the max in either); on a GPU, the kernels those
 * widths take. With `device`, the losses run there (host arrays, then DeviceTensors).
 */
export function checkSmallRowLosses(device?: Device): void {
  for (const C of [3, 40, 300, 5000]) {
    const rows: number[][] = [];
    const labels: number[] = [];
    for (const k of [2, 8, 12, 17, 25, 33, 40, 45, 49]) {
      for (const at of [0, C - 1, Math.floor(C / 2) + 1]) {
        const row = Array.from({ length: C }, (_, c) => Math.fround(0.25 * Math.sin(c * 1.7 + k)));
        row[at] = Math.fround(row[at] + k);
        rows.push(row);
        labels.push(at);
      }
    }
    const x = Float32Array.from(rows.flat());
    const y = Int32Array.from(labels);
    // The reference, in float64 from the float32 logits, in the log1p form (log of a sum near 1 would
    // lose the loss in float64 too).
    const ce = rows.map((row, n) => {
      let rest = 0;
      row.forEach((z, c) => (rest += c === labels[n] ? 0 : Math.exp(z - row[labels[n]])));
      return Math.log1p(rest);
    });
    const oneMinusP = ce.map((v) => -Math.expm1(-v));
    const opts = device ? { device } : {};
    const checks: Array<[string, Loss, number[]]> = [
      ['CE', new CrossEntropyLoss({ reduction: 'none', ...opts }), ce],
      ['focal γ=0.5', new FocalLoss({ numClasses: C, gamma: 0.5, reduction: 'none', ...opts }), ce.map((v, n) => Math.sqrt(oneMinusP[n]) * v)],
      ['poly ε=2', new PolyLoss({ epsilon: 2, reduction: 'none', ...opts }), ce.map((v, n) => v + 2 * oneMinusP[n])],
    ];
    for (const [name, loss, expected] of checks) {
      const results: Array<[string, Float32Array]> = [['host arrays', loss.forwardBackward(x, y).loss as Float32Array]];
      if (device) {
        const dx = DeviceTensor.from(x, { device });
        const r = loss.forwardBackward(dx, y);
        results.push(['DeviceTensor', (r.loss as DeviceTensor).toHost() as Float32Array]);
        for (const d of [dx, r.grad, r.loss as DeviceTensor]) d.dispose();
      }
      for (const [how, got] of results) {
        expected.forEach((e, n) => {
          if (e < 1e-20) return; // (below the claim)
          const rel = Math.abs(got[n] - e) / e;
          assert.ok(rel <= 1e-5, `${name} C=${C} row ${n} (${how}): ${got[n]} vs ${e} (relative ${rel.toExponential(2)})`);
        });
      }
    }
  }
}

