import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { Cache } from '../../src/cache/index.js';
import { IntTable } from '../../src/internal/int-table.js';

const N = 30_000;

/** The multiplicative inverse of the old fixed hash multiplier, mod 2^32. */
function inverse(c: number): number {
  let x = c;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(c, x));
  return x;
}
const C_INV = inverse(0x9e37_79b1);
/** Ids whose old (unseeded Fibonacci) hash shares its top bits: one home bucket for all. */
const crafted = Array.from({ length: N }, (_, i) => Math.imul(i + 1, C_INV));
/** Ids that differ only in their high bits. */
const highBits = Array.from({ length: 16_384 }, (_, i) => i << 18);
function randomIds(n: number): number[] {
  let x = 12345;
  return Array.from({ length: n }, () => (x = (Math.imul(x, 1_664_525) + 1_013_904_223) | 0));
}
const random = randomIds(N);

function bestMs(fn: () => void): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    fn();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

function fillCache(ids: readonly number[]): void {
  const cache = new Cache<number, number>({ maxSize: 100_000 });
  for (const id of ids) cache.set(id, id);
  for (const id of ids) if (cache.get(id) !== id) throw new Error(`lost ${id}`);
}

function dedup(ids: readonly number[]): void {
  const seen = new IntTable(ids.length);
  for (const id of ids) if (!seen.set(id, 0)) throw new Error(`duplicate ${id}`);
}

for (const [name, ids] of [
  ['sharing one home bucket under a fixed hash', crafted],
  ['differing only in high bits', highBits],
] as const) {
  it(`crafted int ids ${name} cost about what random ids cost (cache writes, per-batch dedup)`, () => {
    const base = random.slice(0, ids.length);
    const cacheRatio = bestMs(() => fillCache(ids)) / bestMs(() => fillCache(base));
    const dedupRatio = bestMs(() => dedup(ids)) / bestMs(() => dedup(base));
    assert.ok(cacheRatio < 4, `cache: crafted/random time ratio ${cacheRatio.toFixed(1)}`);
    assert.ok(dedupRatio < 4, `dedup: crafted/random time ratio ${dedupRatio.toFixed(1)}`);
  });
}

it('property: an IntTable behaves like a Map, also after long probe runs make it fall back', () => {
  const key = fc.oneof(
    fc.integer({ min: 0, max: 40 }).map((i) => Math.imul(i, C_INV)),
    fc.integer({ min: -20, max: 20 }),
    fc.integer({ min: 0, max: 200 }).map((i) => i << 20),
  );
  type Op =
    { kind: 'set'; key: number; slot: number } | { kind: 'delete' | 'get'; key: number } | { kind: 'clear' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({ kind: fc.constant('set' as const), key, slot: fc.nat({ max: 1000 }) }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), key }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), fc.integer({ min: 1, max: 8 }), (ops, maxProbe) => {
      const table = new IntTable(0, maxProbe);
      const model = new Map<number, number>();
      for (const o of ops) {
        if (o.kind === 'set') assert.equal(table.set(o.key, o.slot), !model.has(o.key));
        if (o.kind === 'set') model.set(o.key, o.slot);
        else if (o.kind === 'delete') assert.equal(table.delete(o.key), model.delete(o.key));
        else if (o.kind === 'get') assert.equal(table.get(o.key), model.get(o.key));
        else {
          table.clear();
          model.clear();
        }
        assert.equal(table.size, model.size);
      }
      for (const [k, slot] of model) assert.equal(table.get(k), slot);
      const entries = [...table.entries()];
      assert.equal(entries.length, model.size);
      for (const [k, slot] of entries) assert.equal(model.get(k), slot);
    }),
    { numRuns: 300 },
  );
});
