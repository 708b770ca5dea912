// avgFactor (docs/semantics.md, "Per-call options") as data-parallel training uses it: workers that each
// hold a shard of the batch divide by the count all-reduced over every worker, and then the sum of the
// shards' losses is the whole batch's loss and the shards' gradients, put together, are the whole batch's
// gradient — on the CPU and (where CUDA runs, the emulator included) on the device.
import { BCEWithLogitsLoss, ClassBalancedLoss, CrossEntropyLoss, FocalLoss, LDAMLoss, backendInfo, type Device, type Loss } from '../lib';
import { assertGradClose, assertLossClose, randomLogits, rng } from './helpers';

interface ShardCase {
  name: string;
  loss: (device: Device) => Loss;
  classes: number;
  /** The whole batch's divisor, from the definitions of the reductions (what the workers all-reduce). */
  divisor: (labels: Int32Array, targets: Float32Array) => number;
  elementTargets?: boolean;
}

const N = 23;
const C = 6;
const weight = [0.5, 1, 1.5, 2, 0.25, 1];
const counts = [500, 200, 90, 40, 15, 6];

const CASES: ShardCase[] = [
  {
    name: 'CrossEntropyLoss weight ignoreIndex (mean: Σ w[y] over rows not ignored)',
    loss: (device) => new CrossEntropyLoss({ weight, ignoreIndex: 5, device }),
    classes: C,
    divisor: (y) => Array.from(y).reduce((a, v) => a + (v === 5 ? 0 : weight[v]), 0),
  },
  { name: 'FocalLoss (mean: rows)', loss: (device) => new FocalLoss({ numClasses: C, device }), classes: C, divisor: () => N },
  { name: 'LDAMLoss (mean: rows)', loss: (device) => new LDAMLoss({ samplesPerCls: counts, device }), classes: C, divisor: () => N },
  {
    name: 'BCEWithLogitsLoss (mean: elements)',
    loss: (device) => new BCEWithLogitsLoss({ numClasses: C, device }),
    classes: C,
    divisor: () => N * C,
    elementTargets: true,
  },
  {
    name: "ClassBalancedLoss 'weightedmean' (Σ of the rows' class-balanced weights)",
    loss: (device) =>
      new ClassBalancedLoss({ samplesPerCls: counts, beta: 0.99, numClasses: C, reduction: 'weightedmean', lossFunc: new FocalLoss({ numClasses: C, reduction: 'none' }), device }),
    classes: C,
    divisor: (y) => {
      const raw = counts.map((n) => (1 - 0.99) / (1 - Math.pow(0.99, n)));
      const sum = raw.reduce((a, b) => a + b, 0);
      return Array.from(y).reduce((a, v) => a + (raw[v] / sum) * C, 0);
    },
  },
];

const devices: Device[] = ['cpu', ...(backendInfo().cuda.available ? (['cuda'] as const) : [])];

describe('47 data-parallel shards with avgFactor (docs/semantics.md, "Per-call options")', () => {
  for (const device of devices) {
    for (const c of CASES) {
      it(`[${device}] ${c.name}: the shards' losses sum to the batch's, their gradients make its gradient`, () => {
        const rand = rng(c.name.length * 31 + device.length);
        const x = randomLogits(rand, N * c.classes);
        const y = Int32Array.from({ length: N }, () => Math.floor(rand() * c.classes));
        const t = Float32Array.from({ length: N * c.classes }, () => (rand() < 0.3 ? 1 : 0));
        const target = (from: number, to: number): Int32Array | Float32Array =>
          c.elementTargets ? t.subarray(from * c.classes, to * c.classes) : y.subarray(from, to);
        const sampleWeight = Float32Array.from({ length: N }, () => Math.fround(0.5 + rand()));
        const loss = c.loss(device);
        const whole = loss.forwardBackward(x, target(0, N), { sampleWeight });
        // A worker's avgFactor: the divisor all-reduced over the workers, here known from the definitions.
        const avgFactor = c.divisor(y, t);
        const bounds = [0, 5, 6, 17, N]; // uneven shards, one of a single row
        let total = 0;
        const grad = new Float32Array(N * c.classes);
        for (let s = 0; s + 1 < bounds.length; s++) {
          const [from, to] = [bounds[s], bounds[s + 1]];
          const part = loss.forwardBackward(x.subarray(from * c.classes, to * c.classes), target(from, to), {
            sampleWeight: sampleWeight.subarray(from, to),
            avgFactor,
          });
          total += part.loss as number;
          grad.set(part.grad, from * c.classes);
        }
        assertLossClose(total, whole.loss as number, `${c.name} summed loss`);
        assertGradClose(grad, whole.grad, `${c.name} gradients`, 1e-6);
        // ...and the avgFactor of a worker that held the whole batch changes nothing
        assertLossClose(loss.forward(x, target(0, N), { sampleWeight, avgFactor }) as number, whole.loss as number, `${c.name} one worker`);
      });
    }
  }
});
