// The GPU check (issue: CUDA backend). On a machine with an NVIDIA GPU: every contract vector on
// the GPU, GPU against CPU on large random inputs for every loss, and the time of forward+backward
// on the GPU (host arrays: copies included) beside PyTorch on the same GPU and the device's copy
// bandwidth. Run it with scripts/gpu-check.sh. Exit code 1 when a check fails.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const cbloss = require('..');
const { rng } = require('../dist/random.js');

let failures = 0;
let passes = 0;
function check(ok, what) {
  if (ok) passes++;
  else {
    failures++;
    console.log(`FAIL ${what}`);
  }
}
const close = (a, b, rel = 1e-5, abs = 1e-6) => (Number.isNaN(b) ? Number.isNaN(a) : Math.abs(a - b) <= Math.max(rel * Math.abs(b), abs));
function gradClose(g, ref, rel = 1e-5) {
  let max = 0;
  for (const v of ref) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
  const tol = rel * max + 1e-7;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(ref[i]) ? !Number.isNaN(g[i]) : !(Math.abs(g[i] - ref[i]) <= tol)) return false;
  }
  return true;
}

function build(spec, device) {
  const options = { ...spec.options, device };
  if (options.lossFunc) {
    options.lossFunc = build(options.lossFunc, device);
  }
  return new cbloss[spec.loss](options);
}

const info = cbloss.backendInfo();
console.log(`cbloss ${info.version}; CUDA compiled ${info.compiled.cuda}, available ${info.cuda.available}${info.cuda.reason ? ` (${info.cuda.reason})` : ''}`);
console.log(JSON.stringify(cbloss.devices()));
if (!info.cuda.available) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// 1. The contract vectors on the GPU.
const vectors = process.env.CBLOSS_VECTORS || path.join(__dirname, '..', '..', 'shared', 'vectors', 'public.json');
if (fs.existsSync(vectors)) {
  const cases = JSON.parse(fs.readFileSync(vectors, 'utf8')).cases;
  for (const c of cases) {
    const loss = build({ loss: c.loss, options: c.options }, 'cuda');
    const input = Float32Array.from(c.input);
    const target = c.targetType === 'int32' ? Int32Array.from(c.target) : Float32Array.from(c.target);
    const r = loss.forwardBackward(input, target, c.gradOutput === undefined ? undefined : { gradOutput: c.gradOutput });
    const expected = c.expected.loss;
    const lossOk = Array.isArray(expected)
      ? expected.every((v, i) => close(r.loss[i], v === null ? NaN : v))
      : close(r.loss, expected === null ? NaN : expected);
    check(lossOk && gradClose(r.grad, c.expected.grad.map((v) => (v === null ? NaN : v))), `vector ${c.name}`);
  }
  console.log(`vectors on the GPU: ${cases.length} cases, ${failures} failures`);
} else {
  console.log(`vectors not found at ${vectors}`);
}

// 2. GPU against CPU, large random inputs.
const rand = rng(2026);
const families = [
  ['CE smoothing weight', (C, device) => new cbloss.CrossEntropyLoss({ labelSmoothing: 0.1, weight: Array.from({ length: C }, (_, i) => 1 + (i % 3)), device }), 'index'],
  ['CE probabilities', (C, device) => new cbloss.CrossEntropyLoss({ numClasses: C, device }), 'probs'],
  ['focal softmax', (C, device) => new cbloss.FocalLoss({ numClasses: C, gamma: 0.5, device }), 'index'],
  ['CB focal', (C, device) => new cbloss.ClassBalancedLoss({ samplesPerCls: Array.from({ length: C }, (_, i) => 1000 / (i + 1)), beta: 0.999, numClasses: C, device, lossFunc: new cbloss.FocalLoss({ numClasses: C, reduction: 'none' }) }), 'index'],
  ['BCE posWeight', (C, device) => new cbloss.BCEWithLogitsLoss({ posWeight: Array.from({ length: C }, () => 2), reduction: 'sum', device }), 'binary'],
  ['sigmoid focal', (C, device) => new cbloss.SigmoidFocalLoss({ numClasses: C, reduction: 'mean', device }), 'binary'],
  ['binary focal', (C, device) => new cbloss.FocalLoss({ numClasses: 2, device }), 'flat'],
];
for (const [N, C] of [[4096, 10], [2048, 1000], [4, 131072]]) {
  const x = Float32Array.from({ length: N * C }, () => (rand() - 0.5) * 8);
  for (const [name, make, kind] of families) {
    const targets = {
      index: () => Int32Array.from({ length: N }, () => Math.floor(rand() * C)),
      probs: () => {
        const t = Float32Array.from({ length: N * C }, () => rand());
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let c = 0; c < C; c++) s += t[n * C + c];
          for (let c = 0; c < C; c++) t[n * C + c] /= s;
        }
        return t;
      },
      binary: () => Float32Array.from({ length: N * C }, () => (rand() < 0.2 ? 1 : 0)),
      flat: () => Float32Array.from({ length: N * C }, () => rand()),
    }[kind]();
    const a = make(C, 'cpu').forwardBackward(x, targets);
    const b = make(C, 'cuda').forwardBackward(x, targets);
    check(close(b.loss, a.loss) && gradClose(b.grad, a.grad), `GPU = CPU: ${name} ${N}x${C} (${b.loss} vs ${a.loss})`);
  }
}
console.log(`GPU against CPU: ${failures} failures so far`);

// 3. Timing (host arrays, copies included), beside PyTorch on the GPU.
function median(fn, reps = 10) {
  fn();
  const t = [];
  for (let i = 0; i < reps; i++) {
    const s = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  t.sort((p, q) => p - q);
  return t[t.length >> 1];
}
const shapes = [[1 << 20, 128], [65536, 1000], [8192, 131072]];
const rows = [];
for (const [N, C] of shapes) {
  const x = Float32Array.from({ length: N * C }, () => (rand() - 0.5) * 8);
  const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const grad = new Float32Array(N * C);
  const counts = Array.from({ length: C }, (_, i) => 1 + Math.floor(1000 / (i + 1)));
  const ce = new cbloss.CrossEntropyLoss({ device: 'cuda' });
  const cb = new cbloss.ClassBalancedLoss({ samplesPerCls: counts, beta: 0.999, numClasses: C, device: 'cuda', lossFunc: new cbloss.FocalLoss({ numClasses: C, reduction: 'none' }) });
  const cpu = new cbloss.CrossEntropyLoss({ device: 'cpu' });
  rows.push({
    shape: `${N}x${C}`,
    ceGpu: median(() => ce.forwardBackward(x, y, { out: { grad } })),
    cbGpu: median(() => cb.forwardBackward(x, y, { out: { grad } })),
    ceCpu: median(() => cpu.forwardBackward(x, y, { out: { grad } }), 3),
  });
}
const torch = spawnSync('python3', [path.join(__dirname, '..', 'bench', 'torch_cuda_bench.py')], {
  input: JSON.stringify({ shapes }),
  encoding: 'utf8',
});
let peer = {};
if (torch.status === 0) peer = JSON.parse(torch.stdout);
else console.log(`PyTorch on the GPU not measured: ${torch.stderr.split('\n').slice(-3).join(' ')}`);
console.log('\nforward+backward, median ms (cbloss: host arrays, copies included; PyTorch: data on the GPU)');
console.log('shape            cbloss CE GPU  cbloss CB-focal GPU  cbloss CE CPU  torch CE  torch CB-focal  copy GB/s  min bytes/copy-speed ms');
for (const r of rows) {
  const p = peer[r.shape] || {};
  console.log(
    `${r.shape.padEnd(16)} ${r.ceGpu.toFixed(2).padStart(13)} ${r.cbGpu.toFixed(2).padStart(20)} ${r.ceCpu.toFixed(1).padStart(14)} ${(p.ce ?? NaN).toFixed(3).padStart(9)} ${(p.cbFocal ?? NaN).toFixed(3).padStart(15)} ${(p.copyGBs ?? NaN).toFixed(0).padStart(10)} ${(p.minBytesMs ?? NaN).toFixed(3).padStart(24)}`,
  );
}
console.log(`\n${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
