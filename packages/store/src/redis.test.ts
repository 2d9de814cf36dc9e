import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hasBinary, startRedis, type ServerProcess } from '@hyphae/testkit';
import { Redis } from 'ioredis';
import { storeContract } from './contract.js';
import { measure } from './latency.js';
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

if (!skip) {
  storeContract('redis', async () => {
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
    };
  });
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

  it('operation latency against a local redis-server', async (t) => {
    const s = await openRedisStores({ url, prefix: `bench${randomBytes(4).toString('hex')}` });
    try {
      t.diagnostic(await measure(s));
    } finally {
      await s.close();
    }
  });
});
