// avgFactor (docs/semantics.md, "Per-call options") as data-parallel training uses it: each worker holds a
// shard of the batch, asks loss.divisor(its targets) for its share of the divisor, the workers sum them
// (the all-reduce), and each divides by the total — and then the sum of the shards' losses is the whole
// batch's loss and the shards' gradients, put together, are the whole batch's gradient, for every loss and
// its mean reductions, on the CPU and (where CUDA runs, the emulator included) on the device. divisor()
// itself is checked against counts written here from the definitions of the reductions.
import * as assert from 'node:assert/strict';

import {
  AsymmetricLoss,
  BCEWithLogitsLoss,
  BalancedSoftmaxLoss,
  ClassBalancedLoss,
  CrossEntropyLoss,
  FocalLoss,
  LDAMLoss,
  PolyLoss,
  SigmoidFocalLoss,
  backendInfo,
  type AnyReduction,
  type Device,
  type Loss,
} from '../lib';
import { assertGradClose, assertLossClose, randomLogits, rng } from './helpers';
import type { LossName } from './reference';

/** A shard's targets: class indices (one per row), 0/1 per logit, or probability rows. */
type TargetKind = 'indices' | 'elements' | 'probabilities';

interface ShardCase {
  name: string;
  loss: (device: Device, reduction: AnyReduction) => Loss;
  /** The mean-like reductions the loss has. */
  reductions: readonly AnyReduction[];
  /** Logits per row (1 for the binary focal loss, which sees one flat array). */
  classes: number;
  targets: TargetKind;
  /** The whole batch's divisor at each reduction, from the definitions (an independent count). */
  reference: (reduction: AnyReduction, y: Int32Array, t: Float32Array) => number;
}

const N = 23;
const C = 6;
const weight = [0.5, 1, 1.5, 2, 0.25, 1];
const counts = [500, 200, 90, 40, 15, 6];
const IGNORED = 5;

// ŵ (docs/semantics.md, "Class-balanced weights and reductions"), in float64 from the counts
const raw = counts.map((n) => (1 - 0.99) / (1 - Math.pow(0.99, n)));
const balanced = raw.map((w) => (w / raw.reduce((a, b) => a + b, 0)) * C);

const sum = (values: Iterable<number>): number => Array.from(values).reduce((a, b) => a + b, 0);
const labelWeights = (y: Int32Array): number => sum(Array.from(y, (v) => (v === IGNORED ? 0 : weight[v])));
const notIgnored = (y: Int32Array): number => sum(Array.from(y, (v) => (v === IGNORED ? 0 : 1)));
const means = ['mean'] as const;
const classBalancedMeans = ['mean', 'batchmean', 'weightedmean'] as const;

// Every loss class of the descriptor (test/losses.ts) has its cases here: a Record over LossName, so a
// new loss without one fails the typecheck.
const CASES: Readonly<Record<LossName, readonly [ShardCase, ...ShardCase[]]>> = {
  CrossEntropyLoss: [
    {
      name: 'CrossEntropyLoss weight ignoreIndex (Σ w[y] over rows not ignored)',
      loss: (device, reduction) => new CrossEntropyLoss({ weight, ignoreIndex: IGNORED, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'indices',
      reference: (_, y) => labelWeights(y),
    },
    {
      name: 'CrossEntropyLoss probabilities (N)',
      loss: (device, reduction) => new CrossEntropyLoss({ numClasses: C, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'probabilities',
      reference: () => N,
    },
  ],
  BalancedSoftmaxLoss: [
    {
      name: 'BalancedSoftmaxLoss ignoreIndex (rows not ignored)',
      loss: (device, reduction) => new BalancedSoftmaxLoss({ samplesPerCls: counts, ignoreIndex: IGNORED, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'indices',
      reference: (_, y) => notIgnored(y),
    },
  ],
  LDAMLoss: [
    {
      name: 'LDAMLoss weight ignoreIndex (Σ w[y] over rows not ignored)',
      loss: (device, reduction) => new LDAMLoss({ samplesPerCls: counts, weight, ignoreIndex: IGNORED, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'indices',
      reference: (_, y) => labelWeights(y),
    },
  ],
  BCEWithLogitsLoss: [
    {
      name: 'BCEWithLogitsLoss weight (N·C)',
      loss: (device, reduction) => new BCEWithLogitsLoss({ weight, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'elements',
      reference: () => N * C,
    },
  ],
  FocalLoss: [
    { name: 'FocalLoss softmax (N)', loss: (device, reduction) => new FocalLoss({ numClasses: C, device, reduction: reduction as 'mean' }), reductions: means, classes: C, targets: 'indices', reference: () => N },
    {
      name: 'FocalLoss binary (one logit a row: N)',
      loss: (device, reduction) => new FocalLoss({ numClasses: 2, alpha: [0.25, 0.75], device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: 1,
      targets: 'elements',
      reference: () => N,
    },
  ],
  SigmoidFocalLoss: [
    {
      name: 'SigmoidFocalLoss (N·C)',
      loss: (device, reduction) => new SigmoidFocalLoss({ numClasses: C, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'elements',
      reference: () => N * C,
    },
  ],
  PolyLoss: [
    {
      name: 'PolyLoss ignoreIndex (rows not ignored)',
      loss: (device, reduction) => new PolyLoss({ numClasses: C, ignoreIndex: IGNORED, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'indices',
      reference: (_, y) => notIgnored(y),
    },
  ],
  AsymmetricLoss: [
    {
      name: 'AsymmetricLoss (N·C)',
      loss: (device, reduction) => new AsymmetricLoss({ numClasses: C, device, reduction: reduction as 'mean' }),
      reductions: means,
      classes: C,
      targets: 'elements',
      reference: () => N * C,
    },
  ],
  ClassBalancedLoss: [
    {
      name: "ClassBalancedLoss of FocalLoss (mean, batchmean: N; weightedmean: Σ ŵ[y])",
      loss: (device, reduction) =>
        new ClassBalancedLoss({ samplesPerCls: counts, beta: 0.99, numClasses: C, reduction, lossFunc: new FocalLoss({ numClasses: C, reduction: 'none' }), device }),
      reductions: classBalancedMeans,
      classes: C,
      targets: 'indices',
      reference: (reduction, y) => (reduction === 'weightedmean' ? sum(Array.from(y, (v) => balanced[v])) : N),
    },
    {
      name: "ClassBalancedLoss of BCEWithLogitsLoss, weighting 'class' (mean: N·C; batchmean: N; weightedmean: Σ ŵ_c t_nc)",
      loss: (device, reduction) =>
        new ClassBalancedLoss({ samplesPerCls: counts, beta: 0.99, numClasses: C, reduction, weighting: 'class', lossFunc: new BCEWithLogitsLoss({ reduction: 'none' }), device }),
      reductions: classBalancedMeans,
      classes: C,
      targets: 'elements',
      reference: (reduction, _, t) =>
        reduction === 'mean' ? N * C : reduction === 'batchmean' ? N : sum(Array.from(t, (v, i) => balanced[i % C] * v)),
    },
  ],
};

const devices: Device[] = ['cpu', ...(backendInfo().cuda.available ? (['cuda'] as const) : [])];
const bounds = [0, 5, 6, 17, N]; // uneven shards, one of a single row

interface Batch {
  x: Float32Array;
  y: Int32Array;
  t: Float32Array;
  sampleWeight: Float32Array;
  /** Rows [from, to) of the case's targets. */
  target: (from: number, to: number) => Int32Array | Float32Array;
}

function batch(c: ShardCase, seed: number): Batch {
  const rand = rng(seed);
  const x = randomLogits(rand, N * c.classes);
  // (every third row ignored, where the loss ignores one)
  const y = Int32Array.from({ length: N }, (_, n) => (n % 3 === 1 ? IGNORED : Math.floor(rand() * C)));
  const t = new Float32Array(N * c.classes);
  if (c.targets === 'probabilities') {
    for (let n = 0; n < N; n++) {
      const row = Array.from({ length: C }, () => rand());
      row.forEach((v, k) => (t[n * C + k] = Math.fround(v / sum(row))));
    }
  } else {
    t.forEach((_, i) => (t[i] = rand() < 0.3 ? 1 : 0));
  }
  const sampleWeight = Float32Array.from({ length: N }, () => Math.fround(0.5 + rand()));
  const target = (from: number, to: number): Int32Array | Float32Array =>
    c.targets === 'indices' ? y.subarray(from, to) : t.subarray(from * c.classes, to * c.classes);
  return { x, y, t, sampleWeight, target };
}

const cases = Object.values(CASES).flat();

describe('47 data-parallel shards with avgFactor = Σ over the shards of loss.divisor(shard) (docs/semantics.md, "Per-call options")', () => {
  for (const c of cases) {
    for (const reduction of c.reductions) {
      it(`divisor(): ${c.name} '${reduction}' is the count of the definitions, and the shards' divisors add up to it`, () => {
        const b = batch(c, c.name.length * 7 + reduction.length);
        const loss = c.loss('cpu', reduction);
        const whole = loss.divisor(b.target(0, N));
        assertLossClose(whole, c.reference(reduction, b.y, b.t), `${c.name} divisor`);
        const shards = bounds.slice(1).map((to, s) => loss.divisor(b.target(bounds[s], to)));
        assertLossClose(sum(shards), whole, `${c.name} summed shard divisors`);
        // forward's options change nothing but an avgFactor, which is the divisor
        assert.equal(loss.divisor(b.target(0, N), { sampleWeight: b.sampleWeight }), whole);
        assert.equal(loss.divisor(b.target(0, N), { avgFactor: 3.5 }), 3.5);
      });
    }
  }

  for (const device of devices) {
    for (const c of cases) {
      for (const reduction of c.reductions) {
        it(`[${device}] ${c.name} '${reduction}': the shards' losses sum to the batch's, their gradients make its gradient`, () => {
          const b = batch(c, c.name.length * 31 + device.length + reduction.length);
          const loss = c.loss(device, reduction);
          const whole = loss.forwardBackward(b.x, b.target(0, N), { sampleWeight: b.sampleWeight });
          // Each worker's share, all-reduced (summed) over the workers: every worker's avgFactor.
          const avgFactor = sum(bounds.slice(1).map((to, s) => loss.divisor(b.target(bounds[s], to))));
          let total = 0;
          const grad = new Float32Array(N * c.classes);
          for (let s = 0; s + 1 < bounds.length; s++) {
            const [from, to] = [bounds[s], bounds[s + 1]];
            const part = loss.forwardBackward(b.x.subarray(from * c.classes, to * c.classes), b.target(from, to), {
              sampleWeight: b.sampleWeight.subarray(from, to),
              avgFactor,
            });
            total += part.loss as number;
            grad.set(part.grad, from * c.classes);
          }
          assertLossClose(total, whole.loss as number, `${c.name} summed loss`);
          assertGradClose(grad, whole.grad, `${c.name} gradients`, 1e-6);
          // ...and the avgFactor of a worker that held the whole batch changes nothing
          assertLossClose(
            loss.forward(b.x, b.target(0, N), { sampleWeight: b.sampleWeight, avgFactor }) as number,
            whole.loss as number,
            `${c.name} one worker`,
          );
        });
      }
    }
  }

  describe('divisor() arguments', () => {
    it('C from the loss, or opts.inputShape; a TypeError naming numClasses where neither gives it', () => {
      assert.throws(() => new CrossEntropyLoss().divisor([0, 1, 2]), { name: 'TypeError', message: /opts\.inputShape \[N, C\]\) for numClasses/ });
      assert.equal(new CrossEntropyLoss().divisor([0, 1, 2], { inputShape: [3, 4] }), 3);
      assert.equal(new CrossEntropyLoss().divisor([0, 1, 2], { inputShape: [12] }), 3);
      assert.equal(new PolyLoss({ numClasses: 4, ignoreIndex: 3 }).divisor([0, 3, 2]), 2);
      // probability targets: C from numClasses, weight or a shape [N, C]
      assert.throws(() => new CrossEntropyLoss().divisor(new Float32Array(6)), { name: 'TypeError', message: /numClasses/ });
      assert.equal(new CrossEntropyLoss().divisor(new Float32Array(6), { inputShape: [2, 3] }), 2);
      assert.equal(new CrossEntropyLoss({ weight: [1, 2, 3] }).divisor(new Float32Array(6)), 2);
      // an element loss's 0/1 targets give their own count; integer targets of one need the shape to be read
      assert.equal(new BCEWithLogitsLoss({ numClasses: 3 }).divisor(new Float32Array(6)), 6);
      assert.throws(() => new BCEWithLogitsLoss({ numClasses: 3 }).divisor([0, 1]), { name: 'TypeError', message: /opts\.inputShape/ });
      assert.equal(new BCEWithLogitsLoss({ numClasses: 3 }).divisor([0, 1], { inputShape: [2, 3] }), 6);
      assert.equal(new BCEWithLogitsLoss({ numClasses: 3 }).divisor([0, 1, 1, 0, 0, 1], { inputShape: [2, 3] }), 6);
    });

    it("the same errors as forward: labels, lengths, options; 'sum' and 'none' have no divisor", () => {
      const ce = new CrossEntropyLoss({ weight: [1, 2, 3] });
      assert.throws(() => ce.divisor([0, 3]), { name: 'RangeError', message: 'target[1] = 3 is out of range [0, 3)' });
      assert.throws(() => ce.divisor(Int32Array.from([0, -1])), { name: 'RangeError', message: 'target[1] = -1 is out of range [0, 3)' });
      assert.throws(() => ce.divisor([0, 1], { inputShape: [2, 4] }), RangeError);
      assert.throws(() => ce.divisor([0, 1], { inputShape: [2, -3] }), RangeError);
      assert.throws(() => ce.divisor([0, 1], { inputShape: 6 as never }), TypeError);
      assert.throws(() => ce.divisor([0, 1], { sampleWeight: [1, 2, 3] }), RangeError);
      assert.throws(() => ce.divisor([0, 1], { gradOutput: 2 } as never), TypeError);
      assert.throws(() => ce.divisor('labels' as never), TypeError);
      assert.throws(() => new CrossEntropyLoss({ reduction: 'sum' }).divisor([0, 1], { inputShape: [2, 2] }), RangeError);
      assert.throws(() => new SigmoidFocalLoss().divisor(new Float32Array(4)), RangeError); // (its default reduction is 'none')
    });

    it('an empty or all-ignored batch has the divisor 0 (its mean is NaN: "Zero divisor")', () => {
      assert.equal(new CrossEntropyLoss({ numClasses: 3 }).divisor(new Int32Array(0)), 0);
      assert.equal(new CrossEntropyLoss({ numClasses: 3 }).divisor([-100, -100]), 0);
    });
  });
});
