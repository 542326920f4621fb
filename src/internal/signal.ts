/**
 * Links an AbortSignal to one waiter: `onAbort` runs once if the signal aborts before
 * {@link unlinkSignal} is called. The one place sluice adds and removes abort listeners, so no
 * listener is left behind on a long-lived signal.
 */
export function linkSignal(signal: AbortSignal, onAbort: () => void): () => void {
  signal.addEventListener('abort', onAbort, { once: true });
  return onAbort;
}

export function unlinkSignal(signal: AbortSignal | undefined, listener: (() => void) | undefined): void {
  if (signal !== undefined && listener !== undefined) signal.removeEventListener('abort', listener);
}

/** The rejection for an aborted signal: its reason, unchanged. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason;
}
