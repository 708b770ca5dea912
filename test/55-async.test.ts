// The async forms run on worker threads: the event loop keeps going, many calls may be in flight,
// results equal the sync ones bit for bit, and bad arguments reject with errors made at the call.
import { strict as assert } from 'node:assert';

import * as cbloss from '../lib';
import { randomLogits, rng } from './helpers';

describe('55 async', () => {
  it('a timer keeps firing during a large async call', async () => {
    const initial = cbloss.backendInfo().cpu.simd as cbloss.SimdLevel;
    cbloss.setSimdLevel('scalar'); // the slow float64 path: a call of about a second
    try {
      const rand = rng(1);
      const N = 4096;
      const C = 1000;
      const x = randomLogits(rand, N * C);
      const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
      const loss = new cbloss.FocalLoss({ numClasses: C, gamma: 0.5 });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 2);
      const started = Date.now();
      const pending = loss.forwardBackwardAsync(x, y);
      const r = await pending;
      const elapsed = Date.now() - started;
      clearInterval(timer);
      assert.ok(Number.isFinite(r.loss));
      assert.ok(ticks >= Math.min(5, elapsed / 10), `only ${ticks} timer ticks in ${elapsed} ms`);
      assert.ok(elapsed > 20, `the call took ${elapsed} ms: too short to show anything`);
    } finally {
      cbloss.setSimdLevel(initial);
    }
  });

  it('hundreds of concurrent calls of mixed sizes equal the sync results bit for bit', async () => {
    const rand = rng(2);
    const jobs: Array<{ loss: cbloss.Loss; x: Float32Array; t: Int32Array | Float32Array }> = [];
    for (let i = 0; i < 300; i++) {
      const C = 2 + Math.floor(rand() * 300);
      const N = 1 + Math.floor(rand() * 200);
      const x = randomLogits(rand, N * C);
      if (i % 3 === 0) {
        jobs.push({ loss: new cbloss.BCEWithLogitsLoss(), x, t: Float32Array.from(x, () => (rand() < 0.3 ? 1 : 0)) });
      } else {
        const loss = i % 3 === 1 ? new cbloss.CrossEntropyLoss({ reduction: 'none' }) : new cbloss.FocalLoss({ numClasses: C });
        jobs.push({ loss, x, t: Int32Array.from({ length: N }, () => Math.floor(rand() * C)) });
      }
    }
    const results = await Promise.all(jobs.map((j) => j.loss.forwardBackwardAsync(j.x, j.t)));
    jobs.forEach((j, i) => {
      const sync = j.loss.forwardBackward(j.x, j.t);
      assert.deepEqual(results[i].loss, sync.loss, `job ${i}`);
      assert.deepEqual(results[i].grad, sync.grad, `job ${i}`);
    });
  });

  it('fills caller-owned buffers asynchronously', async () => {
    const x = randomLogits(rng(3), 64 * 10);
    const y = new Int32Array(64);
    const grad = new Float32Array(640);
    const loss = new Float32Array(64);
    const r = await new cbloss.CrossEntropyLoss({ reduction: 'none' }).forwardBackwardAsync(x, y, { out: { grad, loss } });
    assert.equal(r.grad, grad);
    assert.equal(r.loss, loss);
    assert.deepEqual(r, new cbloss.CrossEntropyLoss({ reduction: 'none' }).forwardBackward(x, y));
  });

  it('bad arguments reject with the sync error, made in the caller\'s stack', async function namedCaller() {
    const ce = new cbloss.CrossEntropyLoss();
    let promise: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      promise = ce.forwardBackwardAsync(new Float32Array(6), [0, 7]);
    }, 'errors are rejections, not throws');
    await assert.rejects(promise as Promise<unknown>, (e: Error) => {
      assert.equal(e.constructor, RangeError);
      assert.equal(e.message, 'target[1] = 7 is out of range [0, 3)');
      assert.match(e.stack ?? '', /55-async\.test\.ts/);
      return true;
    });
    await assert.rejects(ce.forwardAsync('x' as never, [0]), TypeError);
  });
});
