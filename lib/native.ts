// Loads the native addon — the one place that does — and turns a LossPlan into its call.
import * as path from 'node:path';

import type { NativeAbi, NativeBinding, NativeDeviceBuffer, NativeRunArguments } from '../binding';
import { AsyncArrays } from './async-arrays';
import { NATIVE_BUFFER } from './handles';
import { LOSS_KIND_TRAITS, type LossPlan } from './plan';

/**
 * The native calling contract (native/binding/contract.h): the config slots and the run arguments,
 * in order. The addon reports its own (abi()); a build whose lists differ is refused at load.
 */
export const CONFIG_SLOTS = [
  'kind',
  'rows',
  'classes',
  'divisor',
  'balance',
  'alphaScalar',
  'gamma',
  'labelSmoothing',
  'ignoreIndex',
  'gradOutputScalar',
  'device',
  'logitType',
  'polyEpsilon',
  'gammaPos',
  'gammaNeg',
  'clip',
  'detachFocusing',
  'logitScale',
  'avgFactor',
  'sampleWeightPerElement',
] as const;
export const RUN_ARGUMENTS = [
  'config',
  'logits',
  'labels',
  'targets',
  'classWeight',
  'posWeight',
  'alpha',
  'balanceWeight',
  'logitBias',
  'margin',
  'sampleWeight',
  'gradOutput',
  'lossOut',
  'gradOut',
] as const;
type ConfigSlot = (typeof CONFIG_SLOTS)[number];
const SLOT = Object.fromEntries(CONFIG_SLOTS.map((name, i) => [name, i])) as Record<ConfigSlot, number>;

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

/**
 * Why an addon's reported contract differs from this lib/'s, or null when they agree: the config
 * slots, the run arguments and every loss kind's id and traits.
 */
export function contractMismatch(abi: NativeAbi | undefined): string | null {
  if (!abi) return 'it reports no calling contract (abi())';
  const list = (a: readonly string[]) => a.join(', ');
  if (list(abi.configSlots) !== list(CONFIG_SLOTS)) {
    return `its config slots are [${list(abi.configSlots)}], lib/ expects [${list(CONFIG_SLOTS)}]`;
  }
  if (list(abi.runArguments) !== list(RUN_ARGUMENTS)) {
    return `its run arguments are [${list(abi.runArguments)}], lib/ expects [${list(RUN_ARGUMENTS)}]`;
  }
  const ours = Object.entries(LOSS_KIND_TRAITS).map(([id, t]) => JSON.stringify({ id: Number(id), ...t }));
  const theirs = abi.lossKinds.map((k) =>
    JSON.stringify({
      id: k.id,
      name: k.name,
      family: k.family,
      indexTargets: k.indexTargets,
      probabilityTargets: k.probabilityTargets,
      ignoreIndex: k.ignoreIndex,
      labelSmoothing: k.labelSmoothing,
    }),
  );
  if (list(ours) !== list(theirs)) return `its loss kinds are ${list(theirs)}, lib/ expects ${list(ours)}`;
  return null;
}

function checkedBinding(): NativeBinding {
  const loaded = loadBinding();
  const why = contractMismatch(typeof loaded.abi === 'function' ? loaded.abi() : undefined);
  if (why) {
    throw new Error(
      `cbloss: the native addon was built from other sources than this lib/: ${why}. ` +
        'Rebuild it with `npm run build:native` (or reinstall the package).',
    );
  }
  return loaded;
}

export const binding: NativeBinding = checkedBinding();

// One config array serves every call: the addon reads it before run or runAsync returns (a call's
// arguments are parsed on the calling thread), so reusing it saves an allocation per call.
const config = new Float64Array(CONFIG_SLOTS.length);

function fillConfig(plan: LossPlan, gradOutput: number | DataArray): Float64Array {
  config[SLOT.kind] = plan.kind;
  config[SLOT.rows] = plan.rows;
  config[SLOT.classes] = plan.classes;
  config[SLOT.divisor] = plan.divisor;
  config[SLOT.balance] = plan.balance;
  config[SLOT.alphaScalar] = plan.alphaScalar;
  config[SLOT.gamma] = plan.gamma;
  config[SLOT.labelSmoothing] = plan.labelSmoothing;
  config[SLOT.ignoreIndex] = plan.ignoreIndex;
  config[SLOT.gradOutputScalar] = typeof gradOutput === 'number' ? gradOutput : 1;
  config[SLOT.device] = plan.device; // -1: the CPU; N: CUDA device N
  config[SLOT.logitType] = logitType(plan.logits);
  config[SLOT.polyEpsilon] = plan.polyEpsilon;
  config[SLOT.gammaPos] = plan.gammaPos;
  config[SLOT.gammaNeg] = plan.gammaNeg;
  config[SLOT.clip] = plan.clip;
  config[SLOT.detachFocusing] = plan.detachFocusing ? 1 : 0;
  config[SLOT.logitScale] = plan.logitScale;
  config[SLOT.avgFactor] = plan.avgFactor ?? 0;
  config[SLOT.sampleWeightPerElement] = plan.sampleWeightPerElement ? 1 : 0;
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
    plan.logitBias,
    plan.margin,
    nativeArray<Float32Array>(plan.sampleWeight),
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

/**
 * runPlan on a worker thread. The worker reads and writes only memory that stays valid whatever the
 * caller does with its arrays meanwhile (lib/async-arrays.ts): copies of the caller's arrays where they
 * could be detached or resized, delivered when the call ends.
 */
export function runPlanAsync(
  plan: LossPlan,
  gradOutput: number | DataArray,
  lossOut: DataArray | null,
  gradOut: DataArray | null,
): Promise<number> {
  const arrays = new AsyncArrays((array) => binding.isPinned(array));
  const workerPlan: LossPlan = {
    ...plan,
    logits: arrays.input('input', plan.logits),
    labels: arrays.input('target', plan.labels),
    targets: arrays.input('target', plan.targets),
    sampleWeight: arrays.input('sampleWeight', plan.sampleWeight),
    // (the loss's own parameter vectors: small, and reachable by the caller as the loss's fields)
    classWeight: arrays.input('weight', plan.classWeight),
    posWeight: arrays.input('posWeight', plan.posWeight),
    alpha: arrays.input('alpha', plan.alpha),
    balanceWeight: arrays.input('class-balanced weights', plan.balanceWeight),
    logitBias: arrays.input('logitBias', plan.logitBias),
    margin: arrays.input('margin', plan.margin),
  };
  const pending = callBinding(
    binding.runAsync,
    workerPlan,
    arrays.input('gradOutput', gradOutput),
    arrays.output('out.loss', lossOut),
    arrays.output('out.grad', gradOut),
  );
  return pending.then(
    (value) => {
      try {
        arrays.deliver();
      } finally {
        arrays.release();
      }
      return value;
    },
    (err: unknown) => {
      arrays.release();
      throw err;
    },
  );
}
