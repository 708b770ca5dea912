// The memory-traffic model of the CUDA kernels (issue 21), on the CUDA emulator's count: one loss call
// on device arrays with CBLOSS_EMULATED_TRAFFIC set, its kernels' lines read back and summed. Used by
// `npm run gpu:model` (scripts/gpu-model.js) and by the emulator's traffic tests (test/76-traffic).
//
// What is counted (native/cuda/emulator/cuda_emulator.h): per warp memory instruction, the bytes the
// lanes asked for, the bytes of their union and the distinct 32-byte sectors, per buffer. Here:
//   * the row data (logits, gradient, targets, per-element weights and upstream gradients) costs the
//     sectors every instruction touches: a second pass over the logits counts twice, a strided access
//     its wasted sectors;
//   * the per-row and per-class arrays (labels, row losses, tile sums, parameters, partial sums) cost the distinct
//     sectors each kernel touches: the lanes of a row's group all read its label, the rows of a block
//     its class weights, and what that costs at DRAM is the sectors once a kernel (L1 and L2 hold them
//     between; the GPU's own count, bench/RESULTS.md, agrees);
//   * minimum: the logits (and targets) read once, the labels read once, the gradient written once.
// ratio = traffic / minimum; rowData = the row data's own ratio (1 for one read and one write);
// efficiency = bytes used / bytes of the sectors touched, over the instructions on the row data (the
// per-row arrays are read a row's group of lanes at a time, a few bytes of one sector, and what that
// costs is in the ratio: their sectors once a kernel).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROW_DATA = new Set(['logits', 'gradient', 'targets', 'sample weights', 'upstream gradient']);
const BYTES = { float32: 4, bfloat16: 2, float16: 2 };

// The loss of a model call: the GPU check's and gpu-traffic.js's set.
function makeLoss(cbloss, loss, C) {
  const counts = Array.from({ length: C }, (_, i) => 1 + Math.floor(1000 / (i + 1)));
  const make = {
    ce: () => new cbloss.CrossEntropyLoss({ device: 'cuda' }),
    focal: () => new cbloss.FocalLoss({ numClasses: C, gamma: 2, device: 'cuda' }),
    'cb-focal': () =>
      new cbloss.ClassBalancedLoss({ samplesPerCls: counts, beta: 0.999, numClasses: C, device: 'cuda', lossFunc: new cbloss.FocalLoss({ numClasses: C, reduction: 'none' }) }),
    bce: () => new cbloss.BCEWithLogitsLoss({ device: 'cuda' }),
    ldam: () => new cbloss.LDAMLoss({ samplesPerCls: counts, device: 'cuda' }),
  }[loss];
  if (!make) throw new RangeError(`unknown loss ${loss}`);
  return make();
}

const binaryTargets = (loss) => loss === 'bce';

// The targets of a model call on the device: BCE's 0/1 targets (one in five 1), else class indices;
// all zeros when `rand` is null (a launch plan: any valid target).
function makeTarget(cbloss, loss, N, C, rand) {
  const { DeviceTensor } = cbloss;
  return binaryTargets(loss)
    ? DeviceTensor.from(Float32Array.from({ length: N * C }, () => (rand && rand() < 0.2 ? 1 : 0)))
    : DeviceTensor.from(Int32Array.from({ length: N }, () => (rand ? Math.floor(rand() * C) : 0)));
}

// Runs one call (N rows of C, logits of dtype) on device arrays and returns its kernels' traffic lines.
// `fill`: whether to put random values in (false for the launch plan, which runs no block); `env`: the
// CBLOSS_CUDA_* switches of the call.
function traffic(cbloss, { loss, N, C, dtype, env = {} }, { fill = true, seed = 21 } = {}) {
  const { DeviceTensor } = cbloss;
  const { rng } = require('../dist/random.js');
  const rand = rng(seed);
  const x = DeviceTensor.empty(N * C, { dtype });
  const grad = DeviceTensor.empty(N * C, { dtype });
  if (fill) {
    const values = Float32Array.from({ length: N * C }, () => (rand() - 0.5) * 8);
    x.copyFrom(dtype === 'float32' ? values : dtype === 'bfloat16' ? cbloss.toBfloat16Bits(values) : cbloss.toFloat16Bits(values));
  }
  const target = makeTarget(cbloss, loss, N, C, fill ? rand : null);
  const file = path.join(os.tmpdir(), `cbloss-traffic-${process.pid}.jsonl`);
  fs.rmSync(file, { force: true });
  const saved = {};
  const vars = { ...env, CBLOSS_EMULATED_TRAFFIC: file };
  for (const [k, v] of Object.entries(vars)) (saved[k] = process.env[k]), (process.env[k] = v);
  try {
    makeLoss(cbloss, loss, C).forwardBackward(x, target, { out: { grad } });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    x.dispose(), grad.dispose(), target.dispose();
  }
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  fs.rmSync(file, { force: true });
  return lines;
}

// "void cbloss::cuda::held_rows_kernel<float, 32, 4, 8>(cbloss::cuda::KernelArgs)" -> "held_rows_kernel<float, 32, 4, 8>"
function kernelName(demangled) {
  let name = demangled.replace(/^void /, '');
  let depth = 0;
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '<') depth++;
    else if (name[i] === '>') depth--;
    else if (name[i] === '(' && depth === 0) {
      name = name.slice(0, i);
      break;
    }
  }
  return name.replace(/cbloss::cuda::/g, '');
}

// A call's traffic from its kernels' lines: totals, by buffer, and the ratios above.
function summarize(lines, { loss, N, C, dtype }) {
  const logitBytes = N * C * BYTES[dtype];
  const minimum = {
    logits: logitBytes,
    gradient: logitBytes,
    ...(binaryTargets(loss) ? { targets: N * C * 4 } : { labels: N * 4 }),
  };
  const minimumBytes = Object.values(minimum).reduce((a, b) => a + b, 0);
  const buffers = {}; // name -> { read, write } bytes as counted
  let used = 0;
  let touched = 0;
  for (const line of lines) {
    for (const [name, flows] of Object.entries(line.buffers)) {
      const b = (buffers[name] ??= { read: 0, write: 0 });
      for (const dir of ['read', 'write']) {
        const f = flows[dir];
        b[dir] += 32 * (ROW_DATA.has(name) ? f.sectors : f.distinct);
        if (ROW_DATA.has(name)) (used += f.used), (touched += 32 * f.sectors);
      }
    }
  }
  let total = 0;
  let rowData = 0;
  let read = 0;
  for (const [name, b] of Object.entries(buffers)) {
    total += b.read + b.write;
    read += b.read;
    if (ROW_DATA.has(name)) rowData += b.read + b.write;
  }
  const rowMinimum = minimumBytes - (minimum.labels ?? 0);
  const perRow = (name) => (buffers[name] ? buffers[name].read + buffers[name].write : 0);
  return {
    kernels: lines.map((l) => kernelName(l.kernel)),
    launches: lines,
    buffers,
    minimumBytes,
    minimumReadBytes: minimumBytes - logitBytes,
    trafficBytes: total,
    readBytes: read,
    partialSumBytes: (buffers['partial sums']?.read ?? 0) + (buffers['partial sums']?.write ?? 0),
    partialSumReadBytes: buffers['partial sums']?.read ?? 0,
    ratio: total / minimumBytes,
    rowData: rowData / rowMinimum,
    logitsRead: (buffers.logits?.read ?? 0) / logitBytes,
    // (over the labels' own sectors: a call of one row reads one sector of them per kernel)
    labelsRead: minimum.labels ? (buffers.labels?.read ?? 0) / (32 * Math.ceil(minimum.labels / 32)) : 0,
    gradientWritten: (buffers.gradient?.write ?? 0) / logitBytes,
    // what the call moves besides its row data, a row: labels, row losses, tile sums, parameters, partial sums
    bookkeepingPerRow: (total - rowData) / N,
    efficiency: touched ? used / touched : 1,
    unnamedBytes: perRow('unnamed'),
    twoPass: lines.some((l) => kernelName(l.kernel).startsWith('slice_')),
  };
}

module.exports = { traffic, summarize, kernelName, makeLoss, makeTarget, BYTES };
