// One error format for the whole package (after sharp's invalidParameterError): the message names
// the argument, what was expected, and what was received.
//   TypeError  — a wrong type: not a typed array, a float array where indices are needed, an unknown
//                or duplicated option, a missing required option.
//   RangeError — a wrong value: lengths, labels out of range, β, γ < 0, counts, reduction names.

/**
 * A short description of a value for error messages: `5`, `'mean'`, `Float32Array(35)`, `null`,
 * `a float32 DeviceTensor(120) on cuda:1`.
 */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name;
    const length = (value as unknown as { length?: number }).length;
    return length === undefined ? name : `${name}(${length})`;
  }
  if (Array.isArray(value)) return `Array(${value.length})`;
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  if (ctor?.name === 'DeviceTensor') {
    // (known by name: lib/device-tensor.ts imports this module)
    const t = value as { dtype: string; length: number; device: string };
    return `${t.dtype === 'int32' ? 'an' : 'a'} ${t.dtype} DeviceTensor(${t.length}) on ${t.device}`;
  }
  return ctor && ctor.name && ctor.name !== 'Object' ? `an instance of ${ctor.name}` : 'an object';
}

function message(name: string, expected: string, received: unknown): string {
  return `Expected ${expected} for ${name} but received ${describe(received)}`;
}

/** TypeError: `Expected <expected> for <name> but received <value>`. */
export function invalidType(name: string, expected: string, received: unknown): TypeError {
  return new TypeError(message(name, expected, received));
}

/** RangeError: `Expected <expected> for <name> but received <value>`. */
export function invalidValue(name: string, expected: string, received: unknown): RangeError {
  return new RangeError(message(name, expected, received));
}

/** RangeError for a length: `Expected length <expected> for <name> but received length <n>`. */
export function invalidLength(name: string, expected: string, length: number): RangeError {
  return new RangeError(`Expected length ${expected} for ${name} but received length ${length}`);
}

/** RangeError for an array element: `<name>[<i>] = <v> is <problem>`. */
export function invalidElement(name: string, index: number, value: unknown, problem: string): RangeError {
  return new RangeError(`${name}[${index}] = ${describe(value)} is ${problem}`);
}

/** TypeError for an array element of the wrong kind: `<name>[<i>] = <v> is <problem>`. */
export function invalidElementType(name: string, index: number, value: unknown, problem: string): TypeError {
  return new TypeError(`${name}[${index}] = ${describe(value)} is ${problem}`);
}
