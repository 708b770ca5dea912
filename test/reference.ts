// An independent float64 reference of every loss, written from the formulas of docs/semantics.md (and,
// where the kernels use a rearranged stable form, from the textbook form instead), with no code shared
// with lib/ or native/. Gradients are checked against central finite differences of these functions.
// LossName is the list of losses; the loss descriptor (test/losses.ts) has an entry for each.

export type LossName =
  | 'CrossEntropyLoss'
  | 'BalancedSoftmaxLoss'
  | 'LDAMLoss'
  | 'BCEWithLogitsLoss'
  | 'FocalLoss'
  | 'SigmoidFocalLoss'
  | 'PolyLoss'
  | 'AsymmetricLoss'
  | 'ClassBalancedLoss';

export interface LossSpec {
  loss: LossName;
  options: Record<string, unknown>;
}

export interface RefCase extends LossSpec {
  /** Integer targets (class indices or 0/1 elements) or float targets. */
  target: { kind: 'int'; values: number[] } | { kind: 'float'; values: number[] };
  /** Per-call options (docs/semantics.md): one weight per row or per output element; the mean's divisor. */
  sampleWeight?: number[];
  avgFactor?: number;
}

/**
 * BalancedSoftmaxLoss and LDAMLoss as the CrossEntropyLoss they are (docs/semantics.md, "Logit maps"),
 * their vectors from the papers' formulas: b_c = τ·log(n_c / Σn), m_c = maxMargin·n_c^(−1/4) / max_j
 * n_j^(−1/4).
 */
function asCrossEntropy(spec: LossSpec): LossSpec {
  if (spec.loss !== 'BalancedSoftmaxLoss' && spec.loss !== 'LDAMLoss') return spec;
  const { samplesPerCls, samples_per_cls, tau, maxMargin, max_m, ...rest } = spec.options;
  const counts = Array.from((samplesPerCls ?? samples_per_cls) as ArrayLike<number>);
  const total = counts.reduce((a, b) => a + b, 0);
  if (spec.loss === 'BalancedSoftmaxLoss') {
    const t = (tau as number | undefined) ?? 1;
    return { loss: 'CrossEntropyLoss', options: { ...rest, logitBias: counts.map((n) => t * Math.log(n / total)) } };
  }
  const top = ((maxMargin ?? max_m) as number | undefined) ?? 0.5;
  const largest = Math.max(...counts.map((n) => 1 / Math.sqrt(Math.sqrt(n))));
  const margin = counts.map((n) => (top / Math.sqrt(Math.sqrt(n))) / largest);
  return { loss: 'CrossEntropyLoss', options: { scale: 30, ...rest, margin } };
}

/**
 * The logits a softmax loss sees under a logit map: z'_{n,c} = s·(z_{n,c} + b_c − [c = y_n]·m_{y_n}),
 * formed in float32 one operation at a time, as PyTorch's composed `s * (x + b - m * onehot)` on float32
 * tensors forms it (and the package, docs/semantics.md); the loss at z' is then taken in float64. (The
 * logits unchanged without logitBias, margin or scale.)
 */
function mappedLogits(z: ArrayLike<number>, o: Record<string, unknown>, C: number, labels: number[] | null): ArrayLike<number> {
  const bias = vec(o, 'logitBias', 'logit_bias');
  const margin = vec(o, 'margin');
  const scale = (o.scale as number | undefined) ?? 1;
  if (!bias && !margin && scale === 1) return z;
  const out = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) {
    const c = i % C;
    const y = labels ? labels[Math.floor(i / C)] : -1;
    const f = Math.fround;
    out[i] = f(f(f(z[i] + f(bias?.[c] ?? 0)) - f(margin && c === y ? margin[c] : 0)) * f(scale));
  }
  return out;
}

const log1p = Math.log1p;
const softplus = (x: number): number => Math.max(x, 0) + log1p(Math.exp(-Math.abs(x)));
const logSigmoid = (x: number): number => -softplus(-x);
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function logSoftmaxRow(z: ArrayLike<number>, off: number, C: number): number[] {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[off + c]);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(z[off + c] - m);
  const lse = m + Math.log(s);
  const out = new Array<number>(C);
  for (let c = 0; c < C; c++) out[c] = z[off + c] - lse;
  return out;
}

function num(o: Record<string, unknown>, camel: string, snake: string | undefined, fallback: number): number {
  const v = o[camel] ?? (snake ? o[snake] : undefined);
  return v === undefined ? fallback : (v as number);
}
function vec(o: Record<string, unknown>, camel: string, snake?: string): number[] | undefined {
  const v = o[camel] ?? (snake ? o[snake] : undefined);
  return v === undefined ? undefined : Array.from(v as ArrayLike<number>);
}

/** The per-output-element losses, and how a 'mean' of this loss divides. */
interface Unreduced {
  values: number[];
  /** Element-wise losses: C columns per row; softmax: 1 value per row. */
  perRow: number;
  rows: number;
  /** CrossEntropy's own 'mean' divisor (Σ valid w_y), else the element count. */
  meanDivisor: number;
  /** Targets as dense rows t[n][c] (for class-balanced row weights), binary: [1-t, t]. */
  targetRows: number[][];
  ignored: boolean[];
}

function classesOf(spec: LossSpec, M: number, targetLength: number, isInt: boolean, forced?: number): number {
  const o = spec.options;
  const C =
    forced ??
    (o.numClasses as number | undefined) ??
    (o.num_classes as number | undefined) ??
    (vec(o, 'weight')?.length) ??
    (vec(o, 'posWeight', 'pos_weight')?.length) ??
    (vec(o, 'logitBias', 'logit_bias')?.length) ??
    (vec(o, 'margin')?.length);
  if (C !== undefined) return C;
  if (isInt && targetLength !== M) return M / targetLength;
  return 1;
}

/**
 * ASL (Ridnik et al.) as its reference code writes it: xs_neg = min(1 - p + clip, 1), the loss
 * -(t log p + (1-t) log xs_neg) times (1 - p t - xs_neg (1-t))^(γ+ t + γ- (1-t)); log p and, without
 * clip, log(1 - p) as log-sigmoids (the reference code's clamp to eps is not part of cbloss's ASL). The
 * focusing factor is evaluated at `focusX` (detachFocusing: the unperturbed logit, a constant).
 */
function asymmetricElement(x: number, t: number, o: Record<string, unknown>, focusX: number): number {
  const gammaPos = num(o, 'gammaPos', 'gamma_pos', 1);
  const gammaNeg = num(o, 'gammaNeg', 'gamma_neg', 4);
  const clip = num(o, 'clip', undefined, 0.05);
  const negative = (v: number): number => Math.min(1 - sigmoid(v) + clip, 1);
  const logNegative = clip === 0 ? logSigmoid(-x) : Math.log(negative(x));
  const ce = -(t * logSigmoid(x) + (1 - t) * logNegative);
  const base = 1 - sigmoid(focusX) * t - (clip === 0 ? 1 - sigmoid(focusX) : negative(focusX)) * (1 - t);
  return Math.pow(Math.max(base, 0), gammaPos * t + gammaNeg * (1 - t)) * ce;
}

/** Row losses on class indices: `loss(n, y)` for each row, 0 for ignored rows, one-hot target rows. */
function labelRows(
  t: number[],
  N: number,
  C: number,
  ignore: number,
  loss: (n: number, y: number) => number,
): { values: number[]; targetRows: number[][]; ignored: boolean[] } {
  const ignored = Array.from({ length: N }, (_, n) => t[n] === ignore);
  return {
    values: ignored.map((skip, n) => (skip ? 0 : loss(n, t[n]))),
    targetRows: Array.from({ length: N }, (_, n) => Array.from({ length: C }, (_, c) => (c === t[n] ? 1 : 0))),
    ignored,
  };
}

function unreduced(
  spec: LossSpec,
  z: ArrayLike<number>,
  tc: RefCase['target'],
  forcedC?: number,
  focusAt?: ArrayLike<number>,
): Unreduced {
  spec = asCrossEntropy(spec);
  const o = spec.options;
  const M = z.length;
  const t = tc.values;
  const isInt = tc.kind === 'int';
  if (spec.loss === 'PolyLoss') {
    // Poly-1 (Leng et al.): CE + ε (1 − p_y), textbook form.
    const C = classesOf(spec, M, t.length, isInt, forcedC);
    const eps = num(o, 'epsilon', undefined, 1);
    const rows = labelRows(t, M / C, C, num(o, 'ignoreIndex', 'ignore_index', -100), (n, y) => {
      const lpy = logSoftmaxRow(z, n * C, C)[y];
      return -lpy + eps * (1 - Math.exp(lpy));
    });
    return { ...rows, perRow: 1, rows: M / C, meanDivisor: rows.ignored.filter((i) => !i).length };
  }
  if (spec.loss === 'CrossEntropyLoss') {
    const C = classesOf(spec, M, t.length, isInt, forcedC);
    const N = M / C;
    z = mappedLogits(z, o, C, isInt ? t : null);
    const w = vec(o, 'weight') ?? new Array<number>(C).fill(1);
    const eps = num(o, 'labelSmoothing', 'label_smoothing', 0);
    if (isInt) {
      const rows = labelRows(t, N, C, num(o, 'ignoreIndex', 'ignore_index', -100), (n, y) => {
        const lp = logSoftmaxRow(z, n * C, C);
        let smooth = 0;
        for (let c = 0; c < C; c++) smooth -= w[c] * lp[c];
        return -(1 - eps) * w[y] * lp[y] + (eps / C) * smooth;
      });
      const meanDivisor = rows.ignored.reduce((a, skip, n) => a + (skip ? 0 : w[t[n]]), 0);
      return { ...rows, perRow: 1, rows: N, meanDivisor };
    }
    const values: number[] = [];
    const targetRows: number[][] = [];
    for (let n = 0; n < N; n++) {
      const lp = logSoftmaxRow(z, n * C, C);
      const row = t.slice(n * C, n * C + C);
      targetRows.push(row);
      let l = 0;
      for (let c = 0; c < C; c++) l -= w[c] * ((1 - eps) * row[c] + eps / C) * lp[c];
      values.push(l);
    }
    return { values, perRow: 1, rows: N, meanDivisor: N, targetRows, ignored: new Array<boolean>(N).fill(false) };
  }

  if (spec.loss === 'FocalLoss') {
    const C = (o.numClasses ?? o.num_classes) as number;
    const gamma = num(o, 'gamma', undefined, 2);
    const alphaOpt = o.alpha;
    const mapped = ['logitBias', 'logit_bias', 'margin', 'scale'].some((k) => o[k] !== undefined);
    const binary = C === 2 && !mapped && (!isInt || t.length === M);
    if (binary) {
      const values: number[] = [];
      const targetRows: number[][] = [];
      for (let i = 0; i < M; i++) {
        const ti = t[i];
        const ce = -(ti * logSigmoid(z[i]) + (1 - ti) * logSigmoid(-z[i]));
        const a = Array.isArray(alphaOpt) || ArrayBuffer.isView(alphaOpt)
          ? (alphaOpt as number[])[0] * (1 - ti) + (alphaOpt as number[])[1] * ti
          : ((alphaOpt as number | undefined) ?? 1);
        values.push(a * Math.pow(1 - Math.exp(-ce), gamma) * ce);
        targetRows.push([1 - ti, ti]);
      }
      return { values, perRow: 1, rows: M, meanDivisor: M, targetRows, ignored: values.map(() => false) };
    }
    const N = M / C;
    z = mappedLogits(z, o, C, t);
    const values: number[] = [];
    const targetRows: number[][] = [];
    for (let n = 0; n < N; n++) {
      const y = t[n];
      const ce = -logSoftmaxRow(z, n * C, C)[y];
      const a = typeof alphaOpt === 'number' ? alphaOpt : alphaOpt === undefined ? 1 : (alphaOpt as number[])[y];
      values.push(a * Math.pow(1 - Math.exp(-ce), gamma) * ce);
      targetRows.push(Array.from({ length: C }, (_, c) => (c === y ? 1 : 0)));
    }
    return { values, perRow: 1, rows: N, meanDivisor: N, targetRows, ignored: values.map(() => false) };
  }

  // Element-wise: BCEWithLogitsLoss, SigmoidFocalLoss, AsymmetricLoss
  if (spec.loss !== 'BCEWithLogitsLoss' && spec.loss !== 'SigmoidFocalLoss' && spec.loss !== 'AsymmetricLoss') {
    // (a loss named in LossName but given no formula: its families in 20-reference fail here rather
    // than check it against the sigmoid focal loss's formula below)
    throw new Error(`test/reference.ts has no formula for ${spec.loss}`);
  }
  const C = classesOf(spec, M, t.length, isInt, forcedC);
  const N = M / C;
  const dense: number[] = isInt && t.length !== M
    ? Array.from({ length: M }, (_, i) => (t[Math.floor(i / C)] === i % C ? 1 : 0))
    : t.slice();
  const values: number[] = [];
  for (let i = 0; i < M; i++) {
    const x = z[i];
    const ti = dense[i];
    const c = i % C;
    if (spec.loss === 'AsymmetricLoss') {
      values.push(asymmetricElement(x, ti, o, focusAt ? focusAt[i] : x));
    } else if (spec.loss === 'BCEWithLogitsLoss') {
      const w = vec(o, 'weight')?.[c] ?? 1;
      const pw = vec(o, 'posWeight', 'pos_weight')?.[c] ?? 1;
      values.push(-w * (pw * ti * logSigmoid(x) + (1 - ti) * logSigmoid(-x)));
    } else {
      const alpha = num(o, 'alpha', undefined, 0.25);
      const gamma = num(o, 'gamma', undefined, 2);
      const p = sigmoid(x);
      const ce = -(ti * logSigmoid(x) + (1 - ti) * logSigmoid(-x));
      const pt = p * ti + (1 - p) * (1 - ti);
      const at = alpha >= 0 ? alpha * ti + (1 - alpha) * (1 - ti) : 1;
      values.push(at * Math.pow(1 - pt, gamma) * ce);
    }
  }
  const targetRows = Array.from({ length: N }, (_, n) => dense.slice(n * C, n * C + C));
  return { values, perRow: C, rows: N, meanDivisor: M, targetRows, ignored: new Array<boolean>(N).fill(false) };
}

/** Class-balanced weights, the textbook way: (1-β)/(1-β^n), normalized to sum C. */
export function referenceWeights(counts: number[], beta: number): number[] {
  const raw = counts.map((n) => (beta === 1 ? 1 / n : (1 - beta) / (1 - Math.pow(beta, n))));
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((w) => (w / sum) * counts.length);
}

/** A loss before its last division: per-element values ('none'), or a total and its divisor. */
type Reduced = { values: number[] } | { total: number; divisor: number };

function reduced(c: RefCase, z: ArrayLike<number>, focusAt?: ArrayLike<number>): Reduced {
  const r = reducedWithoutCallWeights(c, z, focusAt);
  const sw = c.sampleWeight;
  const weigh = (values: number[], perRow: number): number[] =>
    sw ? values.map((v, i) => v * (sw.length === values.length ? sw[i] : sw[Math.floor(i / perRow)])) : values;
  if ('values' in r.result) return { values: weigh(r.result.values, r.perRow) };
  const total = sw ? weigh(r.weighted, r.perRow).reduce((a, b) => a + b, 0) : r.result.total;
  return { total, divisor: c.avgFactor !== undefined && r.isMean ? c.avgFactor : r.result.divisor };
}

/** reduced() before the per-call weights: the result, its weighted elements and their grouping. */
function reducedWithoutCallWeights(
  c: RefCase,
  z: ArrayLike<number>,
  focusAt?: ArrayLike<number>,
): { result: Reduced; weighted: number[]; perRow: number; isMean: boolean } {
  const o = c.options;
  if (c.loss !== 'ClassBalancedLoss') {
    const u = unreduced(c, z, c.target, undefined, focusAt);
    const reduction = (o.reduction as string | undefined) ?? (c.loss === 'SigmoidFocalLoss' ? 'none' : 'mean');
    const total = u.values.reduce((a, b) => a + b, 0);
    const result: Reduced = reduction === 'none' ? { values: u.values } : { total, divisor: reduction === 'sum' ? 1 : u.meanDivisor };
    return { result, weighted: u.values, perRow: u.perRow, isMean: reduction !== 'sum' && reduction !== 'none' };
  }
  const base = (o.lossFunc ?? o.loss_func) as LossSpec;
  const C = (o.numClasses ?? o.num_classes) as number;
  const w = referenceWeights(Array.from((o.samplesPerCls ?? o.samples_per_cls) as ArrayLike<number>), o.beta as number);
  const u = unreduced(base, z, c.target, C, focusAt);
  const rowWeights = u.targetRows.map((row, n) => (u.ignored[n] ? 0 : row.reduce((a, t, k) => a + w[k] * t, 0)));
  const byClass = o.weighting === 'class' && u.perRow > 1;
  const weighted = u.values.map((v, i) => {
    const n = Math.floor(i / u.perRow);
    return v * (byClass ? w[i % u.perRow] : rowWeights[n]);
  });
  const total = weighted.reduce((a, b) => a + b, 0);
  const reduction = (o.reduction as string | undefined) ?? 'mean';
  const wrap = (result: Reduced) => ({ result, weighted, perRow: u.perRow, isMean: reduction !== 'sum' && reduction !== 'none' });
  switch (reduction) {
    case 'none':
      return wrap({ values: weighted });
    case 'sum':
      return wrap({ total, divisor: 1 });
    case 'batchmean':
      return wrap({ total, divisor: u.rows });
    case 'weightedmean':
      return wrap({ total, divisor: rowWeights.reduce((a, b) => a + b, 0) });
    default:
      return wrap({ total, divisor: weighted.length });
  }
}

/**
 * The loss: a number, or one value per output element for reduction 'none'. A zero divisor gives NaN
 * (docs/semantics.md, "Zero divisor": nothing to average), also where the total is not 0 — a 'weightedmean'
 * with weighting 'class' over rows without positives — which plain division would make ±Infinity.
 */
export function referenceLoss(c: RefCase, z: ArrayLike<number>, focusAt?: ArrayLike<number>): number | number[] {
  const r = reduced(c, z, focusAt);
  if ('values' in r) return r.values;
  return r.divisor === 0 ? NaN : r.total / r.divisor;
}

const MAP_OPTIONS = ['logitBias', 'logit_bias', 'margin', 'scale'];

/**
 * A case with a logit map as the same case without one, at the mapped point z' (formed in
 * float32, mappedLogits), and the map's scale s: d loss / d z = s · d loss / d z' (z' is affine in z;
 * differences taken through the float32 rounding of z' would see its steps, not its slope). Null
 * without a map.
 */
function withoutMap(c: RefCase, z: ArrayLike<number>): { plain: RefCase; at: Float64Array; scale: number } | null {
  const cb = c.loss === 'ClassBalancedLoss';
  const base = asCrossEntropy(cb ? ((c.options.lossFunc ?? c.options.loss_func) as LossSpec) : c);
  if (!MAP_OPTIONS.some((k) => base.options[k] !== undefined)) return null;
  const t = c.target.values;
  const isInt = c.target.kind === 'int';
  const C = cb || base.loss === 'FocalLoss'
    ? ((c.options.numClasses ?? c.options.num_classes ?? base.options.numClasses ?? base.options.num_classes) as number)
    : classesOf(base, z.length, t.length, isInt);
  const at = Float64Array.from(mappedLogits(z, base.options, C, isInt && t.length === z.length / C ? t : null));
  const options = Object.fromEntries(Object.entries(base.options).filter(([k]) => !MAP_OPTIONS.includes(k)));
  options.numClasses = C; // (the vectors that told C are gone; the two-class focal softmax stays one)
  const plainBase: LossSpec = { loss: base.loss, options };
  const plain: RefCase = cb ? { ...c, options: { ...c.options, lossFunc: plainBase, loss_func: undefined } } : { ...c, ...plainBase };
  return { plain, at, scale: (base.options.scale as number | undefined) ?? 1 };
}

/**
 * d(Σ gradOutput·loss)/dz by central differences of referenceLoss in float64.
 */
export function referenceGrad(c: RefCase, z: Float64Array, gradOutput: number | number[]): Float64Array {
  const split = withoutMap(c, z);
  if (split) return referenceGrad(split.plain, split.at, gradOutput).map((g) => g * split.scale);
  const scalarize = (v: number | number[]): number => {
    if (typeof v === 'number') return v * (gradOutput as number);
    return v.reduce((a, x, i) => a + x * (typeof gradOutput === 'number' ? gradOutput : gradOutput[i]), 0);
  };
  const g = new Float64Array(z.length);
  // Nothing to average (every row ignored, or zero total weight for 'weightedmean'): the loss is NaN
  // for every z, and the package's documented gradient is 0, as PyTorch's for CE (docs/semantics.md).
  const r = reduced(c, z);
  if ('divisor' in r && r.divisor === 0) return g;
  const zz = Float64Array.from(z);
  // AsymmetricLoss with detachFocusing: the focusing factor is a constant (held at z).
  const base = (c.options.lossFunc ?? c.options.loss_func ?? c) as LossSpec;
  const detached = base.loss === 'AsymmetricLoss' && (base.options.detachFocusing ?? base.options.detach_focusing) === true;
  const focusAt = detached ? Float64Array.from(z) : undefined;
  for (let i = 0; i < z.length; i++) {
    const h = 1e-5 * Math.max(1, Math.abs(z[i]));
    zz[i] = z[i] + h;
    const up = scalarize(referenceLoss(c, zz, focusAt));
    zz[i] = z[i] - h;
    const down = scalarize(referenceLoss(c, zz, focusAt));
    zz[i] = z[i];
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
