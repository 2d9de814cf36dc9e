import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';
import * as lua from './redis-scripts.js';
import type { Guard } from './redis-scripts.js';
import type { Account, AccountStore, StoredCredentials } from './types.js';

/**
 * Accounts as one hash per account plus one sorted set of usernames per
 * domain, both under the domain's hash tag so create/delete update them
 * together in one script. All scores are 0, so ZRANGE returns usernames in
 * byte (UTF-8 = code point) order, the same order as the embedded store.
 */
export class RedisAccountStore implements AccountStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly guard: Guard,
  ) {}

  get(domain: string, username: string): Promise<Account | null> {
    return this.guard('get account', async () => {
      const h = await this.redis.hgetall(this.keys.account(domain, username));
      if (h['credentials'] === undefined) return null;
      return {
        username,
        domain,
        credentials: JSON.parse(h['credentials']) as StoredCredentials,
        createdAt: Number(h['createdAt']),
      };
    });
  }

  create(account: Account): Promise<boolean> {
    const { domain, username } = account;
    return this.guard('create account', async () => {
      const created = await lua.run(
        this.redis,
        lua.createAccount,
        [this.keys.account(domain, username), this.keys.accountsOf(domain)],
        [username, domain, JSON.stringify(account.credentials), account.createdAt],
      );
      return created === 1;
    });
  }

  setCredentials(domain: string, username: string, credentials: StoredCredentials): Promise<boolean> {
    return this.guard('set credentials', async () => {
      const done = await lua.run(this.redis, lua.setCredentials, [this.keys.account(domain, username)], [JSON.stringify(credentials)]);
      return done === 1;
    });
  }

  delete(domain: string, username: string): Promise<boolean> {
    return this.guard('delete account', async () => {
      const done = await lua.run(this.redis, lua.deleteAccount, [this.keys.account(domain, username), this.keys.accountsOf(domain)], [username]);
      return done === 1;
    });
  }

  list(domain: string): Promise<string[]> {
    return this.guard('list accounts', () => this.redis.zrange(this.keys.accountsOf(domain), 0, -1));
  }
}
