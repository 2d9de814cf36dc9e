#!/usr/bin/env node
// Prints the configuration reference (Markdown) from the config schema, so the
// README's table cannot drift from what loadConfig accepts. Run after a build:
//   node scripts/config-reference.mjs
import { describeConfig } from '@hyphae/config';

const rows = describeConfig();
console.log('| key | type | default | environment | meaning |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  console.log(`| \`${r.key}\` | ${cell(r.type)} | \`${cell(r.default)}\` | \`${r.env}\` | ${cell(r.doc)} |`);
}
