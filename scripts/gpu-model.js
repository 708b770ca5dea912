// `npm run gpu:model` (issue 21): what the CUDA kernels would move on an H200, from the CUDA emulator's
// count of their memory traffic (scripts/traffic-model.js) and ptxas's registers for sm_90. Needs the
// emulated build (npm run build:emulated) and, for the registers, nvcc. For every loss and shape of the
// GPU check, fp32 and bf16 logits: the kernels and launch shapes chosen for an sm_90 device of 132
// multiprocessors (a launch plan of the full shape, no block run), the traffic of a call over its
// minimum bytes, sector efficiency, registers, shared memory, theoretical occupancy, and the time at
// 4.0 TB/s. The traffic is counted on a few rows, twice (n and 2n rows), and extrapolated to the full
// shape as a fixed part plus a part a row; the partial sums count as fixed, at n rows (the sums' stages
// grow with the rows up to 1024 segments, then stay: at a full shape they are a few KB), the tile sums
// of short rows (one a tile of 16 to 64 rows) as a part a row.
//   node scripts/gpu-model.js [--quick]      (the child modes below are internal)
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { kernelName } = require('./traffic-model.js');

const ROOT = path.join(__dirname, '..');
const ADDON = process.env.CBLOSS_ADDON || path.join(ROOT, 'build-emu', 'Release', 'cbloss.node');
const BANDWIDTH = 4.0e12; // bytes a second: an H200's copy reached 4.07-4.10 TB/s (bench/RESULTS.md)
const MULTIPROCESSORS = '132';

// Rows emulated per call: enough for a few blocks of each kernel, few enough for seconds.
const sampleRows = (N, C) => Math.min(N, Math.max(1, Math.floor(32768 / C)));
const LONG_ROWS = [
  ['shared memory in clusters', { CBLOSS_CUDA_SHARED_ROWS: '1' }],
  ['registers in clusters', { CBLOSS_CUDA_REGISTER_CLUSTERS: '1' }],
  ['slices', { CBLOSS_CUDA_CLUSTERS: '0', CBLOSS_CUDA_SHARED_ROWS: '0' }],
];

function cases(quick) {
  const shapes = quick ? [[4096, 10], [65536, 1000], [8192, 131072]] : [[1 << 20, 128], [65536, 1000], [8192, 131072], [4096, 10], [1 << 20, 2], [16384, 32000], [4096, 262208]];
  const list = [];
  for (const dtype of ['float32', 'bfloat16']) {
    for (const [N, C] of shapes) list.push({ loss: 'ce', N, C, dtype, how: 'default' });
    for (const [how, env] of quick ? [] : LONG_ROWS) list.push({ loss: 'ce', N: 8192, C: 131072, dtype, how, env });
    for (const loss of ['focal', 'cb-focal', 'ldam', 'bce']) list.push({ loss, N: 65536, C: 1000, dtype, how: 'default' });
    if (!quick) list.push({ loss: 'bce', N: 1 << 20, C: 128, dtype, how: 'default' });
  }
  return list;
}

// Child: runs the cases (full shapes as a launch plan, or their first rows counted) and prints JSON.
function child(mode, list) {
  const cbloss = require('..');
  const { traffic, summarize } = require('./traffic-model.js');
  const out = list.map((c) => {
    if (mode === 'plan') return traffic(cbloss, c, { fill: false }).map((l) => ({ kernel: l.kernel, grid: l.grid, block: l.block, cluster: l.cluster, shared: l.shared }));
    const rows = sampleRows(c.N, c.C);
    const count = (n) => {
      const s = summarize(traffic(cbloss, { ...c, N: n }), { ...c, N: n });
      delete s.launches;
      return s;
    };
    const one = count(rows);
    const two = rows * 2 <= c.N ? count(rows * 2) : one;
    // traffic(N) = fixed + perRow N, from the two counts (one count when the shape has no more rows);
    // `partial`: the part of `key` that is fixed
    const line = (key, partial) => {
      const grows = (s) => s[key] - s[partial];
      const perRow = two === one ? grows(one) / rows : (grows(two) - grows(one)) / rows;
      return { perRow, fixed: one[key] - perRow * rows };
    };
    return { ...one, rows, total: line('trafficBytes', 'partialSumBytes'), read: line('readBytes', 'partialSumReadBytes') };
  });
  process.stdout.write(JSON.stringify(out));
}

function runChild(mode, list, env) {
  const r = spawnSync(process.execPath, [__filename, `--${mode}`, JSON.stringify(list)], {
    env: { ...process.env, CBLOSS_ADDON: ADDON, CBLOSS_EMULATED_MULTIPROCESSORS: MULTIPROCESSORS, ...env },
    maxBuffer: 1 << 28,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`gpu-model ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ptxas -v for sm_90 over native/cuda/launch.cu (every kernel), kept in build-emu/ by the sources' hash.
function ptxasInfo() {
  const files = [];
  const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : files.push(path.join(d, e.name))));
  walk(path.join(ROOT, 'native', 'cuda'));
  walk(path.join(ROOT, 'native', 'core'));
  const hash = crypto.createHash('sha256');
  for (const f of files.sort()) hash.update(f).update(fs.readFileSync(f));
  const cache = path.join(ROOT, 'build-emu', `ptxas-sm90-${hash.digest('hex').slice(0, 16)}.txt`);
  let text;
  if (fs.existsSync(cache)) text = fs.readFileSync(cache, 'utf8');
  else {
    const o = path.join(require('node:os').tmpdir(), `cbloss-model-${process.pid}.o`);
    const r = spawnSync('nvcc', ['-std=c++17', '-O3', '-arch=sm_90', '-Xptxas', '-v', '-c', path.join(ROOT, 'native/cuda/launch.cu'), '-o', o], { encoding: 'utf8', maxBuffer: 1 << 26 });
    fs.rmSync(o, { force: true });
    if (r.error || r.status !== 0) return null;
    text = r.stderr;
    fs.mkdirSync(path.dirname(cache), { recursive: true });
    fs.writeFileSync(cache, text);
  }
  const mangled = [...text.matchAll(/Compiling entry function '([^']+)' for 'sm_90'/g)].map((m) => m[1]);
  const demangled = execFileSync('c++filt', { input: mangled.join('\n'), encoding: 'utf8' }).trim().split('\n');
  const info = new Map();
  const blocks = text.split(/(?=ptxas info\s+: Compiling entry function)/);
  for (const b of blocks) {
    const m = b.match(/Compiling entry function '([^']+)'/);
    const u = b.match(/Used (\d+) registers(?:, used \d+ barriers)?(?:, (\d+) bytes smem)?/);
    if (!m || !u) continue;
    info.set(kernelName(demangled[mangled.indexOf(m[1])]), { registers: Number(u[1]), staticShared: Number(u[2] || 0) });
  }
  return info;
}

// Theoretical occupancy on sm_90: warps resident an SM over 64, limited by registers (65536, allocated
// 256 a warp at a time), shared memory (228 KB, 1 KB reserved a block), 32 blocks and 64 warps.
function occupancy(threads, registers, shared) {
  const warps = Math.ceil(threads / 32);
  const regsPerWarp = Math.ceil((registers * 32) / 256) * 256;
  const byRegs = Math.floor(Math.floor(65536 / regsPerWarp) / warps);
  const byShared = Math.floor((228 * 1024) / (shared + 1024));
  const blocks = Math.min(byRegs, byShared, 32, Math.floor(64 / warps));
  return (blocks * warps) / 64;
}

function main() {
  const quick = process.argv.includes('--quick');
  if (!fs.existsSync(ADDON)) {
    console.error(`no emulated build at ${ADDON}: npm run build:emulated first`);
    process.exit(1);
  }
  const list = cases(quick);
  const started = Date.now();
  const plans = runChild('plan', list, { CBLOSS_EMULATED_TRAFFIC_PLAN: '1', CBLOSS_EMULATED_DEVICE_MEMORY: String(64 * 2 ** 30) });
  const counts = runChild('count', list, {});
  const ptxas = ptxasInfo();
  console.log('The CUDA kernels on an H200 (sm_90, 132 SMs) as the emulator counts their memory traffic (scripts/gpu-model.js).');
  console.log('ratio: bytes of the sectors moved over the minimum (logits and labels read once, gradient written once), for the');
  console.log('full shape; read, written: each over its minimum; row data: logits, targets and gradient alone; logits read: times;');
  console.log('E: sector efficiency of the row data; time: the bytes at 4.0 TB/s. Small kernels: the label check, divisor terms,');
  console.log('two-stage sums (their launches in the plan, their bytes in the ratio).\n');
  console.log('call | loss kernels: grid x block [cluster, dynamic shared] registers/static shared/theoretical occupancy | counted rows | ratio | read | written | row data | logits read | E | µs at 4.0 TB/s');
  let worstRatio = 0;
  let worstRatioAt = '';
  let worstE = 1;
  let worstEAt = '';
  let worstWide = 0; // one-pass shapes of 128 columns or more: the call's fixed bytes a row (labels checked
  // first, row losses) are small beside the row there; at 2 and 10 columns they are most of it
  list.forEach((c, i) => {
    const s = counts[i];
    const shape = `${c.N}x${c.C}`;
    const call = `${c.loss} ${shape} ${c.dtype}${c.how === 'default' ? '' : ` (${c.how})`}`;
    const small = (l) => /^(check_labels|divisor_terms|segment_sum)_kernel/.test(kernelName(l.kernel));
    const smallCount = plans[i].filter(small).length;
    const kernels = plans[i]
      .filter((l) => !small(l))
      .map((l) => {
        const name = kernelName(l.kernel);
        const p = ptxas?.get(name);
        const threads = l.block[0] * l.block[1] * l.block[2];
        const regs = p ? `${p.registers} regs/${p.staticShared} B/${Math.round(100 * occupancy(threads, p.registers, p.staticShared + l.shared))}%` : 'no ptxas';
        const grid = l.grid.filter((g, k) => k === 0 || g > 1).join('x');
        return `${name} ${grid} x ${threads}${l.cluster ? ` [${l.cluster}, ${l.shared} B]` : l.shared ? ` [-, ${l.shared} B]` : ''} ${regs}`;
      })
      .join('; ') + ` + ${smallCount} small`;
    // the full shape: its minimum, and the counted traffic's fixed part plus its part a row
    const minimum = (s.minimumBytes / s.rows) * c.N;
    const minimumRead = (s.minimumReadBytes / s.rows) * c.N;
    const total = s.total.fixed + s.total.perRow * c.N;
    const read = s.read.fixed + s.read.perRow * c.N;
    const ratio = total / minimum;
    const micros = (total / BANDWIDTH) * 1e6;
    const written = (total - read) / (minimum - minimumRead);
    console.log(`${call} | ${kernels} | ${s.rows} | ${ratio.toFixed(3)} | ${(read / minimumRead).toFixed(3)} | ${written.toFixed(3)} | ${s.rowData.toFixed(3)} | ${s.logitsRead.toFixed(3)} | ${s.efficiency.toFixed(3)} | ${micros.toFixed(0)}`);
    if (s.unnamedBytes > 0) console.log(`  (${s.unnamedBytes} bytes to device memory no buffer name covers)`);
    if (!s.twoPass && ratio > worstRatio) (worstRatio = ratio), (worstRatioAt = call);
    if (!s.twoPass && c.C >= 128) worstWide = Math.max(worstWide, ratio);
    if (s.efficiency < worstE) (worstE = s.efficiency), (worstEAt = call);
  });
  console.log(`\n(one-pass shapes of 128 columns or more: worst ratio ${worstWide.toFixed(3)})`);
  console.log(`(${list.length} calls in ${((Date.now() - started) / 1000).toFixed(0)} s; worst ratio at ${worstRatioAt}, worst efficiency at ${worstEAt})`);
  console.log(`traffic: worst ratio ${worstRatio.toFixed(3)} on one-pass shapes, worst sector efficiency ${worstE.toFixed(3)}`);
}

if (process.argv[2] === '--plan' || process.argv[2] === '--count') child(process.argv[2].slice(2), JSON.parse(process.argv[3]));
else main();
