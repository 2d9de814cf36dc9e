#!/usr/bin/env node
// Scaffolds a feature module: packages/modules/src/<name>/index.ts (the
// definition) and <name>.test.ts (its unit test), and registers it in
// packages/modules/src/index.ts. See docs/architecture.md "How to add a feature".
//   node scripts/new-module.mjs <name> <spec> "<description>"
//   node scripts/new-module.mjs mood XEP-0107 "User mood in PEP"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const [name, spec, description] = process.argv.slice(2);
if (!name || !spec || !description || !/^[a-z][a-z0-9-]*$/.test(name) || !/^(XEP-\d{4}|RFC \d+)/.test(spec)) {
  console.error('usage: node scripts/new-module.mjs <name: lowercase, a-z0-9-> <XEP-NNNN | "RFC NNNN"> "<description>"');
  process.exit(2);
}
// HYPHAE_MODULES_DIR: another copy of packages/modules/src (the scaffold's own test).
const root = process.env.HYPHAE_MODULES_DIR ? new URL(`file://${process.env.HYPHAE_MODULES_DIR.replace(/\/?$/, '/')}`) : new URL('../packages/modules/src/', import.meta.url);
const dir = new URL(`${name}/`, root);
if (existsSync(dir)) {
  console.error(`packages/modules/src/${name} exists already`);
  process.exit(1);
}
const ident = name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const ns = `urn:example:${name}:0`;

mkdirSync(dir);
writeFileSync(new URL('index.ts', dir), `/**
 * ${spec}: ${description}.
 * Replace the sample iq below with what the specification asks; cite its
 * sections in comments where a rule comes from.
 */
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import { defineModule, type ModuleInstance } from '@hyphae/module-api';

/** The namespace this module serves (TODO: the specification's). */
export const NS_${ident.toUpperCase()} = '${ns}';

export function ${ident}Instance(): ModuleInstance {
  return {
    features: { server: [NS_${ident.toUpperCase()}] },
    iq: [{
      target: 'account', type: 'get', xmlns: NS_${ident.toUpperCase()}, name: 'query',
      handle: ({ from, to }) => {
        if (from.toBareString() !== to.toBareString()) throw new StanzaError('forbidden');
        return new Element('query', { xmlns: NS_${ident.toUpperCase()} });
      },
    }],
  };
}

export const ${ident} = defineModule({
  name: '${name}',
  description: '${description.replace(/'/g, "\\'")}',
  specs: [{ spec: '${spec}', status: 'planned' }],
  create: () => ${ident}Instance(),
});
`);
writeFileSync(new URL(`${name}.test.ts`, dir), `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { ModuleRegistry, type Routing } from '@hyphae/module-api';
import { ${ident}Instance, NS_${ident.toUpperCase()} } from './index.js';

const noRouting = new Proxy({}, { get: () => assert.fail('routing used') }) as Routing;

test('${name}: answers its own account and refuses others', async () => {
  const route = ModuleRegistry.of({ ${ident}: ${ident}Instance() }).findIq('account', 'get', NS_${ident.toUpperCase()}, 'query');
  assert.ok(route);
  const payload = new Element('query', { xmlns: NS_${ident.toUpperCase()} });
  const iq = new Element('iq', { type: 'get', id: '1' }).cnode(payload).root();
  const own = await route.handle({ iq, payload, from: parseJid('a@example.org/r'), to: parseJid('a@example.org'), routing: noRouting });
  assert.equal((own as Element).attrs.xmlns, NS_${ident.toUpperCase()});
  assert.throws(() => route.handle({ iq, payload, from: parseJid('b@example.org/r'), to: parseJid('a@example.org'), routing: noRouting }), { condition: 'forbidden' });
});
`);

// Registered after the last module of standardModules.
const indexUrl = new URL('index.ts', root);
let index = readFileSync(indexUrl, 'utf8');
const listStart = index.indexOf('export const standardModules');
const close = index.indexOf('];', listStart);
if (listStart < 0 || close < 0) {
  console.error('could not find standardModules in packages/modules/src/index.ts: register the module by hand');
  process.exit(1);
}
const entries = index.slice(index.indexOf('[', listStart) + 1, close).trim();
index = `${index.slice(0, index.indexOf('[', listStart) + 1)}${entries ? `${entries.replace(/,\s*$/, '')}, ` : ''}${ident}${index.slice(close)}`;
const firstExport = index.indexOf('\nexport ');
index = `${index.slice(0, firstExport)}\nimport { ${ident} } from './${name}/index.js';${index.slice(firstExport)}`;
index = index.replace('/** Every module of this package', `export { ${ident}, ${ident}Instance, NS_${ident.toUpperCase()} } from './${name}/index.js';\n\n/** Every module of this package`);
writeFileSync(indexUrl, index);

console.log(`created packages/modules/src/${name}/index.ts and ${name}.test.ts, registered in packages/modules/src/index.ts
next: write the module, its unit tests and an e2e test (test/e2e/${name}.test.ts), then
  npx tsc -b && node --test packages/modules/dist/${name}/*.test.js
  node scripts/compliance.mjs      # regenerates docs/compliance.md and docs/hyphae.doap`);
