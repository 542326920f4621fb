import type { InvalidInputError } from '../errors.js';
import * as v from '../internal/validate.js';
import type { TransportReadOptions } from './transport.js';

/**
 * Runtime-input checks shared by both transports: each returns the {@link InvalidInputError} to
 * reject with, never throws. Internal to `sluice/events`.
 */
export function invalidEntries(entries: unknown): InvalidInputError | undefined {
  if (!Array.isArray(entries)) return v.invalidInput('entries', 'an array of { type, payload }', entries);
  for (const entry of entries as unknown[]) {
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof (entry as { type?: unknown }).type !== 'string'
    ) {
      return v.invalidInput('entries', 'an array of { type: string, payload }', entry);
    }
  }
  return undefined;
}

/** Checks `{ count, blockMs, signal }`. */
export function invalidReadOptions(options: unknown): InvalidInputError | undefined {
  const invalid = v.invalidCallOptions(options);
  if (invalid !== undefined) return invalid;
  const { count, blockMs } = options as TransportReadOptions;
  return v.checkInput(() => {
    v.positiveInteger('count', count);
    v.nonNegativeNumber('blockMs', blockMs, true);
  });
}

/** A group or consumer name: a non-empty string. */
export function invalidName(name: string, value: unknown): InvalidInputError | undefined {
  return typeof value === 'string' && value !== ''
    ? undefined
    : v.invalidInput(name, 'a non-empty string', value);
}

/** An array of id strings. */
export function invalidIds(ids: unknown): InvalidInputError | undefined {
  if (Array.isArray(ids) && (ids as unknown[]).every((id) => typeof id === 'string')) return undefined;
  return v.invalidInput('ids', 'an array of entry ids', ids);
}

/** Checks the arguments of `claim(group, consumer, minIdleMs, count)`. */
export function invalidClaim(
  group: unknown,
  consumer: unknown,
  minIdleMs: unknown,
  count: unknown,
): InvalidInputError | undefined {
  return (
    invalidName('group', group) ??
    invalidName('consumer', consumer) ??
    v.checkInput(() => {
      v.nonNegativeNumber('minIdleMs', minIdleMs);
      v.positiveInteger('count', count);
    })
  );
}
