// Shared test utilities: a seeded RNG, the tolerances of docs/semantics.md, "Precision", the contract
// vectors, the CPU kernel levels, and the test scope (CBLOSS_TEST_SCOPE: what the heavy matrices run).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as cbloss from '../lib';
import { rng } from '../lib/random';
import type { LossName } from './reference';

export { rng };

/** Standard normal samples (Box–Muller). */
export function normal(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function randomLogits(rand: () => number, length: number, scale = 2): Float32Array {
  return Float32Array.from({ length }, () => normal(rand) * scale);
}

/** "Precision": a reduced loss within 1e-5 relative (1e-6 absolute near 0); NaN matches NaN. */
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

/** "Precision": max|g − g_ref| ≤ 1e-5·max|g_ref| + 1e-7 (NaN where the reference is NaN). */
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

export interface VectorCase {
  name: string;
  loss: LossName;
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

/** A vector case's per-call options (sampleWeight, avgFactor and the upstream gradient), or undefined. */
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
 * loop over them check every level against the same references ("Precision" holds at each level).
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

/** Runs a describe block once per kernel level (default: every one), restoring the default level afterwards. */
export function forEachKernelLevel(title: string, body: (level: string) => void, levels: readonly cbloss.SimdLevel[] = kernelLevels()): void {
  const initial = cbloss.backendInfo().cpu.simd as cbloss.SimdLevel;
  for (const level of levels) {
    describe(`${title} [${level}]`, () => {
      before(() => cbloss.setSimdLevel(level));
      after(() => cbloss.setSimdLevel(initial));
      body(level);
    });
  }
}

// ---- the test scope ------------------------------------------------------------------------------
//
// CBLOSS_TEST_SCOPE=smoke: the heavy matrices (10-vectors and 20-reference at each kernel level,
// 70-kernels' families × shapes × levels, 60-stability at each level) run a subset that still runs
// every loss of the descriptor (test/losses.ts) and reaches every CPU layout; unset (or 'full'),
// everything runs. The choices are made here only; the tests say what they hand in.

export type TestScope = 'full' | 'smoke';

function readTestScope(): TestScope {
  const value = process.env.CBLOSS_TEST_SCOPE;
  if (value === undefined || value === '' || value === 'full') return 'full';
  if (value === 'smoke') return 'smoke';
  // (a misspelt scope would otherwise run everything, or nothing, without a word)
  throw new Error(`CBLOSS_TEST_SCOPE must be 'full' or 'smoke', not '${value}'`);
}

export const testScope: TestScope = readTestScope();

/**
 * Items of several losses (reference families, vector cases, kernel families): all of them, in their
 * order; in the smoke scope the first of each loss, so that every loss still runs.
 */
export function scopedFirstOfEachLoss<T>(items: readonly T[], lossOf: (item: T) => string): T[] {
  if (testScope === 'full') return [...items];
  const seen = new Set<string>();
  return items.filter((item) => {
    const loss = lossOf(item);
    if (seen.has(loss)) return false;
    seen.add(loss);
    return true;
  });
}

/** Floats per vector of the SIMD levels: 128-bit (sse2, neon), 256-bit (avx2), 512-bit (avx512). */
const SIMD_WIDTHS = [4, 8, 16] as const;

/**
 * The CPU layouts a call on N rows of C logits reaches (native/cpu/kernels_simd.h), at any SIMD width
 * W. Row losses: one row per lane (C <= 2W), rows held in registers (C <= 8W) — both W rows at a
 * time, as whole groups (N >= W) and a partial one (N % W) — then one row at a time in blocks of 4096
 * logits (one block, or several merged). Element losses: blocks of whole rows (C < 512), or row by
 * row in tiles of 4096. (The float64 'scalar' level has one layout: every call.)
 */
export function cpuLayouts(N: number, C: number): string[] {
  const layouts: string[] = [];
  for (const W of SIMD_WIDTHS) {
    if (C <= 8 * W) {
      const grouped = C <= 2 * W ? 'one row per lane' : 'rows in registers';
      if (N >= W) layouts.push(`W=${W} ${grouped}, whole groups`);
      if (N % W !== 0) layouts.push(`W=${W} ${grouped}, a partial group`);
    } else {
      layouts.push(`W=${W} ${C <= 4096 ? 'one row in one block' : 'one row in blocks'}`);
    }
  }
  layouts.push(C < 512 ? 'element blocks of whole rows' : 'element rows in tiles');
  return layouts;
}

/** Shapes [N, C]: all of them; in the smoke scope the first to reach each CPU layout (cpuLayouts). */
export function scopedShapes(shapes: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  if (testScope === 'full') return shapes.map(([N, C]) => [N, C]);
  const reached = new Set<string>();
  const kept: Array<[number, number]> = [];
  for (const [N, C] of shapes) {
    const fresh = cpuLayouts(N, C).filter((layout) => !reached.has(layout));
    if (fresh.length === 0) continue;
    for (const layout of fresh) reached.add(layout);
    kept.push([N, C]);
  }
  return kept;
}

/**
 * The kernel levels of a suite whose cases are the same at each level (60-stability): every one; in
 * the smoke scope the float64 path and the widest SIMD level, which between them take every layout.
 */
export function scopedKernelLevels(): cbloss.SimdLevel[] {
  const levels = kernelLevels();
  if (testScope === 'full' || levels.length <= 2) return levels;
  return [levels[0], levels[levels.length - 1]];
}
