// The benchmarks' cases, shared by run.js (cbloss beside its peers), ab.js (two builds of cbloss
// against each other) and async-copy.js: the shapes, the losses and their data, and the timing. Each
// function takes the cbloss module it builds with (ab.js loads two).
'use strict';
const { rng } = require('../dist/random.js');

const SHAPES = [
  [65536, 10],
  [65536, 32], // (near where the CPU's lane and register layouts meet: simd_lane_rows.h)
  [65536, 100],
  [8192, 1000],
  [256, 131072],
  [1048576, 2],
];
// 1 GiB of float32 logits, beyond every cache: where a loss meets the machine's memory bandwidth.
// Kept out of SHAPES so that ab.js and async-copy.js do not allocate 3 GiB by default (ab.js takes it
// with `--shapes 2684354x100`); run.js measures it unless `--no-large`.
const LARGE_SHAPES = [[2684354, 100]];
// (balanced-softmax, ldam: the logit map; ce-weighted: sampleWeight and avgFactor — docs/semantics.md)
const LOSSES = ['ce', 'cb-ce', 'focal', 'cb-focal', 'poly', 'bce', 'sigmoid-focal', 'asl', 'balanced-softmax', 'ldam', 'ce-weighted'];
// The losses run.js measures at LARGE_SHAPES: every row loss and BCE (sigmoid focal and ASL, which
// spend their time computing rather than moving bytes, would add ~1 s a call and tell nothing new).
const LARGE_LOSSES = LOSSES.filter((name) => !['sigmoid-focal', 'asl'].includes(name));
// Beyond this many logits makeData repeats a block of random rows instead of drawing every value:
// Box-Muller in JavaScript takes ~30 s for the 268M logits of LARGE_SHAPES, and at that size the
// bench measures memory traffic, to which the values' repetition makes no difference (every address
// is still read and written once a call). Above every shape of SHAPES, so their data is unchanged.
const TILE_ABOVE_ELEMENTS = 1 << 26;

/** The long-tailed class counts of a C-class training set and their class-balanced weights. */
function classStats(cbloss, C) {
  // A long-tailed training set: class c has about 1000 * 0.97^c samples.
  const counts = Array.from({ length: C }, (_, c) => Math.max(1, Math.round(1000 * Math.pow(0.97, c))));
  return { counts, weights: Array.from(cbloss.classBalancedWeights(counts, 0.999)) };
}

function makeData(cbloss, N, C) {
  if (N * C > TILE_ABOVE_ELEMENTS) return makeTiledData(cbloss, N, C);
  const rand = rng(N * 31 + C);
  const x = new Float32Array(N * C);
  for (let i = 0; i < x.length; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u)) * 2;
    x[i] = r * Math.cos(2 * Math.PI * rand());
    if (i + 1 < x.length) x[i + 1] = r * Math.sin(2 * Math.PI * rand());
  }
  const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const t = Float32Array.from({ length: N * C }, () => (rand() < 0.1 ? 1 : 0));
  const sampleWeight = Float32Array.from({ length: N }, () => rand());
  return { x, y, t, sampleWeight, ...classStats(cbloss, C) };
}

/** makeData's data for N*C beyond TILE_ABOVE_ELEMENTS: a block of 2^24 logits' rows of it repeated
 * (x, t); the labels and sample weights, N values each, drawn in full. */
function makeTiledData(cbloss, N, C) {
  const blockRows = Math.ceil((1 << 24) / C);
  const block = makeData(cbloss, blockRows, C);
  const tile = (src) => {
    const out = new Float32Array(N * C);
    for (let at = 0; at < out.length; at += src.length) {
      out.set(at + src.length <= out.length ? src : src.subarray(0, out.length - at), at);
    }
    return out;
  };
  const rand = rng(N * 31 + C);
  const y = new Int32Array(N);
  for (let i = 0; i < N; i++) y[i] = Math.floor(rand() * C);
  const sampleWeight = new Float32Array(N);
  for (let i = 0; i < N; i++) sampleWeight[i] = rand();
  return { x: tile(block.x), y, t: tile(block.t), sampleWeight, counts: block.counts, weights: block.weights };
}

// name -> [loss, target ('y' indices, 't' element targets), call options]
function cblossLosses(cbloss, C, d, N) {
  const counts = d.counts;
  const focalC = Math.max(C, 2);
  const cb = (lossFunc) => new cbloss.ClassBalancedLoss({ samplesPerCls: counts, beta: 0.999, numClasses: C, lossFunc });
  return {
    ce: [new cbloss.CrossEntropyLoss(), 'y'],
    'cb-ce': [cb(new cbloss.CrossEntropyLoss({ reduction: 'none' })), 'y'],
    focal: [new cbloss.FocalLoss({ numClasses: focalC, gamma: 2 }), 'y'],
    'cb-focal': [cb(new cbloss.FocalLoss({ numClasses: focalC, gamma: 2, reduction: 'none' })), 'y'],
    bce: [new cbloss.BCEWithLogitsLoss(), 't'],
    'sigmoid-focal': [new cbloss.SigmoidFocalLoss({ reduction: 'mean' }), 't'],
    poly: [new cbloss.PolyLoss({ epsilon: 1 }), 'y'],
    asl: [new cbloss.AsymmetricLoss({ gammaPos: 1, gammaNeg: 4, clip: 0.05 }), 't'],
    'balanced-softmax': [new cbloss.BalancedSoftmaxLoss({ samplesPerCls: counts }), 'y'],
    ldam: [new cbloss.LDAMLoss({ samplesPerCls: counts, maxMargin: 0.5, scale: 30 }), 'y'],
    'ce-weighted': [new cbloss.CrossEntropyLoss(), 'y', { sampleWeight: d.sampleWeight, avgFactor: N }],
  };
}

/**
 * The median of each function's times (ms), timed in alternation (fns[0], fns[1], ..., fns[0], ...) over a
 * budget of seconds: at least minReps rounds, at most maxReps, after one call of each to warm up.
 */
function alternatingMediansMs(fns, budgetS, minReps = 3, maxReps = 50) {
  for (const fn of fns) fn(); // warm-up
  const times = fns.map(() => []);
  const start = process.hrtime.bigint();
  while (times[0].length < maxReps && (times[0].length < minReps || Number(process.hrtime.bigint() - start) / 1e9 < budgetS)) {
    fns.forEach((fn, i) => {
      const t0 = process.hrtime.bigint();
      fn();
      times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  }
  return times.map((t) => t.sort((a, b) => a - b)[t.length >> 1]);
}

/** The median of fn's times (ms) over a budget of seconds: at least minReps calls, at most maxReps, after one to warm up. */
function medianMs(fn, budgetS, minReps = 3, maxReps = 50) {
  return alternatingMediansMs([fn], budgetS, minReps, maxReps)[0];
}

module.exports = { SHAPES, LARGE_SHAPES, LOSSES, LARGE_LOSSES, classStats, makeData, cblossLosses, medianMs, alternatingMediansMs };
