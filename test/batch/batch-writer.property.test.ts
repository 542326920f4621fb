import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { BatchWriter } from '../../src/batch/index.js';
import { ClosedError } from '../../src/errors.js';

type Op =
  | { kind: 'add'; wait: boolean; signal: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'complete'; pick: number; fail: boolean }
  | { kind: 'flush' }
  | { kind: 'tick' }
  | { kind: 'close' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('add' as const), wait: fc.boolean(), signal: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), fail: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const) }) },
);

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

it('property: every accepted item is written exactly once or reported to onError; pending ≤ maxPending', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(op, { maxLength: 60, size: 'max' }),
      async (maxItems, maxPending, concurrency, attempts, ops) => {
        const violations: string[] = [];
        const gates: { items: number[]; settle: (fail: boolean) => void }[] = [];
        const written = new Map<number, number>();
        const reported = new Map<number, number>();
        let inFlight = 0;
        // Called only after `writer` is initialised (the flush function runs on a later add).
        const check = () => {
          const pending = writer.pending;
          if (pending > maxPending) violations.push(`pending ${pending} > ${maxPending}`);
        };
        const writer: BatchWriter<number> = new BatchWriter<number>(
          (items) => {
            check();
            if (items.length > maxItems) violations.push(`batch of ${items.length}`);
            inFlight++;
            if (inFlight > concurrency) violations.push(`${inFlight} batches in flight`);
            return new Promise<void>((resolve, reject) => {
              gates.push({
                items: [...items],
                settle: (fail) => {
                  inFlight--;
                  if (fail) reject(new Error('flush failed'));
                  else {
                    for (const i of items) written.set(i, (written.get(i) ?? 0) + 1);
                    resolve();
                  }
                },
              });
            });
          },
          {
            maxItems,
            maxPending,
            concurrency,
            maxWaitMs: 1,
            retry: { attempts, delayMs: 0, jitter: 'none' },
            onError: (items) => {
              for (const i of items) reported.set(i, (reported.get(i) ?? 0) + 1);
            },
          },
        );

        const accepted = new Set<number>();
        const refused = new Set<number>();
        const controllers: { id: number; controller: AbortController }[] = [];
        const calls: Promise<void>[] = [];
        let next = 0;
        for (const o of ops) {
          switch (o.kind) {
            case 'add': {
              const id = next++;
              const controller = o.signal ? new AbortController() : undefined;
              if (controller !== undefined) controllers.push({ id, controller });
              const options = controller === undefined ? undefined : { signal: controller.signal };
              if (o.wait) {
                // addAndWait: accepted iff it shows up written or reported; resolves only if written.
                calls.push(
                  writer.addAndWait(id, options).then(
                    () => {
                      accepted.add(id);
                      if (written.get(id) !== 1)
                        violations.push(`addAndWait ${id} resolved before its write`);
                    },
                    (err: unknown) => {
                      if (err instanceof ClosedError) refused.add(id);
                    },
                  ),
                );
              } else {
                calls.push(
                  writer.add(id, options).then(
                    () => void accepted.add(id),
                    () => void refused.add(id),
                  ),
                );
              }
              break;
            }
            case 'abort': {
              if (controllers.length === 0) break;
              const c = controllers[o.pick % controllers.length]!;
              c.controller.abort(new Error(`abort ${c.id}`));
              break;
            }
            case 'complete': {
              if (gates.length === 0) break;
              const [gate] = gates.splice(o.pick % gates.length, 1);
              gate!.settle(o.fail);
              break;
            }
            case 'flush':
              calls.push(writer.flush());
              break;
            case 'tick':
              await tick();
              break;
            case 'close':
              calls.push(writer.close());
              break;
          }
          check();
        }
        const closing = writer.close();
        for (
          let i = 0;
          i < 200 && (gates.length > 0 || writer.pending > 0 || writer.stats.waiting > 0);
          i++
        ) {
          for (const gate of gates.splice(0)) gate.settle(false);
          await tick();
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        await closing;
        await Promise.all(calls);

        for (let id = 0; id < next; id++) {
          const w = written.get(id) ?? 0;
          const r = reported.get(id) ?? 0;
          const inWriter = w + r;
          if (w > 1 || r > 1 || inWriter > 1) violations.push(`item ${id} written ${w}×, reported ${r}×`);
          if (accepted.has(id) && inWriter !== 1) violations.push(`accepted item ${id} lost`);
          if (refused.has(id) && inWriter !== 0) violations.push(`refused item ${id} was written`);
        }
        const s = writer.stats;
        assert.deepEqual(violations, []);
        assert.equal(s.pending, 0);
        assert.equal(s.written + s.failedItems, s.items);
        assert.equal(s.items, [...written.values()].length + [...reported.values()].length);
      },
    ),
    { numRuns: 200 },
  );
});
