// tf.js: tensors in and out, the fused gradient through tf.customGrad, training under
// optimizer.minimize, model.fit with toTfLoss(), and no leaked tensors.
import { strict as assert } from 'node:assert';

import * as tf from '@tensorflow/tfjs';

import * as cbloss from '../lib';
import { assertGradClose, assertLossClose, randomLogits, rng } from './helpers';
import { lossEntries } from './losses';

function imbalancedProblem(seed: number, N: number, D: number, C: number): { x: tf.Tensor2D; y: Int32Array; counts: number[] } {
  const rand = rng(seed);
  const centers = Array.from({ length: C }, () => Array.from({ length: D }, () => rand() * 4 - 2));
  const counts = new Array<number>(C).fill(0);
  const xs = new Float32Array(N * D);
  const y = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    // class c with probability proportional to 0.35^c: long-tailed
    let c = 0;
    while (c < C - 1 && rand() < 0.65) c++;
    c = C - 1 - c;
    y[n] = c;
    counts[c]++;
    for (let d = 0; d < D; d++) xs[n * D + d] = centers[c][d] + (rand() - 0.5) * 1.5;
  }
  return { x: tf.tensor2d(xs, [N, D]), y, counts: counts.map((k) => Math.max(k, 1)) };
}

describe('80 tf.js', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('forward on a tensor returns a tensor with the array result', () => {
    const x = randomLogits(rng(1), 12 * 5);
    const y = Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
    for (const loss of [new cbloss.CrossEntropyLoss(), new cbloss.FocalLoss({ numClasses: 5, reduction: 'none' })] as cbloss.Loss[]) {
      const out = loss.forward(tf.tensor2d(x, [12, 5]), y) as unknown as tf.Tensor;
      const expected = loss.forward(x, y);
      if (typeof expected === 'number') {
        assert.deepEqual(out.shape, []);
        assertLossClose(out.dataSync()[0], expected, 'scalar');
      } else {
        assert.deepEqual(out.shape, [12]);
        assert.deepEqual(out.dataSync(), expected);
      }
      out.dispose();
    }
  });

  it('tf.grad gives the fused gradient; for CE it equals tf.losses.softmaxCrossEntropy\'s autodiff', () => {
    const rand = rng(2);
    const N = 16;
    const C = 7;
    const xData = randomLogits(rand, N * C);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const x = tf.tensor2d(xData, [N, C]);
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), C).toFloat();
    const ce = new cbloss.CrossEntropyLoss();
    const ours = tf.grad((z: tf.Tensor) => ce.forward(z as tf.Tensor2D, labels) as unknown as tf.Tensor)(x);
    const theirs = tf.grad((z: tf.Tensor) => tf.losses.softmaxCrossEntropy(onehot, z))(x);
    assertGradClose(ours.dataSync(), theirs.dataSync(), 'CE grad', 1e-5);
    const ourLoss = (ce.forward(x, labels) as unknown as tf.Tensor).dataSync()[0];
    assertLossClose(ourLoss, tf.losses.softmaxCrossEntropy(onehot, x).dataSync()[0], 'CE loss');
    assert.deepEqual(ours.dataSync(), ce.forwardBackward(xData, labels).grad);
    tf.dispose([x, onehot, ours, theirs]);
  });

  it('the focal loss gradient equals tf.js autodiff of the focal loss written in tf ops', () => {
    const rand = rng(3);
    const N = 20;
    const C = 6;
    const gamma = 2;
    const x = tf.tensor2d(randomLogits(rand, N * C), [N, C]);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), C).toFloat();
    const focal = new cbloss.FocalLoss({ numClasses: C, gamma, alpha: 0.5 });
    const tfFocal = (z: tf.Tensor): tf.Tensor => {
      const ce = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(z)), -1));
      return tf.mean(tf.mul(0.5, tf.mul(tf.pow(tf.sub(1, tf.exp(tf.neg(ce))), gamma), ce)));
    };
    const ours = tf.grad((z: tf.Tensor) => focal.forward(z as tf.Tensor2D, labels) as unknown as tf.Tensor)(x);
    const theirs = tf.grad(tfFocal)(x);
    assertGradClose(ours.dataSync(), theirs.dataSync(), 'focal grad', 1e-4);
    tf.dispose([x, onehot, ours, theirs]);
  });

  it('the PolyLoss gradient equals tf.js autodiff of Poly-1 written in tf ops (ignored rows included)', () => {
    const rand = rng(31);
    const N = 16;
    const C = 5;
    const x = tf.tensor2d(randomLogits(rand, N * C), [N, C]);
    const labels = Int32Array.from({ length: N }, (_, n) => (n % 5 === 3 ? -100 : Math.floor(rand() * C)));
    const valid = tf.tensor1d(Float32Array.from(labels, (y) => (y === -100 ? 0 : 1)));
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), C).toFloat(); // -100: a zero row
    const poly = new cbloss.PolyLoss({ epsilon: 2 });
    const tfPoly = (z: tf.Tensor): tf.Tensor => {
      const logPy = tf.sum(tf.mul(onehot, tf.logSoftmax(z)), -1);
      const perRow = tf.mul(valid, tf.add(tf.neg(logPy), tf.mul(2, tf.sub(1, tf.exp(logPy)))));
      return tf.div(tf.sum(perRow), tf.sum(valid));
    };
    const ours = tf.grad((z: tf.Tensor) => poly.forward(z as tf.Tensor2D, labels) as unknown as tf.Tensor)(x);
    const theirs = tf.grad(tfPoly)(x);
    assertGradClose(ours.dataSync(), theirs.dataSync(), 'poly grad', 1e-4);
    tf.dispose([x, valid, onehot, ours, theirs]);
  });

  it('the AsymmetricLoss gradient equals tf.js autodiff of ASL written in tf ops', () => {
    const rand = rng(32);
    const N = 12;
    const C = 6;
    const x = tf.tensor2d(randomLogits(rand, N * C, 2), [N, C]);
    const t = tf.tensor2d(Float32Array.from({ length: N * C }, () => (rand() < 0.3 ? 1 : 0)), [N, C]);
    const [gammaPos, gammaNeg, clip] = [1, 4, 0.05];
    const asl = new cbloss.AsymmetricLoss({ gammaPos, gammaNeg, clip, reduction: 'sum' });
    const tfAsl = (z: tf.Tensor): tf.Tensor => {
      const p = tf.sigmoid(z);
      const neg = tf.minimum(tf.add(tf.sub(1, p), clip), 1);
      const ce = tf.neg(tf.add(tf.mul(t, tf.log(p)), tf.mul(tf.sub(1, t), tf.log(neg))));
      const base = tf.sub(tf.sub(1, tf.mul(p, t)), tf.mul(neg, tf.sub(1, t)));
      const gamma = tf.add(tf.mul(gammaPos, t), tf.mul(gammaNeg, tf.sub(1, t)));
      return tf.sum(tf.mul(tf.pow(base, gamma), ce));
    };
    const targets = t.dataSync() as Float32Array;
    const ours = tf.grad((z: tf.Tensor) => asl.forward(z as tf.Tensor2D, targets) as unknown as tf.Tensor)(x);
    const theirs = tf.grad(tfAsl)(x);
    assertGradClose(ours.dataSync(), theirs.dataSync(), 'asl grad', 1e-4);
    tf.dispose([x, t, ours, theirs]);
  });

  it('reduction none: the upstream gradient of each row scales that row', () => {
    const rand = rng(4);
    const xData = randomLogits(rand, 8 * 4);
    const labels = Int32Array.from({ length: 8 }, () => Math.floor(rand() * 4));
    const rowWeights = Float32Array.from({ length: 8 }, () => rand());
    const loss = new cbloss.FocalLoss({ numClasses: 4, reduction: 'none' });
    const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(loss.forward(z as tf.Tensor2D, labels) as unknown as tf.Tensor, tf.tensor1d(rowWeights))))(
      tf.tensor2d(xData, [8, 4]),
    );
    assertGradClose(g.dataSync(), loss.forwardBackward(xData, labels, { gradOutput: rowWeights }).grad, 'row-scaled grad');
    g.dispose();
  });

  // Each loss with a tf.js training form in the descriptor (test/losses.ts).
  for (const [name, entry] of lossEntries()) {
    const form = entry.tfjs.minimize;
    if (!form) continue;
    const title = form.title ?? name;
    it(`softmax regression on imbalanced data trains with ${title} under optimizer.minimize`, () => {
      const { x, y, counts } = imbalancedProblem(5, 400, 6, 4);
      const loss = form.make(counts);
      const W = tf.variable(tf.zeros([6, 4]));
      const b = tf.variable(tf.zeros([4]));
      const opt = tf.train.adam(0.05);
      const step = (): number => {
        const cost = opt.minimize(() => loss.forward(tf.add(tf.matMul(x, W), b) as tf.Tensor2D, y) as unknown as tf.Scalar, true);
        const v = (cost as tf.Scalar).dataSync()[0];
        (cost as tf.Scalar).dispose();
        return v;
      };
      const first = step();
      for (let i = 0; i < 150; i++) step();
      const last = step();
      assert.ok(last < 0.5 * first, `${title}: loss ${first} -> ${last}`);
      const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(x, W), b), -1).dataSync());
      let correct = 0;
      predicted.forEach((p, i) => (correct += p === y[i] ? 1 : 0));
      assert.ok(correct / y.length > 0.8, `accuracy ${correct / y.length}`);
      tf.dispose([x, W, b]);
      opt.dispose();
    });
  }

  it('LDAM (a margin and a scale) equals tf.js autodiff of the LDAM reference code written in tf ops, with per-sample weights and avgFactor', () => {
    const rand = rng(41);
    const N = 12;
    const C = 5;
    const counts = [400, 120, 40, 12, 4];
    const x = tf.tensor2d(randomLogits(rand, N * C, 0.5), [N, C]);
    const labels = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const weights = Float32Array.from({ length: N }, () => Math.fround(0.25 + rand()));
    const margins = cbloss.ldamMargins(counts, 0.5);
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), C).toFloat();
    const rowMargin = tf.tensor2d(Float32Array.from(labels, (y) => margins[y]), [N, 1]);
    const sw = tf.tensor1d(weights);
    const tfLdam = (z: tf.Tensor): tf.Tensor => {
      const mapped = tf.mul(30, tf.sub(z, tf.mul(onehot, rowMargin))); // s·(x − m_y at the target)
      const perRow = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(mapped)), -1));
      return tf.div(tf.sum(tf.mul(sw, perRow)), 7); // Σ w_n ℓ_n / avgFactor
    };
    const ldam = new cbloss.LDAMLoss({ samplesPerCls: counts });
    // the per-call weights as a tensor and as an array give the same result
    for (const sampleWeight of [sw, weights] as const) {
      const ours = tf.grad((z: tf.Tensor) => ldam.forward(z as tf.Tensor2D, labels, { sampleWeight, avgFactor: 7 }) as unknown as tf.Tensor)(x);
      const theirs = tf.grad(tfLdam)(x);
      assertGradClose(ours.dataSync(), theirs.dataSync(), 'LDAM grad', 1e-4);
      tf.dispose([ours, theirs]);
    }
    const value = ldam.forward(x, labels, { sampleWeight: sw, avgFactor: 7 }) as unknown as tf.Scalar;
    assertLossClose(value.dataSync()[0], ldam.forward(x.dataSync() as Float32Array, labels, { sampleWeight: weights, avgFactor: 7 }) as number, 'LDAM tensor loss');
    tf.dispose([x, onehot, rowMargin, sw, value]);
  });

  it('Balanced Softmax trains under optimizer.minimize and lifts the rare classes over CE', () => {
    const { x, y, counts } = imbalancedProblem(9, 400, 6, 4);
    const rarest = counts.indexOf(Math.min(...counts));
    const recallOfRarest = (loss: cbloss.Loss): number => {
      const W = tf.variable(tf.zeros([6, 4]));
      const b = tf.variable(tf.zeros([4]));
      const opt = tf.train.adam(0.05);
      for (let i = 0; i < 150; i++) {
        opt.minimize(() => loss.forward(tf.add(tf.matMul(x, W), b) as tf.Tensor2D, y) as unknown as tf.Scalar, true)?.dispose();
      }
      const predicted = tf.tidy(() => tf.argMax(tf.add(tf.matMul(x, W), b), -1).dataSync());
      let hits = 0;
      let total = 0;
      predicted.forEach((p, i) => {
        if (y[i] !== rarest) return;
        total++;
        hits += p === rarest ? 1 : 0;
      });
      tf.dispose([W, b]);
      opt.dispose();
      return hits / total;
    };
    const ce = recallOfRarest(new cbloss.CrossEntropyLoss());
    const balanced = recallOfRarest(new cbloss.BalancedSoftmaxLoss({ samplesPerCls: counts }));
    assert.ok(balanced >= ce, `rarest class recall: Balanced Softmax ${balanced}, CE ${ce}`);
    x.dispose();
  });

  it('no tensor leaks over 1000 training steps', () => {
    const { x, y } = imbalancedProblem(6, 64, 5, 4);
    const W = tf.variable(tf.zeros([5, 4]));
    const loss = new cbloss.FocalLoss({ numClasses: 4 });
    const opt = tf.train.sgd(0.1);
    const run = (): void => {
      opt.minimize(() => loss.forward(tf.matMul(x, W) as tf.Tensor2D, y) as unknown as tf.Scalar);
    };
    for (let i = 0; i < 10; i++) run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 1000; i++) run();
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, W]);
    opt.dispose();
  });

  it('toTfLoss() trains a model with model.fit (one-hot rows), with classWeight', async () => {
    const { x, y, counts } = imbalancedProblem(7, 300, 6, 4);
    const yTrue = tf.oneHot(tf.tensor1d(y, 'int32'), 4).toFloat();
    const fitted = lossEntries().flatMap(([, entry]) => (entry.tfjs.fit ? [entry.tfjs.fit(counts)] : []));
    for (const loss of fitted) {
      const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 4 })] });
      model.compile({ optimizer: tf.train.adam(0.05), loss: loss.toTfLoss<tf.Tensor>() });
      const h = await model.fit(x, yTrue, { epochs: 25, batchSize: 64, verbose: 0, classWeight: { 0: 1, 1: 1, 2: 2, 3: 4 } });
      const losses = h.history.loss as number[];
      assert.ok(losses[losses.length - 1] < 0.6 * losses[0], `${losses[0]} -> ${losses[losses.length - 1]}`);
      model.dispose();
    }
    tf.dispose([x, yTrue]);
  });

  it('toTfLoss() takes class indices as [N] or [N, 1] and one-hot rows alike', () => {
    const rand = rng(9);
    const y = Int32Array.from({ length: 10 }, () => Math.floor(rand() * 4));
    const yPred = tf.tensor2d(randomLogits(rand, 40), [10, 4]);
    for (const loss of [new cbloss.CrossEntropyLoss(), new cbloss.FocalLoss({ numClasses: 4, gamma: 0.5 })] as cbloss.Loss[]) {
      const fn = loss.toTfLoss<tf.Tensor>();
      const forms = [
        tf.tensor1d(Float32Array.from(y)),
        tf.tensor2d(Float32Array.from(y), [10, 1]),
        tf.oneHot(tf.tensor1d(y, 'int32'), 4).toFloat(),
      ];
      const expected = new Float32Array(10);
      const none = (loss instanceof cbloss.FocalLoss
        ? new cbloss.FocalLoss({ numClasses: 4, gamma: 0.5, reduction: 'none' })
        : new cbloss.CrossEntropyLoss({ reduction: 'none' })
      ).forward(yPred.dataSync() as Float32Array, y);
      expected.set(none);
      for (const yTrue of forms) {
        const out = fn(yTrue, yPred);
        assert.deepEqual(out.shape, [10]);
        out.dataSync().forEach((v, i) => assertLossClose(v, expected[i], `row ${i}`));
        tf.dispose([out, yTrue]);
      }
    }
    yPred.dispose();
  });

  it('toTfLoss() returns one loss per row (element-wise losses averaged over the row)', () => {
    const yPred = tf.tensor2d(randomLogits(rng(8), 6 * 3), [6, 3]);
    const yTrue = tf.tensor2d(Float32Array.from({ length: 18 }, (_, i) => i % 2), [6, 3]);
    const perRow = new cbloss.BCEWithLogitsLoss().toTfLoss<tf.Tensor>()(yTrue, yPred);
    assert.deepEqual(perRow.shape, [6]);
    const none = new cbloss.BCEWithLogitsLoss({ reduction: 'none', numClasses: 3 }).forward(yPred.dataSync() as Float32Array, yTrue.dataSync() as Float32Array);
    const data = perRow.dataSync();
    for (let n = 0; n < 6; n++) assertLossClose(data[n], (none[3 * n] + none[3 * n + 1] + none[3 * n + 2]) / 3, `row ${n}`);
    tf.dispose([yPred, yTrue, perRow]);
  });
});
