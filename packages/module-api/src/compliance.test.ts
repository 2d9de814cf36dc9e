import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'ltx';
import { complianceDoap, complianceMarkdown, specUrl, type Declaration } from './compliance.js';

const decls: Declaration[] = [
  { name: 'zeta', description: 'Z things', specs: [{ spec: 'XEP-0280', version: '1.0.1' }, { spec: 'RFC 6121 §4.2.2', note: 'a | pipe' }], stores: [{ kind: 'map', name: 'z' }] },
  { name: 'alpha', kind: 'service', description: 'A things', specs: [{ spec: 'XEP-0030', version: '2.5rc3', status: 'partial', note: 'no <nodes>' }, { spec: 'RFC 6120' }] },
];

test('the table lists RFCs first, then XEPs by number, with links, status and owner', () => {
  const md = complianceMarkdown(decls);
  const rows = md.split('\n').filter((l) => l.startsWith('| [') || l.startsWith('| RFC') || l.startsWith('| XEP'));
  assert.deepEqual(rows, [
    '| [RFC 6120](https://www.rfc-editor.org/rfc/rfc6120) |  | complete | service `alpha` |  |',
    '| [RFC 6121 §4.2.2](https://www.rfc-editor.org/rfc/rfc6121) |  | complete | module `zeta` | a \\| pipe |',
    '| [XEP-0030](https://xmpp.org/extensions/xep-0030.html) | 2.5rc3 | partial | service `alpha` | no <nodes> |',
    '| [XEP-0280](https://xmpp.org/extensions/xep-0280.html) | 1.0.1 | complete | module `zeta` |  |',
  ]);
  assert.ok(md.includes('### alpha (service)\n\nA things'));
  assert.ok(md.includes('- stores: map `z`'));
});

test('the DOAP lists each RFC as a resource and each XEP as xmpp:SupportedXep, escaped', () => {
  const doc = parse(complianceDoap(decls, { name: 'Hy & co', shortdesc: 'x', version: '0.1.0' }));
  const project = doc.getChild('Project');
  assert.equal(project?.getChildText('name'), 'Hy & co');
  const impl = project?.getChildren('implements') ?? [];
  assert.deepEqual(impl.filter((i) => i.attrs['rdf:resource']).map((i) => i.attrs['rdf:resource']), [
    'https://www.rfc-editor.org/rfc/rfc6120', 'https://www.rfc-editor.org/rfc/rfc6121',
  ]);
  const xep = impl.map((i) => i.getChild('SupportedXep')).filter((x) => x !== undefined);
  assert.deepEqual(xep.map((x) => [x.getChild('xep')?.attrs['rdf:resource'], x.getChildText('status'), x.getChildText('version'), x.getChildText('note')]), [
    ['https://xmpp.org/extensions/xep-0030.html', 'partial', '2.5rc3', 'alpha: no <nodes>'],
    ['https://xmpp.org/extensions/xep-0280.html', 'complete', '1.0.1', 'zeta'],
  ]);
  assert.equal(specUrl('something else'), null);
});
