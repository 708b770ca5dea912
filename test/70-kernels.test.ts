// The SIMD kernel levels against the float64 scalar path (itself checked against the reference in
// 20-reference) over the shapes that select their code paths: one row per lane (C <= 2W), one row in
// blocks (larger C, several blocks past 4096), element blocks and row slices (C > 2048), vector tails;
// each loss's kernel families (test/losses.ts). The smoke scope (CBLOSS_TEST_SCOPE=smoke) runs the
// first family of each loss over the first shape to reach each layout, at every level.
// And: results do not depend on the number of threads; the thread pool survives resizing.
import { strict as assert } from 'node:assert';

import * as cbloss from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose, kernelLevels, randomLogits, rng, scopedFirstOfEachLoss, scopedShapes } from './helpers';
import { buildLoss, lossEntries } from './losses';
import type { LossSpec } from './reference';

// (the smoke scope: the first shape to reach each layout at each SIMD width, helpers' cpuLayouts)
const SHAPES = scopedShapes([
  [5, 1], [17, 2], [9, 3], [33, 7], [20, 8], [19, 15], [40, 16], [18, 17], [7, 31], [6, 32], [5, 33],
  [4, 63], [5, 48], [4, 64], [3, 100], [3, 128], [3, 129], [3, 257], [2, 4097], [2, 9000], [1, 20000],
  [16, 48], [37, 100], // whole groups of W rows in registers (AVX-512: 16), and a partial one
]);

/** Every loss's kernel families (test/losses.ts), with the loss they build; in the smoke scope the first of each loss. */
const FAMILIES = scopedFirstOfEachLoss(
  lossEntries().flatMap(([loss, entry]) => entry.kernelFamilies.map((family) => ({ loss, ...family }))),
  (family) => family.loss,
);
type Family = (typeof FAMILIES)[number];

const w = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(0.3 + rand()));

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
          const loss = buildLoss({ loss: family.loss, options: family.options(C, rand) });
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
  const laneFamilies = FAMILIES.filter((f) => f.layout === 'rows');
  for (const level of levels) {
    it(`[${level}] one row per lane, every C from 2 to 32, full tiles: equals the float64 path`, () => {
      const rand = rng(4242 + level.length);
      for (let C = 2; C <= 32; C++) {
        const N = 37;
        for (const family of laneFamilies) {
          if (C < (family.minC ?? 1)) continue;
          const loss = buildLoss({ loss: family.loss, options: family.options(C, rand) });
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
    // (the smoke scope: the first case of each loss)
    const cases = scopedFirstOfEachLoss<[string, LossSpec, Int32Array | Float32Array]>(
      [
        ['CE weight smoothing', { loss: 'CrossEntropyLoss', options: { weight, labelSmoothing: 0.1 } }, labels],
        ['CE probabilities', { loss: 'CrossEntropyLoss', options: { numClasses: C } }, probs],
        ['focal gamma 2', { loss: 'FocalLoss', options: { numClasses: C } }, labels],
        ['CE bias margin scale', { loss: 'CrossEntropyLoss', options: { logitBias: weight, margin: weight, scale: 1.5 } }, labels],
      ],
      ([, spec]) => spec.loss,
    );
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

  // A gradient past the caches is streamed a piece at a time (a tile of register rows, a block of a
  // wide row), each piece's unaligned end carried into the next (LineStream): every level against the
  // float64 path at unaligned offsets, in place, with ignored rows and partial last tiles. C = 30 takes
  // the register rows at every level (with and without the linear terms of label smoothing), C = 100
  // the register rows at AVX-512 and the wide rows below it; each chunk of rows (a few hundred) is its
  // own span, with its own unaligned ends, at 1 thread or 3.
  it('a gradient past the caches, streamed a piece at a time: every level, unaligned, threads', function () {
    this.timeout(240_000);
    const rand = rng(778);
    const buffer = new Float32Array((1 << 23) + 1024);
    const threads = cbloss.backendInfo().cpu.threads;
    try {
      for (const [C, labelSmoothing] of [[100, 0], [30, 0], [30, 0.1]]) {
        const N = Math.ceil((1 << 23) / C) + 5; // (32 MiB of gradient and more)
        const input = randomLogits(rand, N * C, 4);
        const labels = Int32Array.from({ length: N }, (_, n) => (n % 97 === 5 ? -100 : Math.floor(rand() * C)));
        const loss = buildLoss({ loss: 'CrossEntropyLoss', options: { labelSmoothing } });
        cbloss.setSimdLevel('scalar');
        const expected = loss.forwardBackward(input, labels);
        for (const level of levels) {
          cbloss.setSimdLevel(level);
          for (const [offset, threadCount] of [[0, 1], [1, 3], [3, 1]]) {
            cbloss.setNumThreads(threadCount);
            const grad = buffer.subarray(offset, offset + N * C);
            const got = loss.forwardBackward(input, labels, { out: { grad } });
            const what = `C=${C} smoothing ${labelSmoothing} [${level}] offset ${offset}, ${threadCount} threads`;
            assertLossClose(got.loss as number, expected.loss as number, what);
            assertGradClose(grad, expected.grad, `${what} grad`);
          }
          const work = input.slice();
          loss.forwardBackward(work, labels, { out: { grad: work } });
          assertGradClose(work, expected.grad, `C=${C} smoothing ${labelSmoothing} [${level}] in place`);
          // streamed and ordinary stores write the same values: the first rows' gradient (a sum, so
          // that it does not depend on N) against a call on those rows alone, below the threshold
          const sum = buildLoss({ loss: 'CrossEntropyLoss', options: { labelSmoothing, reduction: 'sum' } });
          const rows = 1000;
          const streamed = sum.forwardBackward(input, labels).grad.subarray(0, rows * C);
          const ordinary = sum.forwardBackward(input.subarray(0, rows * C), labels.subarray(0, rows)).grad;
          assert.deepEqual(streamed, ordinary, `C=${C} smoothing ${labelSmoothing} [${level}] streamed = ordinary`);
        }
      }
    } finally {
      cbloss.setNumThreads(threads);
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
