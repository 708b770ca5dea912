// `npm run bench:async`: what the async calls' copies cost (issue 20, lib/async-arrays.ts). CE
// forward+backward at each shape, each into a caller's `out.grad` reused from call to call: sync; async
// on arrays on a SharedArrayBuffer (used in place: no copy); async on ordinary arrays (the input and
// the labels copied at the call, the gradient written to a scratch array and copied back). Then without
// `out`, where every call allocates its gradient array (sync and async alike): sync, and async on
// ordinary arrays. Medians over alternating rounds, ms, and the ratios to the first column. One call
// in flight at a time; all threads.
'use strict';
const cbloss = require('..');
const { rng } = require('../dist/random.js');

const { SHAPES } = require('./cases.js');
const ROUNDS = Number(process.env.CBLOSS_BENCH_ROUNDS || 15);

function shared(values) {
  const copy = new values.constructor(new SharedArrayBuffer(values.byteLength));
  copy.set(values);
  return copy;
}
const median = (t) => t.slice().sort((a, b) => a - b)[t.length >> 1];
async function time(fn) {
  const s = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - s) / 1e6;
}

async function main() {
  const rand = rng(20);
  const loss = new cbloss.CrossEntropyLoss();
  console.log(`async copies, CE forward+backward, median of ${ROUNDS} ms (ratio to sync); ${cbloss.backendInfo().cpu.threads} threads`);
  console.log('               ---------------- into out.grad ---------------   ------- a new gradient a call -------');
  console.log('shape            sync   async (shared)     async (copied)        sync            async (copied)');
  for (const [N, C] of SHAPES) {
    const x = Float32Array.from({ length: N * C }, () => (rand() - 0.5) * 6);
    const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const grad = new Float32Array(N * C);
    const xs = shared(x);
    const ys = shared(y);
    const gs = shared(grad);
    const variants = {
      sync: async () => loss.forwardBackward(x, y, { out: { grad } }),
      inPlace: () => loss.forwardBackwardAsync(xs, ys, { out: { grad: gs } }),
      copiedOut: () => loss.forwardBackwardAsync(x, y, { out: { grad } }),
      syncNew: async () => loss.forwardBackward(x, y),
      copiedNew: () => loss.forwardBackwardAsync(x, y),
    };
    const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    for (const fn of Object.values(variants)) await fn(); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      for (const [k, fn] of Object.entries(variants)) times[k].push(await time(fn));
    }
    const m = Object.fromEntries(Object.entries(times).map(([k, t]) => [k, median(t)]));
    const cell = (k) => `${m[k].toFixed(2)} (${(m[k] / m.sync).toFixed(2)})`;
    console.log(`${`${N}x${C}`.padEnd(14)} ${m.sync.toFixed(2).padStart(6)} ${cell('inPlace').padStart(16)} ${cell('copiedOut').padStart(18)} ${cell('syncNew').padStart(16)} ${cell('copiedNew').padStart(20)}`);
  }
}
main();
