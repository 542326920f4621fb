import { AsyncLocalStorage } from 'node:async_hooks';

/** Runs a function inside the async context captured by {@link captureContext}. */
export type ContextRunner = <R>(fn: () => R) => R;

/**
 * Captures the caller's async context (every `AsyncLocalStorage` store) so that user code run
 * later — a queued task, a batch function, a retry — runs in the context of the call that
 * submitted it, not of whichever callback happened to free a slot or fire a timer.
 */
export function captureContext(): ContextRunner {
  return AsyncLocalStorage.snapshot();
}
