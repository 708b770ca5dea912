// The Python cbloss package's own test values and the worked examples of docs/semantics.md.
import { strict as assert } from 'node:assert';

import { ClassBalancedLoss, FocalLoss, classBalancedWeights } from '../lib';
import { referenceWeights } from './reference';

const softmaxLogits = new Float32Array([0.5, -0.5, 1, -1, 2, -1, 0, 0, 0]);

describe('30 Python cbloss values and worked examples', () => {
  it('binary focal loss, defaults: 0.551209', () => {
    const loss = new FocalLoss({ numClasses: 2 });
    const v = loss.forward(new Float32Array([2.1, 0.5, 2.1, 0.5]), new Float32Array([0, 1, 1, 0]));
    assert.ok(Math.abs(v - 0.551209) < 5e-7, String(v));
    const fromInts = loss.forward(new Float32Array([2.1, 0.5, 2.1, 0.5]), [0, 1, 1, 0]);
    assert.equal(fromInts, v, 'integer 0/1 targets give the same value');
  });

  it('softmax focal loss, defaults: 0.204423', () => {
    const v = new FocalLoss({ numClasses: 3 }).forward(softmaxLogits, [2, 1, 0]);
    assert.ok(Math.abs(v - 0.204423) < 5e-7, String(v));
  });

  it('class-balanced weights for [30, 100, 25], beta 0.99', () => {
    const w = classBalancedWeights([30, 100, 25], 0.99);
    const expected = [1.161815, 0.477028, 1.361157];
    w.forEach((x, i) => assert.ok(Math.abs(x - expected[i]) < 5e-7, `${i}: ${x}`));
    assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) - 3) < 1e-12);
  });

  it('class-balanced focal loss worked example: 0.245579', () => {
    const loss = new ClassBalancedLoss({
      samplesPerCls: [30, 100, 25],
      beta: 0.99,
      numClasses: 3,
      lossFunc: new FocalLoss({ numClasses: 3, reduction: 'none' }),
    });
    const v = loss.forward(softmaxLogits, [2, 1, 0]);
    assert.ok(Math.abs(v - 0.245579) < 5e-7, String(v));
  });

  it('snake_case options port line by line from Python', () => {
    const loss = new ClassBalancedLoss({
      samples_per_cls: [30, 100, 25],
      beta: 0.99,
      num_classes: 3,
      loss_func: new FocalLoss({ num_classes: 3, reduction: 'none' }),
    });
    assert.ok(Math.abs(loss.forward(softmaxLogits, [2, 1, 0]) - 0.245579) < 5e-7);
  });

  it('beta = 0 gives ones; beta = 1 is inverse frequency; beta near 1 keeps precision', () => {
    assert.deepEqual(Array.from(classBalancedWeights([5, 50, 500], 0)), [1, 1, 1]);
    const inv = classBalancedWeights([1, 2, 4], 1);
    const s = 1 + 1 / 2 + 1 / 4;
    [1, 0.5, 0.25].forEach((x, i) => assert.ok(Math.abs(inv[i] - (x / s) * 3) < 1e-15));
    const near = classBalancedWeights([1, 2, 4], 1 - 1e-12);
    near.forEach((x, i) => assert.ok(Math.abs(x - inv[i]) < 1e-9, 'continuous at beta = 1'));
    const counts = [1000, 449, 201, 90, 40, 7];
    for (const beta of [0.5, 0.9, 0.99, 0.999, 0.9999]) {
      const w = classBalancedWeights(counts, beta);
      const ref = referenceWeights(counts, beta);
      w.forEach((x, i) => assert.ok(Math.abs(x - ref[i]) <= 1e-9 * ref[i], `beta ${beta}`));
    }
  });
});
