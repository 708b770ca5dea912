// Numerical stability (docs/semantics.md: "Focal loss", "Sigmoid focal loss", "Precision"): finite losses
// and gradients for saturated logits up to |z| = 1e4 and for γ < 1; NaN and ±Inf propagate to their row
// or element only; a mean over many rows keeps its precision. At every kernel level (in the smoke scope:
// the float64 path and the widest).
import { strict as assert } from 'node:assert';

import { BCEWithLogitsLoss, ClassBalancedLoss, CrossEntropyLoss, FocalLoss, SigmoidFocalLoss, type Loss } from '../lib';
import { checkSmallRowLosses } from './families';
import { forEachKernelLevel, rng, scopedKernelLevels } from './helpers';

const allFinite = (a: ArrayLike<number>): boolean => Array.from(a).every(Number.isFinite);

forEachKernelLevel('60 numerical stability', () => {
  const C = 4;
  const extreme = Float32Array.from([1e4, -1e4, 0, 5, -1e4, 1e4, 1e4, -3, 0, 0, 0, 1e-7, 80, -80, 40, 1e4]);
  const labels = Int32Array.from([0, 1, 3, 2]);
  const elementTargets = Float32Array.from(extreme, (_, i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? 0 : 0.5));

  const cases: Array<[string, Loss, Int32Array | Float32Array]> = [];
  for (const gamma of [0, 0.25, 0.5, 1, 2]) {
    cases.push([`focal softmax γ=${gamma}`, new FocalLoss({ numClasses: C, gamma }), labels]);
    cases.push([`focal binary γ=${gamma}`, new FocalLoss({ numClasses: 2, gamma }), elementTargets]);
    cases.push([`sigmoid focal γ=${gamma}`, new SigmoidFocalLoss({ gamma, reduction: 'sum' }), elementTargets]);
    cases.push([
      `CB focal γ=${gamma}`,
      new ClassBalancedLoss({ samplesPerCls: [100, 10, 5, 1], beta: 0.999, numClasses: C, lossFunc: new FocalLoss({ numClasses: C, gamma, reduction: 'none' }) }),
      labels,
    ]);
  }
  cases.push(['CE smoothing', new CrossEntropyLoss({ labelSmoothing: 0.1 }), labels]);
  cases.push(['BCE posWeight', new BCEWithLogitsLoss({ posWeight: [2, 3, 4, 5] }), elementTargets]);

  for (const [name, loss, target] of cases) {
    it(`${name}: finite loss and gradient at |z| = 1e4`, () => {
      const r = loss.forwardBackward(extreme, target);
      assert.ok(typeof r.loss === 'number' ? Number.isFinite(r.loss) : allFinite(r.loss), `loss ${String(r.loss)}`);
      assert.ok(allFinite(r.grad), `grad ${Array.from(r.grad).join(',')}`);
    });
  }

  it('confident correct predictions have (near) zero focal loss and gradient, not NaN', () => {
    const x = Float32Array.from([30, -30, -30, -30]);
    const r = new FocalLoss({ numClasses: 4, gamma: 0.5 }).forwardBackward(x, [0]);
    // CE = log1p(3 e^-60) = 2.6e-26, focal (CE)^0.5 CE = 4e-39: tiny and exact, not rounded to 0 (next test)
    assert.ok((r.loss as number) > 0 && (r.loss as number) < 1e-37, `loss ${String(r.loss)}`);
    assert.ok(allFinite(r.grad));
    const b = new SigmoidFocalLoss({ gamma: 0.5 }).forwardBackward(Float32Array.from([200, -200]), Float32Array.from([1, 0]));
    assert.ok(allFinite(b.grad) && allFinite(b.loss as Float32Array));
  });

  // Confident rows' small losses, exact at every row layout (test/families.ts, checkSmallRowLosses).
  it('small per-row losses are exact to 1e-5 relative down to 1e-20 (CE, focal, poly; every row layout)', () => {
    checkSmallRowLosses();
  });

  it('NaN and ±Inf in the input propagate to that row (softmax losses) only', () => {
    const x = Float32Array.from([1, 2, 3, Number.NaN, 0, 0, 4, 5, 6, Number.POSITIVE_INFINITY, 1, 1]);
    const r = new CrossEntropyLoss({ reduction: 'none' }).forwardBackward(x, [0, 1, 2, 2]);
    const loss = r.loss;
    assert.ok(Number.isFinite(loss[0]) && Number.isNaN(loss[1]) && Number.isFinite(loss[2]) && Number.isNaN(loss[3]));
    assert.ok(allFinite(r.grad.subarray(0, 3)) && allFinite(r.grad.subarray(6, 9)));
    assert.ok(Array.from(r.grad.subarray(3, 6)).every(Number.isNaN));
    const mean = new CrossEntropyLoss().forward(x, [0, 1, 2, 2]);
    assert.ok(Number.isNaN(mean), 'a NaN row makes the mean NaN');
  });

  it('element losses keep ~1e-6 relative precision over the whole range of e^-|x|', () => {
    // t = [x > 0], so that the loss is log1p(e^-|x|), and for x <= 0 the gradient is
    // e^-|x| / (1 + e^-|x|): every digit comes from the exponential and the log1p. (For x > 0 the
    // gradient p - 1 cancels in float, as PyTorch's does: "Precision" measures it against max |g|.)
    // Below the smallest normal float, 2^-126, a result may be flushed to 0.
    const xs: number[] = [];
    for (let x = -110; x <= 110; x += 0.0131) xs.push(x);
    xs.push(-87.3365, -87.34, -88.72, -103.27, -103.97, -104, -104.01, -126 * Math.LN2, -150 * Math.LN2, 0);
    const x = Float32Array.from(xs);
    const t = Float32Array.from(x, (v) => (v > 0 ? 1 : 0));
    const close = (got: number, want: number): boolean => Math.abs(got - want) <= 1e-6 * Math.abs(want) + 2 ** -126;
    const none = new BCEWithLogitsLoss({ reduction: 'none' }).forwardBackward(x, t);
    const sum = new BCEWithLogitsLoss({ reduction: 'sum' }).forwardBackward(x, t);
    for (let i = 0; i < x.length; i++) {
      const e = Math.exp(-Math.abs(x[i]));
      const loss = (none.loss as Float32Array)[i];
      assert.ok(close(loss, Math.log1p(e)), `loss at x = ${x[i]}: ${loss}, want ${Math.log1p(e)}`);
      if (x[i] > 0) continue;
      assert.ok(close(none.grad[i], e / (1 + e)), `gradient at x = ${x[i]}: ${none.grad[i]}, want ${e / (1 + e)}`);
      assert.ok(close(sum.grad[i], e / (1 + e)), `gradient ('sum') at x = ${x[i]}: ${sum.grad[i]}, want ${e / (1 + e)}`);
    }
  });

  it('NaN in the input propagates to that element (element losses) only', () => {
    const x = Float32Array.from([1, Number.NaN, -2, 3]);
    const r = new BCEWithLogitsLoss({ reduction: 'none' }).forwardBackward(x, Float32Array.from([1, 0, 1, 0]));
    const loss = r.loss;
    assert.deepEqual(Array.from(loss, Number.isNaN), [false, true, false, false]);
    assert.deepEqual(Array.from(r.grad, Number.isNaN), [false, true, false, false]);
  });

  it('a mean over 2·10^6 rows keeps its precision (docs/semantics.md, "Precision")', () => {
    const rand = rng(11);
    const rows = 2_000_000;
    const C2 = 2;
    const x = new Float32Array(rows * C2);
    const y = new Int32Array(rows);
    let ref = 0;
    for (let n = 0; n < rows; n++) {
      const a = Math.fround(rand() * 8 - 4);
      const b = Math.fround(rand() * 8 - 4);
      x[2 * n] = a;
      x[2 * n + 1] = b;
      const label = rand() < 0.5 ? 0 : 1;
      y[n] = label;
      const m = Math.max(a, b);
      ref += m + Math.log(Math.exp(a - m) + Math.exp(b - m)) - (label ? b : a);
    }
    ref /= rows;
    const v = new CrossEntropyLoss().forward(x, y);
    assert.ok(Math.abs(v - ref) <= 1e-6 * ref, `${v} vs ${ref}`);
  });
}, scopedKernelLevels());
