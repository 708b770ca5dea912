// NumPy .npy files (format 1.0–3.0, little-endian, C order) and raw little-endian arrays, read in
// chunks so that files larger than memory stream through, and written as a stream.
import * as fs from 'node:fs';

import { CliError } from './args';

export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'int16' | 'int8' | 'uint8' | 'uint16' | 'uint32' | 'bool';

const DESCR: Record<string, DType> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<i4': 'int32',
  '<i8': 'int64',
  '<i2': 'int16',
  '|i1': 'int8',
  '|u1': 'uint8',
  '<u2': 'uint16',
  '<u4': 'uint32',
  '|b1': 'bool',
};
const ITEM_SIZE: Record<DType, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int64: 8,
  int16: 2,
  int8: 1,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  bool: 1,
};

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** An array in a file: its element type, shape and where its data starts. */
export class FileArray {
  readonly itemSize: number;
  readonly length: number;

  constructor(
    readonly what: string,
    readonly file: string,
    readonly dtype: DType,
    readonly shape: number[],
    readonly offset: number,
  ) {
    this.itemSize = ITEM_SIZE[dtype];
    this.length = shape.reduce((a, b) => a * b, 1);
    const size = fs.statSync(file).size;
    const need = offset + this.length * this.itemSize;
    if (size < need) {
      throw new CliError(`cbloss score: ${what} ${file}: truncated: ${size} bytes, but shape [${shape.join(', ')}] of ${dtype} needs ${need}`, 1);
    }
  }

  /** Elements [start, start + count) as float32. */
  readFloat32(start: number, count: number): Float32Array {
    const bytes = this.readBytes(start, count);
    switch (this.dtype) {
      case 'float32':
        return new Float32Array(bytes.buffer, bytes.byteOffset, count);
      case 'float64':
        return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, count));
      default:
        return Float32Array.from(this.integers(bytes, count), Number);
    }
  }

  /**
   * Values [start, start + count) as int32. A value that does not fit (int64, uint32) is a RangeError
   * naming it as stored, `<what>[i] = 1099511627776 is out of range ...`, not the value wrapped.
   */
  readInt32(start: number, count: number, what = 'value'): Int32Array {
    const values = this.integers(this.readBytes(start, count), count);
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const v = values[i];
      if (typeof v === 'bigint' ? v < -2147483648n || v > 2147483647n : v > 2147483647) {
        throw new RangeError(`${what}[${start + i}] = ${String(v)} is out of range (not a 32-bit integer)`);
      }
      out[i] = Number(v);
    }
    return out;
  }

  private integers(bytes: Uint8Array, count: number): ArrayLike<number | bigint> {
    const b = bytes.buffer;
    const o = bytes.byteOffset;
    switch (this.dtype) {
      case 'int32':
        return new Int32Array(b, o, count);
      case 'int64':
        return new BigInt64Array(b, o, count);
      case 'int16':
        return new Int16Array(b, o, count);
      case 'int8':
        return new Int8Array(b, o, count);
      case 'uint16':
        return new Uint16Array(b, o, count);
      case 'uint32':
        return new Uint32Array(b, o, count);
      default:
        return new Uint8Array(b, o, count);
    }
  }

  private readBytes(start: number, count: number): Uint8Array {
    // a fresh, aligned buffer for each chunk
    const bytes = new Uint8Array(new ArrayBuffer(count * this.itemSize));
    const fd = fs.openSync(this.file, 'r');
    try {
      let done = 0;
      while (done < bytes.length) {
        const n = fs.readSync(fd, bytes, done, bytes.length - done, this.offset + start * this.itemSize + done);
        if (n === 0) throw new CliError(`cbloss score: ${this.what} ${this.file}: unexpected end of file`, 1);
        done += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    return bytes;
  }
}

function readHead(what: string, file: string, bytes: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new CliError(`cbloss score: ${what} ${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 1);
  }
  try {
    const buf = Buffer.alloc(bytes);
    const n = fs.readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens a .npy file: checks the magic, version, byte order, C order and size. */
export function openNpy(what: string, file: string): FileArray {
  const head = readHead(what, file, 65536 + 12);
  const bad = (why: string): CliError => new CliError(`cbloss score: ${what} ${file}: not a valid .npy file (${why})`, 1);
  if (head.length < 10 || head[0] !== 0x93 || head.toString('latin1', 1, 6) !== 'NUMPY') throw bad('no NUMPY magic');
  const major = head[6];
  const lenBytes = major === 1 ? 2 : 4;
  if (major < 1 || major > 3) throw bad(`format version ${major}`);
  const headerLen = lenBytes === 2 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (head.length < start + headerLen) throw bad('truncated header');
  const header = head.toString('latin1', start, start + headerLen);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw bad('header without descr, fortran_order or shape');
  if (fortran === 'True') throw bad('Fortran order; save it with np.ascontiguousarray');
  const dtype = DESCR[descr];
  if (!dtype) throw new CliError(`cbloss score: ${what} ${file}: unsupported dtype '${descr}' (little-endian float32/float64 or integers)`, 1);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`shape (${shapeText})`);
  return new FileArray(what, file, dtype, shape, start + headerLen);
}

/** Opens a raw little-endian file of `dtype` with the given shape (or a flat one from its size). */
export function openRaw(what: string, file: string, dtype: DType, shape: number[] | null): FileArray {
  readHead(what, file, 1); // a clear error when it cannot be opened
  const size = fs.statSync(file).size;
  const item = ITEM_SIZE[dtype];
  if (!shape) {
    if (size % item !== 0) throw new CliError(`cbloss score: ${what} ${file}: ${size} bytes is not a whole number of ${dtype} values`, 1);
    shape = [size / item];
  }
  return new FileArray(what, file, dtype, shape, 0);
}

/** Writes a float32 .npy file as a stream: the header, then the data in chunks. */
export class NpyWriter {
  private readonly fd: number;
  private written = 0;

  constructor(
    readonly file: string,
    readonly shape: number[],
  ) {
    const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
    // pad so that the data starts at a multiple of 64 bytes; the header ends with a newline
    const unpadded = 10 + dict.length + 1;
    const padded = Math.ceil(unpadded / 64) * 64;
    const header = dict + ' '.repeat(padded - unpadded) + '\n';
    const head = Buffer.alloc(10);
    head[0] = 0x93;
    head.write('NUMPY', 1, 'latin1');
    head[6] = 1;
    head[7] = 0;
    head.writeUInt16LE(header.length, 8);
    try {
      this.fd = fs.openSync(file, 'w');
    } catch (err) {
      throw new CliError(`cbloss score: --grad ${file}: cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 1);
    }
    fs.writeSync(this.fd, head);
    fs.writeSync(this.fd, Buffer.from(header, 'latin1'));
  }

  write(data: Float32Array): void {
    fs.writeSync(this.fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.written += data.length;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Writes a whole float32 array as .npy (tests and small outputs). */
export function writeNpy(file: string, shape: number[], data: Float32Array): void {
  const w = new NpyWriter(file, shape);
  w.write(data);
  w.close();
}
