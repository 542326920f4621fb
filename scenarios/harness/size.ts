/**
 * The size knob: `SLUICE_SCENARIOS=quick` (or `npm start -- --quick`, which sets it before the
 * scenarios load) scales the workloads down, for the test suite; anything else is full size.
 * The only place the environment is read. Scenarios call {@link sized} at module load.
 */
export const SIZE_ENV = 'SLUICE_SCENARIOS';

/** True when the quick size is selected. */
export function isQuick(): boolean {
  return process.env[SIZE_ENV] === 'quick';
}

/** `full` normally, `quick` under the quick size. */
export function sized<T>(full: T, quick: T): T {
  return isQuick() ? quick : full;
}
