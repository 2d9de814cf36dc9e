/**
 * Test helper: times the store operations that sit on the login and routing
 * paths, one at a time (latency, not throughput), and formats p50/p99 in µs.
 */
import { randomBytes } from 'node:crypto';
import type { Stores } from './types.js';

const N = 1_000;

async function time(n: number, op: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await op(i);
    us.push(Number(process.hrtime.bigint() - t0) / 1_000);
  }
  us.sort((a, b) => a - b);
  return { p50: us[Math.floor(n * 0.5)] ?? 0, p99: us[Math.floor(n * 0.99)] ?? 0 };
}

export async function measure(s: Stores): Promise<string> {
  const bare = (i: number): string => `user${i}@bench.example`;
  const sids = Array.from({ length: N }, () => randomBytes(16).toString('hex'));
  const creds = { 'SCRAM-SHA-256': { salt: 'c2FsdA==', iterations: 4096, storedKey: 'a2V5', serverKey: 'a2V5' } };
  const r: Record<string, { p50: number; p99: number }> = {};
  r['account.create'] = await time(N, (i) => s.accounts.create({ username: `user${i}`, domain: 'bench.example', credentials: creds, createdAt: 0 }));
  r['account.get'] = await time(N, (i) => s.accounts.get('bench.example', `user${i}`));
  r['bind'] = await time(N, (i) => s.sessions.bind(bare(i), { resource: 'r', sessionId: sids[i] as string, node: 'bench', priority: 0, available: false, boundAt: 0 }));
  r['rebind'] = await time(N, (i) => s.sessions.bind(bare(i), { resource: 'r', sessionId: `${sids[i]}b`, node: 'bench2', priority: 0, available: false, boundAt: 0 }));
  r['list'] = await time(N, (i) => s.sessions.list(bare(i)));
  r['update'] = await time(N, (i) => s.sessions.update(bare(i), 'r', `${sids[i]}b`, { available: true, priority: 1 }));
  r['unbind'] = await time(N, (i) => s.sessions.unbind(bare(i), 'r', `${sids[i]}b`));
  const contact = (i: number): string => `contact${i % 100}@bench.example`;
  r['roster.setItem'] = await time(N, (i) =>
    s.rosters.setItem(bare(i % 10), { jid: contact(i), name: `C ${i}`, groups: ['Friends'], subscription: 'both', ask: false, approved: false }),
  );
  r['roster.get(100 items)'] = await time(N, (i) => s.rosters.get(bare(i % 10)));
  const stanza = `<message xmlns="jabber:client" to="u@bench.example" type="chat"><body>${'x'.repeat(200)}</body></message>`;
  r['offline.push'] = await time(N, (i) => s.offline.push(bare(i % 100), stanza, 1000));
  r['offline.take(10)'] = await time(100, (i) => s.offline.take(bare(i)));
  return Object.entries(r)
    .map(([k, v]) => `${k} p50 ${v.p50.toFixed(0)}µs p99 ${v.p99.toFixed(0)}µs`)
    .join('; ');
}
