// float32 <-> float16 / bfloat16 bit patterns (round to nearest even, like the GPU's conversions): 16-bit
// DeviceTensors are made from and read back as Uint16Array bit patterns (docs/semantics.md, "Devices").
const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function floatBits(v: number): number {
  scratch[0] = v;
  return scratchBits[0];
}

function bitsFloat(bits: number): number {
  scratchBits[0] = bits >>> 0;
  return scratch[0];
}

function toHalf(v: number): number {
  const bits = floatBits(v);
  const sign = (bits >>> 16) & 0x8000;
  const magnitude = bits & 0x7fffffff;
  if (magnitude > 0x7f800000) return sign | 0x7e00; // NaN
  if (magnitude >= 0x477ff000) return sign | 0x7c00; // rounds to ±Infinity
  if (magnitude < 0x38800000) {
    // Subnormal half: a multiple of 2^-24, rounded to nearest even.
    const scaled = bitsFloat(magnitude) * 16777216;
    const floor = Math.floor(scaled);
    const rest = scaled - floor;
    const whole = rest > 0.5 || (rest === 0.5 && (floor & 1) === 1) ? floor + 1 : floor;
    return sign | whole;
  }
  const rebased = (magnitude - (112 << 23)) >>> 0;
  const rounded = rebased + 0xfff + ((rebased >>> 13) & 1);
  return sign | (rounded >>> 13);
}

function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function toBfloat16(v: number): number {
  const bits = floatBits(v);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 values → IEEE binary16 bit patterns. */
export function toFloat16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalf(values[i]);
  return out;
}

/** IEEE binary16 bit patterns → float32 values. */
export function fromFloat16Bits(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromHalf(bits[i]);
  return out;
}

/** float32 values → bfloat16 bit patterns. */
export function toBfloat16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toBfloat16(values[i]);
  return out;
}

/** bfloat16 bit patterns → float32 values. */
export function fromBfloat16Bits(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bitsFloat(bits[i] << 16);
  return out;
}
