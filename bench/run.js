// `npm run bench`: forward+backward of each loss, side by side in one run — cbloss (1 thread and all
// threads), the straightforward JavaScript loop, tf.js (cpu and wasm backends, where the loss exists
// there), PyTorch on the CPU at the same thread counts (when python3 with torch is present), and the
// memory roofline (a C++ copy of the same bytes). Prints a table of medians and ratios and writes
// JSON to bench/results/. Options: --long (larger time budget per measurement), --no-torch,
// --no-tfjs, --no-js. About 4 minutes on 2 cores.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const cbloss = require('..');
const { binding } = require('../dist/native.js');
const loops = require('./js-loops.js');
const { SHAPES, LOSSES, makeData, cblossLosses, medianMs: timeMedian } = require('./cases.js');

const args = new Set(process.argv.slice(2));
const BUDGET_S = args.has('--long') ? 0.6 : 0.15;
// tf.js's pure-JS cpu backend needs ~30 s a call at 256×131072: it is measured up to this size.
const TFJS_CPU_MAX_ELEMENTS = 8_500_000;
const ALL_THREADS = cbloss.backendInfo().cpu.hardwareThreads;
const THREADS = [...new Set([1, ALL_THREADS])];

function medianMs(fn, budgetS = BUDGET_S, minReps = 3, maxReps = 50) {
  return timeMedian(fn, budgetS, minReps, maxReps);
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

function measureTorch(py, dataByShape) {
  const job = {
    shapes: SHAPES,
    threads: THREADS,
    budget_s: BUDGET_S,
    weights: Object.fromEntries(SHAPES.map(([N, C]) => [`${N}x${C}`, dataByShape[`${N}x${C}`].weights])),
    counts: Object.fromEntries(SHAPES.map(([N, C]) => [`${N}x${C}`, dataByShape[`${N}x${C}`].counts])),
  };
  // glibc's malloc at its best for PyTorch: keep freed memory instead of returning it to the OS.
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: '17179869184', MALLOC_TRIM_THRESHOLD_: '17179869184', OMP_NUM_THREADS: String(ALL_THREADS) };
  const stdout = execFileSync(py, [path.join(__dirname, 'torch_bench.py')], { input: JSON.stringify(job), env, encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(stdout);
}

function fmt(v, digits = 2) {
  return v === undefined || v === null ? '—' : v.toFixed(digits);
}

async function main() {
  const info = cbloss.backendInfo();
  const started = Date.now();
  console.log(`cbloss ${info.version} bench — ${os.cpus()[0].model}, ${ALL_THREADS} threads, kernels ${info.cpu.simd}, node ${process.version}`);
  const results = { machine: { cpu: os.cpus()[0].model, threads: ALL_THREADS, simd: info.cpu.simd, node: process.version }, date: new Date().toISOString(), rows: [] };

  const dataByShape = {};
  for (const [N, C] of SHAPES) dataByShape[`${N}x${C}`] = makeData(cbloss, N, C);

  const py = args.has('--no-torch') ? null : findPython();
  let torch = null;
  if (py) {
    process.stdout.write('measuring PyTorch ... ');
    torch = measureTorch(py, dataByShape);
    console.log(`torch ${torch.torch}`);
    results.torch = torch.torch;
  } else if (!args.has('--no-torch')) {
    console.log('PyTorch not measured: no python3 with torch (Debian: apt-get install python3-torch)');
  }
  const tf = args.has('--no-tfjs') ? null : await loadTf();

  for (const [N, C] of SHAPES) {
    const key = `${N}x${C}`;
    const d = dataByShape[key];
    const grad = new Float32Array(N * C);
    const copy = {};
    for (const th of THREADS) {
      cbloss.setNumThreads(th);
      copy[th] = medianMs(() => binding.copy(d.x, grad));
    }
    const tfTimes = {};
    if (tf) {
      for (const backend of ['cpu', 'wasm']) {
        if (backend === 'cpu' && N * C > TFJS_CPU_MAX_ELEMENTS) continue;
        tfTimes[backend] = await measureTf(tf, backend, d, N, C);
      }
    }
    const losses = cblossLosses(cbloss, C, d, N);
    for (const name of LOSSES) {
      const [loss, targetKind, call] = losses[name];
      const target = targetKind === 'y' ? d.y : d.t;
      const row = { loss: name, shape: key, N, C, cbloss: {}, torch: {}, copy };
      for (const th of THREADS) {
        cbloss.setNumThreads(th);
        row.cbloss[th] = medianMs(() => loss.forwardBackward(d.x, target, { ...call, out: { grad } }));
        if (torch) row.torch[th] = torch.results[`${name}|${key}|${th}`];
      }
      const loop = args.has('--no-js') ? null : jsLoop(name, d, N, C, grad);
      if (loop) row.js = medianMs(loop, BUDGET_S, 1, 5);
      if (tfTimes.cpu && tfTimes.cpu[name]) row.tfjsCpu = tfTimes.cpu[name];
      if (tfTimes.wasm && tfTimes.wasm[name]) row.tfjsWasm = tfTimes.wasm[name];
      results.rows.push(row);
    }
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
  // loop, single-threaded by nature, against cbloss at 1 thread and at its default, all threads).
  const T = ALL_THREADS;
  const header = ['loss', 'N×C', 'cbloss 1T', `cbloss ${T}T`, 'torch 1T', `torch ${T}T`, 'JS loop', 'tfjs cpu', 'tfjs wasm', `copy ${T}T`, '×torch 1T', `×torch ${T}T`, '×JS 1T', `×JS ${T}T`, 'roofline'];
  const lines = [header];
  for (const r of results.rows) {
    const c1 = r.cbloss[1];
    const cT = r.cbloss[T];
    lines.push([
      r.loss,
      r.shape,
      fmt(c1),
      fmt(cT),
      fmt(r.torch[1]),
      fmt(r.torch[T]),
      fmt(r.js, 1),
      fmt(r.tfjsCpu, 1),
      fmt(r.tfjsWasm, 1),
      fmt(r.copy[T]),
      r.torch[1] ? `${fmt(r.torch[1] / c1, 1)}×` : '—',
      r.torch[T] ? `${fmt(r.torch[T] / cT, 1)}×` : '—',
      r.js ? `${fmt(r.js / c1, 0)}×` : '—',
      r.js ? `${fmt(r.js / cT, 0)}×` : '—',
      `${fmt((100 * r.copy[T]) / cT, 0)}%`,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const text = lines.map((l) => l.map((v, i) => v.padStart(widths[i])).join('  ')).join('\n');
  console.log(`\nforward+backward, median ms (ratios: peer time / cbloss time; roofline: copy time / cbloss time)\n${text}`);
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
