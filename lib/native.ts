// Loads the native addon — the one place that does — and turns a LossPlan into its call.
import * as path from 'node:path';

import type { NativeBinding, NativeDeviceBuffer, NativeRunArguments } from '../binding';
import { NATIVE_BUFFER } from './handles';
import type { LossPlan } from './plan';

const CONFIG_SIZE = 12;

/** A DeviceTensor, as far as this module needs to know one. */
export interface DeviceArray {
  readonly dtype: string;
  readonly [NATIVE_BUFFER]: NativeDeviceBuffer;
}

/** An output or upstream-gradient array: host, or on the device. */
export type DataArray = Float32Array | DeviceArray;

function nativeArray<T extends ArrayBufferView>(a: T | DeviceArray): T | NativeDeviceBuffer;
function nativeArray<T extends ArrayBufferView>(a: T | DeviceArray | null): T | NativeDeviceBuffer | null;
function nativeArray<T extends ArrayBufferView>(a: T | DeviceArray | null): T | NativeDeviceBuffer | null {
  return a !== null && !ArrayBuffer.isView(a) ? a[NATIVE_BUFFER] : a;
}

/** native/core/problem.h LogitType of the logits. */
function logitType(logits: Float32Array | DeviceArray): number {
  if (ArrayBuffer.isView(logits)) return 0;
  return logits.dtype === 'float16' ? 1 : logits.dtype === 'bfloat16' ? 2 : 0;
}

function loadBinding(): NativeBinding {
  const root = path.join(__dirname, '..');
  const candidates = [
    // CBLOSS_ADDON: a specific build, e.g. the sanitizer build of scripts/sanitize.sh
    ...(process.env.CBLOSS_ADDON ? [path.resolve(process.env.CBLOSS_ADDON)] : []),
    path.join(root, 'build', 'Release', 'cbloss.node'),
    path.join(root, 'build', 'Debug', 'cbloss.node'),
  ];
  const failures: string[] = [];
  for (const file of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(file) as NativeBinding;
    } catch (err) {
      failures.push(`  ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    'cbloss: the native addon could not be loaded. Tried:\n' +
      failures.join('\n') +
      '\nBuild it with `npm run build:native` (needs CMake and a C++17 compiler), ' +
      'or reinstall the package.',
  );
}

export const binding: NativeBinding = loadBinding();

// One config array serves every call: the addon reads it before run or runAsync returns (a call's
// arguments are parsed on the calling thread), so reusing it saves an allocation per call.
const config = new Float64Array(CONFIG_SIZE);

function fillConfig(plan: LossPlan, gradOutput: number | DataArray): Float64Array {
  config[0] = plan.kind;
  config[1] = plan.rows;
  config[2] = plan.classes;
  config[3] = plan.divisor;
  config[4] = plan.balance;
  config[5] = plan.alphaScalar;
  config[6] = plan.gamma;
  config[7] = plan.labelSmoothing;
  config[8] = plan.ignoreIndex;
  config[9] = typeof gradOutput === 'number' ? gradOutput : 1;
  config[10] = plan.device; // -1: the CPU; N: CUDA device N
  config[11] = logitType(plan.logits);
  return config;
}

// Calls run or runAsync with a plan's arguments (spelled out: spreading an array of them cost more).
function callBinding<T>(
  fn: (...args: NativeRunArguments) => T,
  plan: LossPlan,
  gradOutput: number | DataArray,
  lossOut: DataArray | null,
  gradOut: DataArray | null,
): T {
  return fn(
    fillConfig(plan, gradOutput),
    nativeArray<Float32Array>(plan.logits),
    nativeArray<Int32Array>(plan.labels),
    nativeArray<Float32Array>(plan.targets),
    plan.classWeight,
    plan.posWeight,
    plan.alpha,
    plan.balanceWeight,
    typeof gradOutput === 'number' ? null : nativeArray<Float32Array>(gradOutput),
    nativeArray<Float32Array>(lossOut),
    nativeArray<Float32Array>(gradOut),
  );
}

/** Runs a plan on its device; writes `gradOut`/`lossOut` when given. */
export function runPlan(
  plan: LossPlan,
  gradOutput: number | DataArray,
  lossOut: DataArray | null,
  gradOut: DataArray | null,
): number {
  return callBinding(binding.run, plan, gradOutput, lossOut, gradOut);
}

/** runPlan on a worker thread (the arrays must not be changed until the promise settles). */
export function runPlanAsync(
  plan: LossPlan,
  gradOutput: number | DataArray,
  lossOut: DataArray | null,
  gradOut: DataArray | null,
): Promise<number> {
  return callBinding(binding.runAsync, plan, gradOutput, lossOut, gradOut);
}
