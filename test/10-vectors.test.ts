// The contract vectors (float32 inputs, float64 expectations from PyTorch) through the public API.
import { strict as assert } from 'node:assert';

import * as cbloss from '../lib';
import { ClassBalancedLoss } from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose, buildLoss, forEachKernelLevel, loadPublicVectors, nullToNaN, PENDING_OPTIONS, pendingReason, type VectorCase } from './helpers';

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
      'AsymmetricLoss',
      'BCEWithLogitsLoss',
      'BalancedSoftmaxLoss',
      'ClassBalancedLoss',
      'CrossEntropyLoss',
      'FocalLoss',
      'LDAMLoss',
      'PolyLoss',
      'SigmoidFocalLoss',
    ]);
  });

  it('every pending case waits for a loss or option this package does not have yet', () => {
    for (const c of cases.filter((v) => pendingReason(v))) {
      const ctor = (cbloss as Record<string, unknown>)[c.loss];
      const usesPendingOption = c.sampleWeight !== undefined || c.avgFactor !== undefined || PENDING_OPTIONS.some((o) => o in c.options);
      const base = (c.options.lossFunc ?? c.options.loss_func) as { loss: string } | undefined;
      const pendingBase = base !== undefined && (cbloss as Record<string, unknown>)[base.loss] === undefined;
      assert.ok(ctor === undefined || usesPendingOption || pendingBase, `${c.name} is marked pending but runs`);
    }
  });

  for (const c of cases) {
    const pending = pendingReason(c);
    if (pending) {
      it(`${c.name} (pending: ${pending})`);
      continue;
    }
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
