// The loss descriptor: one entry per loss class lib/ exports, and every list of losses the tests
// keep is derived from it — the constructors buildLoss uses, the reference families (20-reference,
// 75-cuda) and their class-balanced wrappers, the kernel families (70-kernels), the losses the
// contract vectors must cover (10-vectors), what the built package exports (00-load), the tf.js
// training runs (80-tfjs) and the score command's --loss names (90-cli).
//
// Adding a loss touches two test files: its formula and its name in the LossName union of
// test/reference.ts (the independent oracle, which imports nothing of lib/), and its entry here.
// `losses` is typed by LossName, so a name without an entry, or an entry without a name, fails the
// typecheck; a name without a formula fails its families in 20-reference (the reference throws for a
// loss it has no formula for); 00-load fails where lib/ exports a loss class without an entry here,
// or an entry names a class lib/ does not export.
import * as cbloss from '../lib';
import { normal } from './helpers';
import type { LossName, LossSpec, RefCase } from './reference';

// ---- the families' makers ------------------------------------------------------------------------

type TargetMaker = (rand: () => number, N: number, C: number) => RefCase['target'];

const indices: TargetMaker = (rand, N, C) => ({ kind: 'int', values: Array.from({ length: N }, () => Math.floor(rand() * C)) });
const withIgnored = (ignore: number): TargetMaker => (rand, N, C) => ({
  kind: 'int',
  values: Array.from({ length: N }, (_, n) => (n % 3 === 1 ? ignore : Math.floor(rand() * C))),
});
const probabilities: TargetMaker = (rand, N, C) => {
  const values: number[] = [];
  for (let n = 0; n < N; n++) {
    const row = Array.from({ length: C }, () => Math.exp(normal(rand)));
    const s = row.reduce((a, b) => a + b, 0);
    values.push(...row.map((v) => Math.fround(v / s)));
  }
  return { kind: 'float', values };
};
const soft: TargetMaker = (rand, N, C) => ({ kind: 'float', values: Array.from({ length: N * C }, () => Math.fround(rand())) });
const hard: TargetMaker = (rand, N, C) => ({ kind: 'float', values: Array.from({ length: N * C }, () => (rand() < 0.4 ? 1 : 0)) });
const hardInt: TargetMaker = (rand, N, C) => ({ kind: 'int', values: Array.from({ length: N * C }, () => (rand() < 0.4 ? 1 : 0)) });

const weights = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(0.2 + 1.5 * rand()));
const centered = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(rand() * 4 - 2));
const counts = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => 1 + Math.floor(rand() * 1000));
const rowWeights = (n: number, rand: () => number): number[] => Array.from({ length: n }, () => Math.fround(rand() * 2));
const R3 = ['none', 'mean', 'sum'];

/** A reference family: one loss's options and targets, run at each reduction on random inputs (runFamily). */
export interface Family {
  /** The test's title (and, hashed, its seed: unique among all families). */
  name: string;
  loss: LossName;
  options: (C: number, rand: () => number) => Record<string, unknown>;
  target: TargetMaker;
  reductions: string[];
  /** Fixed class count (binary focal: 1 logit per element but numClasses 2). */
  classes?: number;
  /** The logits are N×C but the loss sees one flat array (binary focal). */
  flat?: boolean;
  /** Per-call weights ("Per-call options" in docs/semantics.md) for N rows of C (avgFactor with the means). */
  call?: (N: number, C: number, rand: () => number) => { sampleWeight?: number[]; avgFactor?: number };
  /**
   * false: not wrapped in ClassBalancedLoss (the wrappers' matrix is large, and these options are
   * wrapped in a sibling family already). Families with per-call weights are never wrapped: the
   * weights are the call's, not the base loss's.
   */
  classBalancedBase?: false;
  /** Runs in 20-reference, on seeds from familySeed up (default 3; the class-balanced wrappers, ~150 of them, 1). */
  runs?: number;
}

/** The families of one loss (the first is its one family in the smoke scope: see scopedPerLoss). */
type Families = readonly [Family, ...Family[]];

/** A family of 70-kernels: the SIMD levels against the float64 path over the shapes that pick the CPU layouts. */
export interface KernelFamily {
  /** The test's title, and (by its length) its seed. */
  name: string;
  options: (C: number, rand: () => number) => Record<string, unknown>;
  target: 'index' | 'ignore' | 'probs' | 'elements';
  /** Which CPU layouts the loss takes (native/cpu/kernels_simd.h): the row losses' or the element losses'. */
  layout: 'rows' | 'elements';
  minC?: number;
  /** Per-call weights (sampleWeight, avgFactor) of a call on N rows of C. */
  call?: (N: number, C: number, rand: () => number) => { sampleWeight?: Float32Array; avgFactor?: number };
}

const kernelWeights = (C: number, rand: () => number): number[] => Array.from({ length: C }, () => Math.fround(0.3 + rand()));

/** The loss as ClassBalancedLoss's lossFunc. */
interface ClassBalancedBase {
  /** 'class' weighting applies to element-wise losses (a weight per column); every loss takes 'row'. */
  weightings: readonly ('row' | 'class')[];
  /** The wrapper gives numClasses; the base keeps it too where it picks the form (the focal loss: softmax or binary). */
  keepsNumClasses?: true;
}

/** The loss in 80-tfjs: the training runs it takes part in (on 4 imbalanced classes with these counts). */
interface TfjsForms {
  /** Softmax regression under optimizer.minimize, the test titled `title` (default: the loss's name). */
  minimize?: { make: (classCounts: number[]) => cbloss.Loss; title?: string };
  /** A dense model under model.fit with toTfLoss() (one-hot rows and a classWeight). */
  fit?: (classCounts: number[]) => cbloss.Loss;
}

/** What 90-cli's score check has at hand: logits [N, C] and their targets, in memory and in .npy files. */
export interface CliFixture {
  N: number;
  C: number;
  x: Float32Array;
  /** Class indices, one per row. */
  labels: Int32Array;
  /** 0/1 element targets, N×C. */
  elements: Float32Array;
  classCounts: number[];
  /** Per-row sample weights. */
  rowWeights: Float32Array;
  files: { labels: string; elements: string; rowWeights: string };
}

/** The loss in `cbloss score` (lib/cli/score.ts): its --loss name, and one run checked against the library. */
interface CliForm {
  name: string;
  targets: 'labels' | 'elements';
  /** The options after --logits, --targets and --loss. */
  args: (f: CliFixture) => string[];
  /** The library's value for the same data and options. */
  expected: (f: CliFixture) => number;
}

export interface LossEntry {
  /** lib's class of the entry's name (00-load checks that it is that export). */
  ctor: new (options: never) => cbloss.Loss;
  /** Functions lib exports beside the loss, for it (00-load: the built package, CJS and ESM, has them). */
  companions: readonly string[];
  /** The reference families (20-reference at each CPU level, 75-cuda on a device). */
  families: () => Families;
  /** 70-kernels' families (the first is the loss's one family in the smoke scope). */
  kernelFamilies: readonly [KernelFamily, ...KernelFamily[]];
  /** As ClassBalancedLoss's lossFunc (its families are wrapped), or null. */
  classBalancedBase: ClassBalancedBase | null;
  tfjs: TfjsForms;
  /** null: no --loss name (ClassBalancedLoss: the command wraps any --loss with --samples-per-class and --beta). */
  cli: CliForm | null;
}

// (the option sweeps whose first member is their loss's first family: a function, not a map, so that
// the list is typed as the non-empty one it is)
const focalSoftmax = (gamma: number): Family => ({
  name: `focal softmax gamma=${gamma}`,
  loss: 'FocalLoss',
  options: (C) => ({ numClasses: C, gamma, alpha: 0.3 }),
  target: indices,
  reductions: R3,
});
const sigmoidFocal = (gamma: number): Family => ({
  name: `sigmoid focal gamma=${gamma}`,
  loss: 'SigmoidFocalLoss',
  options: () => ({ gamma, reduction: 'mean' }),
  target: soft,
  reductions: R3,
});

// ---- the entries, in lib/index.ts's order --------------------------------------------------------

export const losses: { readonly [L in LossName]: LossEntry } = {
  CrossEntropyLoss: {
    ctor: cbloss.CrossEntropyLoss,
    companions: [],
    families: () => [
      { name: 'CE', loss: 'CrossEntropyLoss', options: () => ({}), target: indices, reductions: R3 },
      { name: 'CE weight', loss: 'CrossEntropyLoss', options: (C, r) => ({ weight: weights(C, r) }), target: indices, reductions: R3 },
      { name: 'CE smoothing', loss: 'CrossEntropyLoss', options: () => ({ labelSmoothing: 0.15 }), target: indices, reductions: R3 },
      {
        name: 'CE weight smoothing ignore=-100',
        loss: 'CrossEntropyLoss',
        options: (C, r) => ({ weight: weights(C, r), label_smoothing: 0.3 }),
        target: withIgnored(-100),
        reductions: R3,
      },
      { name: 'CE ignore=1', loss: 'CrossEntropyLoss', options: () => ({ ignoreIndex: 1 }), target: withIgnored(1), reductions: R3 },
      { name: 'CE probabilities', loss: 'CrossEntropyLoss', options: (C) => ({ numClasses: C }), target: probabilities, reductions: R3 },
      {
        name: 'CE probabilities weight smoothing',
        loss: 'CrossEntropyLoss',
        options: (C, r) => ({ weight: weights(C, r), labelSmoothing: 0.1 }),
        target: probabilities,
        reductions: R3,
      },
      // the logit map (docs/semantics.md, "Logit maps")
      {
        name: 'CE bias margin scale',
        loss: 'CrossEntropyLoss',
        options: (C, r) => ({ logitBias: centered(C, r), margin: weights(C, r), scale: 2.5 }),
        target: indices,
        reductions: R3,
      },
      {
        name: 'CE bias margin weight smoothing ignore',
        loss: 'CrossEntropyLoss',
        options: (C, r) => ({ logitBias: centered(C, r), margin: weights(C, r), weight: weights(C, r), labelSmoothing: 0.2 }),
        target: withIgnored(-100),
        reductions: R3,
      },
      { name: 'CE probabilities bias scale', loss: 'CrossEntropyLoss', options: (C, r) => ({ logitBias: centered(C, r), scale: 0.5 }), target: probabilities, reductions: R3 },
      // per-call sample weights and avgFactor (docs/semantics.md, "Per-call options")
      { name: 'CE sample weights', loss: 'CrossEntropyLoss', options: () => ({}), target: withIgnored(-100), reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r), avgFactor: 2.5 }) },
    ],
    kernelFamilies: [
      // the logit map in every row layout (and the per-call weights in rows)
      {
        name: 'CE bias margin scale, weight smoothing ignore',
        options: (C, r) => ({ logitBias: centered(C, r), margin: kernelWeights(C, r), scale: 2.5, weight: kernelWeights(C, r), labelSmoothing: 0.1, reduction: 'none' }),
        target: 'ignore',
        layout: 'rows',
      },
      { name: 'CE probabilities bias scale', options: (C, r) => ({ numClasses: C, logitBias: centered(C, r), scale: 0.5, reduction: 'sum' }), target: 'probs', layout: 'rows' },
      {
        name: 'CE sample weights avgFactor',
        options: (C, r) => ({ weight: kernelWeights(C, r) }),
        target: 'ignore',
        layout: 'rows',
        call: (N, _C, r) => ({ sampleWeight: Float32Array.from({ length: N }, () => r() * 2), avgFactor: 3.5 }),
      },
      { name: 'CE weight smoothing ignore', options: (C, r) => ({ weight: kernelWeights(C, r), labelSmoothing: 0.1, reduction: 'none' }), target: 'ignore', layout: 'rows' },
      { name: 'CE probabilities weight smoothing', options: (C, r) => ({ numClasses: C, weight: kernelWeights(C, r), labelSmoothing: 0.05, reduction: 'sum' }), target: 'probs', layout: 'rows' },
    ],
    classBalancedBase: { weightings: ['row'] },
    tfjs: { minimize: { make: () => new cbloss.CrossEntropyLoss() }, fit: () => new cbloss.CrossEntropyLoss() },
    cli: { name: 'ce', targets: 'labels', args: () => [], expected: (f) => new cbloss.CrossEntropyLoss().forward(f.x, f.labels) },
  },

  BCEWithLogitsLoss: {
    ctor: cbloss.BCEWithLogitsLoss,
    companions: [],
    families: () => [
      { name: 'BCE', loss: 'BCEWithLogitsLoss', options: (C) => ({ numClasses: C }), target: soft, reductions: R3 },
      { name: 'BCE flat', loss: 'BCEWithLogitsLoss', options: () => ({}), target: hard, reductions: R3, classBalancedBase: false },
      {
        name: 'BCE weight posWeight',
        loss: 'BCEWithLogitsLoss',
        options: (C, r) => ({ weight: weights(C, r), pos_weight: weights(C, r) }),
        target: soft,
        reductions: R3,
      },
      { name: 'BCE index targets', loss: 'BCEWithLogitsLoss', options: () => ({}), target: indices, reductions: R3 },
      { name: 'BCE integer 0/1 targets', loss: 'BCEWithLogitsLoss', options: (C) => ({ numClasses: C }), target: hardInt, reductions: R3 },
      {
        name: 'BCE sample weight per element avgFactor',
        loss: 'BCEWithLogitsLoss',
        options: (C) => ({ numClasses: C }),
        target: soft,
        reductions: R3,
        call: (N, C, r) => ({ sampleWeight: rowWeights(N * C, r), avgFactor: 7 }),
      },
    ],
    kernelFamilies: [
      {
        name: 'BCE sample weight per element',
        options: (C, r) => ({ weight: kernelWeights(C, r), reduction: 'none' }),
        target: 'elements',
        layout: 'elements',
        call: (N, C, r) => ({ sampleWeight: Float32Array.from({ length: N * C }, () => r() * 2) }),
      },
      { name: 'BCE weight posWeight', options: (C, r) => ({ weight: kernelWeights(C, r), posWeight: kernelWeights(C, r), reduction: 'none' }), target: 'elements', layout: 'elements' },
      { name: 'BCE index targets', options: (C) => ({ numClasses: C }), target: 'index', layout: 'elements' },
    ],
    classBalancedBase: { weightings: ['row', 'class'] },
    // (80-tfjs checks its toTfLoss() per row on its own; softmax regression is not its problem)
    tfjs: {},
    cli: {
      name: 'bce',
      targets: 'elements',
      args: () => ['--reduction', 'sum'],
      expected: (f) => new cbloss.BCEWithLogitsLoss({ reduction: 'sum' }).forward(f.x, f.elements),
    },
  },

  FocalLoss: {
    ctor: cbloss.FocalLoss,
    companions: [],
    families: () => [
      focalSoftmax(0),
      focalSoftmax(0.5),
      focalSoftmax(2),
      { ...focalSoftmax(3.5), classBalancedBase: false },
      {
        name: 'focal softmax alpha vector',
        loss: 'FocalLoss',
        options: (C, r) => ({ num_classes: C, alpha: weights(C, r), gamma: 1.5 }),
        target: indices,
        reductions: R3,
      },
      { name: 'focal softmax two classes', loss: 'FocalLoss', options: () => ({ numClasses: 2, gamma: 0.7 }), target: indices, reductions: R3, classes: 2 },
      ...[0, 0.5, 1, 2].map((gamma): Family => ({
        name: `focal binary gamma=${gamma} soft`,
        loss: 'FocalLoss',
        options: () => ({ numClasses: 2, gamma, alpha: 0.4 }),
        target: soft,
        reductions: R3,
        flat: true,
        ...(gamma === 0 ? { classBalancedBase: false as const } : {}),
      })),
      {
        name: 'focal binary alpha pair, integer targets',
        loss: 'FocalLoss',
        options: () => ({ numClasses: 2, alpha: [0.7, 0.3] }),
        target: hardInt,
        reductions: R3,
        flat: true,
      },
      // the logit map (docs/semantics.md, "Logit maps")
      {
        name: 'focal softmax bias margin scale',
        loss: 'FocalLoss',
        options: (C, r) => ({ numClasses: C, gamma: 2, logitBias: centered(C, r), margin: weights(C, r), scale: 3 }),
        target: indices,
        reductions: R3,
      },
      { name: 'focal two-class softmax with bias', loss: 'FocalLoss', options: (_C, r) => ({ numClasses: 2, gamma: 1, logitBias: centered(2, r) }), target: indices, reductions: R3, classes: 2 },
      // per-call weights (docs/semantics.md, "Per-call options")
      { name: 'focal softmax sample weights', loss: 'FocalLoss', options: (C) => ({ numClasses: C }), target: indices, reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r) }) },
    ],
    kernelFamilies: [
      { name: 'focal softmax bias margin scale', options: (C, r) => ({ numClasses: C, gamma: 1.5, logitBias: centered(C, r), margin: kernelWeights(C, r), scale: 3 }), target: 'index', layout: 'rows', minC: 3 },
      { name: 'focal softmax gamma 0.5 alpha vector', options: (C, r) => ({ numClasses: C, gamma: 0.5, alpha: kernelWeights(C, r), reduction: 'none' }), target: 'index', layout: 'rows', minC: 3 },
      { name: 'focal softmax gamma 2', options: (C) => ({ numClasses: C }), target: 'index', layout: 'rows', minC: 3 },
      // numClasses 2 over element targets: the binary focal loss, an element loss
      { name: 'binary focal gamma 0.5 alpha pair', options: () => ({ numClasses: 2, gamma: 0.5, alpha: [0.3, 0.7], reduction: 'none' }), target: 'elements', layout: 'elements' },
    ],
    classBalancedBase: { weightings: ['row'], keepsNumClasses: true },
    tfjs: {
      minimize: { make: () => new cbloss.FocalLoss({ numClasses: 4, gamma: 2 }) },
      fit: () => new cbloss.FocalLoss({ numClasses: 4 }),
    },
    cli: {
      name: 'focal',
      targets: 'labels',
      args: () => ['--gamma', '0.5', '--alpha', '0.25'],
      expected: (f) => new cbloss.FocalLoss({ numClasses: f.C, gamma: 0.5, alpha: 0.25 }).forward(f.x, f.labels),
    },
  },

  SigmoidFocalLoss: {
    ctor: cbloss.SigmoidFocalLoss,
    companions: [],
    families: () => [
      sigmoidFocal(0),
      sigmoidFocal(0.5),
      sigmoidFocal(1),
      sigmoidFocal(2),
      { name: 'sigmoid focal alpha<0', loss: 'SigmoidFocalLoss', options: () => ({ alpha: -1, gamma: 1 }), target: hard, reductions: R3 },
      { name: 'sigmoid focal alpha<0 gamma=2', loss: 'SigmoidFocalLoss', options: () => ({ alpha: -1, gamma: 2 }), target: soft, reductions: R3 },
      { name: 'sigmoid focal index targets', loss: 'SigmoidFocalLoss', options: (C) => ({ numClasses: C }), target: indices, reductions: R3 },
    ],
    kernelFamilies: [{ name: 'sigmoid focal gamma 1.5', options: () => ({ gamma: 1.5, reduction: 'sum' }), target: 'elements', layout: 'elements' }],
    classBalancedBase: { weightings: ['row', 'class'] },
    tfjs: {},
    cli: { name: 'sigmoid-focal', targets: 'elements', args: () => [], expected: (f) => new cbloss.SigmoidFocalLoss({ reduction: 'mean' }).forward(f.x, f.elements) },
  },

  PolyLoss: {
    ctor: cbloss.PolyLoss,
    companions: [],
    families: () => [
      { name: 'poly', loss: 'PolyLoss', options: () => ({}), target: indices, reductions: R3 },
      ...[-1, 2.5].map((epsilon): Family => ({
        name: `poly epsilon=${epsilon} ignore=-100`,
        loss: 'PolyLoss',
        options: () => ({ epsilon }),
        target: withIgnored(-100),
        reductions: R3,
      })),
      { name: 'poly ignore=1', loss: 'PolyLoss', options: () => ({ ignore_index: 1, epsilon: 0.5 }), target: withIgnored(1), reductions: R3 },
      { name: 'poly sample weights avgFactor', loss: 'PolyLoss', options: () => ({}), target: indices, reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r), avgFactor: 3 }) },
    ],
    kernelFamilies: [{ name: 'poly epsilon 2 ignore', options: () => ({ epsilon: 2, reduction: 'none' }), target: 'ignore', layout: 'rows' }],
    classBalancedBase: { weightings: ['row'] },
    tfjs: { minimize: { make: () => new cbloss.PolyLoss() }, fit: () => new cbloss.PolyLoss({ epsilon: 1 }) },
    cli: { name: 'poly', targets: 'labels', args: () => ['--epsilon', '-1'], expected: (f) => new cbloss.PolyLoss({ epsilon: -1 }).forward(f.x, f.labels) },
  },

  AsymmetricLoss: {
    ctor: cbloss.AsymmetricLoss,
    companions: [],
    families: () => [
      { name: 'asl', loss: 'AsymmetricLoss', options: (C) => ({ numClasses: C }), target: hard, reductions: R3 },
      ...[
        [0, 4, 0.05],
        [1, 1, 0],
        [0.5, 0.7, 0.2],
        [2, 0, 0.3],
      ].map(([gammaPos, gammaNeg, clip]): Family => ({
        name: `asl gammaPos=${gammaPos} gammaNeg=${gammaNeg} clip=${clip} soft`,
        loss: 'AsymmetricLoss',
        options: (C) => ({ numClasses: C, gamma_pos: gammaPos, gamma_neg: gammaNeg, clip }),
        target: soft,
        reductions: R3,
      })),
      { name: 'asl detachFocusing', loss: 'AsymmetricLoss', options: (C) => ({ numClasses: C, detachFocusing: true }), target: soft, reductions: R3 },
      { name: 'asl index targets', loss: 'AsymmetricLoss', options: () => ({ gammaNeg: 2 }), target: indices, reductions: R3 },
      { name: 'asl sample weight per row', loss: 'AsymmetricLoss', options: (C) => ({ numClasses: C }), target: hard, reductions: R3, call: (N, _C, r) => ({ sampleWeight: rowWeights(N, r) }) },
    ],
    kernelFamilies: [
      {
        name: 'asl sample weight per row',
        options: (C) => ({ numClasses: C, reduction: 'sum' }),
        target: 'elements',
        layout: 'elements',
        call: (N, _C, r) => ({ sampleWeight: Float32Array.from({ length: N }, () => r() * 2) }),
      },
    ],
    classBalancedBase: { weightings: ['row', 'class'] },
    tfjs: { fit: () => new cbloss.AsymmetricLoss({ gammaNeg: 2 }) },
    cli: {
      name: 'asl',
      targets: 'elements',
      args: () => ['--gamma-pos', '0.5', '--gamma-neg', '3', '--clip', '0.1'],
      expected: (f) => new cbloss.AsymmetricLoss({ gammaPos: 0.5, gammaNeg: 3, clip: 0.1 }).forward(f.x, f.elements),
    },
  },

  BalancedSoftmaxLoss: {
    ctor: cbloss.BalancedSoftmaxLoss,
    companions: ['logitAdjustment'],
    families: () => [
      { name: 'balanced softmax tau=0.7', loss: 'BalancedSoftmaxLoss', options: (C, r) => ({ samplesPerCls: counts(C, r), tau: 0.7 }), target: indices, reductions: R3 },
    ],
    kernelFamilies: [
      { name: 'balanced softmax tau 0.7', options: (C, r) => ({ samplesPerCls: counts(C, r), tau: 0.7, reduction: 'none' }), target: 'index', layout: 'rows' },
    ],
    classBalancedBase: { weightings: ['row'] },
    // (80-tfjs compares its rare-class recall with CE's in a training run of its own)
    tfjs: {},
    cli: {
      name: 'balanced-softmax',
      targets: 'labels',
      args: (f) => ['--samples-per-class', f.classCounts.join(',')],
      expected: (f) => new cbloss.BalancedSoftmaxLoss({ samplesPerCls: f.classCounts }).forward(f.x, f.labels),
    },
  },

  LDAMLoss: {
    ctor: cbloss.LDAMLoss,
    companions: ['ldamMargins'],
    families: () => [
      { name: 'LDAM s=10 weight', loss: 'LDAMLoss', options: (C, r) => ({ samplesPerCls: counts(C, r), scale: 10, weight: weights(C, r) }), target: indices, reductions: R3 },
    ],
    kernelFamilies: [{ name: 'LDAM s=30', options: (C, r) => ({ samplesPerCls: counts(C, r), reduction: 'none' }), target: 'index', layout: 'rows' }],
    classBalancedBase: { weightings: ['row'] },
    // (80-tfjs checks its gradient against tf.js autodiff of the LDAM reference code)
    tfjs: {},
    cli: {
      name: 'ldam',
      targets: 'labels',
      args: (f) => ['--samples-per-class', f.classCounts.join(','), '--max-margin', '0.3', '--scale', '16', '--sample-weight', f.files.rowWeights, '--avg-factor', '41'],
      expected: (f) => new cbloss.LDAMLoss({ samplesPerCls: f.classCounts, maxMargin: 0.3, scale: 16 }).forward(f.x, f.labels, { sampleWeight: f.rowWeights, avgFactor: 41 }),
    },
  },

  ClassBalancedLoss: {
    ctor: cbloss.ClassBalancedLoss,
    companions: ['classBalancedWeights'],
    families: () => classBalancedFamilies(),
    kernelFamilies: [
      {
        name: 'CB(BCE) class weighting',
        options: (C, r) => ({ samplesPerCls: kernelWeights(C, r).map((x) => x * 100), beta: 0.99, numClasses: C, weighting: 'class', reduction: 'weightedmean', lossFunc: { loss: 'BCEWithLogitsLoss', options: { reduction: 'none' } } }),
        target: 'elements',
        layout: 'elements',
      },
      {
        name: 'CB(CE) probability targets',
        options: (C, r) => ({ samplesPerCls: kernelWeights(C, r).map((x) => x * 100), beta: 0.99, numClasses: C, reduction: 'weightedmean', lossFunc: { loss: 'CrossEntropyLoss', options: { numClasses: C, reduction: 'none' } } }),
        target: 'probs',
        layout: 'rows',
      },
      {
        name: 'CB(focal) row weighting',
        options: (C, r) => ({ samplesPerCls: kernelWeights(C, r).map((x) => x * 100), beta: 0.999, numClasses: C, reduction: 'none', lossFunc: { loss: 'FocalLoss', options: { numClasses: C, gamma: 0.5, reduction: 'none' } } }),
        target: 'index',
        layout: 'rows',
        minC: 3,
      },
    ],
    // (a ClassBalancedLoss does not wrap another)
    classBalancedBase: null,
    tfjs: {
      minimize: {
        title: 'ClassBalancedLoss(FocalLoss)',
        make: (classCounts) =>
          new cbloss.ClassBalancedLoss({ samplesPerCls: classCounts, beta: 0.999, numClasses: 4, lossFunc: new cbloss.FocalLoss({ numClasses: 4, reduction: 'none' }) }),
      },
      fit: (classCounts) =>
        new cbloss.ClassBalancedLoss({ samplesPerCls: classCounts, beta: 0.99, numClasses: 4, lossFunc: new cbloss.FocalLoss({ numClasses: 4, reduction: 'none' }) }),
    },
    cli: null,
  },
};

export const lossNames = Object.keys(losses) as LossName[];

/** [name, entry] of every loss, in the descriptor's order. */
export function lossEntries(): Array<[LossName, LossEntry]> {
  return lossNames.map((name) => [name, losses[name]]);
}

// ---- derived lists ----------------------------------------------------------------------------

const CB_REDUCTIONS = ['none', 'mean', 'sum', 'batchmean', 'weightedmean'];

/**
 * ClassBalancedLoss around each family of each loss that can be its lossFunc (classBalancedBase), at
 * β = 0.999 (first: the smoke scope's one class-balanced family; β = 0 makes every weight 1), 0, 0.9
 * and 1, with each weighting the base takes.
 */
function classBalancedFamilies(): Families {
  const out: Family[] = [];
  for (const [, entry] of lossEntries()) {
    const wrapping = entry.classBalancedBase;
    if (!wrapping) continue;
    for (const base of entry.families()) {
      if (base.call || base.classBalancedBase === false) continue;
      for (const beta of [0.999, 0, 0.9, 1]) {
        for (const weighting of wrapping.weightings) {
          out.push({
            name: `CB(${base.name}) beta=${beta} ${weighting}`,
            loss: 'ClassBalancedLoss',
            classes: base.classes,
            flat: base.flat,
            target: base.target,
            reductions: CB_REDUCTIONS,
            runs: 1,
            options: (C, r) => {
              const classes = base.flat ? 2 : C;
              // (numClasses is the wrapper's; a base that picks its form by it keeps one, the same)
              const baseOptions: Record<string, unknown> = { ...base.options(C, r), reduction: 'none' };
              delete baseOptions.numClasses;
              delete baseOptions.num_classes;
              return {
                samplesPerCls: Array.from({ length: classes }, () => 1 + Math.floor(r() * 500)),
                beta,
                numClasses: classes,
                weighting,
                lossFunc: { loss: base.loss, options: wrapping.keepsNumClasses ? { ...baseOptions, numClasses: classes } : baseOptions },
              };
            },
          });
        }
      }
    }
  }
  if (out.length === 0) throw new Error('no loss is a class-balanced base');
  // (typed non-empty: the loop above runs over every base loss's families)
  return out as unknown as Families;
}

/** new <loss>(options), with a nested { loss, options } lossFunc built first. */
export function buildLoss(spec: LossSpec): cbloss.Loss {
  const options: Record<string, unknown> = { ...spec.options };
  for (const key of ['lossFunc', 'loss_func']) {
    if (options[key]) options[key] = buildLoss(options[key] as LossSpec);
  }
  return new losses[spec.loss].ctor(options as never);
}
