// The memory traffic of the CUDA kernels as the CUDA emulator counts it (issue 21; scripts/traffic-model.js
// says what is counted): the kernels that promise one pass read each logit once and write each gradient
// element once, in whole 32-byte sectors, and the slices read the logits exactly twice. Runs on the
// emulated build only (a GPU does not count; `npm run gpu:model` prints the full table).
import { strict as assert } from 'node:assert';

import * as cbloss from '../lib';

type Dtype = 'float32' | 'bfloat16';
interface Call {
  loss: 'ce' | 'focal' | 'cb-focal' | 'ldam' | 'bce';
  N: number;
  C: number;
  dtype: Dtype;
  env?: Record<string, string>;
}
interface Summary {
  kernels: string[];
  rowData: number;
  logitsRead: number;
  labelsRead: number;
  gradientWritten: number;
  efficiency: number;
  unnamedBytes: number;
  twoPass: boolean;
  ratio: number;
}
interface TrafficModel {
  traffic(addon: typeof cbloss, call: Call): unknown[];
  summarize(lines: unknown[], call: Call): Summary;
}
// (a CommonJS script shared with `npm run gpu:model`)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const model = require('../scripts/traffic-model.js') as TrafficModel;

const cuda = cbloss.backendInfo().cuda;
const measure = (call: Call): Summary => model.summarize(model.traffic(cbloss, call), call);
const name = (c: Call): string => `${c.loss} ${c.N}x${c.C} ${c.dtype}${c.env ? ` ${Object.entries(c.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`;

// The shapes of the GPU check on a few rows (a row of 1000 bfloat16 starts every 2000 bytes, so half
// its warps' accesses straddle a sector, as on a GPU: sector efficiency 0.97, row data 1.03).
const ONE_PASS: Call[] = [
  { loss: 'ce', N: 128, C: 128, dtype: 'float32' },
  { loss: 'ce', N: 128, C: 128, dtype: 'bfloat16' },
  { loss: 'ce', N: 16, C: 1000, dtype: 'float32' },
  { loss: 'ce', N: 16, C: 1000, dtype: 'bfloat16' },
  { loss: 'ce', N: 4096, C: 2, dtype: 'float32' },
  { loss: 'ce', N: 4096, C: 2, dtype: 'bfloat16' },
  // rows of single columns in groups of 4, 8 and 16 lanes, through the warp's span in shared memory
  { loss: 'ce', N: 1024, C: 10, dtype: 'float32' },
  { loss: 'ce', N: 1024, C: 10, dtype: 'bfloat16' },
  { loss: 'ce', N: 256, C: 99, dtype: 'float32' },
  { loss: 'ce', N: 512, C: 130, dtype: 'bfloat16' },
  { loss: 'ce', N: 256, C: 250, dtype: 'float32' },
  { loss: 'focal', N: 16, C: 1000, dtype: 'float32' },
  { loss: 'cb-focal', N: 16, C: 1000, dtype: 'float32' },
  { loss: 'ldam', N: 16, C: 1000, dtype: 'float32' },
  { loss: 'bce', N: 128, C: 128, dtype: 'float32' },
  { loss: 'bce', N: 128, C: 128, dtype: 'bfloat16' },
  // rows held in shared memory (one block here: the emulator has one multiprocessor)
  { loss: 'ce', N: 1, C: 20000, dtype: 'float32' },
  { loss: 'ce', N: 1, C: 20000, dtype: 'bfloat16' },
];
// Softmax rows with class indices in groups under a warp (C <= 256): the one pass (held_rows.cuh).
const onePass = (c: Call): boolean => c.loss !== 'bce' && c.C <= 256;
const SLICES: Call[] = (['float32', 'bfloat16'] as const).map((dtype) => ({
  loss: 'ce',
  N: 1,
  C: 40000,
  dtype,
  env: { CBLOSS_CUDA_CLUSTERS: '0', CBLOSS_CUDA_SHARED_ROWS: '0' },
}));

describe('76 memory traffic of the CUDA kernels, counted by the emulator', function () {
  this.timeout(120000);
  before(function () {
    if (!cuda.emulated) this.skip();
  });

  for (const call of ONE_PASS) {
    it(`${name(call)}: the logits read once, the gradient written once, in whole sectors`, () => {
      const s = measure(call);
      assert.ok(!s.twoPass, `one-pass kernels: ${s.kernels.join(', ')}`);
      assert.ok(s.logitsRead >= 1 && s.logitsRead <= 1.05, `logits read ${s.logitsRead.toFixed(3)} times (${s.kernels.join(', ')})`);
      assert.ok(s.gradientWritten >= 1 && s.gradientWritten <= 1.05, `gradient written ${s.gradientWritten.toFixed(3)} times`);
      assert.ok(s.rowData <= 1.05, `row data moved ${s.rowData.toFixed(3)} times its minimum`);
      assert.ok(s.efficiency >= 0.95, `sector efficiency ${s.efficiency.toFixed(3)} (${s.kernels.join(', ')})`);
      // the labels: rows of up to 256 columns take the one pass (the loss kernel checks them and sums
      // the divisor's terms, then holds them), the whole call within 5% of its minimum bytes; longer
      // rows read them once to check them (with the divisor's terms), once in the loss kernel
      if (onePass(call)) {
        assert.ok(s.labelsRead <= 1.0001, `labels read ${s.labelsRead.toFixed(3)} times (${s.kernels.join(', ')})`);
        assert.ok(s.ratio <= 1.05, `the call moved ${s.ratio.toFixed(3)} times its minimum bytes (${s.kernels.join(', ')})`);
      } else if (call.loss !== 'bce') {
        assert.ok(s.labelsRead <= 2.05, `labels read ${s.labelsRead.toFixed(3)} times (${s.kernels.join(', ')})`);
      }
      assert.equal(s.unnamedBytes, 0, 'every device access falls in a named buffer');
    });
  }

  for (const call of SLICES) {
    it(`${name(call)}: the slices read the logits twice, no more, and write the gradient once`, () => {
      const s = measure(call);
      assert.ok(s.twoPass, `slice kernels: ${s.kernels.join(', ')}`);
      assert.ok(s.logitsRead >= 1.95 && s.logitsRead <= 2.05, `logits read ${s.logitsRead.toFixed(3)} times`);
      assert.ok(s.gradientWritten >= 1 && s.gradientWritten <= 1.05, `gradient written ${s.gradientWritten.toFixed(3)} times`);
      assert.ok(s.efficiency >= 0.95, `sector efficiency ${s.efficiency.toFixed(3)}`);
      assert.equal(s.unnamedBytes, 0);
    });
  }
});
