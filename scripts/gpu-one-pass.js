// The one pass on a GPU (issue 21; native/cuda/kernels/held_rows.cuh): short rows with device labels,
// the loss kernel checking the labels and summing the divisor itself in a cooperative launch, against
// the same calls with CBLOSS_CUDA_ONE_PASS=0 (a kernel checks the labels, with the divisor's terms,
// first), in one process, alternating. First which kernel each call runs (issue 32: a GPU has no
// traffic file, and a silent fallback would pass every other check): the calls again in a child
// process with CBLOSS_CUDA_LOG=1, whose line for each call must name the one pass up to the most rows
// it holds (the line says how many), the plain path past them ("more rows than its blocks hold") and
// with the switch off — and at those most rows and one row more. Then checks that both give the same
// loss and gradient (to float32 rounding; the divisor's sum runs in another order) and that a bad
// label writes nothing either way; prints median wall times per forward+backward call (the best of 3
// medians of 20, alternating) and the path each took. Run after scripts/gpu-check.sh
// (bench/RESULTS.md); --small: the checks on small shapes, for the sanitizers (no kernel check).
// (--calls JSON: the child: runs those calls, a line "cbloss-one-pass call I" on stderr before each.)
'use strict';
const cbloss = require('../dist/index.js');
const { median, withEnv } = require('./gpu-timing.js');
const { rng } = require('../dist/random.js');
const { spawnSync } = require('node:child_process');

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

// Device arrays for a call of `kind` (N rows of C, logits of dtype): logits in [-2, 2), labels in [0, C).
function deviceCall(kind, N, C, dtype) {
  const x = Float32Array.from({ length: N * C }, () => 4 * rand() - 2);
  const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const dx = DeviceTensor.from(dtype === 'float32' ? x : cbloss.toBfloat16Bits(x), { dtype });
  const dy = DeviceTensor.from(y);
  const dg = DeviceTensor.empty(N * C, { dtype });
  const loss = lossOf(kind, C);
  return { x, y, dx, dy, dg, call: () => loss.forwardBackward(dx, dy, { out: { grad: dg } }) };
}

// The child of kernelsOf: each call once, after its marker line.
const at = process.argv.indexOf('--calls');
if (at >= 0) {
  JSON.parse(process.argv[at + 1]).forEach(([kind, N, C, dtype, env], i) => {
    process.stderr.write(`cbloss-one-pass call ${i}\n`);  // (synchronous on a pipe, before the addon's line)
    const c = deviceCall(kind, N, C, dtype);
    withEnv(env || {}, c.call);
    for (const t of [c.dx, c.dy, c.dg]) t.dispose();
  });
  process.exit(0);
}

// The CBLOSS_CUDA_LOG=1 line of each call ([kind, N, C, dtype, env?]), run in a child process: the
// addon prints a line when it differs from the last, so a call without one ran what the one before did.
function kernelsOf(calls) {
  const r = spawnSync(process.execPath, [__filename, '--calls', JSON.stringify(calls)], {
    encoding: 'utf8',
    env: { ...process.env, CBLOSS_CUDA_LOG: '1' },
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`the kernel check's child failed (${r.status}): ${r.stderr}`);
  const lines = new Array(calls.length).fill(null);
  let call = -1, last = null;
  for (const line of r.stderr.split('\n')) {
    const m = /^cbloss-one-pass call (\d+)$/.exec(line);
    if (m) call = Number(m[1]);
    else if (line.startsWith('cbloss CUDA: ') && / rows of \d+ columns: /.test(line)) last = line;
    if (call >= 0) lines[call] = last;
  }
  return lines;
}

// What a log line says: the one pass, or the plain path and why; the most rows the one pass holds.
function pathOf(line) {
  const most = /at most (\d+) rows\)$/.exec(line || '');
  return {
    onePass: /held_rows_kernel<[^>]*, true> \(the one pass: /.test(line || ''),
    why: (/\(not the one pass: (.*?)(; at most \d+ rows)?\)$/.exec(line || '') || [])[1] || '',
    most: most ? Number(most[1]) : 0,
  };
}

// --small: the checks alone on small shapes (for compute-sanitizer), no timing.
const small = process.argv.includes('--small');
const SMALL = [
  ['ce', 20000, 2, 'float32'],
  ['ce weighted', 5000, 10, 'bfloat16'],
  ['focal', 3000, 128, 'float32'],
  ['ce', 3000, 200, 'bfloat16'],
];
const SHAPES = small ? SMALL : [
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
];

// Which kernel each call runs: every shape, then with the switch off; then at the most rows the one pass
// holds (as the first shape's line says) and one row more, in groups of 4 lanes of float32 (C = 2).
const paths = [];
if (!small) {
  const first = SHAPES[0];
  const lines = kernelsOf([...SHAPES, [first[0], first[1], first[2], first[3], OFF]]);
  SHAPES.forEach(([kind, N, C, dtype], i) => {
    const p = pathOf(lines[i]);
    paths.push(p.onePass ? 'one pass' : `plain: ${p.why}`);
    const name = `${kind} ${N}x${C} ${dtype}`;
    console.log(`${name}: ${lines[i]}`);
    check(p.most > 0, `${name}: no count of the rows the one pass holds in the log line`);
    if (N <= p.most) check(p.onePass, `${name}: ${N} rows, at most ${p.most} in the one pass, but it did not run: ${p.why}`);
    else check(!p.onePass && p.why === 'more rows than its blocks hold', `${name}: ${N} rows, more than ${p.most}: ${lines[i]}`);
  });
  const off = lines[SHAPES.length];
  console.log(`${first.slice(0, 4).join(' ')} CBLOSS_CUDA_ONE_PASS=0: ${off}`);
  check(pathOf(off).why === 'switched off (CBLOSS_CUDA_ONE_PASS=0)', `switched off: ${off}`);
  const most = pathOf(lines[0]).most;
  if (most > 0) {
    const [inside, outside] = kernelsOf([['ce', most, 2, 'float32'], ['ce', most + 1, 2, 'float32']]);
    console.log(`ce ${most}x2 float32: ${inside}`);
    console.log(`ce ${most + 1}x2 float32: ${outside}`);
    check(pathOf(inside).onePass && pathOf(inside).most === most, `${most} rows, the most the one pass holds: ${inside}`);
    check(pathOf(outside).why === 'more rows than its blocks hold', `${most + 1} rows, one more than the one pass holds: ${outside}`);
  }
  console.log(`which kernel ran: ${failed === 0 ? 'as expected' : `${failed} checks failed`}`);
}

if (!small) console.log('forward+backward on device arrays, median ms (wall time per call); one pass against CBLOSS_CUDA_ONE_PASS=0');
if (!small) console.log('call                          one pass   two passes   ratio   path (CBLOSS_CUDA_LOG)');
SHAPES.forEach(([kind, N, C, dtype], i) => {
  const { dx, dy, dg, call } = deviceCall(kind, N, C, dtype);
  const host = (t) => (dtype === 'float32' ? t.toHost() : cbloss.fromBfloat16Bits(t.toHost()));
  const one = call().loss;
  const g1 = host(dg);
  const two = withEnv(OFF, call).loss;
  const g2 = host(dg);
  let worst = 0;
  for (let i = 0; i < g1.length; i++) worst = Math.max(worst, Math.abs(g1[i] - g2[i]) / (Math.abs(g2[i]) + 1e-6 / N));
  const name = `${kind} ${N}x${C} ${dtype}`;
  check(Math.abs(one - two) <= 1e-6 * Math.abs(two), `${name}: loss ${one} (one pass) vs ${two}`);
  check(worst <= (dtype === 'float32' ? 1e-5 : 1e-2), `${name}: gradient differs by ${worst} (relative)`);
  if (small) return;
  const t1 = [], t2 = [];
  for (let k = 0; k < 3; k++) {
    t1.push(median(call, 20));
    t2.push(withEnv(OFF, () => median(call, 20)));
  }
  const m1 = Math.min(...t1), m2 = Math.min(...t2);
  console.log(`${name.padEnd(28)} ${m1.toFixed(4).padStart(9)} ${m2.toFixed(4).padStart(12)} ${(m2 / m1).toFixed(2).padStart(7)}   ${paths[i]}`);
  for (const t of [dx, dy, dg]) t.dispose();
});

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
