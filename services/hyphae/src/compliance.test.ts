/**
 * The compliance table and DOAP file are generated from the declarations
 * (scripts/compliance.mjs): this fails when a module changed and they were
 * not regenerated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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
