import type { Channel } from 'node:diagnostics_channel';

/**
 * Publishes the failure of a user callback that must not escape (an `onEvict`, an `onError`,
 * a hook run from a timer) on `channel` as `{ error, source, where }`. The caller catches,
 * counts it in its stats and calls this; nothing is rethrown.
 */
export function reportError(channel: Channel, error: unknown, source: object, where: string): void {
  if (channel.hasSubscribers) channel.publish({ error, source, where });
}

/**
 * Watches what a user callback returned: if it is a thenable, its rejection is reported like a
 * throw (`onFailure` is called to count it) instead of becoming an unhandled rejection.
 */
export function watchResult(
  result: unknown,
  channel: Channel,
  source: object,
  where: string,
  onFailure?: () => void,
): void {
  if (result === null || (typeof result !== 'object' && typeof result !== 'function')) return;
  let then: unknown;
  try {
    then = (result as { then?: unknown }).then;
  } catch {
    return;
  }
  if (typeof then !== 'function') return;
  try {
    (then as (ok: unknown, fail: (e: unknown) => void) => unknown).call(
      result,
      undefined,
      (error: unknown) => {
        onFailure?.();
        reportError(channel, error, source, where);
      },
    );
  } catch {
    // A thenable whose then throws has no rejection to watch.
  }
}
