import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { Cache, type CacheLoadContext } from '../../src/cache/index.js';

type Op =
  | { kind: 'set'; key: number; weight: number; ttl: number | undefined }
  | { kind: 'getOrSet'; key: number; weight: number }
  | { kind: 'get' | 'peek' | 'has' | 'delete'; key: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'prune' | 'clear' };

const key = fc.integer({ min: 0, max: 7 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      key,
      weight: fc.integer({ min: 1, max: 6 }),
      ttl: fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined }),
    }),
  },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('get' as const), key }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('getOrSet' as const),
      key,
      weight: fc.integer({ min: 1, max: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('peek' as const, 'has' as const), key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 1500 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('prune' as const, 'clear' as const) }) },
);

interface Written {
  readonly value: string;
  readonly weight: number;
  readonly expiresAt: number;
}

it('property: size ≤ maxSize, weight ≤ maxWeight, no expired or wrong value is ever returned', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('s3-fifo' as const, 'lru' as const),
      fc.integer({ min: 1, max: 6 }),
      fc.option(fc.integer({ min: 6, max: 14 }), { nil: undefined }),
      fc.option(fc.integer({ min: 100, max: 3000 }), { nil: undefined }),
      fc.constantFrom(0, 0, 500),
      fc.array(op, { maxLength: 120, size: 'max' }),
      (policy, maxSize, maxWeight, ttl, staleWhileRevalidate, ops) => {
        const clock = { t: 0, now: () => clock.t };
        const cache = new Cache<number, string>({
          maxSize,
          policy,
          clock,
          staleWhileRevalidate,
          ...(ttl === undefined ? {} : { ttl }),
          ...(maxWeight === undefined
            ? {}
            : { maxWeight, weigh: (_k: number, v: string) => Number(v.split(':')[1]) }),
        });
        const model = new Map<number, Written>();
        let serial = 0;
        const live = (k: number): Written | undefined => {
          const w = model.get(k);
          return w !== undefined && w.expiresAt > clock.t ? w : undefined;
        };
        for (const o of ops) {
          switch (o.kind) {
            case 'set': {
              const value = `${serial++}:${o.weight}`;
              cache.set(o.key, value, o.ttl === undefined ? undefined : { ttl: o.ttl });
              const life = o.ttl ?? ttl ?? Infinity;
              model.set(o.key, { value, weight: o.weight, expiresAt: clock.t + life });
              if (maxWeight === undefined || o.weight <= maxWeight) {
                assert.equal(cache.peek(o.key), value, 'the entry just written is readable');
              } else {
                assert.equal(cache.has(o.key), false, 'an overweight entry is not stored');
              }
              break;
            }
            case 'getOrSet': {
              const value = `${serial++}:${o.weight}`;
              const before = live(o.key);
              const got = cache.getOrSet(o.key, value);
              if (got !== undefined) {
                assert.equal(got, before?.value, 'getOrSet returned a wrong or expired value');
              } else {
                // A miss (absent, expired or evicted): the value is stored, as by set.
                model.set(o.key, { value, weight: o.weight, expiresAt: clock.t + (ttl ?? Infinity) });
                if (maxWeight === undefined || o.weight <= maxWeight) assert.equal(cache.peek(o.key), value);
                else assert.equal(cache.has(o.key), false, 'an overweight entry is not stored');
              }
              break;
            }
            case 'get':
            case 'peek': {
              const got = o.kind === 'get' ? cache.get(o.key) : cache.peek(o.key);
              if (got !== undefined)
                assert.equal(got, live(o.key)?.value, `${o.kind} returned a wrong or expired value`);
              break;
            }
            case 'has':
              if (cache.has(o.key))
                assert.ok(live(o.key) !== undefined, 'has() of an expired or unknown key');
              break;
            case 'delete':
              cache.delete(o.key);
              model.delete(o.key);
              assert.equal(cache.has(o.key), false);
              break;
            case 'advance':
              clock.t += o.ms;
              break;
            case 'prune':
              cache.prune();
              break;
            case 'clear':
              cache.clear();
              model.clear();
              assert.equal(cache.size, 0);
              break;
          }
          assert.ok(cache.size <= maxSize, `size ${cache.size} > maxSize ${maxSize}`);
          if (maxWeight !== undefined) assert.ok(cache.stats.weight <= maxWeight, 'weight over maxWeight');
          let weight = 0;
          for (const [k, v] of cache.entries()) {
            assert.equal(v, live(k)?.value, 'entries() yields only live, current values');
            weight += Number(v.split(':')[1]);
          }
          if (maxWeight !== undefined) assert.ok(weight <= cache.stats.weight);
        }
      },
    ),
    { numRuns: 400 },
  );
});

type LruOp = { kind: 'set' | 'get' | 'getOrSet' | 'peek' | 'delete'; key: number };

it('property: policy "lru" holds exactly what a reference LRU holds', () => {
  const lruOp: fc.Arbitrary<LruOp> = fc.record({
    kind: fc.constantFrom(
      'set' as const,
      'set' as const,
      'get' as const,
      'getOrSet' as const,
      'peek' as const,
      'delete' as const,
    ),
    key: fc.integer({ min: 0, max: 9 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(lruOp, { maxLength: 150, size: 'max' }),
      (maxSize, ops) => {
        const cache = new Cache<number, number>({ maxSize, policy: 'lru' });
        let order: number[] = []; // least recent first
        for (const o of ops) {
          const at = order.indexOf(o.key);
          if (o.kind === 'set') {
            cache.set(o.key, o.key);
            if (at !== -1) order.splice(at, 1);
            else if (order.length === maxSize) order.shift();
            order.push(o.key);
          } else if (o.kind === 'get') {
            assert.equal(cache.get(o.key), at === -1 ? undefined : o.key);
            if (at !== -1) order.push(...order.splice(at, 1));
          } else if (o.kind === 'getOrSet') {
            // A hit is a get; a miss is a set.
            assert.equal(cache.getOrSet(o.key, o.key), at === -1 ? undefined : o.key);
            if (at !== -1) order.splice(at, 1);
            else if (order.length === maxSize) order.shift();
            order.push(o.key);
          } else if (o.kind === 'peek') {
            assert.equal(cache.peek(o.key), at === -1 ? undefined : o.key);
          } else {
            cache.delete(o.key);
            order = order.filter((k) => k !== o.key);
          }
          assert.deepEqual([...cache.keys()].sort(), [...order].sort());
        }
      },
    ),
    { numRuns: 300 },
  );
});

type LoadOp =
  | { kind: 'call'; key: number; signal: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'settle'; pick: number; fail: boolean };

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

it('property: one load per key at a time; every waiter settles exactly once under random aborts', async () => {
  const loadOp: fc.Arbitrary<LoadOp> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('call' as const),
        key: fc.integer({ min: 0, max: 2 }),
        signal: fc.boolean(),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), fail: fc.boolean() }),
    },
  );
  // Each op with whether the event loop turns after it: without a turn, the next op (an abort,
  // a settle) lands before the loaders just started have run.
  const opsArb = fc.array(fc.tuple(loadOp, fc.boolean()), { maxLength: 60, size: 'max' });
  await fc.assert(
    fc.asyncProperty(opsArb, async (ops) => {
      const cache = new Cache<number, string>({ maxSize: 2 });
      interface Load {
        readonly key: number;
        readonly signal: AbortSignal;
        readonly resolve: (v: string) => void;
        readonly reject: (e: unknown) => void;
        settled: boolean;
      }
      const loads: Load[] = [];
      const loader = (k: number, { signal }: CacheLoadContext) =>
        new Promise<string>((resolve, reject) => {
          loads.push({ key: k, signal, resolve, reject, settled: false });
        });
      interface Call {
        readonly key: number;
        readonly controller: AbortController | undefined;
        settlements: number;
        outcome?: { ok: true; value: string } | { ok: false; error: unknown };
      }
      const calls: Call[] = [];
      const pending: Promise<void>[] = [];
      const failures = new Map<Load, Error>();

      const checkSingleFlight = () => {
        for (let k = 0; k <= 2; k++) {
          const running = loads.filter((l) => l.key === k && !l.settled && !l.signal.aborted).length;
          assert.ok(running <= 1, `${running} loads of key ${k} at once`);
        }
      };

      for (const [o, turn] of ops) {
        if (o.kind === 'call') {
          const controller = o.signal ? new AbortController() : undefined;
          const call: Call = { key: o.key, controller, settlements: 0 };
          calls.push(call);
          pending.push(
            cache
              .getOrLoad(o.key, loader, controller === undefined ? undefined : { signal: controller.signal })
              .then(
                (value) => {
                  call.settlements++;
                  call.outcome = { ok: true, value };
                },
                (error: unknown) => {
                  call.settlements++;
                  call.outcome = { ok: false, error };
                },
              ),
          );
        } else if (o.kind === 'abort') {
          const withSignal = calls.filter((c) => c.controller !== undefined && !c.controller.signal.aborted);
          const c = withSignal[o.pick % Math.max(withSignal.length, 1)];
          c?.controller?.abort(new Error(`abort ${calls.indexOf(c)}`));
        } else {
          const open = loads.filter((l) => !l.settled);
          const l = open[o.pick % Math.max(open.length, 1)];
          if (l !== undefined) {
            l.settled = true;
            if (o.fail) {
              const error = new Error(`load ${loads.indexOf(l)} failed`);
              failures.set(l, error);
              l.reject(error);
            } else {
              l.resolve(`${l.key}:${loads.indexOf(l)}`);
            }
          }
        }
        checkSingleFlight();
        if (turn) await flush();
        checkSingleFlight();
        assert.ok(cache.size <= 2);
      }
      // Settle whatever is left, then abort every signal: nothing may settle twice.
      for (let round = 0; round < 3; round++) {
        for (const l of loads) {
          if (!l.settled) {
            l.settled = true;
            l.resolve(`${l.key}:${loads.indexOf(l)}`);
          }
        }
        await flush();
      }
      for (const c of calls) c.controller?.abort(new Error('late'));
      await Promise.all(pending);
      await flush();
      const errors = new Set<unknown>(failures.values());
      for (const c of calls) {
        assert.equal(c.settlements, 1, 'every waiter settles exactly once');
        const outcome = c.outcome!;
        if (outcome.ok) {
          assert.equal(outcome.value.split(':')[0], String(c.key), 'a waiter gets a value of its own key');
        } else if (!errors.has(outcome.error)) {
          assert.ok(c.controller !== undefined, 'a waiter without a signal is never aborted');
          assert.equal(
            outcome.error,
            c.controller.signal.reason,
            'an aborted waiter rejects with its own reason',
          );
          assert.notEqual(
            (outcome.error as Error).message,
            'late',
            'a settled waiter is not aborted afterwards',
          );
        }
      }
      assert.equal(cache.stats.inFlight, 0);
    }),
    { numRuns: 200 },
  );
});
