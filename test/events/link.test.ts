// The transport path of EventBus under adversarial transports: reads that return entries out of
// order or twice, appends that settle after close gave up, entries trimmed before they are read,
// transport methods that throw synchronously, a log lost in a reset, and the clocks the group
// loop schedules claims with.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ClosedError, TransportResetError } from '../../src/errors.js';
import { EventBus, MemoryTransport, type EventTransport } from '../../src/events/index.js';
import type { TransportEntry, TransportReadOptions } from '../../src/events/transport.js';
import { deferred, until } from '../helpers/async.js';

interface Events {
  job: number;
}

/** A MemoryTransport whose methods a test can override one by one. */
function wrap(log: MemoryTransport, overrides: Partial<EventTransport>): EventTransport {
  return {
    append: (entries) => log.append(entries),
    read: (after, options) => log.read(after, options),
    lastId: () => log.lastId(),
    createGroup: (group, start) => log.createGroup(group, start),
    readGroup: (group, consumer, options) => log.readGroup(group, consumer, options),
    ack: (group, ids) => log.ack(group, ids),
    claim: (group, consumer, minIdleMs, count) => log.claim(group, consumer, minIdleMs, count),
    close: () => log.close(),
    ...overrides,
  };
}

describe('EventBus over a transport: the read loop', () => {
  it('never delivers an entry twice when a read returns entries out of order or repeated', async () => {
    const log = new MemoryTransport();
    let mangle = true;
    const transport = wrap(log, {
      read: async (after: string, options: TransportReadOptions): Promise<TransportEntry[]> => {
        const entries = await log.read(after, options);
        if (!mangle || entries.length < 3) return entries;
        mangle = false;
        // [e1, e2, e3] comes back as [e1, e3, e3, e2, e1]
        return [entries[0]!, entries[2]!, entries[2]!, entries[1]!, entries[0]!];
      },
    });
    const bus = new EventBus<Events>({ transport, start: 'oldest' });
    const seen: number[] = [];
    bus.on('job', (n) => void seen.push(n));
    await log.append([1, 2, 3].map((n) => ({ type: 'job', payload: n })));
    await until(() => seen.length >= 2, 'two events');
    await log.append([{ type: 'job', payload: 4 }]);
    await until(() => seen.includes(4), 'the fourth event');
    await bus.close();
    assert.equal(new Set(seen).size, seen.length, `no duplicate in ${seen.join()}`);
    await log.close();
  });
});

describe('EventBus over a transport: close and emitAndWait', () => {
  it('stops delivering read entries once close({ signal }) gave up, and its loops end', async () => {
    const log = new MemoryTransport();
    const bus = new EventBus<Events>({ transport: log, start: 'oldest', buffer: 1 });
    const iterator = bus.subscribe('job', { buffer: 1 });
    await bus.emitBatch('job', [1, 2, 3, 4, 5]); // its own: close() waits to read them back
    // The read loop is blocked on the full iterator (1 buffered, 2 waiting).
    await until(() => bus.stats.buffered === 1, 'the iterator full');
    const ac = new AbortController();
    const closing = bus.close({ signal: ac.signal });
    ac.abort(new Error('give up'));
    await assert.rejects(closing, /give up/);
    const seen: number[] = [];
    for await (const n of iterator) seen.push(n);
    assert.ok(seen.length <= 1, `no event delivered after close gave up: ${seen.join()}`);
    // A second close resolves: the link's loops ended.
    await Promise.race([
      bus.close(),
      sleep(1000).then(() => assert.fail('close() hangs after close({ signal }) gave up')),
    ]);
    await log.close();
  });

  it('emitAndWait whose append settles after close({ signal }) gave up rejects with ClosedError', async () => {
    const log = new MemoryTransport();
    const gate = deferred();
    const transport = wrap(log, {
      append: async (entries) => {
        await gate.promise;
        return log.append(entries);
      },
    });
    const bus = new EventBus<Events>({ transport });
    bus.on('job', () => undefined);
    const waiting = bus.emitAndWait('job', 1);
    const ac = new AbortController();
    const closing = bus.close({ signal: ac.signal });
    ac.abort(new Error('give up'));
    await assert.rejects(closing, /give up/);
    gate.resolve();
    await Promise.race([
      assert.rejects(waiting, ClosedError),
      sleep(1000).then(() => assert.fail('emitAndWait never settles')),
    ]);
    await log.close();
  });

  it('emitAndWait whose entry is trimmed from the log before this bus reads it rejects, and is not kept', async () => {
    const log = new MemoryTransport({ maxLength: 4 });
    let hold: Promise<void> | undefined = undefined;
    const transport = wrap(log, {
      read: async (after, options) => {
        if (hold !== undefined) await hold;
        return log.read(after, options);
      },
    });
    const gate = deferred();
    hold = gate.promise;
    const bus = new EventBus<Events>({ transport });
    bus.on('job', () => undefined);
    const waits = [bus.emitAndWait('job', 1), bus.emitAndWait('job', 2)];
    for (const w of waits) w.catch(() => undefined);
    await sleep(10);
    // Other processes fill the log before this bus's read loop gets to read: 1 and 2 are trimmed.
    await log.append(Array.from({ length: 10 }, (_, i) => ({ type: 'job', payload: 100 + i })));
    hold = undefined;
    gate.resolve();
    for (const w of waits) {
      await Promise.race([
        assert.rejects(w, /trimmed/),
        sleep(2000).then(() => assert.fail('emitAndWait never settles')),
      ]);
    }
    await bus.close();
    await log.close();
  });

  it('emitAndWait whose entry comes back undecodable rejects with the decode error', async () => {
    const log = new MemoryTransport();
    const transport = wrap(log, {
      read: async (after, options) =>
        (await log.read(after, options)).map((e) => ({
          ...e,
          payload: undefined,
          error: new Error('bad codec'),
        })),
    });
    const bus = new EventBus<Events>({ transport });
    bus.on('job', () => undefined);
    await Promise.race([
      assert.rejects(bus.emitAndWait('job', 1), /bad codec/),
      sleep(2000).then(() => assert.fail('emitAndWait never settles')),
    ]);
    await bus.close();
    await log.close();
  });

  it('close() resolves when a reset lost the events this bus appended', async () => {
    let log = new MemoryTransport();
    let hold: Promise<void> | undefined = undefined;
    const transport = wrap(log, {
      append: (entries) => log.append(entries),
      read: async (after, options) => {
        if (hold !== undefined) await hold;
        return log.read(after, options);
      },
      lastId: () => log.lastId(),
    });
    const bus = new EventBus<Events>({ transport });
    const seen: number[] = [];
    bus.on('job', (n) => void seen.push(n));
    await bus.emit('job', 1);
    await until(() => seen.length === 1, 'the first event');
    const gate = deferred();
    hold = gate.promise;
    await log.append([{ type: 'other', payload: 0 }]); // the read loop issues its next read (held)
    await sleep(5);
    const waiting = bus.emitAndWait('job', 2);
    waiting.catch(() => undefined);
    await sleep(5); // appended
    // Redis restarted without persistence before this bus read its event back: a new log.
    const old = log;
    log = new MemoryTransport({ clock: { now: () => 1000 } });
    await old.close();
    hold = undefined;
    gate.resolve();
    await until(() => bus.stats.transportErrors > 0, 'the reset seen');
    await Promise.race([
      bus.close(),
      sleep(2000).then(() => assert.fail('close() waits for an event the reset lost')),
    ]);
    await assert.rejects(waiting, TransportResetError);
    await log.close();
  });
});

describe('EventBus over a transport: consumer groups', () => {
  it('an ack that throws synchronously is reported, never thrown into the handler path', async () => {
    const log = new MemoryTransport();
    const transport = wrap(log, {
      ack: () => {
        throw new Error('sync ack');
      },
    });
    const bus = new EventBus<Events>({ transport, start: 'oldest' });
    const handled: number[] = [];
    bus.on('job', (n) => void handled.push(n), { group: 'g', concurrency: 2 });
    await bus.emit('job', 1);
    await bus.emit('job', 2);
    await until(() => handled.length === 2 && bus.stats.transportErrors >= 2, 'both handled, acks reported');
    await bus.close();
    await log.close();
  });

  it('schedules claims on the injected clock', async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const log = new MemoryTransport({ clock });
    const bus = new EventBus<Events>({ transport: log, start: 'oldest', clock, claimAfterMs: 60_000 });
    let calls = 0;
    bus.on(
      'job',
      () => {
        if (++calls === 1) throw new Error('first try fails');
      },
      { group: 'g' },
    );
    await bus.emit('job', 1);
    await until(() => calls === 1, 'first delivery');
    now += 61_000;
    await until(() => calls === 2, 'the failed event claimed again', 3000);
    await bus.close();
    await log.close();
  });

  it('claimAfterMs: Infinity never claims and reports no transport error', async () => {
    const log = new MemoryTransport();
    const bus = new EventBus<Events>({ transport: log, start: 'oldest', claimAfterMs: Infinity });
    const handled: number[] = [];
    bus.on('job', (n) => void handled.push(n), { group: 'g' });
    await bus.emit('job', 1);
    await until(() => handled.length === 1, 'handled');
    await bus.close();
    assert.equal(bus.stats.transportErrors, 0);
    await log.close();
  });
});
