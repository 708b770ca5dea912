// The memory an async call's worker thread reads and writes (issue 20). While the call runs, the caller
// may detach its buffer (transfer it: structuredClone, postMessage, ArrayBuffer#transfer), shrink or
// grow it, or drop it; a transferred buffer's memory is freed once its new owner is collected — under
// the worker, if the worker read the caller's memory. So the worker is given only memory that cannot go
// away while it runs:
// - the caller's array itself when it lies on a SharedArrayBuffer (one cannot be detached or shrunk,
//   and the call's reference keeps its memory) or in pinned memory (Node copies the addon's buffers
//   instead of detaching them, and the addon holds the block until the worker is done:
//   native/binding/run.cpp), or when the library allocated it for this call (the caller has not seen
//   it yet);
// - else a copy: inputs are copied at the call; outputs are written to a private array and copied into
//   the caller's when the call ends — provided the caller's array still has its length. If it does not
//   (detached or shrunk), the promise rejects with a TypeError naming it and no caller array is written.
// The copies cost a memcpy of each copied array on the calling thread (bench/RESULTS.md, issue 20).
// Their memory is reused from call to call (scratch buffers, kept while calls keep coming): a fresh
// allocation each call cost more than the copy — page faults on first touch, and collections that
// the external memory of dead copies set off (256x131072: 580 ms against 12 ms for the loss).
type HostArray = Float32Array | Int32Array | Float64Array;
type HostArrayType = new (buffer: ArrayBuffer, byteOffset: number, length: number) => HostArray;

// Scratch buffers by byte length, free for the next call; dropped after a second without calls. Only
// buffers of a MiB or more are kept (smaller ones cost little to allocate), at most 4 of a size (not
// the peak of many calls in flight) and kScratchBytes in all.
const kScratchBytes = 1 << 30;
const kScratchMinBytes = 1 << 20;
const kScratchPerSize = 4;
const scratch = new Map<number, ArrayBuffer[]>();
let scratchBytes = 0;
let scratchTimer: ReturnType<typeof setTimeout> | undefined;

function takeScratch(byteLength: number): ArrayBuffer {
  const free = scratch.get(byteLength);
  const buffer = free?.pop();
  if (buffer === undefined) return new ArrayBuffer(byteLength);
  scratchBytes -= byteLength;
  return buffer;
}

function returnScratch(buffer: ArrayBuffer): void {
  const free = scratch.get(buffer.byteLength) ?? [];
  if (buffer.byteLength < kScratchMinBytes || free.length >= kScratchPerSize || scratchBytes + buffer.byteLength > kScratchBytes) return;
  free.push(buffer);
  scratch.set(buffer.byteLength, free);
  scratchBytes += buffer.byteLength;
  if (scratchTimer !== undefined) clearTimeout(scratchTimer);
  scratchTimer = setTimeout(() => {
    scratch.clear();
    scratchBytes = 0;
  }, 1000);
  scratchTimer.unref();
}

/** An array of the same type and length as `array`, on a scratch buffer. */
function scratchLike(array: HostArray): HostArray {
  const Type = array.constructor as HostArrayType;
  return new Type(takeScratch(array.byteLength), 0, array.length);
}

const allocatedForCall = new WeakSet<object>();

/** Marks an array the library allocated for one call: the worker may write it in place. */
export function allocatedByCall<T extends HostArray>(array: T): T {
  allocatedForCall.add(array);
  return array;
}

/** The arrays of one async call: what the worker gets in place of each, and their delivery. */
export class AsyncArrays {
  private readonly copiedOut: Array<[string, HostArray, HostArray]> = [];
  private readonly inPlace: Array<[string, HostArray, number]> = []; // with its byte length at the call
  private readonly scratchInUse: ArrayBuffer[] = [];

  /** isPinned: whether an array lies in pinned memory (the addon's). */
  constructor(private readonly isPinned: (array: HostArray) => boolean) {}

  /** Whether the worker may use `array` itself (then it is checked at delivery). */
  private usedInPlace(name: string, array: HostArray): boolean {
    if (!(array.buffer instanceof SharedArrayBuffer || allocatedForCall.has(array) || this.isPinned(array))) return false;
    this.inPlace.push([name, array, array.byteLength]);
    return true;
  }

  /** The memory the worker reads for an input array (other values are passed through). */
  input<T>(name: string, value: T): T {
    if (!isHostArray(value) || this.usedInPlace(name, value)) return value;
    const copy = this.scratch(value);
    copy.set(value as never);
    return copy as unknown as T;
  }

  private scratch(like: HostArray): HostArray {
    const array = scratchLike(like);
    this.scratchInUse.push(array.buffer as ArrayBuffer);
    return array;
  }

  /** Once the worker is done (either way): the scratch buffers go back for the next call. */
  release(): void {
    for (const buffer of this.scratchInUse.splice(0)) returnScratch(buffer);
  }

  /** The memory the worker writes for an output array (other values — null, device memory — pass through). */
  output<T>(name: string, value: T): T {
    if (!isHostArray(value) || this.usedInPlace(name, value)) return value;
    const ownCopy = this.scratch(value);
    this.copiedOut.push([name, value, ownCopy]);
    return ownCopy as unknown as T;
  }

  /**
   * After the worker: copies the private outputs into the caller's arrays. A TypeError, before any
   * caller array is written, when one the call used was detached or resized meanwhile.
   */
  deliver(): void {
    for (const [name, array, byteLength] of this.inPlace) {
      if (array.byteLength !== byteLength) throw changedDuringCall(name, byteLength, array.byteLength);
    }
    for (const [name, array, ownCopy] of this.copiedOut) {
      if (array.byteLength !== ownCopy.byteLength) throw changedDuringCall(name, ownCopy.byteLength, array.byteLength);
    }
    for (const [, array, ownCopy] of this.copiedOut) array.set(ownCopy as never);
  }
}

function isHostArray(value: unknown): value is HostArray {
  return value instanceof Float32Array || value instanceof Int32Array || value instanceof Float64Array;
}

function changedDuringCall(name: string, expected: number, actual: number): TypeError {
  const what = actual === 0 ? 'detached (its buffer transferred) or emptied' : `resized to ${actual} bytes`;
  return new TypeError(`Expected ${name} to keep its ${expected} bytes until the async call settled, but it was ${what} meanwhile; the call's results were not delivered`);
}
