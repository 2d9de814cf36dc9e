import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { openEmbeddedStores } from '@hyphae/store';
import { deriveCredentials, verifyPassword, type Credentials } from '@hyphae/sasl';
import { registerInstance, type RegistrationStream } from './index.js';
import type { RegistrationConfig } from '@hyphae/config';
import type { IqReply, Routing } from '@hyphae/module-api';

const cfg: RegistrationConfig = { open: true, maxPerIp: 2, windowSeconds: 60, allowlist: ['127.0.0.0/8', '::1/128'], maxAttemptsPerStream: 5 };

/** A stream that records how it was closed. */
function conn(): RegistrationStream & { closed: string[] } {
  const closed: string[] = [];
  return { closed, close: (condition) => { closed.push(condition); } };
}

async function setup(config: Partial<RegistrationConfig> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'hy-reg-'));
  const stores = await openEmbeddedStores({ dir });
  const closed: string[] = [];
  let now = 0;
  const derived = { count: 0 };
  const mod = registerInstance({
    accounts: stores.accounts, config: { ...cfg, ...config }, iterations: 4096,
    closeSessions: async (bare) => { closed.push(bare); },
    now: () => now,
    // Every PBKDF2 derivation goes through here.
    derive: (password, opts) => { derived.count++; return deriveCredentials(password, opts); },
  });
  return {
    mod, stores, closed, derived, advance: (ms: number) => { now += ms; },
    async done() { await stores.close(); await rm(dir, { recursive: true, force: true }); },
  };
}

const reg = (user: string, pass: string, id = 'r') =>
  parse(`<iq type='set' id='${id}'><query xmlns='jabber:iq:register'><username>${user}</username><password>${pass}</password></query></iq>`);
const cond = (el: Element) => el.getChild('error')?.getChildElements()[0]?.name;

test('fields form, registration, conflict (case-folded), credentials not the password', async () => {
  const t = await setup();
  const form = await t.mod.preAuth(parse("<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>"), 'example.org', '127.0.0.1', conn());
  assert.equal(form.attrs.type, 'result');
  assert.ok(form.getChild('query')?.getChild('username'));
  assert.ok(form.getChild('query')?.getChild('password'));
  assert.equal((await t.mod.preAuth(reg('Juliet', 's3cret'), 'example.org', '127.0.0.1', conn())).attrs.type, 'result');
  const dup = await t.mod.preAuth(reg('JULIET', 'other'), 'example.org', '127.0.0.1', conn());
  assert.equal(cond(dup), 'conflict');
  const acct = await t.stores.accounts.get('example.org', 'juliet');
  assert.ok(acct);
  assert.ok(!JSON.stringify(acct).includes('s3cret'));
  assert.equal(await verifyPassword('s3cret', acct.credentials as Credentials), true);
  await t.done();
});

test('bad input: missing fields → not-acceptable, bad username → not-acceptable, remove before auth → not-authorized', async () => {
  const t = await setup();
  const missing = await t.mod.preAuth(parse("<iq type='set' id='m'><query xmlns='jabber:iq:register'><username>x</username></query></iq>"), 'example.org', '127.0.0.1', conn());
  assert.equal(cond(missing), 'not-acceptable');
  assert.equal(cond(await t.mod.preAuth(reg('a@b', 'pw'), 'example.org', '127.0.0.1', conn())), 'not-acceptable');
  const rm = await t.mod.preAuth(parse("<iq type='set' id='x'><query xmlns='jabber:iq:register'><remove/></query></iq>"), 'example.org', '127.0.0.1', conn());
  assert.equal(cond(rm), 'not-authorized');
  await t.done();
});

test('closed registration: the form is service-unavailable, a submit not-allowed', async () => {
  const t = await setup({ open: false });
  assert.equal(cond(await t.mod.preAuth(parse("<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>"), 'example.org', '10.0.0.1', conn())), 'service-unavailable');
  assert.equal(cond(await t.mod.preAuth(reg('romeo', 'pw'), 'example.org', '10.0.0.1', conn())), 'not-allowed');
  assert.equal(await t.stores.accounts.get('example.org', 'romeo'), null);
  await t.done();
});

test('rate limit per IP outside the allowlist, reset after the window', async () => {
  const t = await setup();
  const ip = '203.0.113.7';
  assert.equal((await t.mod.preAuth(reg('u1', 'pw'), 'example.org', ip, conn())).attrs.type, 'result');
  assert.equal((await t.mod.preAuth(reg('u2', 'pw'), 'example.org', ip, conn())).attrs.type, 'result');
  const third = await t.mod.preAuth(reg('u3', 'pw'), 'example.org', ip, conn());
  assert.equal(cond(third), 'resource-constraint');
  assert.equal(third.getChild('error')?.attrs.type, 'wait');
  // Loopback (IPv4-mapped too) is on the default allowlist.
  for (let i = 0; i < 5; i++) assert.equal((await t.mod.preAuth(reg(`l${i}`, 'pw'), 'example.org', '::ffff:127.0.0.1', conn())).attrs.type, 'result');
  t.advance(61_000);
  assert.equal((await t.mod.preAuth(reg('u3', 'pw'), 'example.org', ip, conn())).attrs.type, 'result');
  await t.done();
});

test('authenticated: password change, then cancel closes the sessions after the reply', async () => {
  const t = await setup();
  await t.mod.preAuth(reg('juliet', 'old'), 'example.org', '127.0.0.1', conn());
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

test('a refused registration costs no password derivation: closed, bad form, taken name, over the per-IP limit', async () => {
  const ip = '203.0.113.9';
  const t = await setup();
  assert.equal((await t.mod.preAuth(reg('first', 'pw'), 'example.org', ip, conn())).attrs.type, 'result');
  assert.equal(t.derived.count, 1, 'an account that is created costs one derivation');
  assert.equal(cond(await t.mod.preAuth(reg('first', 'pw'), 'example.org', ip, conn())), 'conflict');
  assert.equal(cond(await t.mod.preAuth(reg('a@b', 'pw'), 'example.org', ip, conn())), 'not-acceptable');
  assert.equal(t.derived.count, 1, 'a taken or invalid name is refused before hashing');
  assert.equal((await t.mod.preAuth(reg('second', 'pw'), 'example.org', ip, conn())).attrs.type, 'result');
  assert.equal(t.derived.count, 2);
  // maxPerIp is 2: the audit's 375 refused attempts per second each paid a PBKDF2 derivation here.
  for (let i = 0; i < 50; i++) {
    const r = await t.mod.preAuth(reg(`flood${i}`, 'pw'), 'example.org', ip, conn());
    assert.equal(cond(r), 'resource-constraint');
  }
  assert.equal(t.derived.count, 2, 'rate-limited attempts derive nothing');
  assert.equal(await t.stores.accounts.get('example.org', 'flood0'), null);
  await t.done();

  const closed = await setup({ open: false });
  assert.equal(cond(await closed.mod.preAuth(reg('romeo', 'pw'), 'example.org', ip, conn())), 'not-allowed');
  assert.equal(closed.derived.count, 0);
  await closed.done();
});

test('registration.maxAttemptsPerStream: the attempt past the limit is refused with <policy-violation/>, unhashed, and the stream closed', async () => {
  const t = await setup({ maxAttemptsPerStream: 3 });
  const stream = conn();
  const other = conn();
  // Loopback is not rate-limited: only the per-stream limit applies.
  const results: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await t.mod.preAuth(i === 1 ? reg('a@b', 'pw') : reg(`s${i}`, 'pw'), 'example.org', '127.0.0.1', stream);
    results.push(r.attrs.type === 'result' ? 'result' : (cond(r) ?? '?'));
  }
  assert.deepEqual(results, ['result', 'not-acceptable', 'result'], 'refused attempts count too');
  assert.equal(t.derived.count, 2);
  const fourth = await t.mod.preAuth(reg('s3', 'pw'), 'example.org', '127.0.0.1', stream);
  assert.equal(cond(fourth), 'policy-violation');
  assert.equal(fourth.getChild('error')?.attrs.type, 'wait');
  assert.equal(t.derived.count, 2, 'the refused attempt derived nothing');
  assert.equal(await t.stores.accounts.get('example.org', 's3'), null);
  assert.deepEqual(stream.closed, [], 'the error reply goes out first');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(stream.closed, ['policy-violation']);
  // The form (a get) is not a submission; another stream has its own count.
  assert.equal((await t.mod.preAuth(parse("<iq type='get' id='f'><query xmlns='jabber:iq:register'/></iq>"), 'example.org', '127.0.0.1', other)).attrs.type, 'result');
  assert.equal((await t.mod.preAuth(reg('s4', 'pw'), 'example.org', '127.0.0.1', other)).attrs.type, 'result');
  assert.deepEqual(other.closed, []);
  await t.done();
});
