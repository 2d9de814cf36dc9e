#!/usr/bin/env node
// Runs every compiled test file with Node's test runner (Node 20 has no glob
// support in `node --test`). Unit tests live next to the code
// (packages/*/src/*.test.ts, services/*/src/*.test.ts); cross-service tests
// under test/e2e and test/faults. `--only unit|e2e` narrows the run; other
// args go to node.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args.splice(onlyAt, 2)[1] : null;

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const unit = [];
for (const root of ['packages', 'services']) {
  for (const name of readdirSync(root)) walk(join(root, name, 'dist'), unit);
}
// Cross-service tests: test/e2e, and the fault harness's short matrix (test/faults).
const e2e = walk(join('test', 'dist', 'faults'), walk(join('test', 'dist', 'e2e'), []));
const files = only === 'unit' ? unit : only === 'e2e' ? e2e : [...unit, ...e2e];
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...args, ...files.sort()], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
