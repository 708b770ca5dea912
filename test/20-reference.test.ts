// Every loss × option × reduction on random inputs against the independent float64 reference
// (test/reference.ts): the loss against its value, the gradient against central finite differences.
import { strict as assert } from 'node:assert';

import { assertGradClose, assertLossArrayClose, assertLossClose, buildLoss, forEachKernelLevel, normal, randomLogits, rng } from './helpers';
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

interface Family {
  name: string;
  loss: LossSpec['loss'];
  options: (C: number, rand: () => number) => Record<string, unknown>;
  target: TargetMaker;
  reductions: string[];
  /** Fixed class count (binary focal: 1 logit per element but numClasses 2). */
  classes?: number;
  /** The logits are N×C but the loss sees one flat array (binary focal). */
  flat?: boolean;
}

const weights = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(0.2 + 1.5 * rand()));
const R3 = ['none', 'mean', 'sum'];

const families: Family[] = [
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
  ...[0, 0.5, 2].map((gamma): Family => ({
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
  ...[0, 0.5, 2].map((gamma): Family => ({
    name: `sigmoid focal gamma=${gamma}`,
    loss: 'SigmoidFocalLoss',
    options: () => ({ gamma, reduction: 'mean' }),
    target: soft,
    reductions: R3,
  })),
  { name: 'sigmoid focal alpha<0', loss: 'SigmoidFocalLoss', options: () => ({ alpha: -1, gamma: 1 }), target: hard, reductions: R3 },
  { name: 'sigmoid focal index targets', loss: 'SigmoidFocalLoss', options: (C) => ({ numClasses: C }), target: indices, reductions: R3 },
];

const CB_REDUCTIONS = ['none', 'mean', 'sum', 'batchmean', 'weightedmean'];

function cbFamilies(): Family[] {
  const out: Family[] = [];
  const bases = families.filter((f) => !f.name.includes('flat') && !f.name.includes('gamma=0 ') && !f.name.startsWith('focal softmax gamma=3.5'));
  for (const base of bases) {
    for (const beta of [0, 0.9, 0.999, 1]) {
      const weightings = base.loss === 'BCEWithLogitsLoss' || base.loss === 'SigmoidFocalLoss' ? ['row', 'class'] : ['row'];
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

function runFamily(f: Family, seed: number): void {
  const rand = rng(seed);
  for (const reduction of f.reductions) {
    const C = f.classes ?? 2 + Math.floor(rand() * 7);
    const N = 1 + Math.floor(rand() * 8);
    const baseOptions = f.options(C, rand);
    const options = { ...baseOptions, reduction };
    const input = randomLogits(rand, N * C);
    const target = f.target(rand, N, C);
    const refCase: RefCase = { loss: f.loss, options, target };
    const expected = referenceLoss(refCase, input);
    const outputs = Array.isArray(expected) ? expected.length : 1;
    const gradOutput =
      reduction === 'none' && rand() < 0.5
        ? Array.from({ length: outputs }, () => Math.fround(rand() * 2 - 0.5))
        : Math.fround(0.5 + rand());
    const loss = buildLoss(refCase);
    const apiTarget = target.kind === 'int' ? Int32Array.from(target.values) : Float32Array.from(target.values);
    const what = `${f.name} ${reduction} N=${N} C=${C}`;
    const result = loss.forwardBackward(input, apiTarget, { gradOutput });
    if (Array.isArray(expected)) assertLossArrayClose(result.loss as Float32Array, expected, `${what} loss`);
    else assertLossClose(result.loss as number, expected, `${what} loss`);
    const g = referenceGrad(refCase, Float64Array.from(input), gradOutput);
    assertGradClose(result.grad, g, `${what} grad`);
  }
}

forEachKernelLevel('20 float64 reference and finite differences', () => {
  let seed = 1000;
  for (const f of families) {
    const s = seed++;
    it(f.name, () => {
      for (let repeat = 0; repeat < 3; repeat++) runFamily(f, s * 7 + repeat);
    });
  }
  for (const f of cbFamilies()) {
    const s = seed++;
    it(f.name, () => runFamily(f, s));
  }

  it('the reference itself is not trivially zero', () => {
    const c: RefCase = { loss: 'CrossEntropyLoss', options: {}, target: { kind: 'int', values: [0, 1] } };
    const z = new Float64Array([1, 2, 3, 4]);
    const v = referenceLoss(c, z) as number;
    assert.ok(Math.abs(v - (Math.log(Math.E + Math.E ** 2) - 1 + Math.log(Math.E ** 3 + Math.E ** 4) - 4) / 2) < 1e-12);
  });
});
