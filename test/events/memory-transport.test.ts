import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryTransport } from '../../src/events/memory-transport.js';
import type { TransportEntry } from '../../src/events/transport.js';

const ids = (entries: readonly TransportEntry[]): string[] => entries.map((e) => e.id);

describe('MemoryTransport', () => {
  it('ids stay strictly increasing when the clock stalls or goes back', async () => {
    let now = 1000;
    const log = new MemoryTransport({ clock: { now: () => now } });
    const a = await log.append([
      { type: 'x', payload: 1 },
      { type: 'x', payload: 2 },
    ]);
    now = 500; // back
    const b = await log.append([{ type: 'x', payload: 3 }]);
    now = 1000.7; // same ms
    const c = await log.append([{ type: 'x', payload: 4 }]);
    now = 2000;
    const d = await log.append([{ type: 'x', payload: 5 }]);
    assert.deepEqual([...a, ...b, ...c, ...d], ['1000-0', '1000-1', '1000-2', '1000-3', '2000-0']);
    const entries = await log.read('0', { count: 10, blockMs: 0 });
    assert.deepEqual(
      entries.map((e) => e.time),
      [1000, 1000, 1000, 1000, 2000],
    );
    assert.ok(Object.isFrozen(entries[0]), 'entries are frozen');
    now = Number.NaN;
    await assert.rejects(log.append([{ type: 'x', payload: 6 }]), { code: 'SLUICE_INVALID_INPUT' });
  });

  it('payloads are kept by reference (not copied)', async () => {
    const log = new MemoryTransport();
    const payload = { big: [1, 2, 3] };
    await log.append([{ type: 'x', payload }]);
    const [entry] = await log.read('0-0', { count: 1, blockMs: 0 });
    assert.equal(entry?.payload, payload);
  });

  it('property: read(after) equals the model (the retained suffix after the cursor), for any appends', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: -3, max: 3 })), {
          maxLength: 30,
        }),
        fc.integer({ min: 1, max: 8 }),
        async (maxLength, batches, count) => {
          let now = 10;
          const log = new MemoryTransport({ maxLength, clock: { now: () => now } });
          const all: string[] = [];
          for (const [size, step] of batches) {
            now = Math.max(0, now + step);
            all.push(
              ...(await log.append(Array.from({ length: size }, (_, i) => ({ type: 't', payload: i })))),
            );
          }
          const kept = all.slice(-maxLength);
          for (const cursor of ['0-0', ...all]) {
            const got = ids(await log.read(cursor, { count, blockMs: 0 }));
            const at = all.indexOf(cursor);
            const expected = kept.filter((id) => all.indexOf(id) > at).slice(0, count);
            assert.deepEqual(got, expected, `after ${cursor}`);
          }
          assert.equal(await log.lastId(), all.at(-1) ?? '0-0');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a pending entry trimmed from the ring leaves the pending list; claim uses the injected clock', async () => {
    let now = 1000;
    const log = new MemoryTransport({ maxLength: 3, clock: { now: () => now } });
    await log.createGroup('g', '0');
    const written = await log.append([1, 2, 3].map((payload) => ({ type: 't', payload })));
    assert.equal((await log.readGroup('g', 'c1', { count: 3, blockMs: 0 })).length, 3);
    now = 1100;
    await log.append([{ type: 't', payload: 4 }]); // trims entry 1
    now = 5000;
    const claimed = await log.claim('g', 'c2', 1000, 10);
    assert.deepEqual(ids(claimed), written.slice(1));
    assert.deepEqual(await log.claim('g', 'c3', 1, 10), [], 'no time has passed on the clock');
  });

  it('a group read blocked in several consumers: one append goes to one of them, the next to another', async () => {
    const log = new MemoryTransport();
    await log.createGroup('g', '$');
    const r1 = log.readGroup('g', 'c1', { count: 10, blockMs: 2000 });
    const r2 = log.readGroup('g', 'c2', { count: 10, blockMs: 2000 });
    const [first] = await log.append([{ type: 't', payload: 1 }]);
    assert.deepEqual(ids(await r1), [first], 'the oldest waiter first');
    const [second] = await log.append([{ type: 't', payload: 2 }]);
    assert.deepEqual(ids(await r2), [second]);
    await log.close();
  });

  it('bad options throw at construction', () => {
    assert.throws(
      () => new MemoryTransport({ maxLength: 0 }),
      /Expected `maxLength` to be a positive integer or Infinity, got `0`/,
    );
    assert.throws(() => new MemoryTransport({ clock: {} as never }), TypeError);
    assert.equal(new MemoryTransport({ maxLength: Infinity }).maxLength, Infinity);
  });
});
