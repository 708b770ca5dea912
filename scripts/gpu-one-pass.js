// The one pass on a GPU (issue 21; native/cuda/kernels/held_rows.cuh): short rows with device labels,
// the loss kernel checking the labels and summing the divisor itself in a cooperative launch, against
// the same calls with CBLOSS_CUDA_ONE_PASS=0 (a kernel checks the labels, with the divisor's terms,
// first), in one process, alternating. Checks that both give the same loss and gradient (to float32
// rounding; the divisor's sum runs in another order) and that a bad label writes nothing either way;
// prints median wall times per forward+backward call (the best of 3 medians of 20, alternating). Run
// after scripts/gpu-check.sh (bench/RESULTS.md); --small: the checks on small shapes, for the sanitizers.
'use strict';
const cbloss = require('../dist/index.js');
const { median, withEnv } = require('./gpu-timing.js');
const { rng } = require('../dist/random.js');

const { DeviceTensor } = cbloss;
let failed = 0;
function check(ok, what) {
  if (!ok) failed++;
  if (!ok) console.log(`FAIL ${what}`);
}

const OFF = { CBLOSS_CUDA_ONE_PASS: '0' };
const rand = rng(21);

function lossOf(kind, C) {
  const weight = Array.from({ length: C }, (_, c) => 0.5 + (c % 5) / 4);
  return {
    ce: () => new cbloss.CrossEntropyLoss({ device: 'cuda' }),
    'ce weighted': () => new cbloss.CrossEntropyLoss({ weight, ignoreIndex: 0, device: 'cuda' }),
    focal: () => new cbloss.FocalLoss({ numClasses: C, gamma: 2, device: 'cuda' }),
  }[kind]();
}

// --small: the checks alone on small shapes (for compute-sanitizer), no timing.
const small = process.argv.includes('--small');
const SMALL = [
  ['ce', 20000, 2, 'float32'],
  ['ce weighted', 5000, 10, 'bfloat16'],
  ['focal', 3000, 128, 'float32'],
  ['ce', 3000, 200, 'bfloat16'],
];
if (!small) console.log('forward+backward on device arrays, median ms (wall time per call); one pass against CBLOSS_CUDA_ONE_PASS=0');
if (!small) console.log('call                          one pass   two passes   ratio');
for (const [kind, N, C, dtype] of small ? SMALL : [
  ['ce', 1 << 20, 2, 'float32'],
  ['ce', 1 << 20, 2, 'bfloat16'],
  ['ce', 4096, 10, 'float32'],
  ['ce', 1 << 20, 10, 'float32'],
  ['ce', 1 << 20, 10, 'bfloat16'],
  ['ce weighted', 1 << 20, 10, 'float32'],
  ['focal', 1 << 20, 10, 'float32'],
  ['ce', 1 << 20, 128, 'float32'],
  ['ce', 1 << 20, 128, 'bfloat16'],
  ['ce', 1 << 20, 99, 'float32'],
  ['ce', 1 << 20, 130, 'bfloat16'],
  ['ce weighted', 1 << 20, 250, 'float32'],
  ['ce', 1 << 22, 10, 'float32'],
  ['ce', 1 << 23, 10, 'float32'],
]) {
  const x = Float32Array.from({ length: N * C }, () => 4 * rand() - 2);
  const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const dx = DeviceTensor.from(dtype === 'float32' ? x : cbloss.toBfloat16Bits(x), { dtype });
  const host = (t) => (dtype === 'float32' ? t.toHost() : cbloss.fromBfloat16Bits(t.toHost()));
  const dy = DeviceTensor.from(y);
  const dg = DeviceTensor.empty(N * C, { dtype });
  const loss = lossOf(kind, C);
  const call = () => loss.forwardBackward(dx, dy, { out: { grad: dg } });
  const one = call().loss;
  const g1 = host(dg);
  const two = withEnv(OFF, call).loss;
  const g2 = host(dg);
  let worst = 0;
  for (let i = 0; i < g1.length; i++) worst = Math.max(worst, Math.abs(g1[i] - g2[i]) / (Math.abs(g2[i]) + 1e-6 / N));
  const name = `${kind} ${N}x${C} ${dtype}`;
  check(Math.abs(one - two) <= 1e-6 * Math.abs(two), `${name}: loss ${one} (one pass) vs ${two}`);
  check(worst <= (dtype === 'float32' ? 1e-5 : 1e-2), `${name}: gradient differs by ${worst} (relative)`);
  if (small) continue;
  const t1 = [], t2 = [];
  for (let k = 0; k < 3; k++) {
    t1.push(median(call, 20));
    t2.push(withEnv(OFF, () => median(call, 20)));
  }
  const m1 = Math.min(...t1), m2 = Math.min(...t2);
  console.log(`${name.padEnd(28)} ${m1.toFixed(4).padStart(9)} ${m2.toFixed(4).padStart(12)} ${(m2 / m1).toFixed(2).padStart(7)}`);
}

// A bad label: nothing written, the same error, with and without the one pass.
for (const env of [{}, OFF]) {
  const N = 100000, C = 10;
  const y = new Int32Array(N);
  y[77777] = C;
  const dg = DeviceTensor.from(new Float32Array(N * C).fill(7));
  let message = '';
  try {
    withEnv(env, () => new cbloss.CrossEntropyLoss({ device: 'cuda' }).forwardBackward(DeviceTensor.from(new Float32Array(N * C)), DeviceTensor.from(y), { out: { grad: dg } }));
  } catch (e) {
    message = String(e.message);
  }
  const g = dg.toHost();
  check(/77777/.test(message) && g.every((v) => v === 7), `bad label ${JSON.stringify(env)}: "${message}", gradient untouched ${g.every((v) => v === 7)}`);
}
console.log(`one pass: ${failed === 0 ? 'all checks passed' : `${failed} checks failed`}`);
process.exitCode = failed ? 1 : 0;
