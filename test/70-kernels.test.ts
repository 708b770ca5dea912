// The SIMD kernel levels against the float64 scalar path (itself checked against the reference in
// 20-reference) over the shapes that select their code paths: one row per lane (C <= 2W), one row in
// blocks (larger C, several blocks past 4096), element blocks and row slices (C > 2048), vector tails.
// And: results do not depend on the number of threads; the thread pool survives resizing.
import { strict as assert } from 'node:assert';

import * as cbloss from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose, buildLoss, kernelLevels, randomLogits, rng } from './helpers';
import type { LossSpec } from './reference';

const SHAPES: Array<[number, number]> = [
  [5, 1], [17, 2], [9, 3], [33, 7], [20, 8], [19, 15], [40, 16], [18, 17], [7, 31], [6, 32], [5, 33],
  [4, 63], [5, 48], [4, 64], [3, 100], [3, 128], [3, 129], [3, 257], [2, 4097], [2, 9000], [1, 20000],
  [16, 48], [37, 100], // whole groups of W rows in registers (AVX-512: 16), and a partial one
];

interface Family {
  name: string;
  spec: (C: number, rand: () => number) => LossSpec;
  target: 'index' | 'ignore' | 'probs' | 'elements';
  minC?: number;
  /** Per-call weights (SPEC §3.7) of a call on N rows of C. */
  call?: (N: number, C: number, rand: () => number) => { sampleWeight?: Float32Array; avgFactor?: number };
}

const w = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(0.3 + rand()));

const centered = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(rand() * 4 - 2));
const counts = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => 1 + Math.floor(rand() * 1000));

const FAMILIES: Family[] = [
  // SPEC §3.6: the logit map in every row layout (and §3.7's per-call weights in rows and elements)
  {
    name: 'CE bias margin scale, weight smoothing ignore',
    spec: (C, r) => ({ loss: 'CrossEntropyLoss', options: { logitBias: centered(C, r), margin: w(C, r), scale: 2.5, weight: w(C, r), labelSmoothing: 0.1, reduction: 'none' } }),
    target: 'ignore',
  },
  { name: 'CE probabilities bias scale', spec: (C, r) => ({ loss: 'CrossEntropyLoss', options: { numClasses: C, logitBias: centered(C, r), scale: 0.5, reduction: 'sum' } }), target: 'probs' },
  { name: 'focal softmax bias margin scale', spec: (C, r) => ({ loss: 'FocalLoss', options: { numClasses: C, gamma: 1.5, logitBias: centered(C, r), margin: w(C, r), scale: 3 } }), target: 'index', minC: 3 },
  { name: 'LDAM s=30', spec: (C, r) => ({ loss: 'LDAMLoss', options: { samplesPerCls: counts(C, r), reduction: 'none' } }), target: 'index' },
  {
    name: 'CE sample weights avgFactor',
    spec: (C, r) => ({ loss: 'CrossEntropyLoss', options: { weight: w(C, r) } }),
    target: 'ignore',
    call: (N, _C, r) => ({ sampleWeight: Float32Array.from({ length: N }, () => r() * 2), avgFactor: 3.5 }),
  },
  {
    name: 'BCE sample weight per element',
    spec: (C, r) => ({ loss: 'BCEWithLogitsLoss', options: { weight: w(C, r), reduction: 'none' } }),
    target: 'elements',
    call: (N, C, r) => ({ sampleWeight: Float32Array.from({ length: N * C }, () => r() * 2) }),
  },
  {
    name: 'asl sample weight per row',
    spec: (C) => ({ loss: 'AsymmetricLoss', options: { numClasses: C, reduction: 'sum' } }),
    target: 'elements',
    call: (N, _C, r) => ({ sampleWeight: Float32Array.from({ length: N }, () => r() * 2) }),
  },
  { name: 'CE weight smoothing ignore', spec: (C, r) => ({ loss: 'CrossEntropyLoss', options: { weight: w(C, r), labelSmoothing: 0.1, reduction: 'none' } }), target: 'ignore' },
  { name: 'CE probabilities weight smoothing', spec: (C, r) => ({ loss: 'CrossEntropyLoss', options: { numClasses: C, weight: w(C, r), labelSmoothing: 0.05, reduction: 'sum' } }), target: 'probs' },
  { name: 'focal softmax gamma 0.5 alpha vector', spec: (C, r) => ({ loss: 'FocalLoss', options: { numClasses: C, gamma: 0.5, alpha: w(C, r), reduction: 'none' } }), target: 'index', minC: 3 },
  { name: 'focal softmax gamma 2', spec: (C) => ({ loss: 'FocalLoss', options: { numClasses: C } }), target: 'index', minC: 3 },
  { name: 'BCE weight posWeight', spec: (C, r) => ({ loss: 'BCEWithLogitsLoss', options: { weight: w(C, r), posWeight: w(C, r), reduction: 'none' } }), target: 'elements' },
  { name: 'BCE index targets', spec: (C) => ({ loss: 'BCEWithLogitsLoss', options: { numClasses: C } }), target: 'index' },
  { name: 'sigmoid focal gamma 1.5', spec: () => ({ loss: 'SigmoidFocalLoss', options: { gamma: 1.5, reduction: 'sum' } }), target: 'elements' },
  { name: 'binary focal gamma 0.5 alpha pair', spec: () => ({ loss: 'FocalLoss', options: { numClasses: 2, gamma: 0.5, alpha: [0.3, 0.7], reduction: 'none' } }), target: 'elements' },
  {
    name: 'CB(BCE) class weighting',
    spec: (C, r) => ({ loss: 'ClassBalancedLoss', options: { samplesPerCls: w(C, r).map((x) => x * 100), beta: 0.99, numClasses: C, weighting: 'class', reduction: 'weightedmean', lossFunc: { loss: 'BCEWithLogitsLoss', options: { reduction: 'none' } } } }),
    target: 'elements',
  },
  {
    name: 'CB(CE) probability targets',
    spec: (C, r) => ({ loss: 'ClassBalancedLoss', options: { samplesPerCls: w(C, r).map((x) => x * 100), beta: 0.99, numClasses: C, reduction: 'weightedmean', lossFunc: { loss: 'CrossEntropyLoss', options: { numClasses: C, reduction: 'none' } } } }),
    target: 'probs',
  },
  {
    name: 'CB(focal) row weighting',
    spec: (C, r) => ({ loss: 'ClassBalancedLoss', options: { samplesPerCls: w(C, r).map((x) => x * 100), beta: 0.999, numClasses: C, reduction: 'none', lossFunc: { loss: 'FocalLoss', options: { numClasses: C, gamma: 0.5, reduction: 'none' } } } }),
    target: 'index',
    minC: 3,
  },
];

function makeTarget(kind: Family['target'], rand: () => number, N: number, C: number): Int32Array | Float32Array {
  if (kind === 'index') return Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  if (kind === 'ignore') return Int32Array.from({ length: N }, (_, n) => (n % 4 === 3 ? -100 : Math.floor(rand() * C)));
  if (kind === 'elements') return Float32Array.from({ length: N * C }, () => (rand() < 0.3 ? 1 : Math.fround(rand() * 0.2)));
  const t = new Float32Array(N * C);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += t[n * C + c] = rand();
    for (let c = 0; c < C; c++) t[n * C + c] /= s;
  }
  return t;
}

describe('70 kernel levels, shapes and threads', () => {
  const initial = cbloss.backendInfo().cpu.simd as cbloss.SimdLevel;
  const levels = kernelLevels().filter((l) => l !== 'scalar');
  after(() => cbloss.setSimdLevel(initial));

  for (const level of levels) {
    for (const family of FAMILIES) {
      it(`[${level}] ${family.name}: every shape equals the float64 path`, () => {
        const rand = rng(family.name.length * 977 + level.length);
        for (const [N, C] of SHAPES) {
          if (C < (family.minC ?? 1)) continue;
          const classes = family.name.startsWith('binary') ? 2 : C;
          const spec = family.spec(classes, rand);
          const loss = buildLoss(spec);
          const input = randomLogits(rand, N * C, 3);
          const target = makeTarget(family.target, rand, N, C);
          const opts = { gradOutput: 0.75, ...family.call?.(N, C, rand) };
          cbloss.setSimdLevel('scalar');
          const expected = loss.forwardBackward(input, target, opts);
          cbloss.setSimdLevel(level);
          const got = loss.forwardBackward(input, target, opts);
          const what = `${family.name} N=${N} C=${C}`;
          if (typeof expected.loss === 'number') assertLossClose(got.loss as number, expected.loss, what);
          else assertLossArrayClose(got.loss as Float32Array, expected.loss, what);
          assertGradClose(got.grad, expected.grad, `${what} grad`);
          // in place: the gradient overwrites the logits
          const work = input.slice();
          loss.forwardBackward(work, target, { ...opts, out: { grad: work } });
          assert.deepEqual(work, got.grad, `${what} in place`);
        }
      });
    }
  }

  // The one-row-per-lane layout transposes full tiles of W rows with shuffles generated for each C:
  // every C from 2 to 32 (2W for AVX-512), with enough rows for two full tiles and a partial one.
  const laneFamilies = FAMILIES.filter((f) => f.target !== 'elements' && f.name !== 'BCE index targets');
  for (const level of levels) {
    it(`[${level}] one row per lane, every C from 2 to 32, full tiles: equals the float64 path`, () => {
      const rand = rng(4242 + level.length);
      for (let C = 2; C <= 32; C++) {
        const N = 37;
        for (const family of laneFamilies) {
          if (C < (family.minC ?? 1)) continue;
          const loss = buildLoss(family.spec(C, rand));
          const input = randomLogits(rand, N * C, 3);
          const target = makeTarget(family.target, rand, N, C);
          const opts = { gradOutput: 0.5, ...family.call?.(N, C, rand) };
          cbloss.setSimdLevel('scalar');
          const expected = loss.forwardBackward(input, target, opts);
          cbloss.setSimdLevel(level);
          const got = loss.forwardBackward(input, target, opts);
          const what = `${family.name} N=${N} C=${C}`;
          if (typeof expected.loss === 'number') assertLossClose(got.loss as number, expected.loss, what);
          else assertLossArrayClose(got.loss as Float32Array, expected.loss, what);
          assertGradClose(got.grad, expected.grad, `${what} grad`);
        }
      }
    });
  }

  // A gradient of 32 MiB or more is written with non-temporal stores by rows of many classes (the
  // exponentials parked in a scratch row, the stores aligned by hand): every level against the float64
  // path, with the gradient at an unaligned offset and in place.
  it('rows of a gradient past the caches (streamed stores): every level, unaligned and in place', function () {
    this.timeout(120_000);
    const N = 64;
    const C = 131072;
    const rand = rng(777);
    const input = randomLogits(rand, N * C, 4);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const probs = makeTarget('probs', rand, N, C) as Float32Array;
    const weight = w(C, rand);
    const cases: Array<[string, LossSpec, Int32Array | Float32Array]> = [
      ['CE weight smoothing', { loss: 'CrossEntropyLoss', options: { weight, labelSmoothing: 0.1 } }, labels],
      ['CE probabilities', { loss: 'CrossEntropyLoss', options: { numClasses: C } }, probs],
      ['focal gamma 2', { loss: 'FocalLoss', options: { numClasses: C } }, labels],
      ['CE bias margin scale', { loss: 'CrossEntropyLoss', options: { logitBias: weight, margin: weight, scale: 1.5 } }, labels],
    ];
    const buffer = new Float32Array(N * C + 3);
    for (const [name, spec, target] of cases) {
      const loss = buildLoss(spec);
      cbloss.setSimdLevel('scalar');
      const expected = loss.forwardBackward(input, target);
      for (const level of levels) {
        cbloss.setSimdLevel(level);
        for (const offset of [0, 1, 3]) {
          const grad = buffer.subarray(offset, offset + N * C);
          const got = loss.forwardBackward(input, target, { out: { grad } });
          assertLossClose(got.loss as number, expected.loss as number, `${name} [${level}] offset ${offset}`);
          assertGradClose(grad, expected.grad, `${name} [${level}] offset ${offset} grad`);
        }
        const work = input.slice();
        loss.forwardBackward(work, target, { out: { grad: work } });
        assertGradClose(work, expected.grad, `${name} [${level}] in place`);
      }
    }
  });

  it('results do not depend on the number of threads (bit for bit)', () => {
    const rand = rng(3);
    const threads = cbloss.backendInfo().cpu.threads;
    const cases: Array<[cbloss.Loss, Float32Array, Int32Array | Float32Array]> = [];
    const x = randomLogits(rand, 65536 * 10);
    cases.push([new cbloss.CrossEntropyLoss(), x, Int32Array.from({ length: 65536 }, () => Math.floor(rand() * 10))]);
    cases.push([new cbloss.BCEWithLogitsLoss(), x, Float32Array.from(x, () => (rand() < 0.5 ? 1 : 0))]);
    const wide = randomLogits(rand, 64 * 5000);
    cases.push([new cbloss.FocalLoss({ numClasses: 5000, gamma: 0.5 }), wide, Int32Array.from({ length: 64 }, () => Math.floor(rand() * 5000))]);
    try {
      for (const [loss, input, target] of cases) {
        cbloss.setNumThreads(1);
        const one = loss.forwardBackward(input, target);
        cbloss.setNumThreads(3);
        const three = loss.forwardBackward(input, target);
        assert.equal(one.loss, three.loss);
        assert.deepEqual(one.grad, three.grad);
      }
    } finally {
      cbloss.setNumThreads(threads);
    }
    assert.equal(cbloss.backendInfo().cpu.threads, threads);
  });

  it('a mean over 300k rows with ignored labels divides by the rows not ignored, at 1 and 3 threads', () => {
    // The count of ignored labels runs over the thread pool in 64K blocks for large batches.
    const rand = rng(8);
    const N = 300_000;
    const x = randomLogits(rand, N * 2);
    const y = Int32Array.from({ length: N }, () => (rand() < 0.3 ? -100 : Math.floor(rand() * 2)));
    let sum = 0;
    let counted = 0;
    for (let n = 0; n < N; n++) {
      if (y[n] === -100) continue;
      const m = Math.max(x[2 * n], x[2 * n + 1]);
      sum += m + Math.log(Math.exp(x[2 * n] - m) + Math.exp(x[2 * n + 1] - m)) - x[2 * n + y[n]];
      counted++;
    }
    const threads = cbloss.backendInfo().cpu.threads;
    try {
      for (const t of [1, 3]) {
        cbloss.setNumThreads(t);
        const loss = new cbloss.CrossEntropyLoss().forward(x, y);
        assert.ok(Math.abs(loss - sum / counted) <= 1e-5 * (sum / counted), `${t} threads: ${loss}, want ${sum / counted}`);
      }
    } finally {
      cbloss.setNumThreads(threads);
    }
  });

  it('setNumThreads and setSimdLevel check their arguments', () => {
    assert.throws(() => cbloss.setNumThreads(0), { name: 'RangeError', message: 'Expected an integer in [1, 1024] for threads but received 0' });
    assert.throws(() => cbloss.setNumThreads('2' as never), TypeError);
    assert.throws(() => cbloss.setSimdLevel('avx9000' as never), RangeError);
  });
});
