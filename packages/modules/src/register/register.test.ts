import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { openEmbeddedStores } from '@hyphae/store';
import { verifyPassword, type Credentials } from '@hyphae/sasl';
import { registerInstance } from './index.js';
import type { RegistrationConfig } from '@hyphae/config';
import type { IqReply, Routing } from '@hyphae/module-api';

const cfg: RegistrationConfig = { open: true, maxPerIp: 2, windowSeconds: 60, allowlist: ['127.0.0.0/8', '::1/128'] };

async function setup(config: Partial<RegistrationConfig> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'hy-reg-'));
  const stores = await openEmbeddedStores({ dir });
  const closed: string[] = [];
  let now = 0;
  const mod = registerInstance({
    accounts: stores.accounts, config: { ...cfg, ...config }, iterations: 4096,
    closeSessions: async (bare) => { closed.push(bare); },
    now: () => now,
  });
  return {
    mod, stores, closed, advance: (ms: number) => { now += ms; },
    async done() { await stores.close(); await rm(dir, { recursive: true, force: true }); },
  };
}

const reg = (user: string, pass: string, id = 'r') =>
  parse(`<iq type='set' id='${id}'><query xmlns='jabber:iq:register'><username>${user}</username><password>${pass}</password></query></iq>`);
const cond = (el: Element) => el.getChild('error')?.getChildElements()[0]?.name;

test('fields form, registration, conflict (case-folded), credentials not the password', async () => {
  const t = await setup();
  const form = await t.mod.preAuth(parse("<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>"), 'example.org', '127.0.0.1');
  assert.equal(form.attrs.type, 'result');
  assert.ok(form.getChild('query')?.getChild('username'));
  assert.ok(form.getChild('query')?.getChild('password'));
  assert.equal((await t.mod.preAuth(reg('Juliet', 's3cret'), 'example.org', '127.0.0.1')).attrs.type, 'result');
  const dup = await t.mod.preAuth(reg('JULIET', 'other'), 'example.org', '127.0.0.1');
  assert.equal(cond(dup), 'conflict');
  const acct = await t.stores.accounts.get('example.org', 'juliet');
  assert.ok(acct);
  assert.ok(!JSON.stringify(acct).includes('s3cret'));
  assert.equal(await verifyPassword('s3cret', acct.credentials as Credentials), true);
  await t.done();
});

test('bad input: missing fields → not-acceptable, bad username → not-acceptable, remove before auth → not-authorized', async () => {
  const t = await setup();
  const missing = await t.mod.preAuth(parse("<iq type='set' id='m'><query xmlns='jabber:iq:register'><username>x</username></query></iq>"), 'example.org', '127.0.0.1');
  assert.equal(cond(missing), 'not-acceptable');
  assert.equal(cond(await t.mod.preAuth(reg('a@b', 'pw'), 'example.org', '127.0.0.1')), 'not-acceptable');
  const rm = await t.mod.preAuth(parse("<iq type='set' id='x'><query xmlns='jabber:iq:register'><remove/></query></iq>"), 'example.org', '127.0.0.1');
  assert.equal(cond(rm), 'not-authorized');
  await t.done();
});

test('closed registration: the form is service-unavailable, a submit not-allowed', async () => {
  const t = await setup({ open: false });
  assert.equal(cond(await t.mod.preAuth(parse("<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>"), 'example.org', '10.0.0.1')), 'service-unavailable');
  assert.equal(cond(await t.mod.preAuth(reg('romeo', 'pw'), 'example.org', '10.0.0.1')), 'not-allowed');
  assert.equal(await t.stores.accounts.get('example.org', 'romeo'), null);
  await t.done();
});

test('rate limit per IP outside the allowlist, reset after the window', async () => {
  const t = await setup();
  const ip = '203.0.113.7';
  assert.equal((await t.mod.preAuth(reg('u1', 'pw'), 'example.org', ip)).attrs.type, 'result');
  assert.equal((await t.mod.preAuth(reg('u2', 'pw'), 'example.org', ip)).attrs.type, 'result');
  const third = await t.mod.preAuth(reg('u3', 'pw'), 'example.org', ip);
  assert.equal(cond(third), 'resource-constraint');
  assert.equal(third.getChild('error')?.attrs.type, 'wait');
  // Loopback (IPv4-mapped too) is on the default allowlist.
  for (let i = 0; i < 5; i++) assert.equal((await t.mod.preAuth(reg(`l${i}`, 'pw'), 'example.org', '::ffff:127.0.0.1')).attrs.type, 'result');
  t.advance(61_000);
  assert.equal((await t.mod.preAuth(reg('u3', 'pw'), 'example.org', ip)).attrs.type, 'result');
  await t.done();
});

test('authenticated: password change, then cancel closes the sessions after the reply', async () => {
  const t = await setup();
  await t.mod.preAuth(reg('juliet', 'old'), 'example.org', '127.0.0.1');
  const from = parseJid('juliet@example.org/balcony');
  const set = t.mod.iq?.find((r) => r.target === 'account' && r.type === 'set');
  assert.ok(set);
  const change = parse("<iq type='set' id='c'><query xmlns='jabber:iq:register'><username>juliet</username><password>new</password></query></iq>");
  await set.handle({ iq: change, payload: change.getChildElements()[0] as Element, from, to: from.bare(), routing: {} as Routing });
  const acct = await t.stores.accounts.get('example.org', 'juliet');
  assert.equal(await verifyPassword('new', acct?.credentials as Credentials), true);
  const other = parse("<iq type='set' id='c2'><query xmlns='jabber:iq:register'><username>romeo</username><password>x</password></query></iq>");
  await assert.rejects(async () => set.handle({ iq: other, payload: other.getChildElements()[0] as Element, from, to: from.bare(), routing: {} as Routing }), { condition: 'not-allowed' });
  const cancel = parse("<iq type='set' id='d'><query xmlns='jabber:iq:register'><remove/></query></iq>");
  const answer = (await set.handle({ iq: cancel, payload: cancel.getChildElements()[0] as Element, from, to: from.bare(), routing: {} as Routing })) as IqReply;
  assert.equal(t.closed.length, 0, 'sessions close only after the reply is sent');
  await answer.after();
  assert.deepEqual(t.closed, ['juliet@example.org']);
  assert.equal(await t.stores.accounts.get('example.org', 'juliet'), null);
  await t.done();
});
