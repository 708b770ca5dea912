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
const { median: timedMedian, withEnv } = require('./gpu-timing.js');

let failures = 0;
let passes = 0;
function check(ok, what) {
  if (ok) passes++;
  else {
    failures++;
    console.log(`FAIL ${what}`);
  }
}
// Runs one check or measurement: an exception is a failure with its message, and the script goes on
// (a first run on a GPU may be the only one: the other checks and the timing table must still come out).
function attempt(what, fn) {
  try {
    return fn();
  } catch (e) {
    failures++;
    console.log(`FAIL ${what}: ${e && e.message}`);
    return undefined;
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

const { DeviceTensor } = cbloss;
// CBLOSS_GPU_CHECK_QUICK=1: small shapes, to try the script itself on the CUDA emulator build.
const QUICK = process.env.CBLOSS_GPU_CHECK_QUICK === '1';
const deviceLoss = (r) => (r.loss instanceof DeviceTensor ? r.loss.toHost() : r.loss);

// 1. The contract vectors on the GPU: host arrays, and DeviceTensors.
// The contract vectors: CBLOSS_VECTORS, the repository's copy (test/fixtures), ../shared beside the
// repository, or a copy carried in .gpu/.
const vectors =
  process.env.CBLOSS_VECTORS ||
  [
    path.join(__dirname, '..', 'test', 'fixtures', 'public-vectors.json'),
    path.join(__dirname, '..', '..', 'shared', 'vectors', 'public.json'),
    path.join(__dirname, '..', '.gpu', 'public.json'),
  ].find((f) => fs.existsSync(f)) ||
  'public.json (not found: set CBLOSS_VECTORS)';
if (fs.existsSync(vectors)) {
  const cases = JSON.parse(fs.readFileSync(vectors, 'utf8')).cases;
  for (const c of cases) attempt(`vector ${c.name}`, () => {
    const loss = build({ loss: c.loss, options: c.options }, 'cuda');
    const input = Float32Array.from(c.input);
    const target = c.targetType === 'int32' ? Int32Array.from(c.target) : Float32Array.from(c.target);
    // (the per-call options, sampleWeight and avgFactor, where a case has them)
    const opts = {};
    for (const key of ['gradOutput', 'sampleWeight', 'avgFactor']) if (c[key] !== undefined) opts[key] = c[key];
    const host = loss.forwardBackward(input, target, opts);
    const dx = DeviceTensor.from(input);
    const dev = loss.forwardBackward(dx, target, opts);
    const expected = c.expected.loss;
    const grad = c.expected.grad.map((v) => (v === null ? NaN : v));
    for (const [what, value, g] of [['host arrays', host.loss, host.grad], ['DeviceTensor', deviceLoss(dev), dev.grad.toHost()]]) {
      const lossOk = Array.isArray(expected)
        ? expected.every((v, i) => close(value[i], v === null ? NaN : v))
        : close(value, expected === null ? NaN : expected);
      check(lossOk && gradClose(g, grad), `vector ${c.name} (${what})`);
    }
    dx.dispose();
    dev.grad.dispose();
  });
  console.log(`vectors on the GPU: ${cases.length} cases x 2, ${failures} failures`);
} else {
  console.log(`vectors not found at ${vectors}`);
}

// The long-row kernels besides the default (shared memory in one block or in clusters of up to 4 blocks,
// 2 for 16-bit logits, else the two-kernel slices: native/cuda/launch.cu): registers in clusters (only
// when switched on), shared memory in clusters of any size; without clusters, one block a row holding it
// in shared memory where it fits (as before sm_90), else the slices; and the slices alone.
const longRowKernels = [
  ['in registers', { CBLOSS_CUDA_REGISTER_CLUSTERS: '1' }],
  ['in shared memory', { CBLOSS_CUDA_SHARED_ROWS: '1' }],
  ['without clusters', { CBLOSS_CUDA_CLUSTERS: '0' }],
  ['in slices', { CBLOSS_CUDA_CLUSTERS: '0', CBLOSS_CUDA_SHARED_ROWS: '0' }],
];

// 2. GPU against CPU, large random inputs: host arrays, DeviceTensors, and 16-bit logits.
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
for (const [N, C] of QUICK ? [[64, 10], [8, 1000], [2, 40000], [2, 300000]] : [[4096, 10], [2048, 1000], [16, 20000], [4, 131072], [4, 256000], [4, 262208]]) {
  const x = Float32Array.from({ length: N * C }, () => (rand() - 0.5) * 8);
  for (const [name, make, kind] of families) attempt(`GPU = CPU: ${name} ${N}x${C}`, () => {
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
    check(close(b.loss, a.loss) && gradClose(b.grad, a.grad), `GPU = CPU: ${name} ${N}x${C} host arrays (${b.loss} vs ${a.loss})`);
    const dx = DeviceTensor.from(x);
    const dt = DeviceTensor.from(targets);
    const d = make(C, 'cuda').forwardBackward(dx, dt);
    check(close(d.loss, a.loss) && gradClose(d.grad.toHost(), a.grad), `GPU = CPU: ${name} ${N}x${C} DeviceTensors (${d.loss} vs ${a.loss})`);
    if (C > 8192 && kind !== 'binary' && kind !== 'flat') {
      for (const [how, env] of longRowKernels) {
        const s = withEnv(env, () => make(C, 'cuda').forwardBackward(dx, dt));
        check(close(s.loss, a.loss) && gradClose(s.grad.toHost(), a.grad), `GPU = CPU: ${name} ${N}x${C} ${how} (${s.loss} vs ${a.loss})`);
        s.grad.dispose();
      }
    }
    for (const t of [dx, dt, d.grad]) t.dispose();
  });
  for (const [dtype, encode, decode, rel] of [
    ['bfloat16', cbloss.toBfloat16Bits, cbloss.fromBfloat16Bits, 8e-3],
    ['float16', cbloss.toFloat16Bits, cbloss.fromFloat16Bits, 1e-3],
  ]) attempt(`GPU = CPU: CE ${N}x${C} ${dtype} logits`, () => {
    const bits = encode(x);
    const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
    const a = new cbloss.CrossEntropyLoss({ device: 'cpu' }).forwardBackward(decode(bits), y);
    const dx = DeviceTensor.from(bits, { dtype });
    const d = new cbloss.CrossEntropyLoss().forwardBackward(dx, DeviceTensor.from(y));
    check(close(d.loss, a.loss) && gradClose(decode(d.grad.toHost()), a.grad, rel), `GPU = CPU: CE ${N}x${C} ${dtype} logits`);
    dx.dispose();
    d.grad.dispose();
  });
}
console.log(`GPU against CPU: ${failures} failures so far`);

// 3. Timing. Device-resident (fp32 and bf16; the wall time of a call, its syncs included) beside
// PyTorch eager on the same GPU (CUDA events) and the device copy bandwidth; host arrays (copies
// included) beside the pinned host<->device bandwidth.
const median = (fn, reps = QUICK ? 2 : 10) => timedMedian(fn, reps);
// Fills a DeviceTensor of `length` with a repeated random block (a 4 GB host array would not fit).
const BLOCK = QUICK ? 1 << 12 : 1 << 24;
const blockF32 = Float32Array.from({ length: BLOCK }, () => (rand() - 0.5) * 8);
const blockBf16 = cbloss.toBfloat16Bits(blockF32);
function filled(length, dtype) {
  const t = DeviceTensor.empty(length, { dtype });
  const block = dtype === 'bfloat16' ? blockBf16 : blockF32;
  for (let at = 0; at < length; at += BLOCK) t.copyFrom(block.subarray(0, Math.min(BLOCK, length - at)), at);
  return t;
}
// The issue's three shapes, then two vocabularies: Llama 2's (32000: one block a row holds it in shared
// memory without clusters) and Gemma 3's (262208: beyond registers, shared memory in clusters of 16);
// then a small batch (4096x128: 4 MB, ~1.5 us at a copy's speed), where a call's time is its launches,
// its synchronization and its host side (issue 32: at most 20 us above the kernels').
const shapes = QUICK ? [[512, 128], [64, 1000], [2, 40000], [2, 300000]] : [[1 << 20, 128], [65536, 1000], [8192, 131072], [16384, 32000], [4096, 262208], [4096, 128]];
const rows = [];
for (const [N, C] of shapes) attempt(`timing ${N}x${C}`, () => {
  const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const counts = Array.from({ length: C }, (_, i) => 1 + Math.floor(1000 / (i + 1)));
  const ce = new cbloss.CrossEntropyLoss({ device: 'cuda' });
  const cb = new cbloss.ClassBalancedLoss({ samplesPerCls: counts, beta: 0.999, numClasses: C, device: 'cuda', lossFunc: new cbloss.FocalLoss({ numClasses: C, reduction: 'none' }) });
  const row = { shape: `${N}x${C}`, N, C, others: [] };
  const dy = DeviceTensor.from(y);
  for (const dtype of ['float32', 'bfloat16']) {
    const dx = filled(N * C, dtype);
    const dg = DeviceTensor.empty(N * C, { dtype });
    const time = (what, fn) => attempt(`timing ${N}x${C} ${what}`, fn) ?? NaN;
    row[`ce_${dtype}`] = time(`CE ${dtype}`, () => median(() => ce.forwardBackward(dx, dy, { out: { grad: dg } })));
    // The other kernels for the same rows: the long-row kernels, or a warp a row where groups of 8 or
    // 16 lanes hold it (CBLOSS_CUDA_SMALL_GROUPS=0: the kernel before them).
    // And the sums: each a launch of its own after the kernel that wrote its values (as before the last
    // blocks summed them), or a last block summing up to 65536 values (the default stops at 8192).
    const sums = [['sums launched after', { CBLOSS_CUDA_LAST_BLOCK_SUMS: '0' }], ['last block sums up to 65536', { CBLOSS_CUDA_LAST_BLOCK_SUMS: '65536' }]];
    const others = [...(C > 8192 ? longRowKernels : C > 16 && C <= 256 ? [['a warp a row', { CBLOSS_CUDA_SMALL_GROUPS: '0' }]] : []), ...sums];
    for (const [how, env] of others) {
      row.others.push([dtype, how, time(`CE ${dtype} ${how}`, () => withEnv(env, () => median(() => ce.forwardBackward(dx, dy, { out: { grad: dg } }))))]);
    }
    if (dtype === 'float32') row.cb_float32 = time('CB focal', () => median(() => cb.forwardBackward(dx, dy, { out: { grad: dg } })));
    dx.dispose();
    dg.dispose();
  }
  dy.dispose();
  if (N * C <= 1 << 27) attempt(`timing ${N}x${C} host arrays`, () => {
    // Host arrays: the pipelined path, copies included.
    const x = new Float32Array(N * C);
    for (let at = 0; at < x.length; at += BLOCK) x.set(blockF32.subarray(0, Math.min(BLOCK, x.length - at)), at);
    const grad = new Float32Array(N * C);
    row.ce_host = median(() => ce.forwardBackward(x, y, { out: { grad } }), 5);
    row.ce_cpu = median(() => new cbloss.CrossEntropyLoss({ device: 'cpu' }).forwardBackward(x, y, { out: { grad } }), 3);
  });
  if (N * C <= 1 << 27) attempt(`timing ${N}x${C} pinned host arrays`, () => {
    // The same in pinned memory (pinnedArray): no staging copies, the transfers straight from and into it.
    const x = cbloss.pinnedArray(N * C);
    for (let at = 0; at < x.length; at += BLOCK) x.set(blockF32.subarray(0, Math.min(BLOCK, x.length - at)), at);
    const grad = cbloss.pinnedArray(N * C);
    row.ce_pinned = median(() => ce.forwardBackward(x, y, { out: { grad } }), 5);
  });
  rows.push(row);
});
const torch = spawnSync('python3', [path.join(__dirname, '..', 'bench', 'torch_cuda_bench.py')], {
  input: JSON.stringify({ shapes }),
  encoding: 'utf8',
  maxBuffer: 1 << 24,
});
let peer = {};
if (torch.status === 0) peer = JSON.parse(torch.stdout);
else console.log(`PyTorch on the GPU not measured: ${torch.stderr.split('\n').slice(-3).join(' ')}`);
const fmt = (v, d = 3) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
console.log('\nforward+backward, median ms. cbloss: wall time per call; PyTorch: CUDA events. Data on the device unless "host".');
console.log('shape           CE fp32  %copyBW  torch CE  ratio | CE bf16  torch bf16 | CB-focal  torch CB  ratio | CE host  ideal pinned  CE CPU');
for (const r of rows) {
  const p = peer[r.shape] || {};
  const minBytes = r.N * r.C * 8 + r.N * 4;
  const pct = p.copyGBs ? (100 * minBytes) / (p.copyGBs * 1e6) / r.ce_float32 : NaN;
  const ideal = p.h2dGBs && p.d2hGBs ? (r.N * r.C * 4) / (p.h2dGBs * 1e6) + (r.N * r.C * 4) / (p.d2hGBs * 1e6) : NaN;
  console.log(
    [
      r.shape.padEnd(15),
      fmt(r.ce_float32).padStart(7),
      fmt(pct, 0).padStart(8),
      fmt(p.ce).padStart(9),
      fmt(p.ce / r.ce_float32, 1).padStart(6),
      '|',
      fmt(r.ce_bfloat16).padStart(7),
      fmt(p.ceBf16).padStart(11),
      '|',
      fmt(r.cb_float32).padStart(8),
      fmt(p.cbFocal).padStart(9),
      fmt(p.cbFocal / r.cb_float32, 1).padStart(6),
      '|',
      fmt(r.ce_host, 2).padStart(7),
      fmt(ideal, 2).padStart(13),
      fmt(r.ce_cpu, 1).padStart(7),
    ].join(' '),
  );
}
for (const r of rows) {
  for (const [dtype, how, ms] of r.others) console.log(`${r.shape} CE ${dtype} ${how}: ${fmt(ms)} ms (default ${fmt(r[`ce_${dtype}`])} ms)`);
}
// A small call's time beyond moving its minimum bytes at the device's copy speed (the fastest copy of the
// table's shapes: a copy of a few MB is itself mostly launch): launches, synchronization, host side.
const deviceCopyGBs = Math.max(0, ...Object.values(peer).map((p) => p.copyGBs || 0));
for (const r of rows) {
  if (r.N * r.C > 1 << 20 || !deviceCopyGBs) continue;
  const minimumUs = (r.N * r.C * 8 + r.N * 4) / (deviceCopyGBs * 1e3);
  console.log(`${r.shape} CE fp32: ${fmt(1000 * r.ce_float32 - minimumUs, 1)} us a call above its minimum bytes at the device's copy speed (${fmt(minimumUs, 1)} us)`);
}
for (const r of rows) {
  if (r.ce_pinned === undefined) continue;
  const p = peer[r.shape] || {};
  const ideal = p.h2dGBs && p.d2hGBs ? (r.N * r.C * 4) / (p.h2dGBs * 1e6) + (r.N * r.C * 4) / (p.d2hGBs * 1e6) : NaN;
  console.log(`${r.shape} CE host arrays in pinned memory (pinnedArray): ${fmt(r.ce_pinned, 2)} ms, ${fmt((100 * ideal) / r.ce_pinned, 0)}% of the ideal pinned time`);
}
// Where 'auto' should send host arrays (docs/devices.md, "When host arrays pay off on the GPU"): the host path
// copies every logit and gradient value once through pinned staging memory on the CPU, so it can only
// beat the CPU kernels where those are compute-bound — few classes, focal losses. CE at 1M×128 and
// 65536×1000 is in the table above ("CE host" beside "CE CPU"); these are the compute-bound cases.
const hostCases = QUICK
  ? [['focal', 512, 10], ['binary focal', 4096, 2]]
  : [['focal', 1 << 21, 10], ['binary focal', 1 << 23, 2]];
for (const [name, N, C] of hostCases) attempt(`host arrays against the CPU: ${name} ${N}x${C}`, () => {
  const x = Float32Array.from({ length: N * C }, () => (rand() - 0.5) * 6);
  const target = name === 'focal' ? Int32Array.from({ length: N }, () => Math.floor(rand() * C)) : Float32Array.from({ length: N * C }, () => (rand() < 0.3 ? 1 : 0));
  const grad = new Float32Array(N * C);
  const make = (device) => new cbloss.FocalLoss({ numClasses: C, device });
  const gpu = median(() => make('cuda').forwardBackward(x, target, { out: { grad } }), 5);
  const cpu = median(() => make('cpu').forwardBackward(x, target, { out: { grad } }), 5);
  console.log(`host arrays, ${name} ${N}x${C}: cuda ${fmt(gpu, 2)} ms, cpu ${fmt(cpu, 2)} ms (${cbloss.backendInfo().cpu.threads} threads): ${gpu < cpu ? 'cuda' : 'cpu'} ${fmt(Math.max(gpu, cpu) / Math.min(gpu, cpu), 1)}x faster`);
});
console.log(`copy bandwidth (device): ${fmt(peer.copyGBs ?? Object.values(peer)[0]?.copyGBs, 0)} GB/s; pinned H2D ${fmt(Object.values(peer)[0]?.h2dGBs, 1)} GB/s, D2H ${fmt(Object.values(peer)[0]?.d2hGBs, 1)} GB/s`);
console.log('%copyBW: minimum bytes (logits read + gradient written + labels read) at the device copy speed, over the CE fp32 time.');
console.log('ideal pinned: the logits up and the gradient down at the pinned bandwidths, one after the other.');
console.log(`\n${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
