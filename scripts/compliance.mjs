#!/usr/bin/env node
// Writes docs/compliance.md and docs/hyphae.doap from the modules' and
// services' declarations (services/hyphae/src/modules.ts). Run after a build:
//   node scripts/compliance.mjs          (writes both files)
//   node scripts/compliance.mjs --check  (exits 1 when either is not current)
import { readFileSync, writeFileSync } from 'node:fs';
import { complianceFiles } from '@hyphae/hyphae';

const check = process.argv.includes('--check');
let stale = 0;
for (const [path, text] of Object.entries(complianceFiles())) {
  const url = new URL(`../${path}`, import.meta.url);
  let current = '';
  try {
    current = readFileSync(url, 'utf8');
  } catch {
    // missing: stale
  }
  if (current === text) continue;
  stale++;
  if (check) console.error(`${path} is not current: run node scripts/compliance.mjs`);
  else writeFileSync(url, text);
}
process.exit(check && stale > 0 ? 1 : 0);
