// ESM consumer: static imports of the main entry points, then every subpath export of the
// installed package, each of which must load and export something.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { SluiceError } from 'sluice';
import { Limiter, map } from 'sluice/limit';

const require = createRequire(import.meta.url);
const { exports } = require('sluice/package.json');
const subpaths = Object.keys(exports).filter((k) => !k.includes('*') && k !== './package.json');
for (const subpath of subpaths) {
  const specifier = subpath === '.' ? 'sluice' : `sluice/${subpath.slice(2)}`;
  const mod = await import(specifier);
  assert.ok(Object.keys(mod).length > 0, `${specifier} exports nothing`);
}
await assert.rejects(import('sluice/internal/deque.js'), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });

const limiter = new Limiter({ concurrency: 2 });
assert.deepEqual(await map([1, 2, 3], (x) => limiter.run(() => x * 2), { concurrency: 3 }), [2, 4, 6]);
await assert.rejects(
  limiter.run(42),
  (err) => err instanceof SluiceError && err.code === 'SLUICE_INVALID_INPUT',
);
console.log(`esm: ${subpaths.length} subpath exports imported`);
