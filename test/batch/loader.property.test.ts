import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { Loader } from '../../src/batch/index.js';

type Op =
  | { kind: 'load'; key: number; signal: boolean }
  | { kind: 'tick' }
  | { kind: 'complete'; pick: number; fail: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'clear'; key: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('load' as const),
      key: fc.integer({ min: 0, max: 7 }),
      signal: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), fail: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('clear' as const), key: fc.integer({ min: 0, max: 7 }) }),
  },
);

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
/** Keys ≡ 4 (mod 5) fail individually; the rest map to `v<key>`. */
const valueOf = (k: number): string | Error => (k % 5 === 4 ? new Error(`e${k}`) : `v${k}`);

it('property: every load settles once with its own value or error; batches ≤ maxBatch, distinct; in flight ≤ maxConcurrentBatches', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom(1, 2, 3, Infinity),
      fc.boolean(),
      fc.boolean(),
      fc.array(op, { maxLength: 50, size: 'max' }),
      async (maxBatch, maxConcurrentBatches, cache, useMap, ops) => {
        const violations: string[] = [];
        const gates: { keys: readonly number[]; settle: (fail: boolean) => void }[] = [];
        let inFlight = 0;
        const loader = new Loader<number, string>(
          (keys, { signal }) => {
            if (keys.length > maxBatch) violations.push(`batch of ${keys.length} > ${maxBatch}`);
            if (new Set(keys).size !== keys.length) violations.push(`duplicate keys ${keys.join(',')}`);
            inFlight++;
            if (inFlight > maxConcurrentBatches) violations.push(`${inFlight} in flight`);
            return new Promise((resolve, reject) => {
              let done = false;
              const settle = (fail: boolean) => {
                if (done) return;
                done = true;
                inFlight--;
                if (fail) reject(new Error('batch'));
                else if (useMap) resolve(new Map(keys.map((k) => [k, valueOf(k)])));
                else resolve(keys.map(valueOf));
              };
              gates.push({ keys, settle });
              signal.addEventListener('abort', () => {
                if (done) return;
                done = true;
                inFlight--;
                reject(signal.reason as Error);
              });
            });
          },
          { maxBatch, maxConcurrentBatches, cache, maxQueue: Infinity },
        );

        const settledCount: number[] = [];
        const loads: { key: number; controller: AbortController | undefined; reason: Error }[] = [];
        const all: Promise<void>[] = [];
        for (const o of ops) {
          switch (o.kind) {
            case 'load': {
              const id = loads.length;
              const controller = o.signal ? new AbortController() : undefined;
              const reason = new Error(`aborted ${id}`);
              loads.push({ key: o.key, controller, reason });
              settledCount[id] = 0;
              const p =
                controller === undefined
                  ? loader.load(o.key)
                  : loader.load(o.key, { signal: controller.signal });
              all.push(
                p.then(
                  (value) => {
                    settledCount[id]!++;
                    if (value !== valueOf(o.key)) violations.push(`load ${id} of ${o.key} got ${value}`);
                  },
                  (err: unknown) => {
                    settledCount[id]!++;
                    const ok =
                      err === reason ||
                      (err instanceof Error && (err.message === `e${o.key}` || err.message === 'batch'));
                    if (!ok) violations.push(`load ${id} of ${o.key} rejected with ${String(err)}`);
                  },
                ),
              );
              break;
            }
            case 'tick':
              await tick();
              break;
            case 'complete': {
              if (gates.length === 0) break;
              const [gate] = gates.splice(o.pick % gates.length, 1);
              gate!.settle(o.fail);
              break;
            }
            case 'abort': {
              const withSignal = loads.filter(
                (l) => l.controller !== undefined && !l.controller.signal.aborted,
              );
              if (withSignal.length === 0) break;
              const l = withSignal[o.pick % withSignal.length]!;
              l.controller!.abort(l.reason);
              break;
            }
            case 'clear':
              loader.clear(o.key);
              break;
          }
        }
        // Drain: settle everything still open, tick after tick.
        for (
          let i = 0;
          i < 100 && (gates.length > 0 || loader.stats.inFlight > 0 || loader.stats.queued > 0);
          i++
        ) {
          await tick();
          for (const gate of gates.splice(0)) gate.settle(false);
        }
        await Promise.all(all);
        await tick();
        for (let id = 0; id < settledCount.length; id++) {
          if (settledCount[id] !== 1) violations.push(`load ${id} settled ${settledCount[id]} times`);
        }
        assert.deepEqual(violations, []);
        const s = loader.stats;
        assert.equal(s.inFlight, 0);
        assert.equal(s.queued, 0);
        assert.equal(s.loads, loads.length);
      },
    ),
    { numRuns: 300 },
  );
});
