// `cbloss score`: the loss (and optionally its gradient) of logits and targets stored in files, for
// batch scoring on servers. Files larger than memory stream through in chunks of rows; memory stays
// bounded by the chunk size whatever the file size.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { BCEWithLogitsLoss } from '../losses/bce';
import { ClassBalancedLoss, type ClassBalancedReduction } from '../losses/class-balanced';
import { CrossEntropyLoss } from '../losses/cross-entropy';
import { FocalLoss } from '../losses/focal';
import { SigmoidFocalLoss } from '../losses/sigmoid-focal';
import { PolyLoss } from '../losses/poly';
import { AsymmetricLoss } from '../losses/asymmetric';
import { BalancedSoftmaxLoss, LDAMLoss } from '../losses/long-tail';
import type { Device } from '../device';
import type { Loss } from '../loss';
import { classBalancedWeights } from '../weights';
import { CliError, helpText, parseOptions, type OptionSpec, type ParsedOptions } from './args';
import { NpyWriter, isFloat, openNpy, openRaw, type DType, type FileArray } from './npy';

export const SCORE_OPTIONS: readonly OptionSpec[] = [
  { name: 'logits', type: 'string', value: 'FILE', help: 'logits: .npy (float32/float64, shape [N, C] or [N]) or raw with --shape' },
  { name: 'targets', type: 'string', value: 'FILE', help: 'targets: .npy class indices (int32/int64, [N] or [N, 1]) or float/0-1 targets ([N, C]); raw with --targets-dtype' },
  { name: 'loss', type: 'string', value: 'NAME', help: 'the loss', choices: ['ce', 'bce', 'focal', 'sigmoid-focal', 'poly', 'asl', 'balanced-softmax', 'ldam'], default: 'ce' },
  { name: 'gamma', type: 'number', value: 'G', help: 'focusing parameter of focal / sigmoid-focal [default: 2]' },
  { name: 'alpha', type: 'number', value: 'A', help: 'alpha of focal [default: 1] / sigmoid-focal [default: 0.25]' },
  { name: 'epsilon', type: 'number', value: 'E', help: 'epsilon of poly (Poly-1) [default: 1]' },
  { name: 'gamma-pos', type: 'number', value: 'G', help: 'focusing of the positives of asl [default: 1]' },
  { name: 'gamma-neg', type: 'number', value: 'G', help: 'focusing of the negatives of asl [default: 4]' },
  { name: 'clip', type: 'number', value: 'C', help: 'probability shift of the negatives of asl, in [0, 1) [default: 0.05]' },
  { name: 'samples-per-class', type: 'string', value: 'FILE|LIST', help: 'class counts (comma list, or a file of numbers): class-balanced weighting with --beta; the counts of balanced-softmax and ldam' },
  { name: 'beta', type: 'number', value: 'B', help: 'beta of the class-balanced weights, in [0, 1]' },
  { name: 'tau', type: 'number', value: 'T', help: 'balanced-softmax: the bias is tau log(n_c / n) [default: 1]' },
  { name: 'max-margin', type: 'number', value: 'M', help: "ldam: the rarest class's margin [default: 0.5]" },
  { name: 'scale', type: 'number', value: 'S', help: 'ce, focal, balanced-softmax, ldam: logits scaled by S > 0 [default: 1; ldam 30]' },
  { name: 'logit-bias', type: 'string', value: 'FILE|LIST', help: 'ce, focal, ldam: a bias added to every row (C numbers: a comma list or a file)' },
  { name: 'sample-weight', type: 'string', value: 'FILE.npy', help: 'per-sample weights (float .npy): one per row, or one per logit for element losses' },
  { name: 'avg-factor', type: 'number', value: 'X', help: "the divisor of the mean reductions (data-parallel shards: the count all-reduced over the workers)" },
  { name: 'reduction', type: 'string', value: 'R', help: 'how the loss is reduced', choices: ['mean', 'sum', 'batchmean', 'weightedmean'], default: 'mean' },
  { name: 'grad', type: 'string', value: 'OUT.npy', help: 'write the gradient of the reduced loss (float32 .npy)' },
  { name: 'json', type: 'boolean', help: 'print one JSON object instead of text' },
  { name: 'device', type: 'string', value: 'D', help: "device: auto, cpu, cuda, cuda:N", default: 'auto' },
  { name: 'shape', type: 'string', value: 'N,C', help: 'shape of raw (headerless) logits' },
  { name: 'dtype', type: 'string', value: 'T', help: 'dtype of raw logits', choices: ['float32', 'float64'], default: 'float32' },
  { name: 'targets-dtype', type: 'string', value: 'T', help: 'dtype of raw targets', choices: ['int32', 'int64', 'float32', 'float64', 'uint8'], default: 'int32' },
  { name: 'chunk-rows', type: 'number', value: 'R', help: 'rows per chunk (default: about 16 MB of logits)' },
];

export const SCORE_HELP = helpText(
  'Usage: cbloss score --logits FILE --targets FILE [--loss ce|bce|focal|sigmoid-focal|poly|asl|balanced-softmax|ldam] [options]',
  'Computes a loss over logits and targets stored in files (.npy, or raw little-endian with --shape),\nin chunks of rows, and prints the loss with the mean loss and count per class.',
  SCORE_OPTIONS,
);

export interface ScoreResult {
  loss: number;
  reduction: string;
  lossName: string;
  rows: number;
  classes: number;
  perClass: Array<{ class: number; count: number; meanLoss: number }>;
  grad?: string;
}

function fail(message: string, code = 2): never {
  throw new CliError(`cbloss score: ${message}`, code);
}

function openArray(what: string, file: string, raw: boolean, dtype: DType, shape: number[] | null): FileArray {
  return raw ? openRaw(what, file, dtype, shape) : openNpy(what, file);
}

/** The numbers of a comma list, or of a file that holds them. */
function readNumbers(spec: string): number[] {
  const text = fs.existsSync(spec) && fs.statSync(spec).isFile() ? fs.readFileSync(spec, 'utf8') : spec;
  return text
    .split(/[\s,]+/)
    .filter((s) => s.length > 0)
    .map(Number);
}

function readCounts(spec: string): number[] {
  const counts = readNumbers(spec);
  if (counts.length === 0 || counts.some((n) => !Number.isFinite(n) || n <= 0)) {
    fail(`--samples-per-class must list positive numbers (a comma list or a file), not '${spec}'`);
  }
  return counts;
}

function readBias(spec: string, classes: number): number[] {
  const bias = readNumbers(spec);
  if (bias.length !== classes || bias.some((n) => !Number.isFinite(n))) {
    fail(`--logit-bias must list ${classes} finite numbers (one per class; a comma list or a file), not '${spec}'`);
  }
  return bias;
}

export function score(argv: readonly string[]): ScoreResult {
  const o: ParsedOptions = parseOptions('score', argv, SCORE_OPTIONS);
  for (const name of ['logits', 'targets']) if (o[name] === undefined) fail(`missing --${name} (see cbloss score --help)`);
  const lossName = o.loss as string;
  const logitsFile = o.logits as string;
  const targetsFile = o.targets as string;
  const rawLogits = o.shape !== undefined;

  let shape: number[] | null = null;
  if (rawLogits) {
    shape = String(o.shape)
      .split(',')
      .map((s) => Number(s.trim()));
    if (shape.length < 1 || shape.length > 2 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
      fail(`--shape must be N or N,C with positive integers, not '${o.shape}'`);
    }
  }
  const logits = openArray('--logits', logitsFile, rawLogits, o.dtype as DType, shape);
  if (!isFloat(logits.dtype)) fail(`--logits ${logitsFile}: logits must be float32 or float64, not ${logits.dtype}`, 1);
  if (logits.shape.length < 1 || logits.shape.length > 2) fail(`--logits ${logitsFile}: shape [${logits.shape.join(', ')}] is not [N, C] or [N]`, 1);
  const N = logits.shape[0];
  const C = logits.shape.length === 2 ? logits.shape[1] : 1;

  const rawTargets = path.extname(targetsFile).toLowerCase() !== '.npy';
  const targets = openArray('--targets', targetsFile, rawTargets, o['targets-dtype'] as DType, null);
  const floatTargets = isFloat(targets.dtype);
  if (targets.length !== N && targets.length !== N * C) {
    fail(`--targets ${targetsFile}: ${targets.length} values do not match the logits' ${N} rows (one index per row) or ${N * C} logits`, 1);
  }
  const indexTargets = !floatTargets && (C > 1 ? targets.length === N : false);
  if (floatTargets && targets.length !== N * C) {
    fail(`--targets ${targetsFile}: float targets need one value per logit (${N * C}), found ${targets.length}`, 1);
  }
  const longTail = lossName === 'balanced-softmax' || lossName === 'ldam';
  if ((lossName === 'focal' || lossName === 'poly' || longTail) && C > 1 && !indexTargets) {
    fail(`--targets ${targetsFile}: ${lossName} with ${C} classes takes class indices (int32/int64, one per row)`, 1);
  }

  // The loss with reduction 'none'; this command reduces, chunk by chunk.
  const device = o.device as Device;
  const gamma = o.gamma as number | undefined;
  const alpha = o.alpha as number | undefined;
  const binaryFocal = lossName === 'focal' && C === 1;
  const classes = binaryFocal ? 2 : C;
  // The logit map's options (docs/semantics.md, "Logit maps"), for the losses that take them
  const mapped = o.scale !== undefined || o['logit-bias'] !== undefined;
  if (mapped && !['ce', 'focal', 'ldam', 'balanced-softmax'].includes(lossName)) fail(`--scale and --logit-bias are for ce, focal, balanced-softmax and ldam, not ${lossName}`);
  const map: { scale?: number; logitBias?: number[] } = {};
  if (o.scale !== undefined) map.scale = o.scale as number;
  if (o['logit-bias'] !== undefined) map.logitBias = readBias(String(o['logit-bias']), C);
  if (map.logitBias && lossName === 'balanced-softmax') fail('balanced-softmax sets its own logit bias (from --samples-per-class and --tau)');
  if (binaryFocal && mapped) fail('--scale and --logit-bias need the softmax focal loss (logits [N, C] with class indices)');
  for (const [option, owner] of [['tau', 'balanced-softmax'], ['max-margin', 'ldam']] as const) {
    if (o[option] !== undefined && lossName !== owner) fail(`--${option} is for --loss ${owner}`);
  }
  if (longTail && o['samples-per-class'] === undefined) fail(`--loss ${lossName} needs --samples-per-class`);
  const counts = o['samples-per-class'] !== undefined ? readCounts(String(o['samples-per-class'])) : null;
  let base: Loss;
  try {
    switch (lossName) {
      case 'ce':
        base = new CrossEntropyLoss({ numClasses: C, reduction: 'none', device, ...map });
        break;
      case 'balanced-softmax':
        base = new BalancedSoftmaxLoss({ samplesPerCls: counts ?? [], numClasses: C, tau: o.tau as number | undefined, scale: map.scale, reduction: 'none', device });
        break;
      case 'ldam':
        base = new LDAMLoss({ samplesPerCls: counts ?? [], numClasses: C, maxMargin: o['max-margin'] as number | undefined, ...map, reduction: 'none', device });
        break;
      case 'bce':
        base = new BCEWithLogitsLoss({ numClasses: C, reduction: 'none', device });
        break;
      case 'focal':
        base = new FocalLoss({ numClasses: classes, reduction: 'none', gamma, alpha, device, ...map });
        break;
      case 'poly':
        base = new PolyLoss({ numClasses: C, reduction: 'none', epsilon: o.epsilon as number | undefined, device });
        break;
      case 'asl':
        base = new AsymmetricLoss({
          numClasses: C,
          reduction: 'none',
          gammaPos: o['gamma-pos'] as number | undefined,
          gammaNeg: o['gamma-neg'] as number | undefined,
          clip: o.clip as number | undefined,
          device,
        });
        break;
      default:
        base = new SigmoidFocalLoss({ numClasses: C, reduction: 'none', gamma, alpha, device });
    }
  } catch (err) {
    fail((err as Error).message);
  }
  const reduction = o.reduction as ClassBalancedReduction;
  let loss: Loss = base;
  let balance: Float64Array | null = null;
  // Class-balanced weighting: --samples-per-class with --beta (the long-tail losses take the counts alone).
  if (o.beta !== undefined || (counts && !longTail)) {
    if (!counts || o.beta === undefined) fail('--samples-per-class and --beta go together');
    if (counts.length !== classes) fail(`--samples-per-class has ${counts.length} counts, the logits have ${classes} classes`);
    try {
      balance = classBalancedWeights(counts, o.beta as number);
      loss = new ClassBalancedLoss({ samplesPerCls: counts, beta: o.beta as number, numClasses: classes, lossFunc: base as Loss<'none'>, reduction: 'none', device });
    } catch (err) {
      fail(`--beta: ${(err as Error).message}`);
    }
  } else if (reduction === 'batchmean' || reduction === 'weightedmean') {
    fail(`--reduction ${reduction} needs class-balanced weights (--samples-per-class and --beta)`);
  }

  // Rows per chunk: about 16 MB of logits.
  const chunkRows = Math.max(1, Math.floor((o['chunk-rows'] as number | undefined) ?? (4 * 1024 * 1024) / Math.max(C, 1)));
  const readTargets = (row: number, rows: number): Int32Array | Float32Array => {
    const perRow = indexTargets ? 1 : C;
    if (floatTargets) return targets.readFloat32(row * perRow, rows * perRow);
    try {
      return targets.readInt32(row * perRow, rows * perRow, 'target');
    } catch (err) {
      if (err instanceof RangeError) fail(`--targets ${targetsFile}: ${err.message}`, 1);
      throw err;
    }
  };
  const rowWeight = (t: Int32Array | Float32Array, r: number): number => {
    if (!balance) return 1;
    if (indexTargets) return t[r] >= 0 && t[r] < balance.length ? balance[t[r]] : 0;
    if (binaryFocal) return balance[0] * (1 - t[r]) + balance[1] * t[r];
    let w = 0;
    for (let c = 0; c < C; c++) w += balance[c] * t[r * C + c];
    return w;
  };

  // docs/semantics.md, "Per-call options": per-sample weights (a row each, or a logit each for element
  // losses) and avgFactor.
  const rowLoss = ['ce', 'poly', 'balanced-softmax', 'ldam'].includes(lossName) || (lossName === 'focal' && !binaryFocal);
  const sampleWeights = o['sample-weight'] !== undefined ? openSampleWeights(String(o['sample-weight']), N, rowLoss ? N : N * C) : null;
  const weightsPerRow = sampleWeights === null || sampleWeights.length === N;
  const avgFactor = o['avg-factor'] as number | undefined;
  if (avgFactor !== undefined && (!Number.isFinite(avgFactor) || avgFactor <= 0)) fail(`--avg-factor must be a finite number > 0, not ${avgFactor}`);
  if (avgFactor !== undefined && reduction === 'sum') fail('--avg-factor is the divisor of the mean reductions, not of sum');

  // The divisor, known before any gradient is written.
  const outputs = rowLoss ? N : N * C;
  let divisor = 1;
  if (avgFactor !== undefined) divisor = avgFactor;
  else if (reduction === 'mean') divisor = outputs;
  else if (reduction === 'batchmean') divisor = N;
  else if (reduction === 'weightedmean') {
    divisor = 0;
    for (let row = 0; row < N; row += chunkRows) {
      const rows = Math.min(chunkRows, N - row);
      const t = readTargets(row, rows);
      for (let r = 0; r < rows; r++) divisor += rowWeight(t, r);
    }
  }

  const grad = o.grad !== undefined ? new NpyWriter(o.grad as string, logits.shape) : null;
  const perClassSum = new Float64Array(classes === 2 && binaryFocal ? 2 : C);
  const perClassCount = new Float64Array(perClassSum.length);
  let total = 0;
  try {
    for (let row = 0; row < N; row += chunkRows) {
      const rows = Math.min(chunkRows, N - row);
      const x = logits.readFloat32(row * C, rows * C);
      const t = readTargets(row, rows);
      let r;
      try {
        const sampleWeight = sampleWeights?.readFloat32(weightsPerRow ? row : row * C, weightsPerRow ? rows : rows * C);
        r = loss.forwardBackward(x, t, { gradOutput: divisor === 0 ? 0 : 1 / divisor, sampleWeight });
      } catch (err) {
        // element indices are relative to the chunk: report the file's
        const m = /^target\[(\d+)\](.*)$/.exec((err as Error).message);
        const at = m ? `target[${Number(m[1]) + row * (indexTargets ? 1 : C)}]${m[2]}` : (err as Error).message;
        fail(`--targets ${targetsFile}: ${at}`, 1);
      }
      const values = r.loss as Float32Array;
      for (let i = 0; i < values.length; i++) total += values[i];
      // per class: rows by their label, or columns (element losses) with their positives counted
      if (indexTargets && rowLoss) {
        for (let i = 0; i < rows; i++) {
          perClassSum[t[i]] += values[i];
          perClassCount[t[i]] += 1;
        }
      } else if (binaryFocal) {
        for (let i = 0; i < rows; i++) {
          const k = t[i] >= 0.5 ? 1 : 0;
          perClassSum[k] += values[i];
          perClassCount[k] += 1;
        }
      } else {
        for (let i = 0; i < rows; i++) {
          for (let c = 0; c < C; c++) {
            perClassSum[c] += values[i * C + c];
            const positive = indexTargets ? t[i] === c : t[i * C + c] >= 0.5;
            if (positive) perClassCount[c] += 1;
          }
        }
      }
      if (grad) grad.write(r.grad);
    }
  } finally {
    grad?.close();
  }

  const value = reduction === 'sum' ? total : divisor === 0 ? Number.NaN : total / divisor;
  const elementLoss = !rowLoss && !binaryFocal;
  return {
    loss: value,
    reduction,
    lossName: lossName + (balance ? ' (class-balanced)' : ''),
    rows: N,
    classes: C,
    perClass: Array.from(perClassSum, (s, c) => ({
      class: c,
      count: perClassCount[c],
      meanLoss: elementLoss ? s / Math.max(N, 1) : perClassCount[c] > 0 ? s / perClassCount[c] : Number.NaN,
    })),
    grad: grad ? (o.grad as string) : undefined,
  };
}

/** --sample-weight: a float .npy of `rows` values (one per row) or, for element losses, `elements`. */
function openSampleWeights(file: string, rows: number, elements: number): FileArray {
  const w = openNpy('--sample-weight', file);
  if (!isFloat(w.dtype)) fail(`--sample-weight ${file}: weights must be float32 or float64, not ${w.dtype}`, 1);
  if (w.length !== rows && w.length !== elements) {
    const expected = elements !== rows ? `${rows} (one per row) or ${elements} (one per logit)` : `${rows} (one per row)`;
    fail(`--sample-weight ${file}: ${w.length} values, expected ${expected}`, 1);
  }
  return w;
}

export function formatScore(r: ScoreResult, json: boolean): string {
  if (json) return JSON.stringify(r);
  const lines = [`loss (${r.lossName}, ${r.reduction}): ${r.loss}`, `rows: ${r.rows}, classes: ${r.classes}`, '', 'class      count   mean loss'];
  for (const p of r.perClass) lines.push(`${String(p.class).padStart(5)}  ${String(p.count).padStart(9)}  ${p.meanLoss.toPrecision(6).padStart(10)}`);
  if (r.grad) lines.push('', `gradient written to ${r.grad}`);
  return lines.join('\n');
}
