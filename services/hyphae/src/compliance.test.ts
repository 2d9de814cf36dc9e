/**
 * The compliance table and DOAP file are generated from the declarations
 * (scripts/compliance.mjs): this fails when a module changed and they were
 * not regenerated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse } from 'ltx';
import { complianceFiles, declarations } from './index.js';

const root = new URL('../../../', import.meta.url);

test('docs/compliance.md and docs/hyphae.doap are current (node scripts/compliance.mjs)', () => {
  for (const [path, text] of Object.entries(complianceFiles())) {
    assert.equal(readFileSync(new URL(path, root), 'utf8'), text, `${path} is not current: run node scripts/compliance.mjs`);
  }
});

test('the DOAP file is well-formed and lists every declared XEP once, with its status', () => {
  const doap = parse(complianceFiles()['docs/hyphae.doap'] ?? '');
  const xeps = doap.getChild('Project')?.getChildren('implements')
    .map((i) => i.getChild('SupportedXep'))
    .filter((x) => x !== undefined) ?? [];
  const listed = xeps.map((x) => String(x.getChild('xep')?.attrs['rdf:resource']));
  const declared = new Set(declarations().flatMap((d) => d.specs.map((s) => s.spec)).filter((s) => s.startsWith('XEP-')));
  assert.equal(listed.length, declared.size);
  assert.equal(new Set(listed).size, listed.length, 'no XEP twice');
  for (const x of xeps) assert.match(x.getChildText('status') ?? '', /^(complete|partial|planned|deprecated|removed)$/);
  assert.ok(listed.includes('https://xmpp.org/extensions/xep-0030.html'));
});

test("the README's configuration table is current (node scripts/config-reference.mjs), module sections included", () => {
  const table = execFileSync(process.execPath, [fileURLToPath(new URL('scripts/config-reference.mjs', root))]).toString().trimEnd();
  const readme = readFileSync(new URL('README.md', root), 'utf8').split('\n');
  const start = readme.indexOf('| key | type | default | environment | meaning |');
  assert.ok(start >= 0, 'the README has the table');
  let end = start;
  while (end < readme.length && (readme[end] ?? '').startsWith('|')) end++;
  assert.equal(readme.slice(start, end).join('\n'), table, 'regenerate it with node scripts/config-reference.mjs');
  assert.match(table, /`modules\.blocking\.maxItems`/);
});
