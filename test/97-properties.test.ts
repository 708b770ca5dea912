// Property tests (fast-check) over the public entry points, and hostile values: random shapes
// (N = 0, C = 1, C = 2^17), options and valid inputs match the float64 reference; random invalid
// inputs throw a TypeError or RangeError naming the argument; NaN/±Inf, huge labels, off-by-one
// lengths, SharedArrayBuffer and detached buffers, frozen options and throwing getters never crash.
import { strict as assert } from 'node:assert';

import fc from 'fast-check';

import * as cbloss from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose } from './helpers';
import { buildLoss } from './losses';
import { referenceGrad, referenceLoss, type LossSpec, type RefCase } from './reference';

const RUNS = Number(process.env.CBLOSS_PROPERTY_RUNS ?? 150);

const finiteLogit = fc.float({ min: -20, max: 20, noNaN: true, noDefaultInfinity: true }).map((v) => Math.fround(v));

const caseArbitrary = fc
  .record({
    family: fc.constantFrom('ce', 'ce-probs', 'bce', 'focal', 'focal-binary', 'sigmoid-focal', 'cb-focal', 'cb-bce'),
    N: fc.integer({ min: 0, max: 9 }),
    C: fc.integer({ min: 1, max: 9 }),
    reduction: fc.constantFrom('none', 'mean', 'sum'),
    gamma: fc.constantFrom(0, 0.5, 1, 2, 3.3),
    smoothing: fc.constantFrom(0, 0.1, 1),
    beta: fc.constantFrom(0, 0.9, 0.999, 1),
    seed: fc.integer(),
  })
  .chain((p) => {
    const C = p.family.startsWith('focal') || p.family === 'cb-focal' ? Math.max(2, p.C) : p.family === 'focal-binary' ? 2 : p.C;
    const M = p.family === 'focal-binary' ? p.N * 3 : p.N * C;
    return fc.record({
      p: fc.constant({ ...p, C }),
      logits: fc.array(finiteLogit, { minLength: M, maxLength: M }),
      labels: fc.array(fc.integer({ min: 0, max: C - 1 }), { minLength: p.N, maxLength: p.N }),
      dense: fc.array(fc.double({ min: 0, max: 1, noNaN: true }).map(Math.fround), { minLength: M, maxLength: M }),
      counts: fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: C, maxLength: C }),
    });
  });

type Sample = typeof caseArbitrary extends fc.Arbitrary<infer T> ? T : never;

function toRefCase(v: Sample): { ref: RefCase; target: Int32Array | Float32Array } {
  const { p, labels, dense, counts } = v;
  const r = p.reduction;
  const indices = { kind: 'int' as const, values: labels };
  const denseT = { kind: 'float' as const, values: dense };
  switch (p.family) {
    case 'ce':
      return { ref: { loss: 'CrossEntropyLoss', options: { numClasses: p.C, labelSmoothing: p.smoothing, reduction: r }, target: indices }, target: Int32Array.from(labels) };
    case 'ce-probs':
      return { ref: { loss: 'CrossEntropyLoss', options: { numClasses: p.C, reduction: r }, target: denseT }, target: Float32Array.from(dense) };
    case 'bce':
      return { ref: { loss: 'BCEWithLogitsLoss', options: { numClasses: p.C, reduction: r }, target: denseT }, target: Float32Array.from(dense) };
    case 'focal':
      return { ref: { loss: 'FocalLoss', options: { numClasses: p.C, gamma: p.gamma, reduction: r }, target: indices }, target: Int32Array.from(labels) };
    case 'focal-binary':
      return { ref: { loss: 'FocalLoss', options: { numClasses: 2, gamma: p.gamma, reduction: r }, target: denseT }, target: Float32Array.from(dense) };
    case 'sigmoid-focal':
      return { ref: { loss: 'SigmoidFocalLoss', options: { numClasses: p.C, gamma: p.gamma, reduction: r }, target: denseT }, target: Float32Array.from(dense) };
    case 'cb-focal':
      return {
        ref: { loss: 'ClassBalancedLoss', options: { samplesPerCls: counts, beta: p.beta, numClasses: p.C, reduction: r, lossFunc: { loss: 'FocalLoss', options: { numClasses: p.C, gamma: p.gamma, reduction: 'none' } } }, target: indices },
        target: Int32Array.from(labels),
      };
    default:
      return {
        ref: { loss: 'ClassBalancedLoss', options: { samplesPerCls: counts, beta: p.beta, numClasses: p.C, reduction: r, lossFunc: { loss: 'BCEWithLogitsLoss', options: { reduction: 'none' } } }, target: denseT },
        target: Float32Array.from(dense),
      };
  }
}

describe('97 properties and hostile values', () => {
  it('random valid problems match the float64 reference (loss) and finite differences (gradient)', () => {
    fc.assert(
      fc.property(caseArbitrary, (v) => {
        const { ref, target } = toRefCase(v);
        const input = Float32Array.from(v.logits);
        const loss = buildLoss(ref);
        const r = loss.forwardBackward(input, target);
        const expected = referenceLoss(ref, input);
        if (Array.isArray(expected)) assertLossArrayClose(r.loss as Float32Array, expected, 'loss');
        else assertLossClose(r.loss as number, expected, 'loss');
        if (input.length > 0 && input.length <= 60) assertGradClose(r.grad, referenceGrad(ref, Float64Array.from(input), 1), 'grad', 2e-5);
      }),
      { numRuns: RUNS, seed: 42 },
    );
  });

  it('C = 2^17 (one wide row) matches the reference', () => {
    const C = 1 << 17;
    const x = Float32Array.from({ length: 2 * C }, (_, i) => Math.fround(Math.sin(i) * 8));
    for (const [spec, t] of [
      [{ loss: 'CrossEntropyLoss', options: { labelSmoothing: 0.1 } }, [123, 131000]],
      [{ loss: 'FocalLoss', options: { numClasses: C, gamma: 0.5 } }, [5, 77777]],
    ] as Array<[LossSpec, number[]]>) {
      const ref: RefCase = { ...spec, target: { kind: 'int', values: t } };
      assertLossClose(buildLoss(ref).forward(x, Int32Array.from(t)) as number, referenceLoss(ref, x) as number, spec.loss);
    }
  });

  it('random invalid targets and options throw a TypeError or RangeError naming the argument, or work', () => {
    const x = new Float32Array(12);
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withBigInt: true, withNullPrototype: true }), (target) => {
        for (const loss of [new cbloss.CrossEntropyLoss(), new cbloss.BCEWithLogitsLoss(), new cbloss.FocalLoss({ numClasses: 3 })] as cbloss.Loss[]) {
          try {
            loss.forwardBackward(x, target as never);
          } catch (e) {
            assert.ok(e instanceof TypeError || e instanceof RangeError, `${(e as Error).constructor.name}: ${(e as Error).message}`);
            assert.match((e as Error).message, /target|numClasses|input/);
          }
        }
      }),
      { numRuns: RUNS * 2, seed: 7 },
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.anything()), (options) => {
        try {
          new cbloss.SigmoidFocalLoss(options as never);
        } catch (e) {
          assert.ok(e instanceof TypeError || e instanceof RangeError, `${(e as Error).constructor.name}: ${(e as Error).message}`);
          const named = Object.keys(options).some((k) => (e as Error).message.includes(k)) || /options of SigmoidFocalLoss/.test((e as Error).message);
          assert.ok(named, `the message names the option: ${(e as Error).message}`);
        }
      }),
      { numRuns: RUNS * 2, seed: 8 },
    );
  });

  it('NaN and ±Inf logits never crash; results are NaN/±Inf where PyTorch has them', () => {
    const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (const s of specials) {
      const x = Float32Array.from([0, 1, s, 2, 3, 4]);
      for (const loss of [new cbloss.CrossEntropyLoss({ reduction: 'none' }), new cbloss.FocalLoss({ numClasses: 3, reduction: 'none', gamma: 0.5 })] as cbloss.Loss[]) {
        const r = loss.forwardBackward(x, [0, 1]);
        const rows = r.loss as Float32Array;
        assert.ok(Number.isFinite(rows[1]), 'the other row stays finite');
        assert.ok(Array.from(r.grad.subarray(3)).every(Number.isFinite));
      }
      const e = new cbloss.SigmoidFocalLoss().forwardBackward(Float32Array.from([s, 1]), Float32Array.from([1, 0]));
      assert.ok(Number.isFinite((e.loss as Float32Array)[1]) && Number.isFinite(e.grad[1]));
    }
  });

  it('labels at ±2^31 and lengths off by one are RangeErrors', () => {
    const x = new Float32Array(9);
    assert.throws(() => new cbloss.CrossEntropyLoss().forward(x, Int32Array.from([0, -(2 ** 31), 1])), { name: 'RangeError', message: 'target[1] = -2147483648 is out of range [0, 3)' });
    assert.throws(() => new cbloss.CrossEntropyLoss().forward(x, BigInt64Array.from([0n, 2n ** 31n, 1n])), { name: 'RangeError', message: 'target[1] = 2147483648 is out of range [0, 3)' });
    assert.throws(() => new cbloss.CrossEntropyLoss({ numClasses: 3 }).forward(x, [0, 1]), RangeError);
    assert.throws(() => new cbloss.CrossEntropyLoss({ numClasses: 3 }).forward(x.subarray(1), [0, 1, 2]), RangeError);
    assert.throws(() => new cbloss.BCEWithLogitsLoss().forward(x, new Float32Array(10)), RangeError);
  });

  it('SharedArrayBuffer-backed arrays work, for input, target and output', () => {
    const xs = new Float32Array(new SharedArrayBuffer(4 * 6));
    xs.set([0.5, -1, 2, 0, 1, -2]);
    const ys = new Int32Array(new SharedArrayBuffer(8));
    ys.set([2, 0]);
    const g = new Float32Array(new SharedArrayBuffer(4 * 6));
    const r = new cbloss.CrossEntropyLoss().forwardBackward(xs, ys, { out: { grad: g } });
    const plain = new cbloss.CrossEntropyLoss().forwardBackward(Float32Array.from(xs), Int32Array.from(ys));
    assert.equal(r.loss, plain.loss);
    assert.deepEqual(Array.from(g), Array.from(plain.grad));
  });

  it('detached buffers (transferred away) are rejected, not read', () => {
    const x = new Float32Array(6);
    structuredClone(x.buffer, { transfer: [x.buffer] });
    assert.equal(x.length, 0);
    assert.throws(() => new cbloss.CrossEntropyLoss({ numClasses: 3 }).forward(x, [0, 1]), RangeError);
    const g = new Float32Array(6);
    structuredClone(g.buffer, { transfer: [g.buffer] });
    assert.throws(() => new cbloss.CrossEntropyLoss().forwardBackward(new Float32Array(6), [0, 1], { out: { grad: g } }), RangeError);
  });

  it('frozen option objects work; a throwing getter throws its own error, nothing crashes', () => {
    const options = Object.freeze({ numClasses: 3, gamma: 0.5, alpha: Object.freeze([1, 2, 3]) });
    assert.ok(Number.isFinite(new cbloss.FocalLoss(options).forward(new Float32Array(6), [0, 1])));
    const hostile = { numClasses: 3 } as Record<string, unknown>;
    Object.defineProperty(hostile, 'gamma', { enumerable: true, get: () => { throw new Error('getter boom'); } });
    assert.throws(() => new cbloss.FocalLoss(hostile as never), /getter boom/);
    const hostileTarget = new Proxy([0, 1], { get: (t, k) => (k === '1' ? (() => { throw new Error('index boom'); })() : Reflect.get(t, k)) });
    assert.throws(() => new cbloss.CrossEntropyLoss().forward(new Float32Array(6), hostileTarget), /index boom/);
  });
});
