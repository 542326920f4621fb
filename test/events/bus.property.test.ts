// Model-based property tests of EventBus. A model keeps, per subscriber, the exact buffer and
// the emits waiting for room that the documented policies imply; every handler call and every
// iterator pull must take exactly the model's oldest buffered event. Handler completions are
// driven by hand (deferred promises), dedup by a fake clock.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { QueueFullError } from '../../src/errors.js';
import { EventBus, type Overflow, type Subscription } from '../../src/events/index.js';

interface Events {
  a: number;
  b: number;
}
type Type = 'a' | 'b';

type Op =
  | {
      kind: 'on';
      type: Type | undefined;
      buffer: number;
      overflow: Overflow;
      concurrency: number;
      replay: number;
      sync: boolean;
    }
  | { kind: 'subscribe'; type: Type | undefined; buffer: number; overflow: Overflow; replay: number }
  | { kind: 'emit'; type: Type; payload: number; wait: boolean }
  | { kind: 'batch'; type: Type; payloads: number[] }
  | { kind: 'complete'; pick: number; fail: boolean }
  | { kind: 'pull'; pick: number }
  | { kind: 'unsubscribe'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'tick' };

const overflow = fc.constantFrom<Overflow>('wait', 'drop-oldest', 'drop-newest', 'error');
const type = fc.constantFrom<Type | undefined>('a', 'b', undefined);
const sinkShape = fc
  .integer({ min: 1, max: 3 })
  .chain((buffer) =>
    fc.record({ buffer: fc.constant(buffer), overflow, replay: fc.integer({ min: 0, max: buffer }), type }),
  );

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record({ shape: sinkShape, concurrency: fc.integer({ min: 1, max: 3 }), sync: fc.boolean() })
      .map(({ shape, concurrency, sync }) => ({ kind: 'on' as const, ...shape, concurrency, sync })),
  },
  { weight: 1, arbitrary: sinkShape.map((shape) => ({ kind: 'subscribe' as const, ...shape })) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('emit' as const),
      type: fc.constantFrom<Type>('a', 'b'),
      payload: fc.integer({ min: 0, max: 3 }),
      wait: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      type: fc.constantFrom<Type>('a', 'b'),
      payloads: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 4 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), fail: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pull' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsubscribe' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 6 }) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const) }) },
);

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Rec {
  seq: number;
  type: Type;
  payload: number;
}

/** One emit call as the model sees it. */
interface EmitState {
  label: string;
  /** Subscribers it still waits for room in. */
  blockedOn: Set<SinkModel>;
  /** A subscriber with `overflow: 'error'` refused it. */
  refused: boolean;
  /** Settles later than when it was taken (emitAndWait), or may reject early (emitBatch). */
  loose: boolean;
  settled: boolean;
  error: unknown;
}

/** Per emitAndWait event: deliveries to handlers not yet finished, and failures among them. */
interface Tracked {
  outstanding: number;
  failures: number;
  /** A replayed copy was delivered: its handler may or may not be waited for. */
  replayed: boolean;
}

interface SinkModel {
  id: number;
  kind: 'handler' | 'iterator';
  type: Type | undefined;
  cap: number;
  overflow: Overflow;
  concurrency: number;
  sync: boolean;
  live: boolean;
  /** Seqs in its buffer, oldest first (replayed ones flagged). */
  buf: { rec: Rec; replayed: boolean }[];
  /** Emits waiting for room, oldest first. */
  blocked: { rec: Rec; emit: EmitState }[];
  dropped: number;
  /** Drops that are not by policy (unsubscribe with a buffer). */
  running: number;
  delivered: number[];
  /** Iterators: what pulls must yield, in order, and what they did yield. */
  expected: (number | 'done')[];
  actual: (number | 'done')[];
  pendingPulls: number;
  ended: boolean;
  handle: Subscription & Partial<AsyncIterator<unknown>>;
}

class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

async function run(
  config: { maxConcurrentHandlers: number; history: number; dedupWindowMs: number },
  ops: Op[],
): Promise<void> {
  const clock = new FakeClock();
  const violations: string[] = [];
  const check = (ok: boolean, message: () => string) => {
    if (!ok && violations.length < 5) violations.push(message());
  };
  let failuresSeen = 0;
  const bus = new EventBus<Events>({
    maxConcurrentHandlers: config.maxConcurrentHandlers,
    history: config.history,
    dedupWindowMs: config.dedupWindowMs,
    clock,
    onError: () => void failuresSeen++,
  });

  const sinks: SinkModel[] = [];
  const emits: EmitState[] = [];
  const history: Rec[] = [];
  const tracked = new Map<number, Tracked>();
  const dedup = new Map<string, number>();
  const pending: { sink: SinkModel; seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  let seq = 0;
  let runningHandlers = 0;
  let modelDropped = 0;
  let modelFailures = 0;
  let modelDeduplicated = 0;

  const matches = (sink: SinkModel, rec: Rec) => sink.type === undefined || sink.type === rec.type;

  /** The bus took `sink`'s oldest buffered event: let the oldest waiting emit in. */
  const take = (sink: SinkModel): { rec: Rec; replayed: boolean } | undefined => {
    const head = sink.buf.shift();
    if (head === undefined) return undefined;
    const next = sink.blocked.shift();
    if (next !== undefined) {
      sink.buf.push({ rec: next.rec, replayed: false });
      next.emit.blockedOn.delete(sink);
    }
    return head;
  };

  const trackDone = (rec: Rec, replayed: boolean, failed: boolean) => {
    const t = tracked.get(rec.seq);
    if (t === undefined) return;
    if (replayed) return;
    t.outstanding--;
    if (failed) t.failures++;
  };

  const onCall = (sink: SinkModel, seqOf: number): unknown => {
    const head = take(sink);
    check(
      head !== undefined && head.rec.seq === seqOf,
      () => `sink ${sink.id} ran #${seqOf}, model expected #${head?.rec.seq ?? 'nothing'}`,
    );
    check(sink.live || sink.buf.length === 0, () => `sink ${sink.id} ran after unsubscribe with a buffer`);
    sink.delivered.push(seqOf);
    sink.running++;
    runningHandlers++;
    check(
      sink.running <= sink.concurrency,
      () => `sink ${sink.id}: ${sink.running} running > concurrency ${sink.concurrency}`,
    );
    check(
      runningHandlers <= config.maxConcurrentHandlers,
      () => `${runningHandlers} handlers running > maxConcurrentHandlers ${config.maxConcurrentHandlers}`,
    );
    const replayed = head?.replayed ?? false;
    const rec = head?.rec;
    if (sink.sync) {
      sink.running--;
      runningHandlers--;
      const fail = seqOf % 4 === 0;
      if (rec !== undefined) trackDone(rec, replayed, fail);
      if (fail) {
        modelFailures++;
        throw new Error(`sync failure #${seqOf}`);
      }
      return undefined;
    }
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Registered before the bus's own reaction: the count drops just before the bus frees the slot.
    const finished = () => {
      sink.running--;
      runningHandlers--;
    };
    promise.then(finished, finished);
    pending.push({
      sink,
      seq: seqOf,
      resolve: () => {
        if (rec !== undefined) trackDone(rec, replayed, false);
        resolve();
      },
      reject: (e) => {
        if (rec !== undefined) trackDone(rec, replayed, true);
        modelFailures++;
        reject(e);
      },
    });
    return promise;
  };

  const offer = (sink: SinkModel, rec: Rec, emit: EmitState, track: Tracked | undefined) => {
    if (!sink.live || !matches(sink, rec)) return;
    const handler = sink.kind === 'handler';
    if (sink.kind === 'iterator' && sink.pendingPulls > 0) {
      // A pull waiting on an empty buffer takes the event at once.
      sink.pendingPulls--;
      sink.expected.push(rec.payload);
      return;
    }
    if (sink.blocked.length === 0 && sink.buf.length < sink.cap) {
      sink.buf.push({ rec, replayed: false });
      if (handler && track !== undefined) track.outstanding++;
      return;
    }
    switch (sink.overflow) {
      case 'wait':
        sink.blocked.push({ rec, emit });
        emit.blockedOn.add(sink);
        if (handler && track !== undefined) track.outstanding++;
        return;
      case 'drop-oldest': {
        const old = sink.buf.shift()!;
        sink.buf.push({ rec, replayed: false });
        sink.dropped++;
        modelDropped++;
        if (handler && track !== undefined) track.outstanding++;
        if (handler) {
          const t = tracked.get(old.rec.seq);
          if (t !== undefined && !old.replayed) {
            t.outstanding--;
            t.failures++;
          }
        }
        return;
      }
      case 'drop-newest':
      case 'error':
        sink.dropped++;
        modelDropped++;
        if (handler && track !== undefined) track.failures++;
        if (sink.overflow === 'error') {
          emit.refused = true;
          // emitAndWait counts an iterator's refusal among its failures too.
          if (!handler && track !== undefined) track.failures++;
        }
        return;
    }
  };

  const publish = (type: Type, payload: number, label: string, wait: boolean): EmitState => {
    const emit: EmitState = {
      label,
      blockedOn: new Set(),
      refused: false,
      loose: wait,
      settled: false,
      error: undefined,
    };
    emits.push(emit);
    if (config.dedupWindowMs > 0) {
      const key = `${type}:${payload}`;
      const first = dedup.get(key);
      if (first !== undefined && clock.t - first < config.dedupWindowMs) {
        modelDeduplicated++;
        return emit;
      }
      dedup.set(key, clock.t);
    }
    const rec: Rec = { seq: ++seq, type, payload };
    history.push(rec);
    if (history.length > config.history) history.shift();
    const track: Tracked | undefined = wait ? { outstanding: 0, failures: 0, replayed: false } : undefined;
    if (track !== undefined) tracked.set(rec.seq, track);
    // Typed subscribers first, then onAny ones, each in subscription order.
    for (const sink of sinks) if (sink.type !== undefined) offer(sink, rec, emit, track);
    for (const sink of sinks) if (sink.type === undefined) offer(sink, rec, emit, track);
    return emit;
  };

  const watch = (emit: EmitState, promise: Promise<void>, rec: number | undefined) => {
    promise.then(
      () => {
        emit.settled = true;
        if (rec !== undefined) settledTracked(rec, undefined);
      },
      (error: unknown) => {
        emit.settled = true;
        emit.error = error;
        if (rec !== undefined) settledTracked(rec, error);
      },
    );
  };

  const settledTracked = (s: number, error: unknown) => {
    const t = tracked.get(s);
    if (t === undefined) return;
    check(
      t.outstanding === 0,
      () => `emitAndWait #${s} settled with ${t.outstanding} handler deliveries unfinished`,
    );
    if (t.failures > 0)
      check(
        error instanceof AggregateError,
        () => `emitAndWait #${s} resolved despite ${t.failures} failures`,
      );
    if (error instanceof AggregateError)
      check(t.failures > 0 || t.replayed, () => `emitAndWait #${s} rejected without a failure`);
    tracked.delete(s);
  };

  const live = () => sinks.filter((s) => s.live);

  const checkState = (where: string) => {
    let buffered = 0;
    for (const sink of sinks) {
      const stats = sink.handle.stats;
      check(
        stats.buffered <= sink.cap,
        () => `${where}: sink ${sink.id} buffered ${stats.buffered} > ${sink.cap}`,
      );
      check(
        stats.buffered === sink.buf.length,
        () => `${where}: sink ${sink.id} buffered ${stats.buffered}, model ${sink.buf.length}`,
      );
      check(
        stats.waiting === sink.blocked.length,
        () => `${where}: sink ${sink.id} waiting ${stats.waiting}, model ${sink.blocked.length}`,
      );
      check(
        stats.dropped === sink.dropped,
        () => `${where}: sink ${sink.id} dropped ${stats.dropped}, model ${sink.dropped}`,
      );
      buffered += sink.buf.length;
    }
    const stats = bus.stats;
    check(stats.buffered === buffered, () => `${where}: bus buffered ${stats.buffered}, model ${buffered}`);
    check(
      stats.dropped === modelDropped,
      () => `${where}: bus dropped ${stats.dropped}, model ${modelDropped}`,
    );
    check(stats.emitted === seq, () => `${where}: bus emitted ${stats.emitted}, model ${seq}`);
    check(
      stats.deduplicated === modelDeduplicated,
      () => `${where}: deduplicated ${stats.deduplicated}, model ${modelDeduplicated}`,
    );
    check(
      stats.running <= config.maxConcurrentHandlers,
      () => `${where}: ${stats.running} running > ${config.maxConcurrentHandlers}`,
    );
  };

  /** After the event loop turned: each emit has settled exactly when the model says it took. */
  const checkEmits = (where: string) => {
    for (const emit of emits) {
      const done = emit.blockedOn.size === 0;
      if (emit.loose) {
        check(
          !emit.settled || done || emit.error !== undefined,
          () => `${where}: ${emit.label} settled early`,
        );
        continue;
      }
      check(emit.settled === done, () => `${where}: ${emit.label} settled=${emit.settled}, model ${done}`);
      if (emit.settled) {
        const queueFull =
          emit.error instanceof QueueFullError ||
          (emit.error instanceof AggregateError &&
            emit.error.errors.some((e) => e instanceof QueueFullError));
        check(
          queueFull === emit.refused || emit.loose,
          () => `${where}: ${emit.label} error ${String(emit.error)}`,
        );
      }
    }
  };

  const addSink = (
    kind: SinkModel['kind'],
    o: { type: Type | undefined; buffer: number; overflow: Overflow; replay: number },
    concurrency: number,
    sync: boolean,
  ) => {
    const sink: SinkModel = {
      id: sinks.length,
      kind,
      type: o.type,
      cap: o.buffer,
      overflow: o.overflow,
      concurrency,
      sync,
      live: true,
      buf: [],
      blocked: [],
      dropped: 0,
      running: 0,
      delivered: [],
      expected: [],
      actual: [],
      pendingPulls: 0,
      ended: false,
      handle: undefined as never,
    };
    const replayed = history.filter((r) => matches(sink, r)).slice(-o.replay);
    for (const rec of o.replay === 0 ? [] : replayed) {
      sink.buf.push({ rec, replayed: true });
      const t = tracked.get(rec.seq);
      if (t !== undefined && kind === 'handler') t.replayed = true;
    }
    const options = { buffer: o.buffer, overflow: o.overflow, replay: o.replay };
    if (kind === 'handler') {
      sink.handle =
        o.type === undefined
          ? bus.onAny((event) => onCall(sink, event.seq), { ...options, concurrency })
          : bus.on(o.type, (_payload, event) => onCall(sink, event.seq), { ...options, concurrency });
    } else {
      sink.handle = o.type === undefined ? bus.subscribeAny(options) : bus.subscribe(o.type, options);
      if (bus.closed) sink.ended = true;
    }
    sinks.push(sink);
  };

  const pull = (sink: SinkModel) => {
    const iterator = sink.handle as unknown as AsyncIterator<unknown>;
    const head = take(sink);
    if (head !== undefined) sink.expected.push(head.rec.payload);
    else if (sink.ended || !sink.live) sink.expected.push('done');
    else sink.pendingPulls++;
    iterator.next().then(
      (r) => {
        const value = r.value as number | { payload: number } | undefined;
        sink.actual.push(r.done === true ? 'done' : typeof value === 'number' ? value : value!.payload);
      },
      (error: unknown) => void violations.push(`sink ${sink.id}: next() rejected ${String(error)}`),
    );
  };

  const unsubscribe = (sink: SinkModel) => {
    sink.live = false;
    for (const { rec, replayed } of sink.buf) {
      sink.dropped++;
      modelDropped++;
      if (sink.kind === 'handler' && !replayed) {
        const t = tracked.get(rec.seq);
        if (t !== undefined) t.outstanding--;
      }
    }
    sink.buf = [];
    for (const { rec, emit } of sink.blocked) {
      emit.blockedOn.delete(sink);
      if (sink.kind === 'handler') {
        const t = tracked.get(rec.seq);
        if (t !== undefined) t.outstanding--;
      }
    }
    sink.blocked = [];
    for (; sink.pendingPulls > 0; sink.pendingPulls--) sink.expected.push('done');
    sink.handle.unsubscribe();
  };

  for (const [i, o] of ops.entries()) {
    const where = `op ${i} ${o.kind}`;
    switch (o.kind) {
      case 'on':
        addSink('handler', o, o.concurrency, o.sync);
        break;
      case 'subscribe':
        addSink('iterator', o, 1, false);
        break;
      case 'emit': {
        const label = `${o.wait ? 'emitAndWait' : 'emit'}(${o.type}, ${o.payload})`;
        const before = seq;
        const emit = publish(o.type, o.payload, label, o.wait);
        const rec = seq > before && o.wait ? seq : undefined;
        watch(emit, o.wait ? bus.emitAndWait(o.type, o.payload) : bus.emit(o.type, o.payload), rec);
        break;
      }
      case 'batch': {
        // One promise for the batch: it settles once every one of its events was taken.
        const parts = o.payloads.map((p) => publish(o.type, p, `batch part ${p}`, false));
        emits.splice(emits.length - parts.length, parts.length);
        const all: EmitState = {
          label: `emitBatch(${o.type}, [${o.payloads.join()}])`,
          get blockedOn() {
            return new Set(parts.flatMap((p) => [...p.blockedOn]));
          },
          refused: parts.some((p) => p.refused),
          loose: true,
          settled: false,
          error: undefined,
        };
        emits.push(all);
        watch(all, bus.emitBatch(o.type, o.payloads), undefined);
        break;
      }
      case 'complete': {
        if (pending.length === 0) break;
        const [call] = pending.splice(o.pick % pending.length, 1);
        if (o.fail) call!.reject(new Error(`failure #${call!.seq}`));
        else call!.resolve();
        break;
      }
      case 'pull': {
        const iterators = live().filter((s) => s.kind === 'iterator');
        if (iterators.length > 0) pull(iterators[o.pick % iterators.length]!);
        break;
      }
      case 'unsubscribe': {
        const candidates = live();
        if (candidates.length > 0) unsubscribe(candidates[o.pick % candidates.length]!);
        break;
      }
      case 'advance':
        clock.t += o.ms;
        break;
      case 'tick':
        await tick();
        await tick();
        checkEmits(where);
        break;
    }
    checkState(where);
    if (violations.length > 0) break;
  }

  // Shutdown: close, then finish every handler and read every iterator until close resolves.
  if (violations.length === 0) {
    let closed = false;
    const closing = bus.close().then(() => (closed = true));
    for (const sink of live()) {
      if (sink.kind !== 'iterator') continue;
      sink.ended = true;
      if (sink.buf.length === 0)
        for (; sink.pendingPulls > 0; sink.pendingPulls--) sink.expected.push('done');
    }
    const busy = () => !closed || live().some((s) => s.kind === 'iterator' && s.buf.length > 0);
    for (let round = 0; round < 500 && busy() && violations.length === 0; round++) {
      for (const call of pending.splice(0)) call.resolve();
      for (const sink of live()) if (sink.kind === 'iterator' && sink.buf.length > 0) pull(sink);
      await tick();
      await tick();
      checkState(`shutdown round ${round}`);
    }
    check(closed, () => `close() did not resolve; bus ${JSON.stringify(bus.stats)}`);
    check(pending.length === 0, () => `${pending.length} handler calls started after close resolved`);
    if (closed) await closing;
    checkEmits('after close');
    for (const emit of emits) check(emit.settled, () => `${emit.label} never settled`);
    for (const sink of live()) {
      check(sink.buf.length === 0 && sink.blocked.length === 0, () => `sink ${sink.id} not drained`);
    }
  }

  for (const sink of sinks) {
    if (sink.kind === 'iterator') {
      check(
        JSON.stringify(sink.actual) === JSON.stringify(sink.expected),
        () => `iterator ${sink.id} yielded ${sink.actual.join()}, model ${sink.expected.join()}`,
      );
    } else {
      check(
        sink.handle.stats.delivered === sink.delivered.length,
        () => `sink ${sink.id} stats.delivered ${sink.handle.stats.delivered} ≠ ${sink.delivered.length}`,
      );
    }
    // Exactly once, in order: the seqs a subscriber saw strictly increase, except for replayed
    // ones which come first and precede every live one.
    for (let k = 1; k < sink.delivered.length; k++) {
      check(
        sink.delivered[k]! > sink.delivered[k - 1]!,
        () => `sink ${sink.id} saw ${sink.delivered.join()} (not strictly increasing)`,
      );
    }
  }
  if (violations.length === 0) {
    check(
      bus.stats.failures === modelFailures,
      () => `failures ${bus.stats.failures}, model ${modelFailures}`,
    );
    check(failuresSeen === modelFailures, () => `onError saw ${failuresSeen}, model ${modelFailures}`);
    check(
      JSON.stringify(bus.history().map((e) => e.seq)) === JSON.stringify(history.map((r) => r.seq)),
      () =>
        `history ${bus
          .history()
          .map((e) => e.seq)
          .join()}, model ${history.map((r) => r.seq).join()}`,
    );
    check(bus.stats.running === 0 && bus.stats.waiting === 0, () => `not idle: ${JSON.stringify(bus.stats)}`);
  }
  assert.deepEqual(violations, []);
}

it('property: every subscriber gets exactly the events emitted while it was live, in order, as its buffer and overflow policy dictate; bounds hold; replay joins live with no gap; emitAndWait and close settle last', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        maxConcurrentHandlers: fc.constantFrom(1, 2, 3, Infinity),
        history: fc.integer({ min: 0, max: 6 }),
        dedupWindowMs: fc.constantFrom(0, 0, 5),
      }),
      fc.array(op, { minLength: 1, maxLength: 60 }),
      run,
    ),
    { numRuns: Number(process.env.RUNS ?? 300), verbose: 1 },
  );
});

it('property: the dedup table never holds more than dedupMaxKeys keys', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 20 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 8 })), { maxLength: 200 }),
      async (maxKeys, windowMs, steps) => {
        const clock = new FakeClock();
        const bus = new EventBus<Events>({
          dedupWindowMs: windowMs,
          dedupMaxKeys: maxKeys,
          clock,
          history: 0,
        });
        for (const [payload, advance] of steps) {
          clock.t += advance;
          await bus.emit('a', payload);
          assert.ok(bus.stats.dedupKeys <= maxKeys, `${bus.stats.dedupKeys} keys > ${maxKeys}`);
        }
        await bus.close();
      },
    ),
    { numRuns: 200 },
  );
});
