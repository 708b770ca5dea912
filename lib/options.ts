// Reading constructor options: camelCase names and the Python package's snake_case aliases, unknown
// names rejected (a typo such as `gama` must not be silently ignored), one error format.
import { invalidElement, invalidElementType, invalidType, invalidValue } from './errors';

/** An option's camelCase name and, where the Python package spells it differently, its alias. */
export type OptionName = readonly [camel: string, snake?: string];

interface GivenOption {
  /** The name the caller used (for messages). */
  name: string;
  value: unknown;
}

export class OptionReader {
  private readonly given = new Map<string, GivenOption>();

  constructor(
    readonly owner: string,
    options: unknown,
    allowed: readonly OptionName[],
  ) {
    if (options === undefined || options === null) return;
    if (typeof options !== 'object' || Array.isArray(options)) {
      throw invalidType(`the options of ${owner}`, 'an object', options);
    }
    const byName = new Map<string, string>();
    for (const [camel, snake] of allowed) {
      byName.set(camel, camel);
      if (snake) byName.set(snake, camel);
    }
    for (const key of Object.keys(options)) {
      const camel = byName.get(key);
      if (camel === undefined) {
        const names = allowed.map(([c]) => c).join(', ');
        throw new TypeError(`Unknown option '${key}' for ${owner}: expected one of ${names}`);
      }
      const value = (options as Record<string, unknown>)[key];
      if (value === undefined) continue;
      const previous = this.given.get(camel);
      if (previous) {
        throw new TypeError(
          `Option ${camel} of ${owner} was given twice, as '${previous.name}' and as '${key}': use one name`,
        );
      }
      this.given.set(camel, { name: key, value });
    }
  }

  has(key: string): boolean {
    return this.given.has(key);
  }

  /** The name the caller used for an option (its camelCase name when absent). */
  nameOf(key: string): string {
    return this.given.get(key)?.name ?? key;
  }

  raw(key: string): unknown {
    return this.given.get(key)?.value;
  }

  /** A required option: TypeError when missing. */
  required(key: string, expected: string): unknown {
    const option = this.given.get(key);
    if (!option) throw new TypeError(`Missing required option ${key} of ${this.owner}: expected ${expected}`);
    return option.value;
  }

  number(key: string, fallback: number, check?: NumberCheck): number {
    const option = this.given.get(key);
    if (!option) return fallback;
    return checkNumber(option.name, option.value, check);
  }

  optionalNumber(key: string, check?: NumberCheck): number | undefined {
    const option = this.given.get(key);
    return option ? checkNumber(option.name, option.value, check) : undefined;
  }

  /** A boolean option: TypeError for anything else. */
  boolean(key: string, fallback: boolean): boolean {
    const option = this.given.get(key);
    if (!option) return fallback;
    if (typeof option.value !== 'boolean') throw invalidType(option.name, 'true or false', option.value);
    return option.value;
  }

  /** A string from a fixed set: TypeError for a non-string, RangeError for an unknown one. */
  choice<T extends string>(key: string, fallback: T, choices: readonly T[]): T {
    const option = this.given.get(key);
    if (!option) return fallback;
    const list = choices.map((c) => `'${c}'`).join(', ');
    if (typeof option.value !== 'string') throw invalidType(option.name, `one of ${list}`, option.value);
    if (!(choices as readonly string[]).includes(option.value)) {
      throw invalidValue(option.name, `one of ${list}`, option.value);
    }
    return option.value as T;
  }

  /** An ArrayLike<number> of finite values, copied to a Float64Array. */
  vector(key: string): Float64Array | undefined {
    const option = this.given.get(key);
    return option ? toFiniteVector(option.name, option.value) : undefined;
  }
}

/**
 * The call options of forwardBackward (`opts`, `opts.out`): an object whose keys are all in `allowed`.
 * A misspelled key (`{ grad }` for `{ out: { grad } }`) is a TypeError, not an allocation per call.
 */
export function checkCallOptionKeys(name: string, value: object, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`Unknown option '${key}' in ${name}: expected one of ${allowed.join(', ')}`);
    }
  }
}

export interface NumberCheck {
  /** What the message says was expected, e.g. 'a number in [0, 1]'. */
  expected?: string;
  integer?: boolean;
  min?: number;
  max?: number;
}

export function checkNumber(name: string, value: unknown, check: NumberCheck = {}): number {
  const expected = check.expected ?? (check.integer ? 'an integer' : 'a finite number');
  if (typeof value !== 'number') throw invalidType(name, expected, value);
  if (!Number.isFinite(value)) throw invalidValue(name, expected, value);
  if (check.integer && !Number.isInteger(value)) throw invalidValue(name, expected, value);
  if (check.min !== undefined && value < check.min) throw invalidValue(name, expected, value);
  if (check.max !== undefined && value > check.max) throw invalidValue(name, expected, value);
  return value;
}

/** True for an Array or a numeric typed array (not DataView, not BigInt arrays). */
export function isNumericArrayLike(value: unknown): value is ArrayLike<number> {
  if (Array.isArray(value)) return true;
  return (
    ArrayBuffer.isView(value) &&
    !(value instanceof DataView) &&
    !(value instanceof BigInt64Array) &&
    !(value instanceof BigUint64Array)
  );
}

export interface VectorCheck {
  /** What the message says was expected of the whole array. Default 'an array of numbers'. */
  expected?: string;
  /** Every element must also be > 0 (sample counts). */
  positive?: boolean;
}

/** Copies an ArrayLike<number> of finite numbers (with `positive`, finite numbers > 0) into a Float64Array. */
export function toFiniteVector(name: string, value: unknown, check: VectorCheck = {}): Float64Array {
  if (!isNumericArrayLike(value)) throw invalidType(name, check.expected ?? 'an array of numbers', value);
  const problem = check.positive ? 'not a finite number > 0' : 'not a finite number';
  const out = new Float64Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'number') throw invalidElementType(name, i, v, 'not a number');
    if (!Number.isFinite(v) || (check.positive && v <= 0)) throw invalidElement(name, i, v, problem);
    out[i] = v;
  }
  return out;
}

