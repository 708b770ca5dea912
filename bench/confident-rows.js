// `node bench/confident-rows.js [--random]`: CE and focal forward+backward at one thread on batches
// whose every row is confident (the label's logit 10 above the others, as in a trained model's
// batches), or with --random on N(0, 2²) logits: the minimum and median of repeated calls, in ms.
// With CBLOSS_ADDON pointing at another build, the same in that build (A/B of the exact small row
// losses, bench/RESULTS.md "Issue 18").
'use strict';
const cbloss = require('..');
const { rng } = require('../dist/random.js');

const random = process.argv.includes('--random');
cbloss.setNumThreads(1);
for (const [N, C] of [[65536, 10], [65536, 40], [65536, 100], [8192, 1000]]) {
  const rand = rng(N + C);
  const x = new Float32Array(N * C);
  for (let i = 0; i < x.length; i++) x[i] = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()) * 2;
  const y = Int32Array.from({ length: N }, (_, n) => (n * 7919) % C);
  if (!random) for (let n = 0; n < N; n++) x[n * C + y[n]] = x[n * C + y[n]] / 2 + 10;
  const grad = new Float32Array(N * C);
  for (const [name, loss] of [['ce', new cbloss.CrossEntropyLoss()], ['focal', new cbloss.FocalLoss({ numClasses: C })]]) {
    const times = [];
    const reps = Math.max(5, Math.min(60, Math.round(3e7 / (N * C))));
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint();
      loss.forwardBackward(x, y, { out: { grad } });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    console.log(`${name} ${N}x${C}: min ${times[0].toFixed(3)} med ${times[times.length >> 1].toFixed(3)}`);
  }
}
