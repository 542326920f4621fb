import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ClosedError, QueueFullError, SluiceError, TimeoutError } from '../src/errors.js';

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
