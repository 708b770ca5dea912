// Stress: thousands of concurrent async calls, memory that comes back after them, and the addon in
// several worker_threads at once (a context-aware module).
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import * as cbloss from '../lib';
import { randomLogits, rng } from './helpers';

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

describe('95 stress', () => {
  it('10,000 concurrent async calls of mixed sizes return the sync results; memory comes back', async function () {
    this.timeout(120_000);
    const rand = rng(95);
    const losses = [
      new cbloss.CrossEntropyLoss({ labelSmoothing: 0.1 }),
      new cbloss.FocalLoss({ numClasses: 50, gamma: 0.5, reduction: 'none' }),
      new cbloss.BCEWithLogitsLoss({ reduction: 'sum' }),
    ];
    const runBatch = async (calls: number): Promise<void> => {
      const jobs = Array.from({ length: calls }, (_, i) => {
        const kind = i % 3;
        const C = kind === 1 ? 50 : 2 + Math.floor(rand() * 40);
        const N = 1 + Math.floor(rand() * (i % 100 === 0 ? 2000 : 40));
        const x = randomLogits(rand, N * C);
        const t = kind === 2 ? Float32Array.from(x, () => (rand() < 0.5 ? 1 : 0)) : Int32Array.from({ length: N }, () => Math.floor(rand() * C));
        return { loss: losses[kind], x, t };
      });
      const results = await Promise.all(jobs.map((j) => j.loss.forwardBackwardAsync(j.x, j.t)));
      jobs.forEach((j, i) => {
        const sync = j.loss.forwardBackward(j.x, j.t);
        assert.deepEqual(results[i].grad, sync.grad, `call ${i}`);
        assert.deepEqual(results[i].loss, sync.loss, `call ${i}`);
      });
    };
    await runBatch(1000); // warm-up: allocator pools, JIT
    gc();
    const before = process.memoryUsage();
    await runBatch(10_000);
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    const after = process.memoryUsage();
    const mb = (n: number): number => n / 1024 / 1024;
    assert.ok(mb(after.external - before.external) < 32, `external memory grew by ${mb(after.external - before.external).toFixed(1)} MB`);
    // Under AddressSanitizer, RSS measures its quarantine of freed memory, not this package.
    if (!process.env.CBLOSS_SANITIZER) {
      assert.ok(mb(after.rss - before.rss) < 200, `RSS grew by ${mb(after.rss - before.rss).toFixed(1)} MB`);
    }
  });

  it('loads and computes in several worker_threads at once', async function () {
    this.timeout(60_000);
    const entry = path.join(__dirname, '..', 'dist', 'index.js');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const c = require(${JSON.stringify(entry)});
      const x = new Float32Array(workerData.x);
      const y = new Int32Array(workerData.y);
      const loss = new c.FocalLoss({ numClasses: 10, gamma: 0.5 });
      let last;
      for (let i = 0; i < 200; i++) last = loss.forwardBackward(x, y);
      loss.forwardBackwardAsync(x, y).then((r) => parentPort.postMessage({ loss: last.loss, async: r.loss, grad: Array.from(last.grad.subarray(0, 20)) }));
    `;
    const rand = rng(96);
    const x = randomLogits(rand, 512 * 10);
    const y = Int32Array.from({ length: 512 }, () => Math.floor(rand() * 10));
    const expected = new cbloss.FocalLoss({ numClasses: 10, gamma: 0.5 }).forwardBackward(x, y);
    const workers = Array.from({ length: 4 }, () => new Worker(code, { eval: true, workerData: { x: Array.from(x), y: Array.from(y) } }));
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise<{ loss: number; async: number; grad: number[] }>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    await Promise.all(workers.map((w) => w.terminate()));
    for (const r of results) {
      assert.equal(r.loss, expected.loss);
      assert.equal(r.async, expected.loss);
      assert.deepEqual(r.grad, Array.from(expected.grad.subarray(0, 20)));
    }
  });
});
