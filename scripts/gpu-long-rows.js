// The long-row kernels against each other on a GPU, over row lengths (the measurement behind the order
// in which native/cuda/launch.cu tries them). For each C, N rows so that the logits are about 2 GB
// (float32) or 1 GB (bfloat16); each kernel forced in turn by the CBLOSS_CUDA_* switches
// (native/cuda/losses_cuda.cu); the median wall time of a device-resident CE forward+backward, ms,
// and the DRAM bandwidth that the minimum bytes (logits read, gradient written) come to.
//   node scripts/gpu-long-rows.js [C ...]
'use strict';
const cbloss = require('..');
const { rng } = require('../dist/random.js');
const { median, withEnv } = require('./gpu-timing.js');

const { DeviceTensor } = cbloss;
const kernels = [
  ['default', {}],
  ['registers in clusters', { CBLOSS_CUDA_REGISTER_CLUSTERS: '1' }],
  ['shared memory in clusters of any size', { CBLOSS_CUDA_SHARED_ROWS: '1' }],
  ['no clusters', { CBLOSS_CUDA_CLUSTERS: '0', CBLOSS_CUDA_SHARED_ROWS: '1' }],
  ['slices', { CBLOSS_CUDA_CLUSTERS: '0', CBLOSS_CUDA_SHARED_ROWS: '0' }],
];
const columns = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [8193, 12000, 16384, 24000, 32000, 50000, 65536, 100000, 131072, 200000, 262144, 262208];
const rand = rng(7);
const BLOCK = 1 << 22;
const block = Float32Array.from({ length: BLOCK }, () => (rand() - 0.5) * 8);
const blocks = { float32: block, bfloat16: cbloss.toBfloat16Bits(block) };
const ce = new cbloss.CrossEntropyLoss({ device: 'cuda' });
console.log(`long rows, CE forward+backward on the device, median ms (GB/s of the minimum bytes): ${kernels.map(([k]) => k).join(' | ')}`);
for (const dtype of ['float32', 'bfloat16']) {
  for (const C of columns) {
    const N = Math.max(1, Math.round((1 << 29) / C));
    const x = DeviceTensor.empty(N * C, { dtype });
    for (let at = 0; at < N * C; at += BLOCK) x.copyFrom(blocks[dtype].subarray(0, Math.min(BLOCK, N * C - at)), at);
    const g = DeviceTensor.empty(N * C, { dtype });
    const y = DeviceTensor.from(Int32Array.from({ length: N }, () => Math.floor(rand() * C)));
    const bytes = N * C * (dtype === 'float32' ? 8 : 4);
    const cells = kernels.map(([, env]) => {
      try {
        const ms = withEnv(env, () => median(() => ce.forwardBackward(x, y, { out: { grad: g } })));
        return `${ms.toFixed(3)} (${Math.round(bytes / ms / 1e6)})`;
      } catch (e) {
        return `FAIL ${e.message}`;
      }
    });
    console.log(`${dtype} ${N}x${C}: ${cells.join(' | ')}`);
    for (const t of [x, g, y]) t.dispose();
  }
}
