// The contract vectors (float32 inputs, float64 expectations from PyTorch) through the public API: sync,
// async, into caller-owned buffers and in place, at every CPU kernel level (in the smoke scope, the
// first case of each loss).
import { strict as assert } from 'node:assert';

import { ClassBalancedLoss } from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose, forEachKernelLevel, loadPublicVectors, nullToNaN, scopedFirstOfEachLoss, vectorCallOptions, type VectorCase } from './helpers';
import { buildLoss, lossNames } from './losses';

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
    assert.deepEqual([...losses].sort(), [...lossNames].sort());
  });

  for (const c of scopedFirstOfEachLoss(cases, (vector) => vector.loss)) {
    it(c.name, async () => {
      const loss = buildLoss({ loss: c.loss, options: c.options });
      const input = Float32Array.from(c.input);
      const target = c.targetType === 'int32' ? Int32Array.from(c.target) : Float32Array.from(c.target);
      const opts = vectorCallOptions(c);
      const forwardOpts = opts && { sampleWeight: opts.sampleWeight, avgFactor: opts.avgFactor };
      const expectedGrad = c.expected.grad.map(nullToNaN);
      const checkLoss = (value: unknown, what: string): void => {
        if (Array.isArray(c.expected.loss)) {
          assert.ok(value instanceof Float32Array, `${what}: reduction none returns a Float32Array`);
          assertLossArrayClose(value, c.expected.loss.map(nullToNaN), `${what} loss`);
        } else {
          assert.equal(typeof value, 'number', what);
          assertLossClose(value as number, nullToNaN(c.expected.loss), `${what} loss`);
        }
      };

      const result = loss.forwardBackward(input, target, opts);
      checkLoss(result.loss, 'sync');
      assertGradClose(result.grad, expectedGrad, 'sync grad');
      assert.deepEqual(loss.forward(input, target, forwardOpts), result.loss, 'forward equals forwardBackward');

      const later = await loss.forwardBackwardAsync(input, target, opts);
      assert.deepEqual(later, result, 'async equals sync');
      assert.deepEqual(await loss.forwardAsync(input, target, forwardOpts), result.loss, 'forwardAsync');

      // Caller-owned buffers, then the gradient over the logits themselves (in place).
      const grad = new Float32Array(input.length).fill(7);
      const lossBuffer = Array.isArray(c.expected.loss) ? new Float32Array(c.expected.loss.length) : undefined;
      const owned = loss.forwardBackward(input, target, { ...opts, out: { grad, loss: lossBuffer } });
      assert.equal(owned.grad, grad, 'out.grad is returned');
      assert.deepEqual(Array.from(grad), Array.from(result.grad), 'out.grad');
      if (lossBuffer) assert.equal(owned.loss, lossBuffer, 'out.loss is returned');
      const inPlace = Float32Array.from(c.input);
      loss.forwardBackward(inPlace, target, { ...opts, out: { grad: inPlace } });
      assert.deepEqual(Array.from(inPlace), Array.from(result.grad), 'in place');

      if (c.expected.weights) {
        assert.ok(loss instanceof ClassBalancedLoss);
        assertGradClose(loss.weights, c.expected.weights, 'weights', 1e-9);
      }
    });
  }
});
