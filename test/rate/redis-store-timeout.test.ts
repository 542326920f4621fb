// RedisStore's per-call timeout with one shared timer: each call times out at its own deadline,
// never before it, in call order, and a reply that comes after the timeout is dropped.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parsePolicy } from '../../src/rate/policy.js';
import { RedisStore, type RedisScripting } from '../../src/rate/redis/index.js';

it('times out every hung call at its own deadline, in order, with one timer', async () => {
  const replies: ((reply: unknown) => void)[] = [];
  const client: RedisScripting = {
    evalsha: () => new Promise((resolve) => replies.push(resolve)),
    eval: () => new Promise(() => undefined),
  };
  const store = new RedisStore(client, { timeout: 150 });
  // The store's timer is unref'd (a real client's socket keeps the loop alive); this fake has none.
  const keepAlive = setInterval(() => undefined, 1000);
  const policy = parsePolicy('5/1s', 'p');
  const started = performance.now();
  const settledAt: number[] = [];
  const watch = (p: Promise<unknown>, i: number) =>
    p.then(
      () => assert.fail('no reply was sent'),
      (error: Error) => {
        assert.equal((error as { code?: string }).code, 'SLUICE_TIMEOUT');
        settledAt[i] = performance.now() - started;
      },
    );
  const first = watch(store.consume('a', policy, 1, 0), 0);
  await new Promise((resolve) => setTimeout(resolve, 80));
  const second = watch(store.consume('b', policy, 1, 0), 1);
  const answered = store.consume('c', policy, 1, 0);
  replies[2]!(0); // gcra: tat - now
  assert.equal((await answered).allowed, true);
  await Promise.all([first, second]);
  assert.ok(settledAt[0]! >= 149, `first timed out at ${settledAt[0]} ms`);
  assert.ok(settledAt[1]! >= 80 + 149, `second timed out at ${settledAt[1]} ms, before its deadline`);
  assert.ok(settledAt[1]! > settledAt[0]!);
  replies[0]!(0); // a late reply is dropped, never unhandled
  assert.equal(store.stats.timeouts, 2);
  assert.equal(store.stats.inFlight, 0);
  await store.close();
  clearInterval(keepAlive);
});
