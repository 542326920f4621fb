import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  BatchResultError,
  ClosedError,
  InvalidInputError,
  QueueFullError,
  RestartIntensityError,
  SluiceError,
  type SluiceErrorCode,
  TimeoutError,
} from '../src/errors.js';

it('errors carry stable codes, cause, and a cross-copy brand', () => {
  const cause = new Error('root');
  const err = new TimeoutError('too slow', { cause });
  assert.equal(err.code, 'SLUICE_TIMEOUT');
  assert.equal(err.name, 'TimeoutError');
  assert.equal(err.cause, cause);
  assert.ok(err instanceof SluiceError && err instanceof Error);
  assert.equal(new QueueFullError('x').code, 'SLUICE_QUEUE_FULL');
  assert.equal(new ClosedError('x').code, 'SLUICE_CLOSED');
  // An error from another copy of the package: same brand, different class identity.
  const foreign = Object.assign(Object.create(Error.prototype) as object, {
    [Symbol.for('sluice.error.code')]: 'SLUICE_CLOSED',
  });
  assert.ok(foreign instanceof SluiceError);
  assert.ok(foreign instanceof ClosedError);
  assert.ok(!(foreign instanceof TimeoutError));
  assert.ok(!(new Error('plain') instanceof SluiceError));
});

it('code is a union of literal codes: a misspelt comparison fails to compile', () => {
  const codes: SluiceErrorCode[] = [
    new QueueFullError('x').code,
    new ClosedError('x').code,
    new TimeoutError('x').code,
    new InvalidInputError('x').code,
    new BatchResultError('x').code,
    new RestartIntensityError('x').code,
  ];
  assert.deepEqual(codes, [
    'SLUICE_QUEUE_FULL',
    'SLUICE_CLOSED',
    'SLUICE_TIMEOUT',
    'SLUICE_INVALID_INPUT',
    'SLUICE_BATCH_RESULT',
    'SLUICE_RESTART_INTENSITY',
  ]);
  const err: SluiceError = new QueueFullError('x');
  // `npm run typecheck` fails if this line compiles, i.e. if `code` were a plain string.
  // @ts-expect-error 'SLUICE_QUEUE_FUL' is not a SluiceErrorCode
  assert.equal(err.code === 'SLUICE_QUEUE_FUL', false);
});

it('RateLimitedError carries the decision and a whole, non-negative retryAfterMs', async () => {
  const { RateLimitedError } = await import('../src/errors.js');
  const err = new RateLimitedError('slow down', { retryAfterMs: 1234.2 });
  assert.equal(err.code, 'SLUICE_RATE_LIMITED');
  assert.equal(err.retryAfterMs, 1235);
  assert.ok(err instanceof SluiceError);
  assert.equal(new RateLimitedError('x', { retryAfterMs: -5 }).retryAfterMs, 0);
  assert.equal(new RateLimitedError('x', { retryAfterMs: Number.NaN }).retryAfterMs, 0);
  const { RateLimiter } = await import('../src/rate/index.js');
  const limiter = new RateLimiter({ policy: '1/1m' });
  limiter.tryConsume('k');
  const decision = limiter.tryConsume('k');
  const fromDecision = new RateLimitedError('x', { decision });
  assert.equal(fromDecision.decision, decision);
  assert.equal(fromDecision.retryAfterMs, decision.retryAfterMs);
  const code: SluiceErrorCode = fromDecision.code;
  assert.equal(code, 'SLUICE_RATE_LIMITED');
});

it('TransportResetError carries lastId or group', async () => {
  const { TransportResetError } = await import('../src/errors.js');
  const err = new TransportResetError('log lost', { lastId: '0-0' });
  assert.equal(err.code, 'SLUICE_TRANSPORT_RESET');
  assert.equal(err.lastId, '0-0');
  assert.equal(err.group, undefined);
  assert.ok(err instanceof SluiceError);
  assert.equal(new TransportResetError('gone', { group: 'g' }).group, 'g');
});
