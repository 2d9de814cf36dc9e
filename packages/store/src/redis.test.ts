import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hasBinary, startRedis, type ServerProcess } from '@hyphae/testkit';
import { Redis } from 'ioredis';
import { storeContract, type ContractSubject } from './contract.js';
import { measureArchive } from './archive-latency.js';
import { measure } from './latency.js';
import { moduleStorageContract } from './module-storage-contract.js';
import { hashTagOf, redisKeys, tag } from './redis-keys.js';
import { openRedisStores } from './redis.js';
import type { Stores } from './types.js';

const skip = hasBinary('redis-server') ? false : 'redis-server is not installed';

// One server for the file; every contract test gets its own key prefix,
// which isolates them and exercises the prefix option.
let server: ServerProcess | undefined;
let starting: Promise<ServerProcess> | undefined;
const redisServer = (): Promise<ServerProcess> => (starting ??= startRedis().then((s) => (server = s)));
after(async () => {
  await server?.stop();
});

async function redisSubject(): Promise<ContractSubject> {
  const { url } = await redisServer();
  const prefix = `t${randomBytes(4).toString('hex')}`;
  let stores: Stores = await openRedisStores({ url, prefix });
  return {
    stores,
    async reopen() {
      await stores.close();
      stores = await openRedisStores({ url, prefix });
      return stores;
    },
    async cleanup() {
      await stores.close();
    },
    // The subject's keys only (other tests share the server): what a Redis
    // restarted without its data looks like to this deployment.
    async loseEverything() {
      const admin = new Redis(url);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await admin.del(...keys);
        } while (cursor !== '0');
      } finally {
        admin.disconnect();
      }
    },
  };
}

if (!skip) {
  storeContract('redis', redisSubject);
  moduleStorageContract('redis', redisSubject);
}

describe('redis store specifics', { skip }, () => {
  let url: string;
  before(async () => {
    url = (await redisServer()).url;
  });

  it('keys written together share one Cluster hash slot, even with braces in JID parts', () => {
    const k = redisKeys('hy');
    for (const domain of ['example.com', 'we{ird}.example', '%7D', '{']) {
      for (const user of ['juliet', 'a}b{c', '%']) {
        assert.equal(hashTagOf(k.account(domain, user)), hashTagOf(k.accountsOf(domain)));
        assert.equal(hashTagOf(k.account(domain, user)), tag(domain));
      }
    }
    // Escaping keeps keys unambiguous: (domain "x}:y", user "z") vs (domain "x", user "y}:z").
    assert.notEqual(k.account('x}:y', 'z'), k.account('x', 'y}:z'));
    assert.equal(hashTagOf(k.sessions('a}b@c')), tag('a}b@c'));
    // Keys one script touches together: a roster and its version; a directed set and its index (and pending-in).
    for (const bare of ['juliet@example.com', 'a}b{@c', '%@x']) {
      const t = tag(bare);
      for (const key of [k.roster(bare), k.rosterVersion(bare), k.offline(bare), k.pendingIn(bare), k.directedIndex(bare), k.directed(bare, 'r/{x}')]) {
        assert.equal(hashTagOf(key), t, key);
      }
    }
    assert.notEqual(k.directed('a@b', 'c}'), k.directed('a@b}', 'c'));
  });

  it('module storage keys: one slot per owner, names and owners never spell the same key', () => {
    const k = redisKeys('hy');
    for (const owner of ['juliet@example.com', 'a}b{@c', '%7D@x', '{', 'a:b|c@x']) {
      const t = tag(owner);
      for (const key of [k.archive('mam', owner), k.archiveWith('mam', owner), k.archiveData('mam', owner), k.archiveLast('mam', owner)]) {
        assert.equal(hashTagOf(key), t, key);
      }
      assert.equal(hashTagOf(k.moduleKeyval('vcard', owner)), t);
      assert.equal(hashTagOf(k.moduleMap('private', owner)), t);
    }
    assert.notEqual(k.moduleKeyval('a', 'b}:{c'), k.moduleKeyval('a', 'b'));
    assert.notEqual(k.moduleMap('a-b', 'c'), k.moduleMap('a', 'b-c'));
    assert.equal(hashTagOf(k.archiveOwners('mam')), 'mam');
  });

  it('module storage uses the documented key scheme', async () => {
    const s = await openRedisStores({ url, prefix: 'modscheme' });
    const raw = new Redis(url);
    try {
      await s.storage.keyval('vcard').set('juliet@example.com', { fn: 'Juliet' });
      await s.storage.map('private').set('juliet@example.com', 'storage:bookmarks', '<storage/>');
      const item = await s.storage.archive('mam').append('juliet@example.com', { with: 'romeo@example.net/orchard', data: '<message/>', time: 1_000 });
      assert.equal(item.id, '0000000003e80000');
      assert.deepEqual((await raw.keys('modscheme:*')).sort(), [
        'modscheme:arch:mam:{juliet@example.com}',
        'modscheme:archd:mam:{juliet@example.com}',
        'modscheme:archlast:mam:{juliet@example.com}',
        'modscheme:archowners:{mam}',
        'modscheme:archw:mam:{juliet@example.com}',
        'modscheme:epoch',
        'modscheme:kv:vcard:{juliet@example.com}',
        'modscheme:map:private:{juliet@example.com}',
      ]);
      assert.equal(await raw.get('modscheme:kv:vcard:{juliet@example.com}'), '{"fn":"Juliet"}');
      assert.deepEqual(await raw.zrange('modscheme:arch:mam:{juliet@example.com}', 0, -1), [item.id]);
      assert.deepEqual(await raw.zrange('modscheme:archw:mam:{juliet@example.com}', 0, -1), [
        `17:romeo@example.net${item.id}`,
        `25:romeo@example.net/orchard${item.id}`,
      ]);
      assert.deepEqual(await raw.hgetall('modscheme:archd:mam:{juliet@example.com}'), { [`${item.id}w`]: 'romeo@example.net/orchard', [`${item.id}d`]: '<message/>' });
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it('archive owners(): an index entry without items is skipped and dropped; a Redis error is a StoreError', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const s = await openRedisStores({ url, prefix });
    const raw = new Redis(url);
    try {
      const a = s.storage.archive('mam');
      await a.append('b@x', { with: 'w', data: 'd' });
      // As left by a crash between a prune's script and its index update.
      await raw.zadd(`${prefix}:archowners:{mam}`, 0, 'a@x', 0, 'c@x');
      assert.deepEqual(await a.owners({ max: 1 }), ['b@x']);
      assert.deepEqual(await a.owners({ max: 10 }), ['b@x']);
      assert.deepEqual(await raw.zrange(`${prefix}:archowners:{mam}`, 0, -1), ['b@x']);
      await raw.set(`${prefix}:arch:mam:{b@x}`, 'not a zset');
      await assert.rejects(a.query('b@x', { max: 5 }), (err: Error) => err.name === 'StoreError' && /WRONGTYPE/.test(err.message));
      await raw.set(`${prefix}:map:private:{b@x}`, 'not a hash');
      await assert.rejects(s.storage.map('private').all('b@x'), { name: 'StoreError' });
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it('uses the documented key scheme', async () => {
    const s = await openRedisStores({ url, prefix: 'scheme' });
    const raw = new Redis(url);
    try {
      await s.accounts.create({ username: 'juliet', domain: 'example.com', credentials: {}, createdAt: 1 });
      await s.sessions.bind('juliet@example.com', { resource: 'r', sessionId: 's1', node: 'n1', priority: 0, available: false, boundAt: 1 });
      await s.sessions.heartbeat('n1', 1000);
      await s.sessions.lease('reaper', 'n1', 1000);
      await s.rosters.setItem('juliet@example.com', { jid: 'romeo@example.net', groups: [], subscription: 'none', ask: false, approved: false });
      await s.offline.push('juliet@example.com', '<message/>', 10);
      await s.presence.setPendingIn('juliet@example.com', 'romeo@example.net', '<presence type="subscribe"/>');
      await s.presence.addDirected('juliet@example.com/balcony', 'romeo@example.net/orchard');
      await s.coordination.join('roster', 'n1', 1000);
      await s.coordination.acquire('roster:0', 'n1', 1000);
      assert.deepEqual((await raw.keys('scheme:*')).sort(), [
        'scheme:acct:{example.com}:juliet',
        'scheme:accts:{example.com}',
        'scheme:dir:{juliet@example.com}:balcony',
        'scheme:dirs:{juliet@example.com}',
        'scheme:epoch',
        'scheme:group:{roster}',
        'scheme:lease:{reaper}',
        'scheme:lease:{roster:0}',
        'scheme:node:{n1}:sess',
        'scheme:nodes',
        'scheme:offline:{juliet@example.com}',
        'scheme:pendin:{juliet@example.com}',
        'scheme:roster:{juliet@example.com}',
        'scheme:rosterver:{juliet@example.com}',
        'scheme:sess:{juliet@example.com}',
        'scheme:sessnodes',
      ]);
      assert.deepEqual(await raw.smembers('scheme:dirs:{juliet@example.com}'), ['juliet@example.com/balcony']);
      assert.equal(await raw.get('scheme:rosterver:{juliet@example.com}'), '1');
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it('survives a flushed script cache (Redis restart without our scripts)', async () => {
    const s = await openRedisStores({ url, prefix: `t${randomBytes(4).toString('hex')}` });
    const raw = new Redis(url);
    try {
      await s.sessions.lease('x', 'a', 1000);
      await raw.script('FLUSH');
      assert.equal(await s.sessions.lease('x', 'a', 1000), true);
    } finally {
      raw.disconnect();
      await s.close();
    }
  });

  it('refuses a prefix with braces and an unreachable server with a StoreError', async () => {
    await assert.rejects(openRedisStores({ url, prefix: 'a{b}' }), { name: 'StoreError' });
    const started = Date.now();
    await assert.rejects(openRedisStores({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 500 }), { name: 'StoreError' });
    assert.ok(Date.now() - started < 3_000);
  });

  it('archive query latency against a local redis-server', async (t) => {
    const s = await openRedisStores({ url, prefix: `bench${randomBytes(4).toString('hex')}` });
    try {
      t.diagnostic(await measureArchive(s.storage));
    } finally {
      await s.close();
    }
  });

  it('operation latency against a local redis-server', async (t) => {
    const s = await openRedisStores({ url, prefix: `bench${randomBytes(4).toString('hex')}` });
    try {
      t.diagnostic(await measure(s));
    } finally {
      await s.close();
    }
  });
});
