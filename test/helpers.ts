// Shared test utilities: a seeded RNG, the SPEC §5 tolerances, and building losses from specs.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as cbloss from '../lib';
import { rng } from '../lib/random';
import type { LossSpec } from './reference';

export { rng };

/** Standard normal samples (Box–Muller). */
export function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function randomLogits(rand: () => number, length: number, scale = 2): Float32Array {
  return Float32Array.from({ length }, () => normal(rand) * scale);
}

/** SPEC §5: a reduced loss within 1e-5 relative (1e-6 absolute near 0); NaN matches NaN. */
export function assertLossClose(actual: number, expected: number, what: string): void {
  if (Number.isNaN(expected)) {
    assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
    return;
  }
  const tol = Math.max(1e-5 * Math.abs(expected), 1e-6);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected} (tolerance ${tol})`);
}

export function assertLossArrayClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) assertLossClose(actual[i], expected[i], `${what}[${i}]`);
}

/** SPEC §5: max|g − g_ref| ≤ 1e-5·max|g_ref| + 1e-7 (NaN where the reference is NaN). */
export function assertGradClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) if (Number.isFinite(expected[i])) maxRef = Math.max(maxRef, Math.abs(expected[i]));
  const tol = rel * maxRef + 1e-7;
  for (let i = 0; i < expected.length; i++) {
    // (the message is built only on failure: these loops run over millions of elements)
    if (Number.isNaN(expected[i])) {
      if (!Number.isNaN(actual[i])) assert.fail(`${what}[${i}]: expected NaN, got ${actual[i]}`);
      continue;
    }
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= tol)) assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (|err| ${err} > ${tol})`);
  }
}

type AnyLoss = cbloss.Loss;

/** new <loss>(options), with a nested { loss, options } lossFunc built first. */
export function buildLoss(spec: LossSpec): AnyLoss {
  const options: Record<string, unknown> = { ...spec.options };
  for (const key of ['lossFunc', 'loss_func']) {
    if (options[key]) options[key] = buildLoss(options[key] as LossSpec);
  }
  const ctors: Record<string, new (o: never) => AnyLoss> = {
    CrossEntropyLoss: cbloss.CrossEntropyLoss,
    BCEWithLogitsLoss: cbloss.BCEWithLogitsLoss,
    FocalLoss: cbloss.FocalLoss,
    SigmoidFocalLoss: cbloss.SigmoidFocalLoss,
    PolyLoss: cbloss.PolyLoss,
    AsymmetricLoss: cbloss.AsymmetricLoss,
    BalancedSoftmaxLoss: cbloss.BalancedSoftmaxLoss,
    LDAMLoss: cbloss.LDAMLoss,
    ClassBalancedLoss: cbloss.ClassBalancedLoss,
  };
  return new ctors[spec.loss](options as never);
}

export interface VectorCase {
  name: string;
  loss: LossSpec['loss'];
  options: Record<string, unknown>;
  N: number;
  C: number;
  input: number[];
  target: number[];
  targetType: 'int32' | 'float32';
  gradOutput?: number | number[];
  sampleWeight?: number[];
  avgFactor?: number;
  expected: { loss: number | null | Array<number | null>; grad: Array<number | null>; weights?: number[] };
}

/**
 * The contract vectors: test/fixtures/public-vectors.json, a copy of shared/vectors/public.json kept in
 * the repository so that the tests need nothing beside it (CBLOSS_VECTORS: another copy).
 */
export function loadPublicVectors(): VectorCase[] {
  const file = process.env.CBLOSS_VECTORS ?? path.join(__dirname, 'fixtures', 'public-vectors.json');
  if (!fs.existsSync(file)) {
    throw new Error(`contract vectors not found at ${file}: set CBLOSS_VECTORS to public.json`);
  }
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { cases: VectorCase[] }).cases;
}

/** A vector case's per-call options (SPEC §3.7 and the upstream gradient), or undefined. */
export function vectorCallOptions(c: VectorCase): { gradOutput?: number | number[]; sampleWeight?: number[]; avgFactor?: number } | undefined {
  const opts: { gradOutput?: number | number[]; sampleWeight?: number[]; avgFactor?: number } = {};
  if (c.gradOutput !== undefined) opts.gradOutput = c.gradOutput;
  if (c.sampleWeight !== undefined) opts.sampleWeight = c.sampleWeight;
  if (c.avgFactor !== undefined) opts.avgFactor = c.avgFactor;
  return Object.keys(opts).length ? opts : undefined;
}

/** null in the vectors means NaN. */
export function nullToNaN(v: number | null): number {
  return v === null ? Number.NaN : v;
}

/**
 * The CPU kernel levels this machine can run ('scalar' is the float64 path), each once: tests that
 * loop over them check every level against the same references (SPEC: precision holds at each level).
 */
export function kernelLevels(): cbloss.SimdLevel[] {
  const seen = new Set<string>();
  const levels: cbloss.SimdLevel[] = [];
  const initial = cbloss.backendInfo().cpu.simd as cbloss.SimdLevel;
  for (const level of ['scalar', 'sse2', 'avx2', 'avx512'] as const) {
    const got = cbloss.setSimdLevel(level);
    if (!seen.has(got)) {
      seen.add(got);
      levels.push(got as cbloss.SimdLevel);
    }
  }
  cbloss.setSimdLevel(initial);
  return levels;
}

/** Runs a describe block once per kernel level, restoring the default level afterwards. */
export function forEachKernelLevel(title: string, body: (level: string) => void): void {
  const initial = cbloss.backendInfo().cpu.simd as cbloss.SimdLevel;
  for (const level of kernelLevels()) {
    describe(`${title} [${level}]`, () => {
      before(() => cbloss.setSimdLevel(level));
      after(() => cbloss.setSimdLevel(initial));
      body(level);
    });
  }
}
