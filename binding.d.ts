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
  /** The addon was built with nvcc (or, for tests, against the CPU emulator of CUDA). */
  compiled: boolean;
  /** The CUDA code runs on the CPU emulator (a test build), not on a GPU. */
  emulated: boolean;
  /** A driver answered and at least one of its devices runs this addon's kernels. */
  available: boolean;
  /** What the kernels were built for (CMake's CUDA_ARCHITECTURES, e.g. '80-real,90-real,90-virtual'); '' without CUDA. */
  architectures: string;
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
  /** Why this addon's kernels cannot run on it ('' when they can): its compute capability, or the driver's error. */
  unusable: string;
}

/** CUDA device memory (cbloss::DeviceMemory); lib/device-tensor.ts wraps it as DeviceTensor. */
export interface NativeDeviceBuffer {
  readonly bytes: number;
  readonly device: number;
  readonly released: boolean;
  /** The device address (throws once released). */
  readonly address: bigint;
  /** Copies the view's bytes into the buffer at byteOffset (default 0; synchronous). */
  upload(view: ArrayBufferView, byteOffset?: number): void;
  /** Fills the view from the start of the buffer (synchronous). */
  download(view: ArrayBufferView): void;
  /** Drops this object's reference: owned memory is freed once no call in flight uses it. */
  release(): void;
}

export interface NativeDeviceBufferStatic {
  /** Allocates `bytes` on CUDA device `device`; an Error when out of memory or CUDA is not usable. */
  allocate(device: number, bytes: number): NativeDeviceBuffer;
  /** Wraps memory another library owns (never freed here). */
  borrow(address: bigint, bytes: number, device: number): NativeDeviceBuffer;
}

/** One row of native/core/loss_kinds.h's table. */
export interface NativeLossKind {
  id: number;
  name: string;
  family: 'row' | 'element';
  indexTargets: boolean;
  probabilityTargets: boolean;
  ignoreIndex: boolean;
  labelSmoothing: boolean;
}

/** The calling contract the addon was built with (native/binding/contract.h, native/core/loss_kinds.h). */
export interface NativeAbi {
  /** The names of the config slots, in order. */
  configSlots: string[];
  /** The names of run's arguments, in order. */
  runArguments: string[];
  lossKinds: NativeLossKind[];
}

/**
 * The arguments of `run`/`runAsync` by name (native/core/call_description.h declares them for the
 * addon; lib/native.ts RUN_ARGUMENTS has their order, checked against the addon's at load). `config`
 * holds the scalars, one per slot (lib/native.ts CONFIG_SLOTS: loss kind, rows, classes, divisor,
 * balance, the loss options, gradOutput scalar, device, logit type; the enums of native/core/problem.h
 * and loss_kinds.h; device -1 is the CPU, N is CUDA device N). Either every data array is a host typed
 * array, or every one is a NativeDeviceBuffer on that device (16-bit logit types only then); the
 * option vectors are host arrays either way.
 */
export interface NativeRunArgumentTypes {
  config: Float64Array;
  logits: Float32Array | NativeDeviceBuffer;
  labels: Int32Array | NativeDeviceBuffer | null;
  targets: Float32Array | NativeDeviceBuffer | null;
  classWeight: Float64Array | null;
  posWeight: Float64Array | null;
  alpha: Float64Array | null;
  balanceWeight: Float64Array | null;
  logitBias: Float64Array | null;
  margin: Float64Array | null;
  sampleWeight: Float32Array | NativeDeviceBuffer | null;
  gradOutput: Float32Array | NativeDeviceBuffer | null;
  lossOut: Float32Array | NativeDeviceBuffer | null;
  gradOut: Float32Array | NativeDeviceBuffer | null;
}

/** The arguments of `run`/`runAsync`, in the order of lib/native.ts RUN_ARGUMENTS. */
export type NativeRunArguments = Array<NativeRunArgumentTypes[keyof NativeRunArgumentTypes]>;

export interface NativeBinding {
  DeviceBuffer: NativeDeviceBufferStatic;
  /** The calling contract of this build; lib/native.ts refuses an addon whose contract differs. */
  abi(): NativeAbi;
  /**
   * Evaluates one loss (and its gradient when `gradOut` is given) on the CPU or a CUDA device.
   * Throws an Error when a CUDA call fails, a RangeError for a device label out of range (checked
   * before anything is written). Returns the reduced
   * loss, or the sum of the per-element losses for reduction 'none' (written to `lossOut`).
   */
  run(...args: NativeRunArguments): number;
  /** `run` on a libuv worker thread; the arrays are kept alive (not copied) until it settles. */
  runAsync(...args: NativeRunArguments): Promise<number>;
  backendInfo(): NativeBackendInfo;
  /** dst = src (memcpy over the CPU threads): the memory roofline of the benchmarks. */
  copy(src: Float32Array, dst: Float32Array): void;
  /**
   * `bytes` of page-locked host memory as an ArrayBuffer, freed by its finalizer: host arrays in it go
   * to and from a GPU without staging copies. An Error when CUDA is not usable.
   */
  allocatePinned(bytes: number): ArrayBuffer;
  /** Whether the view lies in memory from allocatePinned. */
  isPinned(view: ArrayBufferView): boolean;
  /** Sets the threads CPU calls may use (1 = the calling thread); returns the number now used. */
  setThreads(threads: number): number;
  /** Sets the kernel level ('scalar', 'sse2', 'avx2', 'avx512'), clamped to the CPU's; returns it. */
  setSimd(level: string): string;
  devices(): NativeDevice[];
}
