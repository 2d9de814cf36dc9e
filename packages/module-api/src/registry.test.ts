import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element } from 'ltx';
import { z } from 'zod';
import { parseJid } from '@hyphae/jid';
import { defaultConfig, leaf, type ConfigSection } from '@hyphae/config';
import { createLogger, createMetrics } from '@hyphae/observability';
import { createMemoryBus } from '@hyphae/bus';
import type { Stores } from '@hyphae/store';
import { ModuleRegistry, ModuleConflictError, stanzaKind, parseDelivered, type SharedDeps } from './registry.js';
import { defineModule, type ModuleInstance, type OfflineStoreEvent, type Routing } from './types.js';

const enc = new TextEncoder();
const noRouting = new Proxy({}, { get: () => assert.fail('routing used') }) as Routing;

function offlineEvent(body: string): OfflineStoreEvent {
  return { stanza: new Element('message').c('body').t(body).root(), user: parseJid('a@example.org'), from: null, routing: noRouting };
}

const section: ConfigSection<{ size: number }> = {
  key: 'sample',
  schema: z.strictObject({ size: leaf(z.number().int().min(1).max(10), { doc: 'a size', expect: '1..10' }).default(3) }),
};

function deps(modules: Record<string, unknown> = {}): SharedDeps {
  const config = { ...defaultConfig([section]), modules };
  return {
    config, stores: {} as Stores, storage: {} as Stores['storage'], bus: createMemoryBus(),
    logger: createLogger({ service: 'test', level: 'silent' }),
    metrics: createMetrics({ service: 'test', node: 'n', defaultMetrics: false }),
    version: '1.2.3',
  };
}

test('create: options from the module section (defaults when absent), priority order, disabled modules skipped', () => {
  const seen: string[] = [];
  const sized = defineModule({
    name: 'sized', description: 'd', specs: [], config: section,
    create: ({ options }) => { seen.push(`sized ${options.size}`); return {}; },
  });
  const early = defineModule({ name: 'early', description: 'd', specs: [], priority: -5, create: () => { seen.push('early'); return {}; } });
  const off = defineModule({ name: 'off', description: 'd', specs: [], enabled: () => false, create: () => { seen.push('off'); return {}; } });
  let registry = ModuleRegistry.create([sized, early, off], deps());
  assert.deepEqual(seen, ['early', 'sized 3']);
  assert.deepEqual(registry.modules.map((m) => m.definition.name), ['early', 'sized']);
  seen.length = 0;
  registry = ModuleRegistry.create([sized], deps({ sample: { size: 7 } }));
  assert.deepEqual(seen, ['sized 7']);
  assert.throws(() => ModuleRegistry.create([sized, sized], deps()), ModuleConflictError);
});

test('modules read the whole registry through deps.modules once it is built', () => {
  let view: (() => ModuleRegistry) | null = null;
  const reader = defineModule({ name: 'reader', description: 'd', specs: [], create: (d) => { view = d.modules as () => ModuleRegistry; return {}; } });
  const other = defineModule({ name: 'other', description: 'd', specs: [], create: () => ({ features: { server: ['urn:b', 'urn:a'], account: ['urn:c'] } }) });
  const registry = ModuleRegistry.create([reader, other], deps());
  assert.ok(view);
  assert.equal((view as () => ModuleRegistry)(), registry);
  assert.deepEqual(registry.features('server'), ['urn:a', 'urn:b']);
  assert.deepEqual(registry.features('room'), []);
});

test('conflicting iq routes, nonzas, pre-auth iqs and user operations are refused', () => {
  const iq = { iq: [{ target: 'account' as const, type: 'set' as const, xmlns: 'urn:x', name: 'q', handle: () => null }] };
  assert.throws(() => ModuleRegistry.of({ a: iq, b: iq }), /two modules handle account set urn:x q \(b\)/);
  const nonza = { nonzas: [{ stage: 'bound' as const, name: 'n', xmlns: 'urn:x', handle: () => undefined }] };
  assert.throws(() => ModuleRegistry.of({ a: nonza, b: nonza }), /nonza bound urn:x n/);
  const pre = { preAuthIq: [{ xmlns: 'urn:x', name: 'q', handle: async () => new Element('iq') }] };
  assert.throws(() => ModuleRegistry.of({ a: pre, b: pre }), /pre-auth iq urn:x q/);
  const ops = { userOps: { thing: () => 'ok' } };
  assert.throws(() => ModuleRegistry.of({ a: ops, b: ops }), /user operation thing/);
  // Same names in different places are fine.
  const r = ModuleRegistry.of({ a: iq, b: { iq: [{ ...iq.iq[0]!, type: 'get' as const }] } });
  assert.ok(r.findIq('account', 'set', 'urn:x', 'q'));
  assert.ok(r.findIq('account', 'get', 'urn:x', 'q'));
  assert.equal(r.findIq('host', 'get', 'urn:x', 'q'), undefined);
});

test('stanza hooks run in order and a stop ends the chain; has() tells whether any hooks a point', async () => {
  const calls: string[] = [];
  const mk = (name: string, stop: boolean): ModuleInstance => ({
    hooks: { 'offline/store': async (e) => { calls.push(`${name}:${e.stanza.getChildText('body')}`); return stop ? 'stop' : undefined; } },
  });
  const r = ModuleRegistry.of({ first: mk('first', false), second: mk('second', true), third: mk('third', false) });
  assert.equal(r.has('offline/store'), true);
  assert.equal(r.has('message/deliver'), false);
  assert.equal(await r.run('offline/store', offlineEvent('hi')), 'stop');
  assert.deepEqual(calls, ['first:hi', 'second:hi']);
  assert.equal(await ModuleRegistry.of({ only: mk('only', false) }).run('offline/store', offlineEvent('x')), undefined);
  assert.equal(await ModuleRegistry.of({}).run('offline/store', offlineEvent('x')), undefined);
});

test('a failing lifecycle handler is reported and does not keep the others from running', async () => {
  const ran: string[] = [];
  const errors: unknown[] = [];
  const r = ModuleRegistry.of({
    bad: { hooks: { 'account/deleted': () => { throw new Error('boom'); } } },
    good: { hooks: { 'account/deleted': (e) => { ran.push(e.user.toString()); } } },
  });
  await r.lifecycle('account/deleted', { user: parseJid('a@example.org') }, (err) => errors.push(err));
  assert.deepEqual(ran, ['a@example.org']);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /boom/);
});

test('stream features by stage, nonzas and user operations are found', async () => {
  const r = ModuleRegistry.of({
    m: {
      streamFeatures: [
        { stage: 'post-auth', offer: () => new Element('csi', { xmlns: 'urn:xmpp:csi:0' }) },
        { stage: 'pre-auth', offer: () => null },
      ],
      nonzas: [{ stage: 'bound', name: 'inactive', xmlns: 'urn:xmpp:csi:0', handle: () => undefined }],
      userOps: { ping: () => 'pong' },
    },
  });
  assert.equal(r.streamFeatures('post-auth').length, 1);
  assert.equal(r.streamFeatures('bound').length, 0);
  assert.ok(r.nonza('bound', 'urn:xmpp:csi:0', 'inactive'));
  assert.equal(r.nonza('post-auth', 'urn:xmpp:csi:0', 'inactive'), undefined);
  assert.equal(await r.userOp('ping')?.({ user: parseJid('a@b'), data: new Uint8Array(), headers: {}, routing: noRouting }), 'pong');
  assert.equal(r.userOp('nope'), undefined);
});

test('stanzaKind reads the first element name without parsing; parseDelivered parses', () => {
  assert.equal(stanzaKind(enc.encode('<message to="a"/>')), 'message');
  assert.equal(stanzaKind(enc.encode('<presence/>')), 'presence');
  assert.equal(stanzaKind(enc.encode('<iq type="get"/>')), 'iq');
  assert.equal(stanzaKind(enc.encode('  <iq/>')), 'iq');
  assert.equal(stanzaKind(enc.encode('<inactive/>')), 'other');
  assert.equal(stanzaKind(enc.encode('<item/>')), 'other');
  assert.equal(stanzaKind(enc.encode('')), 'other');
  assert.equal(parseDelivered(enc.encode('<message id="1"><body>é</body></message>')).getChildText('body'), 'é');
});

test('sections lists the config sections of the definitions', () => {
  const a = defineModule({ name: 'a', description: 'd', specs: [], config: section, create: () => ({}) });
  const b = defineModule({ name: 'b', description: 'd', specs: [], create: () => ({}) });
  assert.deepEqual(ModuleRegistry.sections([a, b]).map((s) => s.key), ['sample']);
});
