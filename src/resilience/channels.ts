import { channels } from '../internal/channels.js';

/**
 * The module's diagnostics channels, `sluice:resilience:<event>`:
 * - `breaker-state`: `{ breaker, name, from, to }` on every circuit-breaker transition;
 * - `retry`: `{ attempt, delayMs, error }` before every retry wait;
 * - `retry-denied`: `{ attempt, error }` when a retry budget refused a retry;
 * - `error`: `{ error, source, where }` when a user callback (`onStateChange`, `onRetry`,
 *   `retryIf`, `isFailure`, …) threw; the failure is contained there.
 */
export const channel = channels('resilience', ['breaker-state', 'retry', 'retry-denied', 'error']);
