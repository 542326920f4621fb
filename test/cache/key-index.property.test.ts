import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { KeyIndex } from '../../src/cache/key-index.js';

type Op =
  { kind: 'set'; key: unknown; slot: number } | { kind: 'delete' | 'get'; key: unknown } | { kind: 'clear' };

// Few distinct keys, so that sets, deletes and probe-run collisions interleave; int32 edges,
// -0, NaN, non-integers and strings that look like numbers must stay distinct where a Map
// keeps them distinct.
const key = fc.oneof(
  fc.integer({ min: -12, max: 12 }),
  fc.constantFrom(0, -0, NaN, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 32 + 1, 1.5, '1', '-0', 'a'),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((n) => n & ~0xff),
);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('set' as const), key, slot: fc.nat({ max: 1_000_000 }) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
);

it('property: KeyIndex behaves exactly like a Map<key, slot>', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 20, maxLength: 300, size: 'max' }), (ops) => {
      const index = new KeyIndex<unknown>();
      const model = new Map<unknown, number>();
      for (const o of ops) {
        if (o.kind === 'set') {
          index.set(o.key, o.slot);
          model.set(o.key, o.slot);
        } else if (o.kind === 'delete') {
          assert.equal(index.delete(o.key), model.delete(o.key));
        } else if (o.kind === 'get') {
          assert.equal(index.get(o.key), model.get(o.key));
        } else {
          index.clear();
          model.clear();
        }
        assert.equal(index.size, model.size);
        for (const [k, slot] of model) assert.equal(index.get(k), slot, 'every indexed key is found');
      }
      const entries = [...index.entries()];
      assert.equal(entries.length, model.size);
      for (const [k, slot] of entries) assert.equal(model.get(k), slot);
      for (const [k, slot] of model) assert.equal(index.get(k), slot);
    }),
    { numRuns: 500 },
  );
});

it('KeyIndex: 100k integer keys churned through a window of 1000 stay exact', () => {
  const index = new KeyIndex<number>();
  for (let k = 0; k < 100_000; k++) {
    index.set(k * 7919, k);
    if (k >= 1000) assert.equal(index.delete((k - 1000) * 7919), true);
  }
  assert.equal(index.size, 1000);
  for (let k = 99_000; k < 100_000; k++) assert.equal(index.get(k * 7919), k);
  assert.equal(index.get(0), undefined);
});
