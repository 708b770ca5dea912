// Loads the native addon — the one place that does — and turns a LossPlan into its call.
import * as path from 'node:path';

import type { NativeAbi, NativeBinding, NativeDeviceBuffer, NativeRunArgumentTypes, NativeRunArguments } from '../binding';
import { AsyncArrays } from './async-arrays';
import { NATIVE_BUFFER } from './handles';
import { basePlan, LOSS_KIND_TRAITS, type LossPlan } from './plan';

/**
 * The native calling contract (native/core/call_description.h): the config slots and the run
 * arguments, in order. The addon reports its own (abi()); a build whose lists differ is refused at
 * load. Each use below is checked by TypeScript against these lists: fillConfig's values and a call's
 * arguments are records over them, and every argument has its type in NativeRunArgumentTypes
 * (binding.d.ts) and its role in CALL_ARRAYS.
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
  'divisorOnly',
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
] as const satisfies ReadonlyArray<keyof NativeRunArgumentTypes>;
type ConfigSlot = (typeof CONFIG_SLOTS)[number];
const SLOT = Object.fromEntries(CONFIG_SLOTS.map((name, i) => [name, i])) as Record<ConfigSlot, number>;
type RunArgument = (typeof RUN_ARGUMENTS)[number];
type CallArray = Exclude<RunArgument, 'config'>;

// Every argument NativeRunArgumentTypes describes is in RUN_ARGUMENTS (a type error here names a
// missing one).
const everyArgumentListed: [Exclude<keyof NativeRunArgumentTypes, RunArgument>] extends [never]
  ? true
  : Exclude<keyof NativeRunArgumentTypes, RunArgument> = true;
void everyArgumentListed;

/**
 * What lib/ does with each of a call's arrays: an input the worker of an async call reads, or an
 * output it writes; whether the caller passes it with the call (`perCall`; else it is the loss's own
 * vector); and the name an error about it gives (the API's name for it).
 */
export const CALL_ARRAYS = {
  logits: { output: false, perCall: true, name: 'input' },
  labels: { output: false, perCall: true, name: 'target' },
  targets: { output: false, perCall: true, name: 'target' },
  // (the loss's own parameter vectors: small, and reachable by the caller as the loss's fields)
  classWeight: { output: false, perCall: false, name: 'weight' },
  posWeight: { output: false, perCall: false, name: 'posWeight' },
  alpha: { output: false, perCall: false, name: 'alpha' },
  balanceWeight: { output: false, perCall: false, name: 'class-balanced weights' },
  logitBias: { output: false, perCall: false, name: 'logitBias' },
  margin: { output: false, perCall: false, name: 'margin' },
  sampleWeight: { output: false, perCall: true, name: 'sampleWeight' },
  gradOutput: { output: false, perCall: true, name: 'gradOutput' },
  lossOut: { output: true, perCall: true, name: 'out.loss' },
  gradOut: { output: true, perCall: true, name: 'out.grad' },
} as const satisfies Readonly<Record<CallArray, { output: boolean; perCall: boolean; name: string }>>;

/** The inputs a caller passes with a call: the arrays an output it passes may not overlap (lib/loss.ts). */
export type CallInput = {
  [K in CallArray]: (typeof CALL_ARRAYS)[K] extends { output: false; perCall: true } ? K : never;
}[CallArray];

/** The call inputs with the API's name of each (CALL_ARRAYS' entries a caller passes with the call). */
export const CALL_INPUTS = (Object.keys(CALL_ARRAYS) as CallArray[])
  .filter((argument) => CALL_ARRAYS[argument].perCall && !CALL_ARRAYS[argument].output)
  .map((argument) => [argument as CallInput, CALL_ARRAYS[argument].name] as const);

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

/** Where the loaded addon came from: CBLOSS_ADDON, a build in the package (a developer's, or a source
 * install's), or the package's prebuilt addon for this platform (prebuilds/, scripts/prebuild.js). */
export type AddonSource = 'CBLOSS_ADDON' | 'local build' | 'prebuild';

/** The prebuilt addon node-gyp-build matches to this platform, arch, libc and N-API, or null. */
function prebuiltAddon(root: string): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
    const file = nodeGypBuild.path(root);
    return path.relative(root, file).startsWith('prebuilds') ? file : null;
  } catch {
    return null; // (none matches: it says which it looked for; the candidates' errors say the rest)
  }
}

function loadBinding(): { binding: NativeBinding; file: string; source: AddonSource } {
  const root = path.join(__dirname, '..');
  const candidates: Array<[string, AddonSource]> = [
    // CBLOSS_ADDON: a specific build, e.g. the sanitizer build of scripts/sanitize.sh
    ...(process.env.CBLOSS_ADDON ? [[path.resolve(process.env.CBLOSS_ADDON), 'CBLOSS_ADDON'] as [string, AddonSource]] : []),
    [path.join(root, 'build', 'Release', 'cbloss.node'), 'local build'],
    [path.join(root, 'build', 'Debug', 'cbloss.node'), 'local build'],
  ];
  const prebuild = prebuiltAddon(root);
  if (prebuild) candidates.push([prebuild, 'prebuild']);
  const failures: string[] = [];
  for (const [file, source] of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return { binding: require(file) as NativeBinding, file, source };
    } catch (err) {
      failures.push(`  ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (!prebuild) failures.push(`  prebuilds/: none for ${process.platform}-${process.arch}`);
  throw new Error(
    'cbloss: the native addon could not be loaded. Tried:\n' +
      failures.join('\n') +
      '\nReinstall the package (`npm install cbloss` uses a prebuilt addon where one matches this platform ' +
      'and builds one otherwise), or build it with `npm run build:native` (needs CMake and a C++17 compiler).',
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

function checkedBinding(): { binding: NativeBinding; file: string; source: AddonSource } {
  const loaded = loadBinding();
  const why = contractMismatch(typeof loaded.binding.abi === 'function' ? loaded.binding.abi() : undefined);
  if (why) {
    throw new Error(
      `cbloss: the native addon ${loaded.file} (${loaded.source}) was built from other sources than this lib/: ${why}. ` +
        'Rebuild it with `npm run build:native` (or reinstall the package).',
    );
  }
  return loaded;
}

const loaded = checkedBinding();
export const binding: NativeBinding = loaded.binding;
/** The addon file this process loaded, and where it came from. */
export const addon: { readonly file: string; readonly source: AddonSource } = { file: loaded.file, source: loaded.source };

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
  config[SLOT.divisorOnly] = plan.divisorOnly ? 1 : 0;
  return config;
}

/** A call's arrays by run argument: the plan's, the upstream gradient's and the outputs. */
type CallArrayValues = { [K in CallArray]: Float32Array | Int32Array | Float64Array | DeviceArray | null };

function callArrays(plan: LossPlan, gradOutput: number | DataArray, lossOut: DataArray | null, gradOut: DataArray | null): CallArrayValues {
  return {
    logits: plan.logits,
    labels: plan.labels,
    targets: plan.targets,
    classWeight: plan.classWeight,
    posWeight: plan.posWeight,
    alpha: plan.alpha,
    balanceWeight: plan.balanceWeight,
    logitBias: plan.logitBias,
    margin: plan.margin,
    sampleWeight: plan.sampleWeight,
    gradOutput: typeof gradOutput === 'number' ? null : gradOutput,
    lossOut,
    gradOut,
  };
}

// Calls run or runAsync with the config and the arrays in RUN_ARGUMENTS' order (device arrays as their
// native buffers), spelled out: building and spreading an argument array cost ~500 ns a call (a third
// of a small call). callWiringMismatch verifies the order at load.
function callBinding<T>(fn: (...args: NativeRunArguments) => T, config: Float64Array, a: CallArrayValues): T {
  return fn(
    config,
    nativeArray(a.logits),
    nativeArray(a.labels),
    nativeArray(a.targets),
    nativeArray(a.classWeight),
    nativeArray(a.posWeight),
    nativeArray(a.alpha),
    nativeArray(a.balanceWeight),
    nativeArray(a.logitBias),
    nativeArray(a.margin),
    nativeArray(a.sampleWeight),
    nativeArray(a.gradOutput),
    nativeArray(a.lossOut),
    nativeArray(a.gradOut),
  );
}

/**
 * Why the spelled-out wiring above disagrees with the contract's lists, or null: fillConfig must write
 * every slot (one it missed would keep the previous call's value) and callBinding must pass every
 * array in RUN_ARGUMENTS' order. Run once at load, on a plan of defaults and stand-ins that name
 * themselves.
 */
export function callWiringMismatch(): string | null {
  config.fill(Number.NaN);
  fillConfig(basePlan(0, new Float32Array(1), 1, 1), 1);
  const unwritten = CONFIG_SLOTS.filter((_, i) => Number.isNaN(config[i]));
  if (unwritten.length > 0) return `fillConfig does not write the config slots ${unwritten.join(', ')}`;
  const standIns = Object.fromEntries(
    RUN_ARGUMENTS.slice(1).map((name) => [name, { dtype: 'float32', [NATIVE_BUFFER]: name } as unknown as DeviceArray]),
  ) as CallArrayValues;
  const passed = callBinding((...args) => args.slice(1).map(String), config, standIns);
  const expected = RUN_ARGUMENTS.slice(1);
  if (passed.join(', ') !== expected.join(', ')) return `callBinding passes [${passed.join(', ')}], the contract is [${expected.join(', ')}]`;
  return null;
}

/** Runs a plan on its device; writes `gradOut`/`lossOut` when given. */
export function runPlan(
  plan: LossPlan,
  gradOutput: number | DataArray,
  lossOut: DataArray | null,
  gradOut: DataArray | null,
): number {
  return callBinding(binding.run, fillConfig(plan, gradOutput), callArrays(plan, gradOutput, lossOut, gradOut));
}

/**
 * The divisor of a plan's mean reduction (native/core/reductions.h, divisor_of), on the CPU from its host
 * targets, weights and options alone: the addon reads no logits and runs no kernel (docs/semantics.md,
 * "Per-call options"). The plan's own logits are not passed: a divisor's plan may stand in for them
 * (lib/inputs.ts, LogitShape).
 */
export function planDivisor(plan: LossPlan): number {
  const divisorPlan: LossPlan = { ...plan, divisorOnly: true, device: -1 };
  return callBinding(binding.run, fillConfig(divisorPlan, 1), { ...callArrays(divisorPlan, 1, null, null), logits: null });
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
  const given = callArrays(plan, gradOutput, lossOut, gradOut);
  const worker = { ...given };
  for (const name of Object.keys(CALL_ARRAYS) as CallArray[]) {
    const { output, name: apiName } = CALL_ARRAYS[name];
    worker[name] = output ? arrays.output(apiName, given[name]) : arrays.input(apiName, given[name]);
  }
  const pending = callBinding(binding.runAsync, fillConfig(plan, gradOutput), worker);
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

// A lib/ whose spelled-out call disagrees with the contract's lists does not load (callWiringMismatch).
const wiringMismatch = callWiringMismatch();
if (wiringMismatch) throw new Error(`cbloss: lib/native.ts is inconsistent with its own contract lists: ${wiringMismatch}`);
