// DeviceTensor (docs/semantics.md, "Devices"): data kept in the memory of a CUDA device. Losses given a
// DeviceTensor input compute on that device and return the gradient as a DeviceTensor; nothing but the
// reduced loss crosses the bus. The memory is freed by dispose(), or by the garbage collector's finalizer
// when a tensor is forgotten — never while a call still uses it (calls hold their own reference).
import type { NativeDeviceBuffer } from '../binding';
import { invalidLength, invalidType, invalidValue } from './errors';
import { usableCudaIndex } from './device';
import { NATIVE_BUFFER } from './handles';
import { binding } from './native';

export type DeviceDtype = 'float32' | 'int32' | 'float16' | 'bfloat16';

const DTYPES: readonly DeviceDtype[] = ['float32', 'int32', 'float16', 'bfloat16'];
const BYTES: Record<DeviceDtype, number> = { float32: 4, int32: 4, float16: 2, bfloat16: 2 };

/** Host array types by dtype (16-bit floats travel as their bit patterns). */
export interface HostArrayByDtype {
  float32: Float32Array;
  int32: Int32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
}

export interface DeviceTensorOptions {
  /** 'cuda' (device 0) or 'cuda:N'. Default 'cuda'. */
  device?: string;
  /** Default: from the array (Float32Array/Float64Array → 'float32', integer arrays → 'int32'); required for Uint16Array. */
  dtype?: DeviceDtype;
}

const DEVICE_PATTERN = /^cuda(?::(\d+))?$/;

/** The CUDA device index of a device string, or an Error saying why CUDA cannot be used. */
function cudaIndex(name: string, device: unknown): number {
  if (device === undefined) device = 'cuda';
  if (typeof device !== 'string') throw invalidType(name, "'cuda' or 'cuda:N'", device);
  const match = DEVICE_PATTERN.exec(device);
  if (!match) throw invalidValue(name, "'cuda' or 'cuda:N'", device);
  const cuda = binding.backendInfo().cuda;
  if (!cuda.available) throw new Error(`cbloss: DeviceTensor needs CUDA, which is not usable: ${cuda.reason}`);
  return usableCudaIndex(cuda, name, device, match[1] === undefined ? 0 : Number(match[1]));
}

function readDtype(name: string, value: unknown): DeviceDtype {
  if (typeof value !== 'string') throw invalidType(name, `one of ${DTYPES.join(', ')}`, value);
  if (!(DTYPES as readonly string[]).includes(value)) throw invalidValue(name, `one of ${DTYPES.join(', ')}`, value);
  return value as DeviceDtype;
}

function dtypeOf(data: ArrayBufferView): DeviceDtype | undefined {
  if (data instanceof Float32Array || data instanceof Float64Array) return 'float32';
  if (data instanceof Int32Array || data instanceof Int16Array || data instanceof Int8Array || data instanceof Uint8Array) {
    return 'int32';
  }
  return undefined;
}

/** The host array to upload for `dtype`: as is when its type matches, else converted. */
function hostArray(data: ArrayBufferView, dtype: DeviceDtype): ArrayBufferView {
  const values = data as unknown as ArrayLike<number>;
  switch (dtype) {
    case 'float32':
      if (data instanceof Float32Array) return data;
      if (data instanceof Float64Array) return Float32Array.from(data);
      break;
    case 'int32':
      if (data instanceof Int32Array) return data;
      if (data instanceof Int16Array || data instanceof Int8Array || data instanceof Uint8Array) return Int32Array.from(values);
      break;
    case 'float16':
    case 'bfloat16':
      if (data instanceof Uint16Array) return data;
      break;
  }
  const expected =
    dtype === 'float32'
      ? 'a Float32Array or Float64Array'
      : dtype === 'int32'
        ? 'an Int32Array (or Int16Array, Int8Array, Uint8Array)'
        : `a Uint16Array of ${dtype} bit patterns`;
  throw invalidType('data', `${expected} for dtype '${dtype}'`, data);
}

export class DeviceTensor<D extends DeviceDtype = DeviceDtype> {
  /** Number of elements. */
  readonly length: number;
  readonly dtype: D;
  /** 'cuda:N' */
  readonly device: string;
  readonly #buffer: NativeDeviceBuffer;

  private constructor(buffer: NativeDeviceBuffer, length: number, dtype: D) {
    this.#buffer = buffer;
    this.length = length;
    this.dtype = dtype;
    this.device = `cuda:${buffer.device}`;
  }

  /** Copies a host array to a CUDA device. */
  static from<D extends DeviceDtype = DeviceDtype>(data: ArrayBufferView, options?: DeviceTensorOptions & { dtype?: D }): DeviceTensor<D> {
    if (!ArrayBuffer.isView(data) || data instanceof DataView) {
      throw invalidType('data', 'a typed array (Float32Array, Int32Array, or Uint16Array for 16-bit floats)', data);
    }
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw invalidType('options', 'an object { device?, dtype? }', options);
    }
    const given = options?.dtype;
    const dtype = given === undefined ? dtypeOf(data) : readDtype('dtype', given);
    if (dtype === undefined) {
      throw invalidType('dtype', "'float16' or 'bfloat16' for a Uint16Array (or a Float32Array / Int32Array)", given);
    }
    const host = hostArray(data, dtype);
    const device = cudaIndex('device', options?.device);
    const length = (host as unknown as ArrayLike<number>).length;
    const buffer = binding.DeviceBuffer.allocate(device, length * BYTES[dtype]);
    try {
      buffer.upload(host);
    } catch (err) {
      buffer.release();
      throw err;
    }
    return new DeviceTensor(buffer, length, dtype as D);
  }

  /** Uninitialized device memory for `length` elements (e.g. a reused gradient buffer). */
  static empty<D extends DeviceDtype = 'float32'>(length: number, options?: DeviceTensorOptions & { dtype?: D }): DeviceTensor<D> {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw invalidValue('length', 'an integer ≥ 0', length);
    }
    const dtype = readDtype('dtype', options?.dtype ?? 'float32');
    const buffer = binding.DeviceBuffer.allocate(cudaIndex('device', options?.device), length * BYTES[dtype]);
    return new DeviceTensor(buffer, length, dtype as D);
  }

  /**
   * Wraps memory owned by another CUDA library (e.g. a tensor's data pointer): no copy, and no
   * ownership — dispose() and the finalizer leave the memory alone; keep it alive while in use, and
   * let that library finish its own writes to it first (synchronize its stream): cbloss computes on
   * its own streams.
   */
  static fromPointer<D extends DeviceDtype>(address: bigint, length: number, dtype: D, device: string = 'cuda'): DeviceTensor<D> {
    if (typeof address !== 'bigint') throw invalidType('address', 'a bigint device address', address);
    if (address <= 0n || address >= 1n << 64n) throw invalidValue('address', 'a non-null 64-bit address', address);
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw invalidValue('length', 'an integer ≥ 0', length);
    }
    const type = readDtype('dtype', dtype);
    const buffer = binding.DeviceBuffer.borrow(address, length * BYTES[type], cudaIndex('device', device));
    return new DeviceTensor(buffer, length, type as D);
  }

  /**
   * Copies the data back: Float32Array, Int32Array, or Uint16Array bit patterns for 16-bit floats —
   * into `out` when given (an array of that type and the tensor's length, reused; one from
   * `pinnedArray` takes the copy straight from the device), else into a new array.
   */
  toHost(out?: HostArrayByDtype[D]): HostArrayByDtype[D] {
    this.check('toHost()');
    const Host = this.dtype === 'float32' ? Float32Array : this.dtype === 'int32' ? Int32Array : Uint16Array;
    if (out === undefined) {
      out = new Host(this.length) as HostArrayByDtype[D];
    } else {
      if (!(out instanceof Host)) throw invalidType('out', `a ${Host.name} (the tensor is ${this.dtype})`, out);
      if (out.length !== this.length) throw invalidLength('out', `${this.length} (the tensor's length)`, out.length);
    }
    this.#buffer.download(out);
    return out;
  }

  /** Overwrites elements [offset, offset + data.length) from a host array of the tensor's type. */
  copyFrom(data: ArrayBufferView, offset = 0): void {
    this.check('copyFrom()');
    const host = hostArray(data, this.dtype);
    const length = (host as unknown as ArrayLike<number>).length;
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset > this.length) {
      throw invalidValue('offset', `an integer in [0, ${this.length}]`, offset);
    }
    if (length > this.length - offset) {
      throw invalidLength('data', `at most ${this.length - offset} (the tensor's length from offset ${offset})`, length);
    }
    this.#buffer.upload(host, offset * BYTES[this.dtype]);
  }

  /** Frees the device memory (when owned) now; later uses are errors. Calls in flight finish first. */
  dispose(): void {
    this.#buffer.release();
  }

  get disposed(): boolean {
    return this.#buffer.released;
  }

  /** The device address (for other CUDA libraries). */
  get address(): bigint {
    this.check('address');
    return this.#buffer.address;
  }

  /** Internal: the native buffer, checked not to be disposed. */
  get [NATIVE_BUFFER](): NativeDeviceBuffer {
    this.check('the DeviceTensor');
    return this.#buffer;
  }

  private check(what: string): void {
    if (this.#buffer.released) throw new TypeError(`Expected a live DeviceTensor for ${what} but received a disposed one`);
  }
}

export function isDeviceTensor(value: unknown): value is DeviceTensor {
  return value instanceof DeviceTensor;
}

/** The CUDA device index of a tensor. */
export function tensorDeviceIndex(t: DeviceTensor): number {
  return Number(t.device.slice('cuda:'.length));
}

/** The LogitType of native/core/problem.h for a logits tensor's dtype. */
export function logitTypeOf(t: DeviceTensor): number {
  return t.dtype === 'float16' ? 1 : t.dtype === 'bfloat16' ? 2 : 0;
}
