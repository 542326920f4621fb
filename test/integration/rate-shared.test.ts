// Two real worker processes behind a round-robin client share one login limit: exactly the
// limit gets through, through Redis and through the parent's store over IPC; per-process stores
// let workers × limit through (the bug of report 001).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCluster } from '../../scenarios/harness/rate-cluster.js';
import { serviceUrl } from '../helpers/services.js';

const base = {
  workers: 2,
  attempts: 16,
  policy: '5/1m',
  prefix: `sluice:test:shared:${process.pid}:${Date.now()}:`,
};

describe('rate limits shared by two processes', () => {
  it('per-process stores let 2 × the limit through', async () => {
    const r = await runCluster({ ...base, kind: 'per-process' });
    assert.equal(r.allowed, 10);
    assert.deepEqual(r.perWorker, [5, 5]);
  });

  it('one store in the parent, reached over IPC: exactly the limit', async () => {
    const r = await runCluster({ ...base, kind: 'ipc' });
    assert.equal(r.allowed, 5);
    assert.equal(r.denied, 11);
    assert.equal(r.retryAfter, '12');
  });

  it('a RedisStore: exactly the limit', async (t) => {
    const url = serviceUrl(t, 'REDIS_URL');
    if (url === undefined) return;
    const r = await runCluster({ ...base, kind: 'redis', prefix: `${base.prefix}redis:` });
    assert.equal(r.allowed, 5);
    assert.equal(r.denied, 11);
    assert.ok(
      r.perWorker.every((n) => n > 0),
      'both workers allowed some',
    );
  });
});
