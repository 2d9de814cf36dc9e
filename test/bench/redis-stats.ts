/**
 * Routing-state counters of a Hyphae under load. Commands a Hyphae cluster's Redis has processed (`INFO stats`), so a send
 * phase can report Redis commands per routed stanza — an upper bound on
 * round trips, since a pipeline sends several commands in one.
 */
import { Redis } from 'ioredis';
import { metricValue, scrapeMetrics } from '../harness/server.js';

export class RedisCommands {
  private readonly client: Redis;

  constructor(port: number) {
    this.client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  }

  /** total_commands_processed, minus the INFO calls this class made itself. */
  async total(): Promise<number> {
    const info = await this.client.info('stats');
    const m = /total_commands_processed:(\d+)/.exec(info);
    if (!m) throw new Error('Redis INFO stats has no total_commands_processed');
    return Number(m[1]);
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** Sum of the routers' session-cache lookups over Hyphae processes' metrics endpoints. */
export async function routeCacheLookups(ports: readonly number[]): Promise<{ hits: number; misses: number }> {
  let hits = 0;
  let misses = 0;
  for (const port of ports) {
    const text = await scrapeMetrics(port);
    hits += metricValue(text, 'hyphae_route_cache_lookups_total', { result: 'hit' }) ?? 0;
    misses += metricValue(text, 'hyphae_route_cache_lookups_total', { result: 'miss' }) ?? 0;
  }
  return { hits, misses };
}
