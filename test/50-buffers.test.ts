// Inputs are never modified, caller-owned buffers are reused, the gradient may overwrite the logits
// in place, every accepted target form gives the same answer, async equals sync.
import { strict as assert } from 'node:assert';

import { BCEWithLogitsLoss, ClassBalancedLoss, CrossEntropyLoss, FocalLoss, SigmoidFocalLoss, backendInfo, isPinned, pinnedArray, type Loss } from '../lib';
import { assertGradClose, randomLogits, rng } from './helpers';

const N = 16;
const C = 5;

function lossesUnderTest(): Array<[string, Loss, 'index' | 'float' | 'binary']> {
  return [
    ['CE', new CrossEntropyLoss({ labelSmoothing: 0.1, weight: [1, 2, 3, 4, 5] }), 'index'],
    ['CE none', new CrossEntropyLoss({ reduction: 'none' }), 'index'],
    ['CE probabilities', new CrossEntropyLoss({ numClasses: C }), 'float'],
    ['BCE', new BCEWithLogitsLoss({ numClasses: C, posWeight: [1, 2, 1, 2, 1] }), 'float'],
    ['focal', new FocalLoss({ numClasses: C, gamma: 0.5 }), 'index'],
    ['focal binary', new FocalLoss({ numClasses: 2, reduction: 'sum' }), 'binary'],
    ['sigmoid focal', new SigmoidFocalLoss({ numClasses: C }), 'float'],
    ['CB focal', new ClassBalancedLoss({ samplesPerCls: [50, 20, 10, 5, 1], beta: 0.99, numClasses: C, lossFunc: new FocalLoss({ numClasses: C, reduction: 'none' }) }), 'index'],
    ['CB BCE none', new ClassBalancedLoss({ samplesPerCls: [50, 20, 10, 5, 1], beta: 0.9, numClasses: C, reduction: 'none', weighting: 'class', lossFunc: new BCEWithLogitsLoss({ reduction: 'none' }) }), 'float'],
  ];
}

function targetFor(kind: 'index' | 'float' | 'binary', rand: () => number): Int32Array | Float32Array {
  if (kind === 'index') return Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  if (kind === 'binary') return Float32Array.from({ length: N * C }, () => (rand() < 0.5 ? 1 : 0));
  return Float32Array.from({ length: N * C }, () => Math.fround(rand()));
}

describe('50 buffers, in place, target forms, async', () => {
  for (const [name, loss, kind] of lossesUnderTest()) {
    describe(name, () => {
      const rand = rng(name.length * 31);
      const input = randomLogits(rand, N * C);
      const target = targetFor(kind, rand);

      it('never modifies its inputs', () => {
        const inputCopy = input.slice();
        const targetCopy = target.slice();
        loss.forwardBackward(input, target);
        loss.forward(input, target);
        assert.deepEqual(input, inputCopy);
        assert.deepEqual(target, targetCopy);
      });

      it('fills and returns caller-owned out buffers, call after call', () => {
        const fresh = loss.forwardBackward(input, target);
        const grad = new Float32Array(N * C).fill(Number.NaN);
        const lossBuf = fresh.loss instanceof Float32Array ? new Float32Array(fresh.loss.length) : undefined;
        for (let i = 0; i < 3; i++) {
          const r = loss.forwardBackward(input, target, { out: { grad, loss: lossBuf } });
          assert.equal(r.grad, grad, 'the same Float32Array is returned');
          if (lossBuf) assert.equal(r.loss, lossBuf);
          assert.deepEqual(r.grad, fresh.grad);
          assert.deepEqual(r.loss, fresh.loss);
        }
      });

      it('overwrites the logits with their gradient when out.grad is the input', () => {
        const expected = loss.forwardBackward(input, target);
        const work = input.slice();
        const r = loss.forwardBackward(work, target, { out: { grad: work } });
        assert.equal(r.grad, work);
        assert.deepEqual(work, expected.grad);
        assert.deepEqual(r.loss, expected.loss);
      });

      it('accepts views with a byteOffset into a larger buffer', () => {
        const bigInput = new Float32Array(N * C + 7);
        bigInput.set(input, 3);
        const view = bigInput.subarray(3, 3 + N * C);
        const bigGrad = new Float32Array(N * C + 9).fill(7);
        const gradView = bigGrad.subarray(5, 5 + N * C);
        const r = loss.forwardBackward(view, target, { out: { grad: gradView } });
        assert.deepEqual(r.grad, loss.forwardBackward(input, target).grad);
        assert.ok(bigGrad.subarray(0, 5).every((v) => v === 7) && bigGrad.subarray(5 + N * C).every((v) => v === 7));
      });

      it('async forms equal the sync ones bit for bit', async () => {
        const sync = loss.forwardBackward(input, target);
        const async_ = await loss.forwardBackwardAsync(input, target);
        assert.deepEqual(async_.grad, sync.grad);
        assert.deepEqual(async_.loss, sync.loss);
        assert.deepEqual(await loss.forwardAsync(input, target), loss.forward(input, target));
      });
    });
  }

  it('every integer target type gives the same result as Int32Array', () => {
    const rand = rng(5);
    const input = randomLogits(rand, N * C);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const loss = new FocalLoss({ numClasses: C });
    const expected = loss.forwardBackward(input, labels);
    const forms: unknown[] = [
      Array.from(labels),
      Uint8Array.from(labels),
      Uint8ClampedArray.from(labels),
      Uint16Array.from(labels),
      Int16Array.from(labels),
      Int8Array.from(labels),
      Uint32Array.from(labels),
      BigInt64Array.from(Array.from(labels, BigInt)),
    ];
    for (const t of forms) {
      const r = loss.forwardBackward(input, t as Int32Array);
      assert.equal(r.loss, expected.loss, (t as object).constructor.name);
      assert.deepEqual(r.grad, expected.grad);
    }
  });

  it('a Float64Array input is rounded to float32 first', () => {
    const rand = rng(6);
    const input64 = Float64Array.from({ length: N * C }, () => rand() * 4 - 2);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const loss = new CrossEntropyLoss();
    assert.deepEqual(loss.forwardBackward(input64, labels), loss.forwardBackward(Float32Array.from(input64), labels));
  });

  it('Float64Array element targets equal their float32 rounding', () => {
    const rand = rng(7);
    const input = randomLogits(rand, N * C);
    const t64 = Float64Array.from({ length: N * C }, () => rand());
    const loss = new BCEWithLogitsLoss();
    assert.equal(loss.forward(input, t64), loss.forward(input, Float32Array.from(t64)));
  });

  it('gradOutput scales the gradient (scalar, and per element for none)', () => {
    const rand = rng(8);
    const input = randomLogits(rand, N * C);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const mean = new CrossEntropyLoss();
    const g1 = mean.forwardBackward(input, labels).grad;
    const g3 = mean.forwardBackward(input, labels, { gradOutput: 3 }).grad;
    assertGradClose(g3, Array.from(g1, (v) => 3 * v), 'gradOutput 3');
    const none = new CrossEntropyLoss({ reduction: 'none' });
    const go = Float32Array.from({ length: N }, (_, n) => (n % 2 ? 0 : 2));
    const gn = none.forwardBackward(input, labels, { gradOutput: go }).grad;
    const gOnes = none.forwardBackward(input, labels).grad;
    for (let i = 0; i < N * C; i++) {
      if (Math.floor(i / C) % 2) assert.equal(Math.abs(gn[i]), 0, 'a zero upstream gradient gives exactly 0');
    }
    assertGradClose(gn, Array.from(gOnes, (v, i) => go[Math.floor(i / C)] * v), 'per-row gradOutput');
  });

  it('an all-ignored or empty batch: mean is NaN, gradient zero; sum is 0', () => {
    const input = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const r = new CrossEntropyLoss().forwardBackward(input, [-100, -100]);
    assert.ok(Number.isNaN(r.loss));
    assert.deepEqual(Array.from(r.grad), [0, 0, 0, 0, 0, 0]);
    const empty = new CrossEntropyLoss({ numClasses: 3 }).forwardBackward(new Float32Array(0), []);
    assert.ok(Number.isNaN(empty.loss));
    assert.equal(empty.grad.length, 0);
    assert.equal(new CrossEntropyLoss({ reduction: 'sum', numClasses: 3 }).forward(new Float32Array(0), []), 0);
    assert.ok(Number.isNaN(new BCEWithLogitsLoss().forward(new Float32Array(0), new Float32Array(0))));
  });

  // Pinned host memory where CUDA is usable, an ordinary array elsewhere: the same code runs on both.
  it('pinnedArray: zero-filled float32/int32 arrays, pinned exactly when CUDA is usable, usable by every loss', () => {
    const cuda = backendInfo().cuda.available;
    const x = pinnedArray(N * C);
    const y = pinnedArray(N, { dtype: 'int32' });
    assert.ok(x instanceof Float32Array && y instanceof Int32Array);
    assert.deepEqual([x.length, y.length], [N * C, N]);
    assert.ok(x.every((v) => v === 0) && y.every((v) => v === 0));
    assert.equal(isPinned(x), cuda);
    assert.equal(isPinned(x.subarray(3, 9)), cuda);
    assert.equal(isPinned(new Float32Array(4)), false);
    assert.equal(pinnedArray(0).length, 0);
    const rand = rng(50);
    x.set(randomLogits(rand, N * C));
    y.set(Int32Array.from({ length: N }, () => Math.floor(rand() * C)));
    const expected = new CrossEntropyLoss().forwardBackward(Float32Array.from(x), Int32Array.from(y));
    const grad = pinnedArray(N * C);
    const got = new CrossEntropyLoss().forwardBackward(x, y, { out: { grad } });
    assert.equal(got.loss, expected.loss);
    assert.equal(got.grad, grad);
    assert.deepEqual(grad, expected.grad);
  });

  it('pinnedArray and isPinned: bad arguments are TypeErrors and RangeErrors naming them', () => {
    assert.throws(() => pinnedArray(-1), { name: 'RangeError', message: /length/ });
    assert.throws(() => pinnedArray(1.5), { name: 'RangeError', message: /length/ });
    assert.throws(() => pinnedArray(4, { dtype: 'float16' as never }), { name: 'RangeError', message: /dtype/ });
    assert.throws(() => pinnedArray(4, { dtype: 3 as never }), { name: 'TypeError', message: /dtype/ });
    assert.throws(() => pinnedArray(4, null as never), { name: 'TypeError', message: /options/ });
    assert.throws(() => isPinned(new DataView(new ArrayBuffer(4)) as never), { name: 'TypeError', message: /array/ });
    assert.throws(() => isPinned([1, 2] as never), { name: 'TypeError', message: /array/ });
  });
});
