#!/usr/bin/env node
// Prints the configuration reference (Markdown) from the config schema, so the
// README's table cannot drift from what loadConfig accepts. Run after a build:
//   node scripts/config-reference.mjs
// Module sections come from the module list of the composition root
// (services/hyphae/src/modules.ts), never from a global registry.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeConfig } from '@hyphae/config';
import { moduleSections } from '@hyphae/hyphae';

/** The Markdown table of every key: the static ones, then those of `sections` (ConfigSection[]). */
export function configReference(sections = []) {
  const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| key | type | default | environment | meaning |', '|---|---|---|---|---|'];
  for (const r of describeConfig(sections)) {
    lines.push(`| \`${r.key}\` | ${cell(r.type)} | \`${cell(r.default)}\` | \`${r.env}\` | ${cell(r.doc)} |`);
  }
  return lines.join('\n');
}

// Print only when run, not when imported for its function.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) console.log(configReference(moduleSections()));
