// One device-resident loss call for Nsight Compute to count (issue 21: the memory traffic measured on a
// GPU, beside the emulator's count). Run under ncu by scripts/gpu-traffic.sh, one process per call so
// that each report holds that call's kernels alone:
//   node scripts/gpu-traffic.js LOSS N C DTYPE
// LOSS: ce | focal | cb-focal | bce | ldam. The long-row kernel is chosen with the CBLOSS_CUDA_* switches
// (native/cuda/losses_cuda.cu) in the environment. Copies into the device tensors are not kernels, so
// ncu sees only the loss's own launches.
'use strict';
const cbloss = require('..');
const { rng } = require('../dist/random.js');

const [loss, N, C, dtype] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5] || 'float32'];
const rand = rng(21);
const BLOCK = 1 << 22;
const block = Float32Array.from({ length: BLOCK }, () => (rand() - 0.5) * 8);
const bits = dtype === 'float32' ? block : cbloss.toBfloat16Bits(block);
const { DeviceTensor } = cbloss;
const x = DeviceTensor.empty(N * C, { dtype });
for (let at = 0; at < N * C; at += BLOCK) x.copyFrom(bits.subarray(0, Math.min(BLOCK, N * C - at)), at);
const grad = DeviceTensor.empty(N * C, { dtype });
const { makeLoss, makeTarget } = require('./traffic-model.js');
const target = makeTarget(cbloss, loss, N, C, rand);
const r = makeLoss(cbloss, loss, C).forwardBackward(x, target, { out: { grad } });
const value = r.loss instanceof DeviceTensor ? r.loss.toHost()[0] : r.loss;
console.log(`traffic-call ${loss} ${N}x${C} ${dtype}: loss ${value}`);
