import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { Router, type RoutePermit, type RouteStrategy } from '../../src/route/index.js';

type Op =
  | { readonly kind: 'add'; readonly id: number; readonly load: number }
  | { readonly kind: 'remove'; readonly id: number }
  | { readonly kind: 'update'; readonly id: number; readonly load: number }
  | { readonly kind: 'acquire' }
  | { readonly kind: 'release'; readonly k: number }
  | { readonly kind: 'pick' }
  | { readonly kind: 'tick'; readonly ms: number };

const IDS = 12;
// Few distinct loads, so ties are frequent.
const load = fc.oneof(fc.integer({ min: -3, max: 6 }), fc.constant(Infinity));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), id: fc.nat(IDS - 1), load }),
  fc.record({ kind: fc.constant('remove' as const), id: fc.nat(IDS - 1) }),
  fc.record({ kind: fc.constant('update' as const), id: fc.nat(IDS - 1), load }),
  fc.constant({ kind: 'acquire' as const }),
  fc.constant({ kind: 'acquire' as const }),
  fc.record({ kind: fc.constant('release' as const), k: fc.nat() }),
  fc.constant({ kind: 'pick' as const }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 50 }) }),
);

interface Held {
  readonly permit: RoutePermit<number>;
  readonly id: number;
  readonly generation: number;
}

/**
 * Replays `ops` on a Router and on an O(n) model. With `userLoad`, loads come from a map the
 * ops set (and `update` re-reads); without, the load is the in-flight count the model tracks.
 * `check(picked, min, live)` runs on every pick / acquire with the model's minimum load.
 */
function replay(
  ops: readonly Op[],
  strategy: RouteStrategy,
  userLoad: boolean,
  check: (picked: number, pickedLoad: number, min: number, live: ReadonlySet<number>) => void,
): void {
  let now = 0;
  let seed = 1;
  const loads = new Map<number, number>(); // user loads, by id (also of removed ids)
  const inFlight = new Map<number, number>(); // live targets' unreleased permits
  const generation = new Map<number, number>();
  const held: Held[] = [];
  const router = new Router<number>([], {
    strategy,
    clock: { now: () => now },
    random: () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646,
    ...(userLoad ? { load: (id: number) => loads.get(id) ?? 0 } : {}),
  });
  const current = (id: number): number => (userLoad ? (loads.get(id) ?? 0) : (inFlight.get(id) ?? 0));
  const chosen = (id: number): void => {
    const live = new Set(inFlight.keys());
    let min = Infinity;
    for (const t of live) min = Math.min(min, current(t));
    check(id, current(id), min, live);
  };
  for (const o of ops) {
    switch (o.kind) {
      case 'add':
        if (inFlight.has(o.id)) {
          assert.throws(() => router.add(o.id), /already added/);
          break;
        }
        loads.set(o.id, o.load);
        router.add(o.id);
        inFlight.set(o.id, 0);
        generation.set(o.id, (generation.get(o.id) ?? 0) + 1);
        break;
      case 'remove':
        assert.equal(router.remove(o.id), inFlight.delete(o.id));
        break;
      case 'update':
        loads.set(o.id, o.load);
        assert.equal(router.update(o.id), inFlight.has(o.id));
        break;
      case 'acquire': {
        if (inFlight.size === 0) {
          assert.equal(router.tryAcquire(), undefined);
          break;
        }
        const permit = router.tryAcquire() as RoutePermit<number>;
        chosen(permit.target);
        const id = permit.target;
        inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
        held.push({ permit, id, generation: generation.get(id) ?? 0 });
        break;
      }
      case 'release': {
        if (held.length === 0) break;
        const [h] = held.splice(o.k % held.length, 1) as [Held];
        h.permit.release();
        h.permit.release(); // idempotent
        if (inFlight.has(h.id) && generation.get(h.id) === h.generation) {
          inFlight.set(h.id, (inFlight.get(h.id) ?? 0) - 1);
        }
        break;
      }
      case 'pick':
        if (inFlight.size === 0) assert.throws(() => router.pick(), /has no targets/);
        else chosen(router.pick());
        break;
      case 'tick':
        now += o.ms;
        break;
    }
    assert.equal(router.size, inFlight.size);
    assert.equal(router.stats.inFlight, held.length);
    for (const [id, n] of inFlight) {
      assert.equal(router.inFlight(id), n);
      assert.equal(router.loadOf(id), current(id));
    }
  }
}

const runs = { numRuns: 300 };

it('least-loaded: after any add / remove / update / acquire / release, pick returns a minimum-load target', () => {
  for (const userLoad of [true, false]) {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 150, size: 'max' }), (ops) => {
        replay(ops, 'least-loaded', userLoad, (picked, pickedLoad, min, live) => {
          assert.ok(live.has(picked), `picked ${picked}, not a current target`);
          assert.equal(pickedLoad, min, `picked ${picked} with load ${pickedLoad}, minimum is ${min}`);
        });
      }),
      runs,
    );
  }
});

it('least-loaded: equal targets take turns (each of k tied targets once per k picks)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 5 }), (k, rounds) => {
      const router = new Router(Array.from({ length: k }, (_, i) => i));
      const counts = new Array<number>(k).fill(0);
      for (let i = 0; i < k * rounds; i++) counts[router.pick()]!++;
      assert.ok(counts.every((c) => c === rounds));
    }),
  );
});

for (const strategy of ['p2c', 'peak-ewma', 'round-robin'] as const) {
  it(`${strategy}: a pick is always a current target, never a removed one; counts stay exact`, () => {
    for (const userLoad of [true, false]) {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 150, size: 'max' }), (ops) => {
          replay(ops, strategy, userLoad, (picked, _load, _min, live) => {
            assert.ok(live.has(picked), `picked ${picked}, not a current target`);
          });
        }),
        runs,
      );
    }
  });
}

it('p2c: never picks the single most loaded of ≥ 2 targets when loads are distinct', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 1000 }), { minLength: 2, maxLength: 30 }),
      fc.nat(),
      (loads, s) => {
        let seed = s + 1;
        const router = new Router(
          loads.map((_, i) => i),
          {
            strategy: 'p2c',
            load: (i) => loads[i] ?? 0,
            random: () => ((seed = (seed * 48271) % 2147483647) - 1) / 2147483646,
          },
        );
        const worst = loads.indexOf(Math.max(...loads));
        for (let i = 0; i < 50; i++) assert.notEqual(router.pick(), worst);
      },
    ),
  );
});
