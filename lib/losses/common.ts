// Pieces every loss constructor shares.
import { resolveDevice, type Device, type ResolvedDevice } from '../device';
import { OptionReader, type OptionName } from '../options';
import { Divisor } from '../plan';
import type { Reduction } from '../loss';

export const REDUCTIONS: readonly Reduction[] = ['none', 'mean', 'sum'];

/** Options every loss takes. */
export const COMMON_OPTIONS: readonly OptionName[] = [['reduction'], ['device'], ['numClasses', 'num_classes']];

export interface CommonOptions<R extends string> {
  /** 'mean' (default), 'sum' or 'none'. */
  reduction?: R;
  /** 'auto' (default), 'cpu', 'cuda', 'cuda:N'. */
  device?: Device;
  /** C, the number of classes (logits per row). */
  numClasses?: number;
  num_classes?: number;
}

export function readDevice(reader: OptionReader): ResolvedDevice {
  return resolveDevice(reader.nameOf('device'), reader.raw('device'));
}

/** numClasses: an integer ≥ `min`. */
export function readNumClasses(reader: OptionReader, min: number): number | undefined {
  return reader.optionalNumber('numClasses', { integer: true, min, expected: `an integer ≥ ${min}` });
}

/** The divisor of a base loss's reduction ('mean' divides by `meanDivisor`). */
export function divisorFor(reduction: Reduction, meanDivisor: Divisor): Divisor {
  if (reduction === 'none') return Divisor.None;
  if (reduction === 'sum') return Divisor.One;
  return meanDivisor;
}
