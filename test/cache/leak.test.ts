import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { it } from 'node:test';
import { Cache } from '../../src/cache/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
const skip = gc === undefined ? 'needs --expose-gc (npm test passes it)' : false;

async function settleHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    gc!();
  }
  return process.memoryUsage().heapUsed;
}

it('Cache: 100k aborted getOrLoad waits leave no flight, listener or heap behind', { skip }, async () => {
  const cache = new Cache<string, number>({ maxSize: 100 });
  let started = 0;
  let loadsAborted = 0;
  // Loads that never finish on their own: only the waiters' aborts can end them.
  const loader = (_key: string, { signal }: { signal: AbortSignal }) =>
    new Promise<number>((_resolve, reject) => {
      started++;
      signal.addEventListener('abort', () => {
        loadsAborted++;
        reject(signal.reason as Error);
      });
    });
  const baseline = await settleHeap();
  for (let round = 0; round < 10; round++) {
    const reason = new Error(`gone ${round}`);
    const controllers: AbortController[] = [];
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < 10_000; i++) {
      const controller = new AbortController();
      controllers.push(controller);
      // 100 keys per round, 100 waiters sharing each key's one load.
      waits.push(
        cache.getOrLoad(`k${round}:${i % 100}`, loader, { signal: controller.signal }).then(
          () => assert.fail('an aborted wait resolved'),
          (error: unknown) => assert.equal(error, reason),
        ),
      );
    }
    assert.equal(cache.stats.inFlight, 100);
    for (const c of controllers) c.abort(reason);
    assert.ok(controllers.every((c) => getEventListeners(c.signal, 'abort').length === 0));
    await Promise.all(waits);
    assert.equal(cache.stats.inFlight, 0, 'every load is dropped once all its waiters left');
  }
  assert.equal(started, 1000, 'one load per key, shared by its 100 waiters');
  assert.equal(loadsAborted, 1000, 'each load aborted, once, when its last waiter aborted');
  assert.equal(cache.stats.loadsAborted, 1000);
  assert.equal(cache.size, 0, 'nothing stored from an aborted load');
  const grown = (await settleHeap()) - baseline;
  assert.ok(grown < 2 * 1024 * 1024, `heap grew by ${grown} bytes after 100k aborted waits`);
});
