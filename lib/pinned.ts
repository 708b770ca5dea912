// Pinned (page-locked) host arrays: host arrays that a GPU reads and writes in place. A loss on a GPU
// given ordinary host arrays copies each chunk of the logits (and probability targets) into pinned
// staging memory on the CPU before sending it, and each chunk of the gradient out of staging memory
// after; arrays allocated here skip both copies — the transfers run straight from and into them
// (PyTorch's `pin_memory`). Where CUDA is not usable they are ordinary arrays, so code that uses them
// runs everywhere. Pinned memory is a scarce system resource: allocate the arrays once and reuse them.
import { invalidType, invalidValue } from './errors';
import { binding } from './native';

export type PinnedDtype = 'float32' | 'int32';

export interface PinnedArrayOptions {
  /** 'float32' (logits, probability targets, gradients; the default) or 'int32' (class indices). */
  dtype?: PinnedDtype;
}

const DTYPES: readonly PinnedDtype[] = ['float32', 'int32'];

/**
 * A zero-filled array of `length` elements in pinned host memory (an ordinary array where CUDA is not
 * usable); freed when garbage-collected. An Error when the memory cannot be had.
 */
export function pinnedArray(length: number): Float32Array;
export function pinnedArray(length: number, options: { dtype: 'float32' }): Float32Array;
export function pinnedArray(length: number, options: { dtype: 'int32' }): Int32Array;
export function pinnedArray(length: number, options?: PinnedArrayOptions): Float32Array | Int32Array;
export function pinnedArray(length: number, options: PinnedArrayOptions = {}): Float32Array | Int32Array {
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
    throw invalidValue('length', 'an integer ≥ 0', length);
  }
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'an object { dtype? }', options);
  const dtype = options.dtype ?? 'float32';
  if (typeof dtype !== 'string') throw invalidType('dtype', `one of ${DTYPES.join(', ')}`, dtype);
  if (!(DTYPES as readonly string[]).includes(dtype)) throw invalidValue('dtype', `one of ${DTYPES.join(', ')}`, dtype);
  const Typed = dtype === 'int32' ? Int32Array : Float32Array;
  if (!binding.backendInfo().cuda.available) return new Typed(length);
  const array = new Typed(binding.allocatePinned(length * Typed.BYTES_PER_ELEMENT));
  array.fill(0); // (cudaMallocHost does not clear it)
  return array;
}

/** Whether the array lies in pinned memory from `pinnedArray` (a view of part of one included). */
export function isPinned(array: ArrayBufferView): boolean {
  if (!ArrayBuffer.isView(array) || array instanceof DataView) throw invalidType('array', 'a typed array', array);
  return binding.isPinned(array);
}
