/**
 * scripts/new-module.mjs creates a module that compiles under the project's
 * strict settings, registers it, and its generated test passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('new-module scaffolds a module and its test, registered in standardModules', { timeout: 120_000 }, () => {
  // Inside packages/modules so that @hyphae/* resolve as they do for real modules.
  const dir = mkdtempSync(join(root, 'packages/modules/.scaffold-'));
  try {
    cpSync(join(root, 'packages/modules/src/index.ts'), join(dir, 'index.ts'));
    const out = execFileSync(process.execPath, [join(root, 'scripts/new-module.mjs'), 'user-mood', 'XEP-0107', "The user's mood"], {
      env: { ...process.env, HYPHAE_MODULES_DIR: dir },
    }).toString();
    assert.match(out, /created packages\/modules\/src\/user-mood\/index\.ts/);
    const index = readFileSync(join(dir, 'index.ts'), 'utf8');
    assert.match(index, /import \{ userMood \} from '\.\/user-mood\/index\.js';/);
    assert.match(index, /standardModules: readonly ModuleDefinition<unknown>\[\] = \[[^\]]*, userMood\];/);
    // A second run refuses to overwrite.
    assert.throws(() => execFileSync(process.execPath, [join(root, 'scripts/new-module.mjs'), 'user-mood', 'XEP-0107', 'x'], {
      env: { ...process.env, HYPHAE_MODULES_DIR: dir }, stdio: 'pipe',
    }));
    // The generated files compile with the project's settings, and the generated test passes.
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      extends: '../../../tsconfig.base.json',
      compilerOptions: { rootDir: '.', outDir: 'dist', composite: false, incremental: false },
      include: ['user-mood'],
    }));
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { stdio: 'pipe' });
    // A nested test runner reports to its parent through NODE_TEST_CONTEXT: without it, it prints TAP.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const run = execFileSync(process.execPath, ['--test', '--test-reporter=tap', join(dir, 'dist/user-mood/user-mood.test.js')], { stdio: 'pipe', env }).toString();
    assert.match(run, /# pass 1/);
    assert.match(run, /# fail 0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
