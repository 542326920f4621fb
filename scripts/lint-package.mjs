// npm run lint:package — checks the package as it would be published, from its tarball:
//   1. `npm pack` (needs `npm run build` first);
//   2. publint --strict, and @arethetypeswrong/cli with the esm-only profile: sluice ships ES
//      modules only (require() of them works on the Node versions `engines` names), so attw's
//      node10 and node16-from-CJS resolutions are out of scope, and everything else must pass;
//   3. installs the tarball into a scratch project and runs the consumer fixtures of
//      test/consumers/: ESM import and CommonJS require() of every subpath export, and the
//      TypeScript consumer type-checked with module nodenext, node16 and bundler.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (cmd, args, cwd = root) => {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  execFileSync(cmd, args, { cwd, stdio: 'inherit' });
};

if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('lint:package: dist/ is missing; run `npm run build` first');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'sluice-package-'));
try {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' }),
  );
  const tarball = join(work, packed[0].filename);
  console.log(`packed ${packed[0].filename}: ${packed[0].entryCount} files, ${packed[0].size} bytes`);

  run(bin('publint'), ['--strict', '--pack', 'npm', '.']);
  run(bin('attw'), ['--profile', 'esm-only', '--no-emoji', '--no-color', tarball]);

  const consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'sluice-consumer', private: true, type: 'module' }, null, 2),
  );
  run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--offline', tarball], consumer);
  // Type declarations of Node (AbortSignal, Disposable) come from the repository's @types.
  symlinkSync(join(root, 'node_modules', '@types'), join(consumer, 'node_modules', '@types'), 'dir');
  for (const file of ['esm.mjs', 'cjs.cjs', 'consumer.ts']) {
    copyFileSync(join(root, 'test', 'consumers', file), join(consumer, file));
  }
  run(process.execPath, ['esm.mjs'], consumer);
  run(process.execPath, ['cjs.cjs'], consumer);

  const base = {
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    target: 'ES2022',
    lib: ['ES2023', 'ESNext.Disposable'],
    types: ['node'],
    noEmit: true,
  };
  const modes = {
    nodenext: { module: 'nodenext', moduleResolution: 'nodenext' },
    node16: { module: 'node16', moduleResolution: 'node16' },
    bundler: { module: 'esnext', moduleResolution: 'bundler' },
  };
  for (const [mode, settings] of Object.entries(modes)) {
    const config = join(consumer, `tsconfig.${mode}.json`);
    writeFileSync(
      config,
      JSON.stringify({ compilerOptions: { ...base, ...settings }, files: ['consumer.ts'] }),
    );
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], consumer);
  }
  console.log('lint:package: the packed tarball passes publint, attw and every consumer fixture');
} finally {
  rmSync(work, { recursive: true, force: true });
}
