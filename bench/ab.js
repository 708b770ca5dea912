// `node bench/ab.js <package A> <package B> [--rounds R] [--threads T] [--losses a,b] [--shapes NxC,...]`:
// two builds of cbloss against each other on the benchmark's cases (bench/cases.js): R rounds, each a
// process for A then a process for B that times every case (the median of a short budget of
// forward+backward calls into a reused gradient), alternating so that drift in the machine (frequency,
// other load) falls on both. (Two builds cannot share a process: their inline functions' statics are
// unique symbols the loader merges.) Prints the median of each side's rounds and B/A per case, the B/A
// of each side's fastest round (the one outside load disturbed least: on a VM whose clock moves, the
// medians can move by 10% while the fastest rounds agree), and the geometric mean of B/A. A package is a
// directory with dist/ and its build (e.g. a worktree of an older commit, built).
'use strict';
const os = require('node:os');
const path = require('node:path');

const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const positional = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1].startsWith('--')));
const { execFileSync } = require('node:child_process');
const { SHAPES, LOSSES, makeData, cblossLosses, medianMs } = require('./cases.js');
const rounds = Number(option('--rounds', '5'));
const losses = option('--losses', LOSSES.join(',')).split(',');
const shapes = option('--shapes', SHAPES.map(([N, C]) => `${N}x${C}`).join(','))
  .split(',')
  .map((s) => s.split('x').map(Number));

const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];

// One side's round (a child process): every case's median, as JSON on stdout.
function timeSide(dir, threads) {
  const cbloss = require(dir);
  cbloss.setNumThreads(threads);
  const times = {};
  for (const [N, C] of shapes) {
    const d = makeData(cbloss, N, C);
    const grad = new Float32Array(N * C);
    const cases = cblossLosses(cbloss, C, d, N);
    for (const name of losses) {
      const [loss, targetKind, call] = cases[name];
      const target = targetKind === 'y' ? d.y : d.t;
      times[`${name}|${N}x${C}`] = medianMs(() => loss.forwardBackward(d.x, target, { ...call, out: { grad } }), 0.1, 3, 40);
    }
  }
  return { simd: cbloss.backendInfo().cpu.simd, times };
}

const side = option('--side', null);
if (side !== null) {
  process.stdout.write(JSON.stringify(timeSide(side, Number(option('--threads', '1')))));
} else {
  if (positional.length !== 2) {
    console.error('usage: node bench/ab.js <package A> <package B> [--rounds R] [--threads T] [--losses a,b] [--shapes NxC,...]');
    process.exit(2);
  }
  const [dirA, dirB] = positional.map((p) => path.resolve(p));
  const threads = Number(option('--threads', String(os.cpus().length)));
  const passOn = ['--threads', String(threads), '--losses', losses.join(','), '--shapes', shapes.map((s) => s.join('x')).join(',')];
  const runs = [[], []];
  const simd = [];
  for (let r = 0; r < rounds; r++) {
    [dirA, dirB].forEach((dir, i) => {
      const out = JSON.parse(execFileSync(process.execPath, [__filename, '--side', dir, ...passOn], { encoding: 'utf8', maxBuffer: 1 << 24 }));
      runs[i].push(out.times);
      simd[i] = out.simd;
    });
  }
  console.log(`A/B — ${os.cpus()[0].model}, ${threads} threads, kernels A ${simd[0]} B ${simd[1]}`);
  console.log(`A: ${dirA}\nB: ${dirB}\n${rounds} alternating rounds (a process a side); forward+backward, median ms`);
  const lines = [['loss', 'N×C', 'A ms', 'B ms', 'B/A', 'fastest B/A']];
  let logSum = 0;
  const keys = Object.keys(runs[0][0]);
  for (const key of keys) {
    const a = median(runs[0].map((t) => t[key]));
    const b = median(runs[1].map((t) => t[key]));
    const fastest = Math.min(...runs[1].map((t) => t[key])) / Math.min(...runs[0].map((t) => t[key]));
    logSum += Math.log(b / a);
    const [name, shape] = key.split('|');
    lines.push([name, shape, a.toFixed(3), b.toFixed(3), (b / a).toFixed(3), fastest.toFixed(3)]);
  }
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  console.log(lines.map((l) => l.map((v, i) => v.padStart(widths[i])).join('  ')).join('\n'));
  console.log(`geometric mean B/A over ${keys.length} cases: ${Math.exp(logSum / keys.length).toFixed(3)}`);
}
