#!/usr/bin/env node
/**
 * Lays out the parts of the repository each stage of deploy/Dockerfile needs
 * (plain Node, no dependencies, so it runs in any stage before `npm ci`).
 * test/e2e/deploy.test.ts runs it the same way to check the image's layout
 * without a Docker engine.
 *
 *   node deploy/assemble.mjs manifests <out>
 *     package.json + package-lock.json of the root and every workspace, and
 *     nothing else: what `npm ci` needs. Copied into the dependency stages on
 *     their own, so the `npm ci` layers are rebuilt only when a manifest changes.
 *
 *   node deploy/assemble.mjs runtime <out> [entry workspace, default services/hyphae]
 *     The workspaces the entry needs at run time (the closure of its
 *     `dependencies` over workspace packages; devDependencies and the test
 *     workspace are not followed): each one's package.json and compiled dist/,
 *     without tests, declarations, source maps and build info. Fails when one
 *     of them has not been built.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const root = process.cwd();

function fail(message) {
  console.error(`assemble: ${message}`);
  process.exit(1);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Workspace directories (relative to root) from the root package.json; `dir/*` globs are one level deep. */
function workspaceDirs() {
  const pkg = readJson(join(root, 'package.json'));
  const patterns = Array.isArray(pkg.workspaces) ? pkg.workspaces : (pkg.workspaces?.packages ?? []);
  const dirs = [];
  for (const pattern of patterns) {
    if (pattern.endsWith('/*')) {
      const parent = pattern.slice(0, -2);
      if (!existsSync(join(root, parent))) continue;
      for (const name of readdirSync(join(root, parent)).sort()) {
        const dir = `${parent}/${name}`;
        if (statSync(join(root, dir)).isDirectory() && existsSync(join(root, dir, 'package.json'))) dirs.push(dir);
      }
    } else if (!/[*?[{]/.test(pattern)) {
      if (existsSync(join(root, pattern, 'package.json'))) dirs.push(pattern);
    } else {
      fail(`unsupported workspace pattern '${pattern}' in package.json (extend deploy/assemble.mjs)`);
    }
  }
  return dirs;
}

function copyFile(rel, out) {
  mkdirSync(join(out, rel, '..'), { recursive: true });
  cpSync(join(root, rel), join(out, rel));
}

function manifests(out) {
  copyFile('package.json', out);
  if (!existsSync(join(root, 'package-lock.json'))) fail('package-lock.json is missing: npm ci needs it');
  copyFile('package-lock.json', out);
  for (const dir of workspaceDirs()) copyFile(`${dir}/package.json`, out);
}

/** Compiled output that is not needed to run: tests, declarations, maps, build info. */
function keep(src) {
  const name = basename(src);
  if (statSync(src).isDirectory()) return true;
  if (/\.test\.[cm]?js$/.test(name)) return false;
  if (/\.d\.[cm]?ts$/.test(name)) return false;
  if (name.endsWith('.map') || name.endsWith('.tsbuildinfo')) return false;
  return true;
}

function runtime(out, entry) {
  const byName = new Map();
  for (const dir of workspaceDirs()) byName.set(readJson(join(root, dir, 'package.json')).name, dir);
  if (!existsSync(join(root, entry, 'package.json'))) fail(`no workspace at ${entry}`);
  const needed = new Set();
  const visit = (dir) => {
    if (needed.has(dir)) return;
    needed.add(dir);
    const deps = readJson(join(root, dir, 'package.json')).dependencies ?? {};
    for (const name of Object.keys(deps)) {
      const dep = byName.get(name);
      if (dep) visit(dep);
    }
  };
  visit(entry);
  for (const dir of [...needed].sort()) {
    const dist = join(root, dir, 'dist');
    if (!existsSync(dist)) fail(`${dir}/dist is missing: build ${entry} first (npx tsc -b ${entry})`);
    copyFile(`${dir}/package.json`, out);
    cpSync(dist, join(out, dir, 'dist'), { recursive: true, filter: keep });
    console.log(`assemble: ${dir}`);
  }
}

const [mode, outArg, entry = 'services/hyphae'] = process.argv.slice(2);
if (!outArg || (mode !== 'manifests' && mode !== 'runtime')) {
  fail('usage: node deploy/assemble.mjs manifests|runtime <out dir> [entry workspace]');
}
const out = resolve(outArg);
mkdirSync(out, { recursive: true });
if (mode === 'manifests') manifests(out);
else runtime(out, entry);
