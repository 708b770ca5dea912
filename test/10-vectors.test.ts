// The contract vectors (float32 inputs, float64 expectations from PyTorch) through the public API.
import { strict as assert } from 'node:assert';

import { ClassBalancedLoss } from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose, buildLoss, forEachKernelLevel, loadPublicVectors, nullToNaN, type VectorCase } from './helpers';

forEachKernelLevel('10 contract vectors (shared/vectors/public.json)', () => {
  let cases: VectorCase[] = [];
  let missing: Error | undefined;
  try {
    cases = loadPublicVectors();
  } catch (err) {
    missing = err as Error;
  }

  it('the vectors file is present', () => {
    if (missing) throw missing;
  });

  it('has cases for every loss', () => {
    const losses = new Set(cases.map((c) => c.loss));
    assert.deepEqual([...losses].sort(), [
      'BCEWithLogitsLoss',
      'ClassBalancedLoss',
      'CrossEntropyLoss',
      'FocalLoss',
      'SigmoidFocalLoss',
    ]);
  });

  for (const c of cases) {
    it(c.name, () => {
      const loss = buildLoss({ loss: c.loss, options: c.options });
      const input = Float32Array.from(c.input);
      const target = c.targetType === 'int32' ? Int32Array.from(c.target) : Float32Array.from(c.target);
      const opts = c.gradOutput === undefined ? undefined : { gradOutput: c.gradOutput };
      const result = loss.forwardBackward(input, target, opts);
      const forward = loss.forward(input, target);

      if (Array.isArray(c.expected.loss)) {
        assert.ok(result.loss instanceof Float32Array, 'reduction none returns a Float32Array');
        assertLossArrayClose(result.loss as Float32Array, c.expected.loss.map(nullToNaN), 'loss');
        assert.deepEqual(forward, result.loss, 'forward equals forwardBackward');
      } else {
        assert.equal(typeof result.loss, 'number');
        assertLossClose(result.loss as number, nullToNaN(c.expected.loss), 'loss');
        assert.equal(forward, result.loss, 'forward equals forwardBackward');
      }
      assert.ok(result.grad instanceof Float32Array);
      assertGradClose(result.grad, c.expected.grad.map(nullToNaN), 'grad');
      if (c.expected.weights) {
        assert.ok(loss instanceof ClassBalancedLoss);
        assertGradClose(loss.weights, c.expected.weights, 'weights', 1e-9);
      }
    });
  }
});
