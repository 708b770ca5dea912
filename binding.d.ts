// Exactly what the native addon (build/Release/cbloss.node) exports. lib/native.ts loads it in one
// place and is the only module that calls it; everything here trusts lib/ to have validated the
// arguments (the addon re-checks sizes so that a wrong call throws instead of touching memory).

export interface NativeCpuInfo {
  /** Threads a CPU call may use. */
  threads: number;
  /** Logical processors the OS reports. */
  hardwareThreads: number;
  /** Kernel level in use: 'scalar' (float64 reference path), 'sse2'/'vec128', 'avx2', 'avx512'. */
  simd: string;
  /** The best level this CPU supports. */
  bestSimd: string;
}

export interface NativeCudaStatus {
  /** The addon was built with nvcc. */
  compiled: boolean;
  /** A driver and at least one device answered. */
  available: boolean;
  /** Why CUDA is not available ('' when it is). */
  reason: string;
  runtimeVersion: number;
  driverVersion: number;
  deviceCount: number;
}

export interface NativeBackendInfo {
  cpu: NativeCpuInfo;
  cuda: NativeCudaStatus;
}

export interface NativeDevice {
  index: number;
  name: string;
  totalMemory: number;
  computeCapability: string;
  multiprocessors: number;
}

/**
 * The arguments of `run`/`runAsync`. `config` holds the scalars: [loss kind, rows, classes, divisor,
 * balance, alpha, gamma, labelSmoothing, ignoreIndex, gradOutput scalar, device] (the enums of
 * native/core/problem.h; device -1 is the CPU, N is CUDA device N).
 */
export type NativeRunArguments = [
  config: Float64Array,
  logits: Float32Array,
  labels: Int32Array | null,
  targets: Float32Array | null,
  classWeight: Float64Array | null,
  posWeight: Float64Array | null,
  alpha: Float64Array | null,
  balanceWeight: Float64Array | null,
  gradOutput: Float32Array | null,
  lossOut: Float32Array | null,
  gradOut: Float32Array | null,
];

export interface NativeBinding {
  /**
   * Evaluates one loss (and its gradient when `gradOut` is given) on the CPU or a CUDA device.
   * Throws an Error when a CUDA call fails (the outputs are then untouched). Returns the reduced
   * loss, or the sum of the per-element losses for reduction 'none' (written to `lossOut`).
   */
  run(...args: NativeRunArguments): number;
  /** `run` on a libuv worker thread; the arrays are kept alive (not copied) until it settles. */
  runAsync(...args: NativeRunArguments): Promise<number>;
  backendInfo(): NativeBackendInfo;
  /** Index of the first label outside [0, classes) and not ignoreIndex (null: none), or -1. */
  firstInvalidLabel(labels: Int32Array, classes: number, ignoreIndex: number | null): number;
  /** dst = src (memcpy over the CPU threads): the memory roofline of the benchmarks. */
  copy(src: Float32Array, dst: Float32Array): void;
  /** Sets the threads CPU calls may use (1 = the calling thread); returns the number now used. */
  setThreads(threads: number): number;
  /** Sets the kernel level ('scalar', 'sse2', 'avx2', 'avx512'), clamped to the CPU's; returns it. */
  setSimd(level: string): string;
  devices(): NativeDevice[];
}
