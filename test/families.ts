// Running the loss families (their entries: test/losses.ts) — each loss × option × reduction, and the
// class-balanced wrappers of each — with random inputs, checked against the independent float64
// reference (test/reference.ts) for the loss and central finite differences for the gradient. The CPU
// tests (20-reference) and the CUDA tests (75-cuda) share them.
import { strict as assert } from 'node:assert';

import { CrossEntropyLoss, DeviceTensor, FocalLoss, PolyLoss, type Device, type Loss } from '../lib';
import { assertGradClose, assertLossArrayClose, assertLossClose, randomLogits, rng } from './helpers';
import { buildLoss, lossEntries, type Family } from './losses';
import { referenceGrad, referenceLoss, type RefCase } from './reference';

/**
 * Every loss's reference families, loss by loss in the descriptor's order (ClassBalancedLoss's
 * wrappers of the others last).
 */
export function referenceFamilies(): Family[] {
  return lossEntries().flatMap(([, entry]) => entry.families());
}

/**
 * A family's seed, from its name (FNV-1a): a family's random inputs do not change when families are
 * added or reordered, and are the same at every kernel level.
 */
export function familySeed(f: Family): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < f.name.length; i++) hash = Math.imul(hash ^ f.name.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** Where runFamily computes: the loss's device option, and whether the data goes in as DeviceTensors. */
export interface RunMode {
  device?: string;
  deviceTensors?: boolean;
  /** The shape (default: C in [2, 8], N in [1, 8]). */
  shape?: (rand: () => number) => { N: number; C: number };
}

export function runFamily(f: Family, seed: number, mode: RunMode = {}): void {
  const rand = rng(seed);
  for (const reduction of f.reductions) {
    const drawn = mode.shape?.(rand);
    const C = f.classes ?? drawn?.C ?? 2 + Math.floor(rand() * 7);
    const N = drawn?.N ?? 1 + Math.floor(rand() * 8);
    const baseOptions = f.options(C, rand);
    const options = { ...baseOptions, reduction };
    const input = randomLogits(rand, N * C);
    const target = f.target(rand, N, C);
    const perCall = f.call?.(N, C, rand);
    const avgFactor = reduction === 'mean' ? perCall?.avgFactor : undefined;
    const refCase: RefCase = { loss: f.loss, options, target, sampleWeight: perCall?.sampleWeight, avgFactor };
    const callOptions = { sampleWeight: perCall?.sampleWeight, avgFactor };
    const expected = referenceLoss(refCase, input);
    const outputs = Array.isArray(expected) ? expected.length : 1;
    const gradOutput =
      reduction === 'none' && rand() < 0.5
        ? Array.from({ length: outputs }, () => Math.fround(rand() * 2 - 0.5))
        : Math.fround(0.5 + rand());
    const loss = buildLoss(mode.device ? { ...refCase, options: { ...options, device: mode.device } } : refCase);
    const apiTarget = target.kind === 'int' ? Int32Array.from(target.values) : Float32Array.from(target.values);
    const what = `${f.name} ${reduction} N=${N} C=${C}${mode.device ? ` on ${mode.device}` : ''}${mode.deviceTensors ? ' (DeviceTensors)' : ''}`;
    let lossValue: number | Float32Array;
    let grad: Float32Array;
    if (mode.deviceTensors) {
      // 0/1 integer element targets are converted on the host; every other target goes to the device.
      const hostOnly = target.kind === 'int' && target.values.length === N * C && C > 1;
      const x = DeviceTensor.from(input, { device: mode.device });
      const t = hostOnly ? apiTarget : DeviceTensor.from(apiTarget, { device: mode.device });
      // (the sample weights as a float32 DeviceTensor too)
      const sw = callOptions.sampleWeight && DeviceTensor.from(Float32Array.from(callOptions.sampleWeight), { device: mode.device });
      const result = loss.forwardBackward(x, t, { gradOutput, ...callOptions, sampleWeight: sw });
      lossValue = result.loss instanceof DeviceTensor ? result.loss.toHost() : result.loss;
      grad = result.grad.toHost() as Float32Array;
      for (const d of [x, t, sw, result.grad, result.loss]) if (d instanceof DeviceTensor) d.dispose();
    } else {
      const result = loss.forwardBackward(input, apiTarget, { gradOutput, ...callOptions });
      lossValue = result.loss as number | Float32Array;
      grad = result.grad;
    }
    if (Array.isArray(expected)) assertLossArrayClose(lossValue as Float32Array, expected, `${what} loss`);
    else assertLossClose(lossValue as number, expected, `${what} loss`);
    const g = referenceGrad(refCase, Float64Array.from(input), gradOutput);
    assertGradClose(grad, g, `${what} grad`);
  }
}

/**
 * Confident rows (the label's logit the row's max by k): CE = log1p(Σ_{c≠y} e^{z_c − z_y}) is small,
 * down to 1e-20 here. The kernels take log S as log1p of the part of S below the max, so each row's
 * loss keeps the 1e-5 relative precision where log(S) of S ≈ 1 in float lost it (5.5e-5 at
 * [8, 1, 1], and 0 below ~1e-7). Every row layout: C = 3 (a row a lane on the CPU), 40 (rows in
 * registers), 300 (one block), 5000 (two blocks, the max in either); on a GPU, the kernels those
 * widths take. With `device`, the losses run there (host arrays, then DeviceTensors).
 */
export function checkSmallRowLosses(device?: Device): void {
  for (const C of [3, 40, 300, 5000]) {
    const rows: number[][] = [];
    const labels: number[] = [];
    for (const k of [2, 8, 12, 17, 25, 33, 40, 45, 49]) {
      for (const at of [0, C - 1, Math.floor(C / 2) + 1]) {
        const row = Array.from({ length: C }, (_, c) => Math.fround(0.25 * Math.sin(c * 1.7 + k)));
        row[at] = Math.fround(row[at] + k);
        rows.push(row);
        labels.push(at);
      }
    }
    const x = Float32Array.from(rows.flat());
    const y = Int32Array.from(labels);
    // The reference, in float64 from the float32 logits, in the log1p form (log of a sum near 1 would
    // lose the loss in float64 too).
    const ce = rows.map((row, n) => {
      let rest = 0;
      row.forEach((z, c) => (rest += c === labels[n] ? 0 : Math.exp(z - row[labels[n]])));
      return Math.log1p(rest);
    });
    const oneMinusP = ce.map((v) => -Math.expm1(-v));
    const opts = device ? { device } : {};
    const checks: Array<[string, Loss, number[]]> = [
      ['CE', new CrossEntropyLoss({ reduction: 'none', ...opts }), ce],
      ['focal γ=0.5', new FocalLoss({ numClasses: C, gamma: 0.5, reduction: 'none', ...opts }), ce.map((v, n) => Math.sqrt(oneMinusP[n]) * v)],
      ['poly ε=2', new PolyLoss({ epsilon: 2, reduction: 'none', ...opts }), ce.map((v, n) => v + 2 * oneMinusP[n])],
    ];
    for (const [name, loss, expected] of checks) {
      const results: Array<[string, Float32Array]> = [['host arrays', loss.forwardBackward(x, y).loss as Float32Array]];
      if (device) {
        const dx = DeviceTensor.from(x, { device });
        const r = loss.forwardBackward(dx, y);
        results.push(['DeviceTensor', (r.loss as DeviceTensor).toHost() as Float32Array]);
        for (const d of [dx, r.grad, r.loss as DeviceTensor]) d.dispose();
      }
      for (const [how, got] of results) {
        expected.forEach((e, n) => {
          if (e < 1e-20) return; // (below the claim)
          const rel = Math.abs(got[n] - e) / e;
          assert.ok(rel <= 1e-5, `${name} C=${C} row ${n} (${how}): ${got[n]} vs ${e} (relative ${rel.toExponential(2)})`);
        });
      }
    }
  }
}

