// `npm run bench`: forward+backward of each loss, side by side in one run — cbloss (1 thread and all
// threads), the straightforward JavaScript loop, tf.js (cpu and wasm backends, where the loss exists
// there), PyTorch on the CPU at the same thread counts (when python3 with torch is present), and the
// memory roofline: a C++ copy of the same bytes (logits read, gradient written) at the same thread
// count, timed in alternation with each loss (pairedMedianMs), so "roof 1T" is copy 1T / cbloss 1T and
// "roof NT" copy NT / cbloss NT (one thread does not reach the machine's bandwidth; comparing it with
// an all-threads copy would understate it).
// The shapes are cases.js's SHAPES and LARGE_SHAPES (2684354×100: 1 GiB of logits, beyond every
// cache; 3 GiB of memory with its gradient and element targets), where only LARGE_LOSSES are measured,
// PyTorch for CE alone (a call there takes seconds) and neither the JavaScript loop nor tf.js ('—').
// The machine (CPU model, cores, hardware threads, L3, the kernels' SIMD level) heads the table and
// the JSON. Prints a table of medians and ratios and writes JSON to bench/results/. Options: --long
// (larger time budget per measurement), --no-torch, --no-tfjs, --no-js, --no-large. About 5 minutes
// on 2 cores.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const cbloss = require('..');
const { binding } = require('../dist/native.js');
const loops = require('./js-loops.js');
const { SHAPES, LARGE_SHAPES, LOSSES, LARGE_LOSSES, classStats, makeData, cblossLosses, medianMs: timeMedian, alternatingMediansMs } = require('./cases.js');

const args = new Set(process.argv.slice(2));
const BUDGET_S = args.has('--long') ? 0.6 : 0.15;
// tf.js's pure-JS cpu backend needs ~30 s a call at 256×131072: it is measured up to this size.
const TFJS_CPU_MAX_ELEMENTS = 8_500_000;
const ALL_THREADS = cbloss.backendInfo().cpu.hardwareThreads;
const THREADS = [...new Set([1, ALL_THREADS])];
const LARGE = args.has('--no-large') ? [] : LARGE_SHAPES;
const isLarge = (N, C) => LARGE.some(([n, c]) => n === N && c === C);
// PyTorch at the large shape: CE alone, one timed call after the warm-up (~2 s a call on one thread).
const TORCH_LARGE_LOSSES = ['ce'];

function medianMs(fn, budgetS = BUDGET_S, minReps = 3, maxReps = 50) {
  return timeMedian(fn, budgetS, minReps, maxReps);
}

// A call and its roofline, the copy of the same bytes, timed in alternation (a copy, a call, a copy,
// ...): [the call's median, the copy's median]. Drift in the machine — on a VM, a neighbour's load
// that comes and goes over seconds — then falls on both alike, and their ratio holds where either
// time alone moves: a copy timed once per shape, before the losses, moved the ratios by ±20% from run
// to run (bench/RESULTS.md, issue 29).
function pairedMedianMs(fn, copy, budgetS = BUDGET_S, minReps = 3, maxReps = 50) {
  const [copyMs, fnMs] = alternatingMediansMs([copy, fn], 2 * budgetS, minReps, maxReps);
  return [fnMs, copyMs];
}

function jsLoop(name, d, N, C, grad) {
  const w = d.weights;
  switch (name) {
    case 'ce':
      return () => loops.crossEntropy(d.x, d.y, N, C, grad);
    case 'cb-ce':
      return () => loops.crossEntropy(d.x, d.y, N, C, grad, w);
    case 'focal':
      return () => loops.focal(d.x, d.y, N, C, grad, 2);
    case 'cb-focal':
      return () => loops.focal(d.x, d.y, N, C, grad, 2, w);
    case 'bce':
      return () => loops.bce(d.x, d.t, N * C, grad);
    case 'sigmoid-focal':
      return () => loops.sigmoidFocal(d.x, d.t, N * C, grad, 0.25, 2);
    default:
      return null; // (no JavaScript loop written for it)
  }
}

async function loadTf() {
  try {
    const tf = require('@tensorflow/tfjs');
    require('@tensorflow/tfjs-backend-wasm');
    return tf;
  } catch (err) {
    console.log(`tf.js not measured: ${err.message.split('\n')[0]}`);
    return null;
  }
}

/** tf.js forward+backward of the losses it has (softmax CE, sigmoid CE) on a backend. */
async function measureTf(tf, backend, d, N, C) {
  const out = {};
  if (!(await tf.setBackend(backend))) return out;
  await tf.ready();
  const x = tf.tensor2d(d.x, [N, C]);
  const onehot = tf.oneHot(tf.tensor1d(d.y, 'int32'), C).toFloat();
  const t = tf.tensor2d(d.t, [N, C]);
  const ce = tf.grad((logits) => tf.losses.softmaxCrossEntropy(onehot, logits));
  const bce = tf.grad((logits) => tf.losses.sigmoidCrossEntropy(t, logits));
  const time = (g) => {
    // one call first: skip the rest when a single call takes more than 3 s
    const t0 = process.hrtime.bigint();
    tf.tidy(() => {
      g(x).dataSync();
    });
    const first = Number(process.hrtime.bigint() - t0) / 1e6;
    if (first > 3000) return first;
    return medianMs(() => tf.tidy(() => {
      g(x).dataSync();
    }), BUDGET_S, 2, 10);
  };
  out.ce = time(ce);
  out.bce = time(bce);
  tf.dispose([x, onehot, t]);
  return out;
}

function findPython() {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

function measureTorch(py, shapes) {
  const keys = shapes.map(([N, C]) => `${N}x${C}`);
  const stats = shapes.map(([, C]) => classStats(cbloss, C));
  const largeKeys = LARGE.map(([N, C]) => `${N}x${C}`);
  const job = {
    shapes,
    threads: THREADS,
    budget_s: BUDGET_S,
    weights: Object.fromEntries(keys.map((key, i) => [key, stats[i].weights])),
    counts: Object.fromEntries(keys.map((key, i) => [key, stats[i].counts])),
    only: Object.fromEntries(largeKeys.map((key) => [key, TORCH_LARGE_LOSSES])),
    min_reps: Object.fromEntries(largeKeys.map((key) => [key, 1])),
  };
  // glibc's malloc at its best for PyTorch: keep freed memory instead of returning it to the OS.
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: '17179869184', MALLOC_TRIM_THRESHOLD_: '17179869184', OMP_NUM_THREADS: String(ALL_THREADS) };
  const stdout = execFileSync(py, [path.join(__dirname, 'torch_bench.py')], { input: JSON.stringify(job), env, encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(stdout);
}

function fmt(v, digits = 2) {
  return v === undefined || v === null ? '—' : v.toFixed(digits);
}

/** The machine the numbers come from: lscpu's fields where it exists (Linux), else Node's. */
function describeMachine(info) {
  const fields = {};
  try {
    const text = execFileSync('lscpu', [], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'ignore'] });
    for (const line of text.split('\n')) {
      const at = line.indexOf(':');
      if (at > 0) fields[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
  } catch {
    // no lscpu (macOS, Windows, a minimal container): os.cpus() below
  }
  const perSocket = Number(fields['Core(s) per socket']);
  const sockets = Number(fields['Socket(s)'] || 1);
  return {
    cpu: fields['Model name'] || os.cpus()[0].model,
    cores: perSocket > 0 ? perSocket * sockets : null,
    hardwareThreads: info.cpu.hardwareThreads,
    // e.g. "32 MiB (1 instance)": the size alone
    l3: fields['L3 cache'] ? fields['L3 cache'].replace(/\s*\(.*\)$/, '') : null,
    simd: info.cpu.simd,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
  };
}

async function main() {
  const info = cbloss.backendInfo();
  const started = Date.now();
  const machine = describeMachine(info);
  const cores = machine.cores === null ? '' : `${machine.cores} cores / `;
  const l3 = machine.l3 === null ? '' : `, L3 ${machine.l3}`;
  console.log(`cbloss ${info.version} bench`);
  console.log(`machine: ${machine.cpu} — ${cores}${machine.hardwareThreads} hardware threads${l3}, ${machine.memoryGiB} GiB; kernels ${machine.simd}; node ${machine.node}`);
  const results = { machine, date: new Date().toISOString(), rows: [] };
  const shapes = [...SHAPES, ...LARGE];

  const py = args.has('--no-torch') ? null : findPython();
  let torch = null;
  if (py) {
    process.stdout.write('measuring PyTorch ... ');
    torch = measureTorch(py, shapes);
    console.log(`torch ${torch.torch}`);
    results.torch = torch.torch;
  } else if (!args.has('--no-torch')) {
    console.log('PyTorch not measured: no python3 with torch (Debian: apt-get install python3-torch)');
  }
  const tf = args.has('--no-tfjs') ? null : await loadTf();

  for (const [N, C] of shapes) {
    const key = `${N}x${C}`;
    const large = isLarge(N, C);
    if (large) process.stdout.write(`measuring ${key} (${((N * C * 4) / 2 ** 30).toFixed(1)} GiB of logits) ... `);
    // each shape's data made when it is measured, and dropped after: 3 GiB at the large shape
    const d = makeData(cbloss, N, C);
    const grad = new Float32Array(N * C);
    const tfTimes = {};
    if (tf && !large) {
      for (const backend of ['cpu', 'wasm']) {
        if (backend === 'cpu' && N * C > TFJS_CPU_MAX_ELEMENTS) continue;
        tfTimes[backend] = await measureTf(tf, backend, d, N, C);
      }
    }
    const losses = cblossLosses(cbloss, C, d, N);
    for (const name of large ? LARGE_LOSSES : LOSSES) {
      const [loss, targetKind, call] = losses[name];
      const target = targetKind === 'y' ? d.y : d.t;
      const row = { loss: name, shape: key, N, C, cbloss: {}, torch: {}, copy: {} };
      for (const th of THREADS) {
        cbloss.setNumThreads(th);
        [row.cbloss[th], row.copy[th]] = pairedMedianMs(
          () => loss.forwardBackward(d.x, target, { ...call, out: { grad } }),
          () => binding.copy(d.x, grad),
        );
        if (torch) row.torch[th] = torch.results[`${name}|${key}|${th}`];
      }
      const loop = args.has('--no-js') || large ? null : jsLoop(name, d, N, C, grad);
      if (loop) row.js = medianMs(loop, BUDGET_S, 1, 5);
      if (tfTimes.cpu && tfTimes.cpu[name]) row.tfjsCpu = tfTimes.cpu[name];
      if (tfTimes.wasm && tfTimes.wasm[name]) row.tfjsWasm = tfTimes.wasm[name];
      results.rows.push(row);
    }
    if (large) console.log('done');
  }
  cbloss.setNumThreads(ALL_THREADS);

  // Sync call overhead at N = 32, C = 10.
  const small = makeData(cbloss, 32, 10);
  const ce = new cbloss.CrossEntropyLoss();
  const g = new Float32Array(320);
  const reps = 20000;
  const tiny = [];
  for (let r = 0; r < 7; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) ce.forwardBackward(small.x, small.y, { out: { grad: g } });
    tiny.push(Number(process.hrtime.bigint() - t0) / 1e3 / reps);
  }
  tiny.sort((a, b) => a - b);
  results.tinyCallMicroseconds = tiny[3];

  // The table: medians in ms; ratios are peer time / cbloss time at the same thread count (the JS
  // loop, single-threaded by nature, against cbloss at 1 thread), roofline the copy's time / cbloss's
  // at the same thread count. On a 1-thread machine the NT columns would repeat the 1T ones: left out.
  const T = ALL_THREADS;
  const ratio = (peer, ours, digits) => (peer ? `${fmt(peer / ours, digits)}×` : '—');
  const columns = [
    ['loss', (r) => r.loss],
    ['N×C', (r) => r.shape],
    ['cbloss 1T', (r) => fmt(r.cbloss[1])],
    [`cbloss ${T}T`, (r) => fmt(r.cbloss[T]), true],
    ['torch 1T', (r) => fmt(r.torch[1])],
    [`torch ${T}T`, (r) => fmt(r.torch[T]), true],
    ['JS loop', (r) => fmt(r.js, 1)],
    ['tfjs cpu', (r) => fmt(r.tfjsCpu, 1)],
    ['tfjs wasm', (r) => fmt(r.tfjsWasm, 1)],
    ['copy 1T', (r) => fmt(r.copy[1])],
    [`copy ${T}T`, (r) => fmt(r.copy[T]), true],
    ['×torch 1T', (r) => ratio(r.torch[1], r.cbloss[1], 1)],
    [`×torch ${T}T`, (r) => ratio(r.torch[T], r.cbloss[T], 1), true],
    ['×JS 1T', (r) => ratio(r.js, r.cbloss[1], 0)],
    ['roof 1T', (r) => `${fmt((100 * r.copy[1]) / r.cbloss[1], 0)}%`],
    [`roof ${T}T`, (r) => `${fmt((100 * r.copy[T]) / r.cbloss[T], 0)}%`, true],
  ].filter(([, , allThreads]) => !allThreads || T > 1);
  const header = columns.map(([title]) => title);
  const lines = [header, ...results.rows.map((r) => columns.map(([, cell]) => cell(r)))];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const text = lines.map((l) => l.map((v, i) => v.padStart(widths[i])).join('  ')).join('\n');
  console.log(`\nforward+backward, median ms (×peer: peer time / cbloss time; roof: copy time / cbloss time; both at the same thread count)\n${text}`);
  console.log(`\nsync call overhead, N=32 C=10 cross-entropy forwardBackward: ${fmt(results.tinyCallMicroseconds, 2)} µs`);
  console.log(`bench took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  results.table = text;

  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bench-${results.date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2));
  fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(results, null, 2));
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
