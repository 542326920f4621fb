// CommonJS consumer: `require()` of every subpath export. sluice ships ES modules only; Node
// loads them from `require` since 20.19 and 22.12 (the versions `engines` names).
const assert = require('node:assert/strict');
const exportMap = require('sluice/package.json').exports;

const subpaths = Object.keys(exportMap).filter((k) => !k.includes('*') && k !== './package.json');
for (const subpath of subpaths) {
  const specifier = subpath === '.' ? 'sluice' : `sluice/${subpath.slice(2)}`;
  const mod = require(specifier);
  assert.ok(Object.keys(mod).length > 0, `${specifier} exports nothing`);
}
const { Limiter } = require('sluice/limit');
const { Cache } = require('sluice/cache');
const limiter = new Limiter({ concurrency: 1 });
const cache = new Cache({ maxSize: 10 });
limiter
  .run(() => cache.getOrLoad('k', async () => 'v'))
  .then((value) => {
    assert.equal(value, 'v');
    console.log(`cjs: ${subpaths.length} subpath exports required`);
  })
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
