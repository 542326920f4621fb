import { InvalidInputError } from '../errors.js';

/** Renders a value for an error message: `` `0` (number) ``. */
export function describe(value: unknown): string {
  let shown: string;
  if (typeof value === 'string') shown = JSON.stringify(value);
  else if (typeof value === 'function') shown = value.name === '' ? '[function]' : `[function ${value.name}]`;
  else if (typeof value === 'bigint') shown = `${value}n`;
  else if (typeof value === 'symbol') shown = value.toString();
  else if (value === null || typeof value !== 'object') shown = String(value);
  else {
    try {
      shown = JSON.stringify(value) ?? Object.prototype.toString.call(value);
    } catch {
      shown = Object.prototype.toString.call(value);
    }
    if (shown.length > 60) shown = `${shown.slice(0, 57)}...`;
  }
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `\`${shown}\` (${type})`;
}

/** The DESIGN message shape: ``Expected `name` to be …, got `value` (type)``. */
export function expectation(name: string, expected: string, value: unknown): string {
  return `Expected \`${name}\` to be ${expected}, got ${describe(value)}`;
}

/** Runtime misuse, as a rejection value: an {@link InvalidInputError} with the DESIGN message. */
export function invalidInput(name: string, expected: string, value: unknown): InvalidInputError {
  return new InvalidInputError(expectation(name, expected, value));
}

/**
 * Checks per-call options (`{ signal, … }`): the {@link InvalidInputError} to reject with when
 * they are not an object or carry a `signal` that is not an AbortSignal, else `undefined`.
 * Never throws, and allocates nothing for valid options (it runs on every call with options).
 */
export function invalidCallOptions(options: unknown): InvalidInputError | undefined {
  if (typeof options !== 'object' || options === null) {
    return invalidInput('options', 'an object or undefined', options);
  }
  const signal = (options as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    return invalidInput('signal', 'an AbortSignal or undefined', signal);
  }
  return undefined;
}

/**
 * Runs a validator on runtime input and turns its `TypeError` / `RangeError` into an
 * {@link InvalidInputError} with the same message; returns `undefined` when the input is valid.
 */
export function checkInput(check: () => void): InvalidInputError | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    return new InvalidInputError((error as Error).message, { cause: error });
  }
}

function fail(name: string, expected: string, value: unknown, range: boolean): never {
  const message = expectation(name, expected, value);
  throw range ? new RangeError(message) : new TypeError(message);
}

/** Integer ≥ 1, or `Infinity` when `allowInfinity`. */
export function positiveInteger(name: string, value: unknown, allowInfinity = false): number {
  const expected = allowInfinity ? 'a positive integer or Infinity' : 'a positive integer';
  if (typeof value !== 'number' || Number.isNaN(value)) return fail(name, expected, value, false);
  if (value === Infinity && allowInfinity) return value;
  if (!Number.isInteger(value) || value < 1) return fail(name, expected, value, true);
  return value;
}

/** Integer ≥ 0, or `Infinity` when `allowInfinity`. */
export function nonNegativeInteger(name: string, value: unknown, allowInfinity = false): number {
  const expected = allowInfinity ? 'a non-negative integer or Infinity' : 'a non-negative integer';
  if (typeof value !== 'number' || Number.isNaN(value)) return fail(name, expected, value, false);
  if (value === Infinity && allowInfinity) return value;
  if (!Number.isInteger(value) || value < 0) return fail(name, expected, value, true);
  return value;
}

/** Finite number ≥ 0 (a duration in ms, a weight), or `Infinity` when `allowInfinity`. */
export function nonNegativeNumber(name: string, value: unknown, allowInfinity = false): number {
  const expected = allowInfinity ? 'a non-negative number or Infinity' : 'a non-negative finite number';
  if (typeof value !== 'number' || Number.isNaN(value)) return fail(name, expected, value, false);
  if (value === Infinity && allowInfinity) return value;
  if (!Number.isFinite(value) || value < 0) return fail(name, expected, value, true);
  return value;
}

/** Finite number > 0, or `Infinity` when `allowInfinity`. */
export function positiveNumber(name: string, value: unknown, allowInfinity = false): number {
  const expected = allowInfinity ? 'a positive number or Infinity' : 'a positive finite number';
  if (typeof value !== 'number' || Number.isNaN(value)) return fail(name, expected, value, false);
  if (value === Infinity && allowInfinity) return value;
  if (!Number.isFinite(value) || value <= 0) return fail(name, expected, value, true);
  return value;
}

/** Any finite number. */
export function finiteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return fail(name, 'a finite number', value, typeof value === 'number');
  }
  return value;
}

/** An injected clock: an object with a `now()` method returning milliseconds. */
export function clock<C extends { now(): number }>(name: string, value: C): C {
  if (typeof value !== 'object' || value === null || typeof (value as { now?: unknown }).now !== 'function') {
    fail(name, 'an object with a now() method', value, false);
  }
  return value;
}

export function string(name: string, value: unknown): string {
  if (typeof value !== 'string') fail(name, 'a string', value, false);
  return value;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(name, 'a boolean', value, false);
  return value;
}

export function isFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') fail(name, 'a function', value, false);
}

export function optionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') fail(name, 'a function or undefined', value, false);
}

/** One of a fixed set of string literals. */
export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    fail(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value, typeof value === 'string');
  }
  return value as T;
}

/** An options bag: `undefined` or a plain object. */
export function options(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'object' || value === null)) {
    fail(name, 'an object or undefined', value, false);
  }
}

export function abortSignal(name: string, value: unknown): void {
  if (value !== undefined && !(value instanceof AbortSignal))
    fail(name, 'an AbortSignal or undefined', value, false);
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;

/** A duration string (`'250ms'`, `'1.5s'`, `'1m'`, …) in ms, or `undefined` if it is not one. */
function parseDuration(value: string): number | undefined {
  const match = DURATION.exec(value);
  const unit = match?.[2];
  if (match === null || unit === undefined) return undefined;
  return Number(match[1]) * (UNITS[unit] ?? 1);
}

/**
 * A duration in ms that must be positive: a number > 0, `Infinity`, or a string such as
 * `'500ms'` or `'5m'` that parses to more than 0. Every failure is reported as the value the
 * user wrote (`'0ms'` is reported as `"0ms"` (string), not as `0` (number)).
 */
export function positiveDuration(name: string, value: unknown): number {
  const expected =
    "a positive duration in ms (a number, Infinity, or a string like '500ms', '1s', '1m', '1h', '1d')";
  if (typeof value === 'string') {
    const ms = parseDuration(value);
    if (ms === undefined || !(ms > 0)) return fail(name, expected, value, true);
    return ms;
  }
  if (typeof value !== 'number' || Number.isNaN(value)) return fail(name, expected, value, false);
  if (!(value > 0)) return fail(name, expected, value, true);
  return value;
}

/**
 * A duration in ms: a non-negative number, or a string such as `'250ms'`, `'1.5s'`, `'1m'`,
 * `'2h'`, `'1d'`. Parsed once, at construction.
 */
export function duration(name: string, value: unknown, allowInfinity = false): number {
  if (typeof value === 'string') {
    const ms = parseDuration(value);
    if (ms === undefined) {
      return fail(name, "a duration in ms or a string like '500ms', '1s', '1m', '1h', '1d'", value, true);
    }
    return ms;
  }
  return nonNegativeNumber(name, value, allowInfinity);
}
