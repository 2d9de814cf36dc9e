import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element } from 'ltx';
import { NS, StanzaError } from '@hyphae/stanza';
import { parseJid } from '@hyphae/jid';
import { ModuleRegistry, type IqRequest, type ModuleInstance, type Routing } from '@hyphae/module-api';
import { discoInstance } from '@hyphae/modules';
import { verifyPassword } from '@hyphae/sasl';
import { adhocInstance, ADMIN_COMMANDS, NS_COMMANDS, NS_ADMIN, type AdhocOptions } from './adhoc.js';
import { fixture, type Fixture } from './test-fixture.js';

const ADMIN = 'boss@localhost/desk';
const USER = 'pleb@localhost/phone';

interface Ctx {
  f: Fixture;
  mod: ModuleInstance;
  disco: ModuleInstance;
  /** Runs an iq through the module's handler; returns the answer payload or throws the StanzaError. */
  run(from: string, payload: Element, to?: string): Promise<Element>;
  discoQuery(kind: 'info' | 'items', from: string, node?: string): Promise<Element>;
  clock: { t: number };
}

async function withModule(fn: (c: Ctx) => Promise<void>, opts: Partial<AdhocOptions> = {}): Promise<void> {
  const f = await fixture();
  const clock = { t: 1_000_000 };
  const mod = adhocInstance({ admin: f.admin, admins: ['boss@localhost', 'not a jid'], now: () => clock.t, ...opts });
  let registry: ModuleRegistry | null = null;
  const disco = discoInstance({ modules: () => registry ?? assert.fail('no registry') });
  const loaded = (name: string, instance: ModuleInstance) => ({ definition: { name, description: name, specs: [], create: () => instance }, instance });
  registry = new ModuleRegistry([loaded('disco', disco), loaded('adhoc', mod)]);
  const request = (from: string, payload: Element, to: string): IqRequest => {
    const iq = new Element('iq', { type: payload.attrs.xmlns === NS_COMMANDS ? 'set' : 'get', from, to, id: 'x' });
    iq.cnode(payload);
    return { iq, payload, from: parseJid(from), to: parseJid(to), routing: {} as Routing };
  };
  const route = (m: ModuleInstance, type: string, xmlns: string) => {
    const r = m.iq?.find((x) => x.type === type && x.xmlns === xmlns && x.target === 'host');
    assert.ok(r, `no route ${type} ${xmlns}`);
    return r;
  };
  try {
    await fn({
      f, mod, disco, clock,
      async run(from, payload, to = 'localhost') {
        const out = await route(mod, 'set', NS_COMMANDS).handle(request(from, payload, to));
        assert.ok(out instanceof Element);
        return out;
      },
      async discoQuery(kind, from, node) {
        const q = new Element('query', { xmlns: kind === 'info' ? NS.discoInfo : NS.discoItems, ...(node ? { node } : {}) });
        const out = await route(disco, 'get', q.attrs.xmlns as string).handle(request(from, q, 'localhost'));
        assert.ok(out instanceof Element);
        return out;
      },
    });
  } finally {
    await f.close();
  }
}

function command(node: string, attrs: Record<string, string> = {}, form?: Record<string, string | string[]>, formType = NS_ADMIN): Element {
  const c = new Element('command', { xmlns: NS_COMMANDS, node, ...attrs });
  if (form) {
    const x = c.c('x', { xmlns: NS.data, type: 'submit' });
    if (formType) x.c('field', { var: 'FORM_TYPE', type: 'hidden' }).c('value').t(formType);
    for (const [k, v] of Object.entries(form)) {
      const field = x.c('field', { var: k });
      for (const one of Array.isArray(v) ? v : [v]) field.c('value').t(one);
    }
  }
  return c;
}

async function refused(p: Promise<unknown>, condition: string, app?: string): Promise<StanzaError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof StanzaError, `expected a StanzaError ${condition}, got ${String(caught)}`);
  assert.equal(caught.condition, condition, caught.message);
  assert.equal(caught.appCondition?.name, app);
  if (app) assert.equal(caught.appCondition?.attrs.xmlns, NS_COMMANDS);
  return caught;
}

/** Stage 1: execute → the form; returns the session id. */
async function start(c: Ctx, node: string, from = ADMIN): Promise<string> {
  const out = await c.run(from, command(node, { action: 'execute' }));
  assert.equal(out.attrs.status, 'executing');
  assert.equal(out.attrs.node, node);
  assert.ok(out.attrs.sessionid);
  return out.attrs.sessionid as string;
}

test('disco: the commands feature, the command list for admins only, command node info', async () => {
  await withModule(async (c) => {
    const info = await c.discoQuery('info', ADMIN);
    assert.ok(info.getChildren('feature').some((f) => f.attrs.var === NS_COMMANDS));

    const items = await c.discoQuery('items', ADMIN, NS_COMMANDS);
    assert.equal(items.attrs.node, NS_COMMANDS);
    assert.deepEqual(items.getChildren('item').map((i) => [i.attrs.jid, i.attrs.node]), Object.values(ADMIN_COMMANDS).map((n) => ['localhost', n]));
    for (const i of items.getChildren('item')) assert.ok(i.attrs.name);
    assert.deepEqual((await c.discoQuery('items', USER, NS_COMMANDS)).getChildren('item'), [], 'a non-admin sees no commands');

    const list = await c.discoQuery('info', USER, NS_COMMANDS);
    assert.deepEqual(list.getChild('identity')?.attrs, { category: 'automation', type: 'command-list', name: 'Commands' });

    const node = await c.discoQuery('info', ADMIN, ADMIN_COMMANDS.addUser);
    assert.equal(node.attrs.node, ADMIN_COMMANDS.addUser);
    assert.equal(node.getChild('identity')?.attrs.type, 'command-node');
    assert.deepEqual(node.getChildren('feature').map((f) => f.attrs.var), [NS_COMMANDS, NS.data]);
    await refused(c.discoQuery('info', USER, ADMIN_COMMANDS.addUser), 'forbidden');
    await refused(c.discoQuery('info', ADMIN, 'urn:nope'), 'item-not-found');
    await refused(c.discoQuery('items', ADMIN, 'urn:nope'), 'item-not-found');
  });
});

test('add-user: execute → form with sessionid; complete → completed with a note; the account logs in', async () => {
  await withModule(async (c) => {
    const out = await c.run(ADMIN, command(ADMIN_COMMANDS.addUser));
    assert.equal(out.attrs.status, 'executing');
    const actions = out.getChild('actions');
    assert.equal(actions?.attrs.execute, 'complete');
    assert.ok(actions?.getChild('complete'));
    const x = out.getChild('x', NS.data);
    assert.equal(x?.attrs.type, 'form');
    const fields = x?.getChildren('field') ?? [];
    assert.deepEqual(fields.map((f) => [f.attrs.var, f.attrs.type]), [
      ['FORM_TYPE', 'hidden'], ['accountjid', 'jid-single'], ['password', 'text-private'], ['password-verify', 'text-private'],
    ]);
    assert.equal(fields[0]?.getChildText('value'), NS_ADMIN);
    assert.ok(fields[1]?.getChild('required'));

    const sid = out.attrs.sessionid as string;
    const done = await c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: sid, action: 'complete' }, { accountjid: 'New@localhost', password: 'pw', 'password-verify': 'pw' }));
    assert.deepEqual(done.attrs, { xmlns: NS_COMMANDS, node: ADMIN_COMMANDS.addUser, sessionid: sid, status: 'completed' });
    assert.equal(done.getChild('note')?.attrs.type, 'info');
    const a = await c.f.stores.accounts.get('localhost', 'new');
    assert.ok(a);
    assert.equal(await verifyPassword('pw', a.credentials), true);
    // The session is over.
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: sid, action: 'complete' }, { accountjid: 'x@localhost', password: 'pw' })), 'bad-request', 'bad-sessionid');

    // 'execute' at stage 2 means the default action (complete).
    const sid2 = await start(c, ADMIN_COMMANDS.addUser);
    const done2 = await c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: sid2, action: 'execute' }, { accountjid: 'two@localhost', password: 'pw' }));
    assert.equal(done2.attrs.status, 'completed');
  });
});

test('add-user errors: conflict, passwords differ, missing fields, no form, wrong FORM_TYPE, bad JID, unserved domain', async () => {
  await withModule(async (c) => {
    await c.f.admin.addUser('taken@localhost', 'pw');
    const submit = async (form: Record<string, string> | undefined, formType = NS_ADMIN) =>
      c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: await start(c, ADMIN_COMMANDS.addUser), action: 'complete' }, form, formType));
    await refused(submit({ accountjid: 'taken@localhost', password: 'pw' }), 'conflict');
    await refused(submit({ accountjid: 'n@localhost', password: 'a', 'password-verify': 'b' }), 'not-acceptable');
    await refused(submit({ password: 'pw' }), 'bad-request', 'bad-payload');
    await refused(submit({ accountjid: 'n@localhost' }), 'bad-request', 'bad-payload');
    await refused(submit(undefined), 'bad-request', 'bad-payload');
    await refused(submit({ accountjid: 'n@localhost', password: 'pw' }, 'urn:other'), 'bad-request', 'bad-payload');
    await refused(submit({ accountjid: 'n@@localhost', password: 'pw' }), 'jid-malformed');
    await refused(submit({ accountjid: 'n@localhost/res', password: 'pw' }), 'jid-malformed');
    await refused(submit({ accountjid: 'n@elsewhere.example', password: 'pw' }), 'not-allowed');
    assert.equal(await c.f.stores.accounts.get('localhost', 'n'), null);
  });
});

test('XEP-0050 errors: forbidden, unknown node, malformed-action, bad-action, bad-sessionid, session-expired; cancel', async () => {
  await withModule(async (c) => {
    await refused(c.run(USER, command(ADMIN_COMMANDS.addUser)), 'forbidden');
    await refused(c.run(USER, command(ADMIN_COMMANDS.getOnlineUsersNum)), 'forbidden');
    await refused(c.run(ADMIN, command(`${NS_ADMIN}#shutdown`)), 'item-not-found');
    await refused(c.run(ADMIN, new Element('command', { xmlns: NS_COMMANDS })), 'item-not-found');
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { action: 'explode' })), 'bad-request', 'malformed-action');
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { action: 'complete' })), 'bad-request', 'bad-action');
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { action: 'cancel' })), 'bad-request', 'bad-action');
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: 'nope', action: 'complete' })), 'bad-request', 'bad-sessionid');

    const sid = await start(c, ADMIN_COMMANDS.addUser);
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: sid, action: 'next' })), 'bad-request', 'bad-action');
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: sid, action: 'prev' })), 'bad-request', 'bad-action');
    // Another resource of the same admin, or another command node: not its session.
    await refused(c.run('boss@localhost/other', command(ADMIN_COMMANDS.addUser, { sessionid: sid, action: 'cancel' })), 'bad-request', 'bad-sessionid');
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.deleteUser, { sessionid: sid, action: 'cancel' })), 'bad-request', 'bad-sessionid');
    const canceled = await c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: sid, action: 'cancel' }));
    assert.deepEqual(canceled.attrs, { xmlns: NS_COMMANDS, node: ADMIN_COMMANDS.addUser, sessionid: sid, status: 'canceled' });
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: sid, action: 'cancel' })), 'bad-request', 'bad-sessionid');

    const old = await start(c, ADMIN_COMMANDS.addUser);
    c.clock.t += 10 * 60_000 + 1;
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser, { sessionid: old, action: 'complete' }, { accountjid: 'late@localhost', password: 'pw' })), 'not-allowed', 'session-expired');
    assert.equal(await c.f.stores.accounts.get('localhost', 'late'), null);
  });
});

test('command sessions are capped (resource-constraint)', async () => {
  await withModule(async (c) => {
    await start(c, ADMIN_COMMANDS.addUser);
    await start(c, ADMIN_COMMANDS.deleteUser);
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.addUser)), 'resource-constraint');
  }, { maxSessions: 2 });
});

test('delete-user: deletes each JID (sessions closed), notes the missing ones; all missing → item-not-found', async () => {
  await withModule(async (c) => {
    await c.f.admin.addUser('a@localhost', 'pw');
    await c.f.admin.addUser('b@localhost', 'pw');
    await c.f.bind('a@localhost', 'r', 'node-1', 'sid-a');
    const out = await c.run(ADMIN, command(ADMIN_COMMANDS.deleteUser));
    const field = out.getChild('x', NS.data)?.getChildren('field').find((f) => f.attrs.var === 'accountjids');
    assert.equal(field?.attrs.type, 'jid-multi');
    const sid = out.attrs.sessionid as string;
    const done = await c.run(ADMIN, command(ADMIN_COMMANDS.deleteUser, { sessionid: sid, action: 'complete' }, { accountjids: ['a@localhost', 'B@localhost', 'gone@localhost'] }));
    assert.equal(done.attrs.status, 'completed');
    assert.equal(done.getChild('note')?.attrs.type, 'warn');
    assert.match(done.getChildText('note') ?? '', /gone@localhost/);
    assert.equal(await c.f.stores.accounts.get('localhost', 'a'), null);
    assert.equal(await c.f.stores.accounts.get('localhost', 'b'), null);
    await c.f.bus.flush();
    assert.ok(c.f.timeline.includes('close:node-1:sid-a:not-authorized'));
    assert.ok(c.f.timeline.includes('actor:account-deleted:a@localhost:account-gone'));

    const again = await start(c, ADMIN_COMMANDS.deleteUser);
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.deleteUser, { sessionid: again, action: 'complete' }, { accountjids: ['a@localhost'] })), 'item-not-found');
    const bad = await start(c, ADMIN_COMMANDS.deleteUser);
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.deleteUser, { sessionid: bad, action: 'complete' }, { accountjids: ['localhost'] })), 'jid-malformed');
    const empty = await start(c, ADMIN_COMMANDS.deleteUser);
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.deleteUser, { sessionid: empty, action: 'complete' }, {})), 'bad-request', 'bad-payload');
  });
});

test('change-user-password: the new password works, the old one not; unknown account → item-not-found', async () => {
  await withModule(async (c) => {
    await c.f.admin.addUser('pat@localhost', 'old');
    const sid = await start(c, ADMIN_COMMANDS.changeUserPassword);
    const done = await c.run(ADMIN, command(ADMIN_COMMANDS.changeUserPassword, { sessionid: sid, action: 'complete' }, { accountjid: 'pat@localhost', password: 'new' }));
    assert.equal(done.attrs.status, 'completed');
    const a = await c.f.stores.accounts.get('localhost', 'pat');
    assert.ok(a);
    assert.equal(await verifyPassword('new', a.credentials), true);
    assert.equal(await verifyPassword('old', a.credentials), false);
    const sid2 = await start(c, ADMIN_COMMANDS.changeUserPassword);
    await refused(c.run(ADMIN, command(ADMIN_COMMANDS.changeUserPassword, { sessionid: sid2, action: 'complete' }, { accountjid: 'nobody@localhost', password: 'x' })), 'item-not-found');
  });
});

test('get-online-users-num / get-registered-users-num: completed at once with a result form, for the domain addressed', async () => {
  await withModule(async (c) => {
    await c.f.admin.addUser('a@localhost', 'pw');
    await c.f.admin.addUser('b@localhost', 'pw');
    await c.f.admin.addUser('c@example.org', 'pw');
    await c.f.bind('a@localhost', 'r1', 'n1');
    await c.f.bind('a@localhost', 'r2', 'n2');
    await c.f.bind('c@example.org', 'r', 'n1');
    const value = (out: Element, name: string) => {
      assert.equal(out.attrs.status, 'completed');
      const x = out.getChild('x', NS.data);
      assert.equal(x?.attrs.type, 'result');
      return x?.getChildren('field').find((f) => f.attrs.var === name)?.getChildText('value');
    };
    assert.equal(value(await c.run(ADMIN, command(ADMIN_COMMANDS.getOnlineUsersNum)), 'onlineusersnum'), '1');
    assert.equal(value(await c.run(ADMIN, command(ADMIN_COMMANDS.getRegisteredUsersNum)), 'registeredusersnum'), '2');
    assert.equal(value(await c.run('boss@localhost/x', command(ADMIN_COMMANDS.getRegisteredUsersNum), 'example.org'), 'registeredusersnum'), '1');
  });
});
