// Device choice (docs/semantics.md, "Devices"). 'auto' (the default, or CBLOSS_DEVICE from the
// environment) runs where the work is fastest; 'cpu', 'cuda' and 'cuda:N' force a device. Asking for CUDA
// where it is not usable is an Error that says why.
import type { NativeCudaStatus, NativeDevice } from '../binding';
import { addon, binding, type AddonSource } from './native';
import { invalidType, invalidValue } from './errors';

export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

/** Where a loss object computes. */
export type ResolvedDevice = { kind: 'auto' } | { kind: 'cpu' } | { kind: 'cuda'; index: number };

const DEVICE_PATTERN = /^(auto|cpu|cuda)(?::(\d+))?$/;
const EXPECTED = "'auto', 'cpu', 'cuda' or 'cuda:N'";

export function resolveDevice(optionName: string, value: unknown): ResolvedDevice {
  let name = optionName;
  let requested = value;
  if (requested === undefined) {
    const env = process.env.CBLOSS_DEVICE;
    if (env === undefined || env === '') return { kind: 'auto' };
    name = 'CBLOSS_DEVICE (environment)';
    requested = env;
  }
  if (typeof requested !== 'string') throw invalidType(name, EXPECTED, requested);
  const match = DEVICE_PATTERN.exec(requested);
  if (!match || (match[2] !== undefined && match[1] !== 'cuda')) throw invalidValue(name, EXPECTED, requested);
  if (match[1] === 'auto') return { kind: 'auto' };
  if (match[1] === 'cpu') return { kind: 'cpu' };
  const index = match[2] === undefined ? 0 : Number(match[2]);
  const cuda = binding.backendInfo().cuda;
  if (!cuda.available) {
    throw new Error(`cbloss: device '${requested}' was requested but CUDA is not usable: ${cuda.reason}`);
  }
  return { kind: 'cuda', index: usableCudaIndex(cuda, name, requested, index) };
}

/**
 * `index` when CUDA device `index` exists and runs this addon's kernels (`cuda`: the status, CUDA
 * available); otherwise a RangeError (no such device) or an Error that says why not (e.g. its compute
 * capability).
 */
export function usableCudaIndex(cuda: NativeCudaStatus, name: string, requested: string, index: number): number {
  if (index >= cuda.deviceCount) throw invalidValue(name, `a CUDA device index below ${cuda.deviceCount}`, requested);
  const unusable = binding.devices()[index].unusable;
  if (unusable) throw new Error(`cbloss: device '${requested}' was requested but it is not usable: ${unusable}`);
  return index;
}

/**
 * 'auto' runs host arrays in pinned memory on the GPU from this many logits on (the transfers to and
 * from the device must pay off). Provisional: to be measured on a GPU machine (scripts/gpu-check.sh).
 */
export const AUTO_CUDA_MIN_ELEMENTS = 1 << 22;

/**
 * Whether 'auto' sends host arrays to the GPU: large enough, CUDA usable, and the logits in pinned
 * memory (pinnedArray). Ordinary host arrays stay on the CPU: on the GPU each chunk would first be
 * copied into pinned staging memory and each gradient chunk out of it, on the CPU — two copies of the
 * data, which cost at least what the CPU kernels do (they run at 50-80% of one copy for most shapes;
 * docs/devices.md, "When host arrays pay off on the GPU"). `device: 'cuda'` still sends them.
 */
export function autoPicksCuda(elements: number, cudaUsable: () => boolean, pinned: () => boolean): boolean {
  return elements >= AUTO_CUDA_MIN_ELEMENTS && cudaUsable() && pinned();
}

/**
 * The CUDA device 'auto' may pick: the first that runs the kernels, unless CUDA is the emulator (a
 * slow CPU path for tests); -1 for none.
 */
export function autoCudaDevice(cuda: NativeCudaStatus, cudaDevices: readonly NativeDevice[]): number {
  const first = cuda.available && !cuda.emulated ? cudaDevices.find((d) => d.unusable === '') : undefined;
  return first ? first.index : -1;
}

let autoCuda: number | undefined;

function autoCudaIndex(): number {
  if (autoCuda === undefined) autoCuda = autoCudaDevice(binding.backendInfo().cuda, binding.devices());  // (probed once)
  return autoCuda;
}

/** The device index of the native call on host logits: -1 for the CPU, N for CUDA device N. */
export function deviceIndex(device: ResolvedDevice, logits: Float32Array): number {
  if (device.kind === 'cuda') return device.index;
  if (device.kind === 'cpu') return -1;
  return autoPicksCuda(logits.length, () => autoCudaIndex() >= 0, () => binding.isPinned(logits)) ? autoCudaIndex() : -1;
}

export interface BackendInfo {
  /** The package version. */
  version: string;
  /** Backends compiled into the addon. */
  compiled: { cpu: true; cuda: boolean };
  /** Backends usable now. */
  available: { cpu: true; cuda: boolean };
  /**
   * The device `'auto'` resolves to on this machine for large work: DeviceTensors, and host arrays of
   * AUTO_CUDA_MIN_ELEMENTS logits or more in pinned memory (ordinary host arrays stay on the CPU).
   */
  defaultDevice: 'cpu' | 'cuda';
  /** CBLOSS_DEVICE from the environment, if set. */
  deviceOverride: string | null;
  cpu: { threads: number; hardwareThreads: number; simd: string; bestSimd: string };
  cuda: NativeCudaStatus;
  /** The native addon loaded: its file, and whether it is the package's prebuilt one for this platform,
   * a local build (a source install, or a developer's) or CBLOSS_ADDON's. */
  addon: { file: string; source: AddonSource };
}

export interface DeviceInfo {
  /** 'cpu' or 'cuda:N' */
  device: string;
  name: string;
  /** Bytes of device memory (GPUs) */
  totalMemory?: number;
  /** 'major.minor' (GPUs) */
  computeCapability?: string;
  multiprocessors?: number;
  threads?: number;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION: string = (require('../package.json') as { version: string }).version;

/** What was compiled in, what is usable now and why not, the CPU threads and SIMD level. */
export function backendInfo(): BackendInfo {
  const info = binding.backendInfo();
  return {
    version: VERSION,
    compiled: { cpu: true, cuda: info.cuda.compiled },
    available: { cpu: true, cuda: info.cuda.available },
    defaultDevice: info.cuda.available && !info.cuda.emulated ? 'cuda' : 'cpu',
    deviceOverride: process.env.CBLOSS_DEVICE || null,
    cpu: { ...info.cpu },
    cuda: { ...info.cuda },
    addon: { ...addon },
  };
}

/**
 * Usable devices: the CPU, then each CUDA device the driver reports that runs this addon's kernels
 * (one of a compute capability it was not built for is left out; asking for it says why).
 */
export function devices(): DeviceInfo[] {
  const info = binding.backendInfo();
  const list: DeviceInfo[] = [{ device: 'cpu', name: 'CPU', threads: info.cpu.threads }];
  for (const d of binding.devices()) {
    if (d.unusable) continue;
    list.push({
      device: `cuda:${d.index}`,
      name: d.name,
      totalMemory: d.totalMemory,
      computeCapability: d.computeCapability,
      multiprocessors: d.multiprocessors,
    });
  }
  return list;
}

/** Threads CPU calls may use (default: all logical processors, or CBLOSS_NUM_THREADS). Returns the number set. */
export function setNumThreads(threads: number): number {
  if (typeof threads !== 'number') throw invalidType('threads', 'an integer in [1, 1024]', threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw invalidValue('threads', 'an integer in [1, 1024]', threads);
  }
  return binding.setThreads(threads);
}

export type SimdLevel = 'scalar' | 'sse2' | 'vec128' | 'neon' | 'avx2' | 'avx512';
const SIMD_LEVELS: readonly SimdLevel[] = ['scalar', 'sse2', 'vec128', 'neon', 'avx2', 'avx512'];

/**
 * Selects the CPU kernel level (default: the best the CPU supports, or CBLOSS_SIMD). 'scalar' is the
 * float64 reference path. A level above the CPU's is clamped; returns the level in use.
 */
export function setSimdLevel(level: SimdLevel): string {
  if (typeof level !== 'string') throw invalidType('level', `one of ${SIMD_LEVELS.join(', ')}`, level);
  if (!SIMD_LEVELS.includes(level)) throw invalidValue('level', `one of ${SIMD_LEVELS.join(', ')}`, level);
  return binding.setSimd(level);
}
