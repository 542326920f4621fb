import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { it } from 'node:test';

interface Manifest {
  type: string;
  sideEffects: boolean;
  engines: { node: string };
  dependencies?: Record<string, string>;
  exports: Record<string, null | string | { types: string; default: string }>;
}

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest;

it('package.json: ESM, no runtime dependencies, internal/ hidden, each subpath built from a src entry', async () => {
  assert.equal(manifest.type, 'module');
  assert.equal(manifest.sideEffects, false);
  // require() of ES modules: unflagged from Node 20.19 and 22.12 (the CJS consumer fixture needs it).
  assert.equal(manifest.engines.node, '^20.19.0 || >=22.12.0');
  assert.deepEqual(Object.keys(manifest.dependencies ?? {}), []);
  assert.equal(manifest.exports['./internal/*'], null);
  const index = readFileSync('src/index.ts', 'utf8');
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (target === null || typeof target === 'string') continue;
    const source = target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts');
    assert.ok(existsSync(source), `${subpath} → ${target.default} has no source ${source}`);
    assert.equal(target.types, target.default.replace(/\.js$/, '.d.ts'));
    if (subpath !== '.') {
      const module = source.replace(/^src\//, './').replace(/\.ts$/, '.js');
      assert.ok(index.includes(`'${module}'`), `src/index.ts does not re-export ${module}`);
      // The subpath and the root export the same names.
      const sub = (await import(`../${source}`)) as Record<string, unknown>;
      const root = (await import('../src/index.js')) as Record<string, unknown>;
      for (const name of Object.keys(sub)) assert.equal(root[name], sub[name], `${name} missing from root`);
    }
  }
});
