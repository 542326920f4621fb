import { SluiceError } from '../../errors.js';

/**
 * The HTTP status a sluice error stands for: `SLUICE_RATE_LIMITED` → 429, `SLUICE_QUEUE_FULL` and
 * `SLUICE_CLOSED` → 503 (overloaded or shutting down: retry elsewhere or later),
 * `SLUICE_TIMEOUT` → 504. Anything else — other sluice errors such as `SLUICE_INVALID_INPUT`
 * (a bug, not a condition of the service), non-sluice errors, non-errors — gives `undefined`,
 * so your error handler keeps deciding (`httpStatusOf(err) ?? 500`). The sluice adapters answer
 * `undefined` with 500.
 *
 * @example
 * ```ts
 * import { httpStatusOf } from 'sluice/rate/http';
 * app.setErrorHandler((err, req, reply) => {
 *   reply.code(httpStatusOf(err) ?? 500).send({ error: err.message });
 * });
 * ```
 */
export function httpStatusOf(error: unknown): 429 | 503 | 504 | undefined {
  if (!(error instanceof SluiceError)) return undefined;
  switch (error.code) {
    case 'SLUICE_RATE_LIMITED':
      return 429;
    case 'SLUICE_QUEUE_FULL':
    case 'SLUICE_CLOSED':
      return 503;
    case 'SLUICE_TIMEOUT':
      return 504;
    default:
      return undefined;
  }
}
