/**
 * Bouncing a stanza the s2s service could not send, when the error cannot
 * be routed back (the session registry out of reach): logged, never a
 * rejection nobody handles (callers do not wait for it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createMemoryBus } from '@hyphae/bus';
import { openEmbeddedStores, StoreError, type SessionStore } from '@hyphae/store';
import { createLogger, createMetrics } from '@hyphae/observability';
import { ModuleRegistry } from '@hyphae/module-api';
import { Router } from '@hyphae/router';
import { bounce } from './outbound.js';

test('a bounce whose error cannot be routed (registry down) resolves and logs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hy-s2s-bounce-'));
  const bus = createMemoryBus();
  const stores = await openEmbeddedStores({ dir });
  const lines: string[] = [];
  const logger = createLogger({
    service: 's2s-test',
    destination: new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(chunk.toString()); done(); } }),
  });
  const metrics = createMetrics({ service: 's2s-test', node: 'n1', defaultMetrics: false });
  // Redis gone: every registry read times out.
  const sessions = new Proxy(stores.sessions, {
    get(t, prop) {
      if (prop === 'list') return () => Promise.reject(new StoreError('list sessions failed: Command timed out'));
      const v: unknown = Reflect.get(t, prop, t);
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(t) : v;
    },
  }) satisfies SessionStore;
  const router = new Router({ domains: ['example.org'], nodeId: 'n1', bus, stores: { ...stores, sessions }, logger, metrics, registry: ModuleRegistry.of({}) });
  try {
    const data = new TextEncoder().encode("<message from='alice@example.org/phone' to='bob@remote.example' type='chat' id='m1'><body>hi</body></message>");
    await bounce({ metrics, router, logger }, data, 'remote-server-not-found');
    assert.ok(lines.some((l) => l.includes('could not bounce a stanza to its sender')), lines.join(''));
  } finally {
    router.close();
    await bus.close();
    await stores.close();
    await rm(dir, { recursive: true, force: true });
  }
});
