import type { InvalidInputError } from '../errors.js';
import { invalidInput } from '../internal/validate.js';

/**
 * Checks the per-call options of a Loader or BatchWriter method (`{ signal }`): the
 * `InvalidInputError` to reject with when they are malformed, else `undefined`. Never throws,
 * and allocates nothing for valid options.
 */
export function invalidOptions(options: unknown): InvalidInputError | undefined {
  if (typeof options !== 'object' || options === null) {
    return invalidInput('options', 'an object or undefined', options);
  }
  const signal = (options as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    return invalidInput('signal', 'an AbortSignal or undefined', signal);
  }
  return undefined;
}
