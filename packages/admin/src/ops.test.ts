import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyPassword } from '@hyphae/sasl';
import { AdminError, type AdminErrorCode } from './errors.js';
import { fixture } from './test-fixture.js';

async function rejectsWith(p: Promise<unknown>, code: AdminErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AdminError, `expected an AdminError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

test('addUser creates the account with SCRAM credentials of config.c2s.scramIterations; prepared JID', async () => {
  const f = await fixture({ c2s: { scramIterations: 5000 } });
  try {
    assert.equal(await f.admin.addUser('Alice@LocalHost', 'secret'), 'alice@localhost');
    const a = await f.stores.accounts.get('localhost', 'alice');
    assert.ok(a);
    assert.deepEqual(Object.keys(a.credentials).sort(), ['SCRAM-SHA-1', 'SCRAM-SHA-256']);
    for (const c of Object.values(a.credentials)) assert.equal(c.iterations, 5000);
    assert.equal(await verifyPassword('secret', a.credentials), true);
    assert.equal(await verifyPassword('wrong', a.credentials), false);
  } finally {
    await f.close();
  }
});

test('addUser refuses: existing account (conflict), bad JIDs, unserved domains, bad passwords', async () => {
  const f = await fixture();
  try {
    await f.admin.addUser('bob@localhost', 'pw');
    await rejectsWith(f.admin.addUser('BOB@localhost', 'other'), 'conflict');
    await rejectsWith(f.admin.addUser('localhost', 'pw'), 'invalid-jid');
    await rejectsWith(f.admin.addUser('carol@localhost/res', 'pw'), 'invalid-jid');
    await rejectsWith(f.admin.addUser('a@@b', 'pw'), 'invalid-jid');
    await rejectsWith(f.admin.addUser('', 'pw'), 'invalid-jid');
    await rejectsWith(f.admin.addUser('carol@elsewhere.example', 'pw'), 'unknown-domain');
    await rejectsWith(f.admin.addUser('carol@localhost', ''), 'invalid-password');
    await rejectsWith(f.admin.addUser('carol@localhost', 'bad\u0007control'), 'invalid-password');
    assert.equal(await f.stores.accounts.get('localhost', 'carol'), null);
    // A second served domain works.
    assert.equal(await f.admin.addUser('carol@example.org', 'pw'), 'carol@example.org');
  } finally {
    await f.close();
  }
});

test('setPassword replaces the credentials; not-found for a missing account', async () => {
  const f = await fixture();
  try {
    await f.admin.addUser('dave@localhost', 'old');
    assert.equal(await f.admin.setPassword('dave@localhost', 'new'), 'dave@localhost');
    const a = await f.stores.accounts.get('localhost', 'dave');
    assert.ok(a);
    assert.equal(await verifyPassword('new', a.credentials), true);
    assert.equal(await verifyPassword('old', a.credentials), false);
    await rejectsWith(f.admin.setPassword('nobody@localhost', 'x'), 'not-found');
    await rejectsWith(f.admin.setPassword('dave@localhost', ''), 'invalid-password');
    await rejectsWith(f.admin.setPassword('dave@nowhere.example', 'x'), 'unknown-domain');
  } finally {
    await f.close();
  }
});

test('deleteUser: account gone, then the user actor hears account-deleted, then every session is closed with not-authorized', async () => {
  const f = await fixture();
  try {
    await f.admin.addUser('erin@localhost', 'pw');
    await f.admin.addUser('frank@localhost', 'pw');
    await f.bind('erin@localhost', 'phone', 'node-a', 'sid-1');
    await f.bind('erin@localhost', 'laptop', 'node-b', 'sid-2');
    await f.bind('frank@localhost', 'x', 'node-a', 'sid-3');
    const r = await f.admin.deleteUser('Erin@localhost');
    assert.deepEqual(r, { jid: 'erin@localhost', sessionsClosed: 2 });
    await f.bus.flush();
    assert.equal(await f.stores.accounts.get('localhost', 'erin'), null);
    assert.ok(await f.stores.accounts.get('localhost', 'frank'));
    // The actor ran after the account was gone, and before any close.
    assert.equal(f.timeline[0], 'actor:account-deleted:erin@localhost:account-gone');
    assert.deepEqual(f.timeline.slice(1).sort(), ['close:node-a:sid-1:not-authorized', 'close:node-b:sid-2:not-authorized']);
    for (const c of f.controls) assert.equal(c.headers['hy-ctl'], 'close');
    await rejectsWith(f.admin.deleteUser('erin@localhost'), 'not-found');
    await rejectsWith(f.admin.deleteUser('erin@localhost/phone'), 'invalid-jid');
  } finally {
    await f.close();
  }
});

test('deleteUser of a missing account tells nobody anything', async () => {
  const f = await fixture();
  try {
    await f.bind('ghost@localhost', 'r', 'node-a');
    await rejectsWith(f.admin.deleteUser('ghost@localhost'), 'not-found');
    await f.bus.flush();
    assert.deepEqual(f.timeline, []);
  } finally {
    await f.close();
  }
});

test('listUsers: sorted bare JIDs of one served domain', async () => {
  const f = await fixture();
  try {
    for (const u of ['zed', 'amy', 'mo']) await f.admin.addUser(`${u}@localhost`, 'pw');
    await f.admin.addUser('other@example.org', 'pw');
    assert.deepEqual(await f.admin.listUsers('localhost'), ['amy@localhost', 'mo@localhost', 'zed@localhost']);
    assert.deepEqual(await f.admin.listUsers('EXAMPLE.org'), ['other@example.org']);
    await rejectsWith(f.admin.listUsers('nowhere.example'), 'unknown-domain');
    assert.equal(await f.admin.registeredUsersCount('localhost'), 3);
    assert.equal(await f.admin.registeredUsersCount(), 4);
  } finally {
    await f.close();
  }
});

test('onlineUsers: users with a bound session on any node, per domain, with their resources', async () => {
  const f = await fixture();
  try {
    await f.bind('amy@localhost', 'b', 'node-a');
    await f.bind('amy@localhost', 'a', 'node-b');
    await f.bind('bo@localhost', 'x', 'node-b');
    await f.bind('cy@example.org', 'y', 'node-a');
    assert.deepEqual(await f.admin.onlineUsers('localhost'), [
      { jid: 'amy@localhost', resources: ['a', 'b'] },
      { jid: 'bo@localhost', resources: ['x'] },
    ]);
    assert.equal(await f.admin.onlineUsersCount('localhost'), 2);
    assert.equal(await f.admin.onlineUsersCount('example.org'), 1);
    assert.equal(await f.admin.onlineUsersCount(), 3);
    await rejectsWith(f.admin.onlineUsers('nowhere.example'), 'unknown-domain');
  } finally {
    await f.close();
  }
});

test('status: c2s nodes with expiry, shard owners of roster and muc, sessions, users per domain', async () => {
  const f = await fixture();
  try {
    const coord = f.stores.coordination;
    await coord.join('roster', 'r1', 60_000);
    await coord.join('roster', 'r2', 60_000);
    for (let n = 0; n < 8; n++) await coord.acquire(`roster:shard:${n}`, n < 5 ? 'r1' : 'r2', 60_000);
    await coord.join('muc', 'm1', 60_000);
    for (let n = 0; n < 3; n++) await coord.acquire(`muc:shard:${n}`, 'm1', 60_000);
    await f.bind('amy@localhost', 'a', 'c2s-1');
    await f.bind('bo@localhost', 'a', 'c2s-2');
    await f.stores.sessions.heartbeat('c2s-dead', 1);
    await new Promise((r) => setTimeout(r, 10));
    await f.admin.addUser('amy@localhost', 'pw');
    await f.admin.addUser('cy@example.org', 'pw');

    const s = await f.admin.status();
    assert.equal(s.answeredBy, 'test-node');
    assert.equal(s.store, 'embedded');
    assert.equal(s.bus, 'memory');
    assert.deepEqual(s.nodes.map((n) => [n.node, n.alive]), [['c2s-1', true], ['c2s-2', true], ['c2s-dead', false]]);
    for (const n of s.nodes) assert.equal(typeof n.expiresAt, 'number');
    assert.equal(s.sessions, 2);
    assert.deepEqual(s.shards.roster, { group: 'roster', shards: 8, members: ['r1', 'r2'], owners: [{ holder: 'r1', shards: 5 }, { holder: 'r2', shards: 3 }], unowned: 0 });
    assert.deepEqual(s.shards.muc, { group: 'muc', shards: 4, members: ['m1'], owners: [{ holder: 'm1', shards: 3 }], unowned: 1 });
    assert.deepEqual(s.users, [{ domain: 'localhost', registered: 1 }, { domain: 'example.org', registered: 1 }]);
  } finally {
    await f.close();
  }
});

test('status: muc disabled → null', async () => {
  const f = await fixture({ muc: { enabled: false } });
  try {
    assert.equal((await f.admin.status()).shards.muc, null);
  } finally {
    await f.close();
  }
});
