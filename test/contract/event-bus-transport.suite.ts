/**
 * What an `EventBus` over an `EventTransport` guarantees, as node:test tests run on any
 * transport: `eventBusTransportContract(label, open)` registers a `describe(label)`; each test
 * opens two transports on one fresh log (`a` and `b`, two "processes") and builds a bus on each.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { EventBus, type EventBusOptions } from '../../src/events/index.js';
import type { TransportFixture } from './event-transport.suite.js';
import { until } from '../helpers/async.js';

interface Events {
  job: { n: number; from: string };
  other: number;
}

type Open = () => Promise<TransportFixture>;

export function eventBusTransportContract(label: string, openLog: Open): void {
  describe(label, { concurrency: true }, () => {
    // A test that fails before its own cleanup must not leave connections open (the file would
    // never exit): every log is closed after the suite, which also stops the buses on it.
    const opened = new Set<TransportFixture>();
    after(() => Promise.all(Array.from(opened, (fixture) => fixture.close())));
    const open = async (): Promise<TransportFixture> => {
      const fixture = await openLog();
      opened.add(fixture);
      return fixture;
    };

    const pair = async (options: EventBusOptions<Events> = {}) => {
      const fixture = await open();
      const a = new EventBus<Events>({ ...options, transport: fixture.a, name: 'a' });
      const b = new EventBus<Events>({ ...options, transport: fixture.b, name: 'b' });
      return { fixture, a, b };
    };

    test('every bus sees every event once, in one global order, its own included', async () => {
      const { fixture, a, b } = await pair();
      const seenA: string[] = [];
      const seenB: string[] = [];
      a.on('job', ({ n, from }) => void seenA.push(`${from}${n}`));
      b.on('job', ({ n, from }) => void seenB.push(`${from}${n}`));
      // Let both read loops take their starting cursor before anything is appended.
      await Promise.all([a.emit('other', 0), b.emit('other', 0)]);
      const emits: Promise<void>[] = [];
      for (let n = 0; n < 50; n++) {
        emits.push(a.emit('job', { n, from: 'a' }), b.emit('job', { n, from: 'b' }));
      }
      await Promise.all(emits);
      await until(() => seenA.length === 100 && seenB.length === 100, '100 events on each bus');
      await Promise.all([a.close(), b.close()]);
      assert.deepEqual(seenA, seenB, 'one order');
      assert.equal(new Set(seenA).size, 100, 'no duplicates');
      for (const from of ['a', 'b']) {
        const mine = seenA.filter((s) => s.startsWith(from)).map((s) => Number(s.slice(1)));
        assert.deepEqual(mine, [...Array(50).keys()], `${from}'s events keep their emit order`);
      }
      await fixture.close();
    });

    test('emitAndWait resolves after this bus ran its handlers; close delivers its own last events first', async () => {
      const { fixture, a, b } = await pair();
      const ran: number[] = [];
      a.on('job', async ({ n }) => {
        await sleep(2);
        ran.push(n);
      });
      await a.emitAndWait('job', { n: 1, from: 'a' });
      assert.deepEqual(ran, [1]);
      for (let n = 2; n <= 20; n++) void a.emit('job', { n, from: 'a' });
      await a.close();
      assert.deepEqual(
        ran,
        [...Array(20).keys()].map((i) => i + 1),
      );
      await b.close();
      await fixture.close();
    });

    test("a late bus with start: 'oldest' replays the log, then goes on live", async () => {
      const fixture = await open();
      const a = new EventBus<Events>({ transport: fixture.a });
      for (let n = 0; n < 10; n++) await a.emit('job', { n, from: 'a' });
      const late = new EventBus<Events>({ transport: fixture.b, start: 'oldest' });
      const seen: number[] = [];
      late.on('job', ({ n }) => void seen.push(n));
      await a.emit('job', { n: 10, from: 'a' });
      await until(() => seen.length === 11, 'replay plus live');
      assert.deepEqual(seen, [...Array(11).keys()]);
      await Promise.all([a.close(), late.close()]);
      await fixture.close();
    });

    test('dedup is decided by the log: both buses drop the same duplicates', async () => {
      const { fixture, a, b } = await pair({ dedupWindowMs: 60_000 });
      const seenA: number[] = [];
      const seenB: number[] = [];
      a.on('job', ({ n }) => void seenA.push(n));
      b.on('job', ({ n }) => void seenB.push(n));
      await Promise.all([a.emit('other', 0), b.emit('other', 0)]);
      await Promise.all([
        a.emit('job', { n: 1, from: 'x' }),
        b.emit('job', { n: 1, from: 'x' }),
        a.emit('job', { n: 2, from: 'x' }),
      ]);
      await until(
        () => a.stats.deduplicated + seenA.length >= 3 && b.stats.deduplicated + seenB.length >= 3,
        'all read',
      );
      await Promise.all([a.close(), b.close()]);
      assert.deepEqual(seenA, [1, 2]);
      assert.deepEqual(seenB, [1, 2]);
      await fixture.close();
    });

    test('a consumer group handles each event once across buses, retries failures, gives up after maxDeliveries', async () => {
      // claimAfterMs well above an ack's round trip on a loaded machine: a slow ack is otherwise a
      // legitimate (at-least-once) second delivery, which this test counts as a failure.
      const { fixture, a, b } = await pair({ claimAfterMs: 400, maxDeliveries: 3 });
      const handled = new Map<number, string[]>();
      let failOnce = true;
      const handler =
        (name: string) =>
        async ({ n }: { n: number }) => {
          if (n === 7 && failOnce) {
            failOnce = false;
            throw new Error('transient');
          }
          if (n === 13) throw new Error('poison');
          await sleep(1);
          handled.set(n, [...(handled.get(n) ?? []), name]);
        };
      a.on('job', handler('a'), { group: 'indexer' });
      b.on('job', handler('b'), { group: 'indexer' });
      // The group is created by the first group read of each bus; give them that moment.
      await sleep(50);
      for (let n = 0; n < 20; n++) await (n % 2 === 0 ? a : b).emit('job', { n, from: 'x' });
      await until(
        () => handled.size === 19 && a.stats.deadLettered + b.stats.deadLettered === 1,
        'group done',
        10_000,
      );
      for (const [n, by] of handled) assert.equal(by.length, 1, `event ${n} handled once (${by.join()})`);
      assert.ok(!handled.has(13));
      assert.ok(handled.has(7), 'the failed event was claimed and handled again');
      const both = new Set([...handled.values()].flat());
      assert.ok(both.has('a') && both.has('b'), 'both consumers took part');
      await Promise.all([a.close(), b.close()]);
      await fixture.close();
    });

    test('a group consumer that leaves without handling its events leaves them to the group', async () => {
      const fixture = await open();
      const a = new EventBus<{ n: number }>({ transport: fixture.a, start: 'oldest', claimAfterMs: 100 });
      const b = new EventBus<{ n: number }>({ transport: fixture.b, start: 'oldest', claimAfterMs: 100 });
      const handled: number[] = [];
      let started!: () => void;
      const first = new Promise<void>((resolve) => (started = resolve));
      a.on(
        'n',
        async (n) => {
          started();
          await sleep(50);
          handled.push(n);
        },
        { group: 'g', concurrency: 3 },
      );
      await a.emitBatch('n', [1, 2, 3]);
      await first;
      // a gives up at once: whatever it had not finished must not be acknowledged.
      await a.close({ signal: AbortSignal.abort() }).catch(() => undefined);
      b.on('n', (n) => void handled.push(n), { group: 'g' });
      await until(() => new Set(handled).size === 3, 'b to take over what a left');
      await b.close();
      assert.deepEqual([...new Set(handled)].sort(), [1, 2, 3]);
      await fixture.close();
    });

    test('a slow group handler is never claimed back by its own bus', async () => {
      const fixture = await open();
      const bus = new EventBus<{ n: number }>({ transport: fixture.a, start: 'oldest', claimAfterMs: 100 });
      const handled: number[] = [];
      bus.on(
        'n',
        async (n) => {
          await sleep(20);
          handled.push(n);
        },
        { group: 'g' },
      );
      await bus.emitBatch(
        'n',
        Array.from({ length: 20 }, (_, i) => i),
      );
      await until(() => handled.length >= 20, '20 events handled');
      await sleep(150);
      await bus.close();
      assert.deepEqual(
        handled,
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.equal(bus.stats.deadLettered, 0);
      await fixture.close();
    });
  });
}
