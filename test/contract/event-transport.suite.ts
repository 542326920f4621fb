/**
 * The contract every `EventTransport` keeps, as node:test tests: `eventTransportContract(label,
 * open)` registers a `describe(label)` whose tests run concurrently, each on a fresh log that
 * `open` creates (a unique stream key for Redis). A fixture has two transports on the same log:
 * `a` and `b` stand for two processes (for the in-process transport they are one object). Time
 * is real (Redis keeps its own clock for pending entries), with short waits.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ClosedError, InvalidInputError, TransportResetError } from '../../src/errors.js';
import type { EventTransport, GroupEntry, TransportEntry } from '../../src/events/transport.js';

/** Two transports on one fresh log, and how to release them. */
export interface TransportFixture {
  /** "Process" A. */
  readonly a: EventTransport;
  /** "Process" B (the same object as `a` for an in-process transport). */
  readonly b: EventTransport;
  /** Closes both transports (idempotent with a test's own close) and deletes the log. */
  readonly close: () => Promise<void>;
}

/** Options of {@link eventTransportContract}. */
export interface ContractOptions {
  /** How many entries beyond `maxLength` the log may keep (Redis `MAXLEN ~` trims whole nodes). */
  readonly trimSlack: number;
}

type Open = (options: { maxLength: number }) => Promise<TransportFixture>;

const ids = (entries: readonly TransportEntry[]): string[] => entries.map((e) => e.id);

function parse(id: string): [number, number] {
  const [ms, seq] = id.split('-').map(Number);
  return [ms as number, seq as number];
}

function assertIncreasing(list: readonly string[]): void {
  for (let i = 1; i < list.length; i++) {
    const [m0, s0] = parse(list[i - 1] as string);
    const [m1, s1] = parse(list[i] as string);
    assert.ok(m1 > m0 || (m1 === m0 && s1 > s0), `${list[i]} after ${list[i - 1]}`);
  }
}

/** Appends `n` entries (`type` `e`, payload `{ i }`) in batches of `batch`. */
async function fill(t: EventTransport, n: number, batch = 10, from = 0): Promise<string[]> {
  const out: string[] = [];
  for (let i = from; i < from + n; i += batch) {
    const entries = [];
    for (let k = i; k < Math.min(i + batch, from + n); k++) entries.push({ type: 'e', payload: { i: k } });
    out.push(...(await t.append(entries)));
  }
  return out;
}

/** Reads everything after `after`, `count` at a time. */
async function readAll(t: EventTransport, after: string, count = 1000): Promise<TransportEntry[]> {
  const out: TransportEntry[] = [];
  for (let cursor = after; ;) {
    const page = await t.read(cursor, { count, blockMs: 0 });
    if (page.length === 0) return out;
    out.push(...page);
    cursor = (page.at(-1) as TransportEntry).id;
  }
}

/** Registers the contract tests for the transports `open()` gives. */
export function eventTransportContract(label: string, open: Open, options: ContractOptions): void {
  describe(label, { concurrency: true }, () => {
    async function withLog(maxLength: number, body: (f: TransportFixture) => Promise<void>): Promise<void> {
      const f = await open({ maxLength });
      try {
        await body(f);
      } finally {
        await f.close();
      }
    }

    test('one global order: entries appended by two processes read the same by both', () =>
      withLog(1000, async ({ a, b }) => {
        assert.equal(await a.lastId(), '0-0');
        const [fromA, fromB] = await Promise.all([fill(a, 30, 3), fill(b, 30, 4, 100)]);
        const seenA = await readAll(a, '0-0', 7);
        const seenB = await readAll(b, '0', 1000);
        assert.equal(seenA.length, 60);
        assert.deepEqual(ids(seenA), ids(seenB), 'both readers see one order');
        assertIncreasing(ids(seenA));
        assert.deepEqual(new Set(ids(seenA)), new Set([...fromA, ...fromB]));
        // Each writer's entries keep their own order.
        const order = ids(seenA);
        assert.deepEqual(
          order.filter((id) => fromA.includes(id)),
          fromA,
        );
        assert.equal(await b.lastId(), order.at(-1));
      }));

    test('read(after) returns exactly the entries after the cursor; payloads and times round-trip', () =>
      withLog(1000, async ({ a, b }) => {
        const before = Date.now();
        const payloads: unknown[] = [
          { nested: { list: [1, 'two', null], ok: true } },
          'a string ✓',
          42,
          null,
          [],
          { i: 5 },
        ];
        const written = await a.append(payloads.map((payload, i) => ({ type: `t${i}`, payload })));
        const more = await fill(a, 14);
        const all = [...written, ...more];
        for (let i = 0; i < all.length; i++) {
          const page = await b.read(all[i] as string, { count: 5, blockMs: 0 });
          assert.deepEqual(ids(page), all.slice(i + 1, i + 6), `after entry ${i}`);
        }
        const first = await b.read('0-0', { count: payloads.length, blockMs: 0 });
        assert.deepEqual(
          first.map((e) => e.payload),
          payloads,
        );
        assert.deepEqual(
          first.map((e) => e.type),
          payloads.map((_, i) => `t${i}`),
        );
        for (const entry of first) {
          assert.equal(entry.time, parse(entry.id)[0]);
          assert.ok(entry.time >= before - 1000 && entry.time <= Date.now() + 1000, 'time is wall-clock ms');
          assert.equal(entry.error, undefined);
        }
        // A late process replays from '0-0'.
        assert.deepEqual(ids(await readAll(b, '0-0', 3)), all);
        assert.deepEqual(await a.append([]), []);
      }));

    test('the log keeps about maxLength entries; a cursor behind it continues from the oldest kept', () =>
      withLog(10, async ({ a, b }) => {
        const written = await fill(a, 250, 25);
        const kept = await readAll(b, '0-0');
        assert.ok(kept.length >= 10, `kept ${kept.length} ≥ maxLength`);
        assert.ok(kept.length <= 10 + options.trimSlack, `kept ${kept.length} ≤ maxLength + slack`);
        assert.deepEqual(ids(kept), written.slice(-kept.length), 'the newest are kept, in order');
        const behind = await b.read(written[0] as string, { count: 3, blockMs: 0 });
        assert.deepEqual(ids(behind), ids(kept).slice(0, 3));
        assert.equal(await a.lastId(), written.at(-1));
      }));

    test('a blocked read wakes on an append by another process; blockMs passes with []', () =>
      withLog(1000, async ({ a, b }) => {
        const cursor = await a.lastId();
        const started = performance.now();
        const empty = await a.read(cursor, { count: 10, blockMs: 100 });
        const waited = performance.now() - started;
        assert.deepEqual(empty, []);
        assert.ok(waited >= 90, `waited ${waited.toFixed(0)} ms for blockMs 100`);

        const reading = a.read(cursor, { count: 10, blockMs: 5000 });
        await sleep(50);
        const appendedAt = performance.now();
        const [id] = await b.append([{ type: 'wake', payload: 1 }]);
        const got = await reading;
        const latency = performance.now() - appendedAt;
        assert.deepEqual(ids(got), [id]);
        assert.ok(latency < 1000, `woke ${latency.toFixed(0)} ms after the append`);
      }));

    test('aborting a blocked read rejects with signal.reason at once; nothing is lost', () =>
      withLog(1000, async ({ a, b }) => {
        const cursor = await a.lastId();
        const controller = new AbortController();
        const reason = new Error('unsubscribed');
        const reading = a.read(cursor, { count: 10, blockMs: 10_000, signal: controller.signal });
        await sleep(30);
        const abortedAt = performance.now();
        controller.abort(reason);
        await assert.rejects(reading, (error) => error === reason);
        assert.ok(performance.now() - abortedAt < 200, 'rejects promptly');
        await assert.rejects(
          a.read(cursor, { count: 1, blockMs: 1000, signal: controller.signal }),
          (error) => error === reason,
        );
        const [id] = await b.append([{ type: 'after abort', payload: 2 }]);
        assert.deepEqual(ids(await a.read(cursor, { count: 10, blockMs: 1000 })), [id]);
      }));

    test('close() rejects blocked reads and later calls with ClosedError, without waiting for blockMs', async () => {
      const f = await open({ maxLength: 100 });
      try {
        const cursor = await f.a.lastId();
        await f.a.createGroup('g', '$');
        // Handlers first: the reads reject while close() is still quitting the client.
        const reading = assert.rejects(f.a.read(cursor, { count: 10, blockMs: 10_000 }), ClosedError);
        const groupReading = assert.rejects(
          f.a.readGroup('g', 'c', { count: 10, blockMs: 10_000 }),
          ClosedError,
        );
        await sleep(30);
        const closing = performance.now();
        await f.a.close();
        await reading;
        await groupReading;
        assert.ok(performance.now() - closing < 1000, 'close does not wait for blockMs');
        await assert.rejects(f.a.append([{ type: 'x', payload: 1 }]), ClosedError);
        await assert.rejects(f.a.read(cursor, { count: 1, blockMs: 0 }), ClosedError);
        await f.a.close(); // idempotent
      } finally {
        await f.close();
      }
    });

    test('a cursor above the log and a lost group are reported (TransportResetError), not waited on', () =>
      withLog(1000, async ({ a }) => {
        const [id] = await a.append([{ type: 'x', payload: 1 }]);
        const future = `${parse(id as string)[0] + 86_400_000}-0`;
        await assert.rejects(a.read(future, { count: 10, blockMs: 0 }), (error) => {
          assert.ok(error instanceof TransportResetError);
          assert.equal(error.code, 'SLUICE_TRANSPORT_RESET');
          assert.equal(error.lastId, id);
          return true;
        });
        await assert.rejects(a.read(future, { count: 10, blockMs: 100 }), TransportResetError);
        await assert.rejects(a.readGroup('missing', 'c', { count: 1, blockMs: 0 }), (error) => {
          assert.ok(error instanceof TransportResetError);
          assert.equal(error.group, 'missing');
          return true;
        });
        await assert.rejects(a.claim('missing', 'c', 0, 10), TransportResetError);
        await a.ack('missing', [id as string]); // nothing pending there: resolves
      }));

    test('bad input rejects with InvalidInputError (never throws)', () =>
      withLog(1000, async ({ a }) => {
        const bad: (() => Promise<unknown>)[] = [
          () => a.read('nope', { count: 1, blockMs: 0 }),
          () => a.read('0-0', { count: 0, blockMs: 0 }),
          () => a.read('0-0', { count: 1, blockMs: -1 }),
          () => a.append([{ type: 7 as unknown as string, payload: 1 }]),
          () => a.createGroup('', '0'),
          () => a.createGroup('g', 'soon'),
          () => a.readGroup('g', '', { count: 1, blockMs: 0 }),
          () => a.claim('g', 'c', -1, 1),
        ];
        for (const call of bad) await assert.rejects(call(), InvalidInputError);
      }));

    test('huge counts, blockMs and minIdleMs are accepted as the numbers they are', () =>
      withLog(1000, async ({ a }) => {
        await fill(a, 3);
        assert.equal((await a.read('0-0', { count: 1e21, blockMs: 0 })).length, 3);
        assert.equal((await a.read('0-0', { count: 2 ** 53, blockMs: 1e21 })).length, 3);
        await a.createGroup('huge', '0');
        assert.equal((await a.readGroup('huge', 'c', { count: 1e21, blockMs: 1e21 })).length, 3);
        assert.deepEqual(await a.claim('huge', 'c', 1e20, 1e21), [], 'nothing idle that long');
      }));

    test('groups: each entry goes to exactly one consumer of a group while both read', () =>
      withLog(1000, async ({ a, b }) => {
        await a.createGroup('workers', '0');
        await b.createGroup('workers', '0'); // exists: no change
        const total = 60;
        const got = new Map<string, string[]>([
          ['c1', []],
          ['c2', []],
        ]);
        let seen = 0;
        const consume = async (t: EventTransport, consumer: string): Promise<void> => {
          const deadline = performance.now() + 8000;
          while (seen < total && performance.now() < deadline) {
            const batch = await t.readGroup('workers', consumer, { count: 4, blockMs: 100 });
            for (const entry of batch) assert.equal(entry.deliveries, 1);
            got.get(consumer)?.push(...ids(batch));
            seen += batch.length;
            if (batch.length > 0) await t.ack('workers', ids(batch));
          }
        };
        const consumers = Promise.all([consume(a, 'c1'), consume(b, 'c2')]);
        const written = await fill(a, total, 5);
        await consumers;
        const all = [...(got.get('c1') ?? []), ...(got.get('c2') ?? [])];
        assert.equal(all.length, total, 'no entry delivered twice');
        assert.deepEqual(new Set(all), new Set(written), 'every entry delivered');
        assertIncreasing(got.get('c1') ?? []);
        assertIncreasing(got.get('c2') ?? []);
        assert.deepEqual(await a.claim('workers', 'c3', 0, 100), [], 'all acked: nothing to claim');
      }));

    test("groups: two groups each get everything; '$' starts at the end; a blocked group read wakes", () =>
      withLog(1000, async ({ a, b }) => {
        const early = await fill(a, 5);
        await a.createGroup('all', '0');
        await b.createGroup('new', '$');
        const waiting = b.readGroup('new', 'n1', { count: 100, blockMs: 5000 });
        await sleep(30);
        const later = await fill(b, 7, 7);
        assert.deepEqual(ids(await waiting), later, "'$' delivers only what came after");
        const fromAll = await a.readGroup('all', 'x', { count: 100, blockMs: 0 });
        assert.deepEqual(ids(fromAll), [...early, ...later]);
        assert.deepEqual(await a.readGroup('all', 'y', { count: 100, blockMs: 0 }), []);
        assert.deepEqual(fromAll[0]?.payload, { i: 0 });
      }));

    test('groups: unacked entries are reclaimed after minIdleMs with deliveries counted; acked never return', () =>
      withLog(1000, async ({ a, b }) => {
        await a.createGroup('g', '0');
        const written = await fill(a, 4, 4);
        const first = await a.readGroup('g', 'c1', { count: 3, blockMs: 0 });
        assert.deepEqual(ids(first), written.slice(0, 3));
        await a.ack('g', [written[0] as string]);
        assert.deepEqual(await b.claim('g', 'c2', 10_000, 10), [], 'not idle long enough');
        await sleep(150);
        const claimed: GroupEntry[] = await b.claim('g', 'c2', 100, 10);
        assert.deepEqual(ids(claimed), written.slice(1, 3));
        assert.deepEqual(
          claimed.map((e) => e.deliveries),
          [2, 2],
        );
        assert.deepEqual(claimed[0]?.payload, { i: 1 });
        assert.deepEqual(await a.claim('g', 'c1', 100, 10), [], 'just claimed: not idle');
        await sleep(150);
        const again = await a.claim('g', 'c1', 100, 1);
        assert.deepEqual(ids(again), [written[1]]);
        assert.equal(again[0]?.deliveries, 3);
        await a.ack('g', [...ids(claimed), ...ids(again)]);
        await sleep(20);
        assert.deepEqual(await b.claim('g', 'c3', 0, 100), [], 'acked entries never come back');
        const rest = await b.readGroup('g', 'c3', { count: 10, blockMs: 0 });
        assert.deepEqual(ids(rest), [written[3]], 'only the one never delivered');
      }));
  });
}
