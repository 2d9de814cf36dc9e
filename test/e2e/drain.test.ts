/**
 * Graceful drain of a c2s node (DESIGN.md Operations; `c2s.drainGraceMs`,
 * `c2s.seeOtherHost`): SIGTERM to a node under message load in a cluster.
 * Its readiness turns false first, its clients get a clean stream error
 * after the grace period, nothing between other clients is lost, and
 * messages to its users that arrive after their stream closed are kept
 * offline (invariant 2).
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/drain.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Session, login, newAccount, sleep, xml, type XmlElement } from '../harness/clients.js';
import { clusterSkipReason, embeddedSkipReason, startCluster, startEmbedded, type ClusterServer } from '../harness/server.js';
import { sendPresence } from '../harness/im.js';
import { withServerLogs } from '../harness/util.js';

const GRACE_MS = 1_500;
const skip = clusterSkipReason();

async function ready(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(500) });
    return res.status === 200;
  } catch {
    return false; // closed: certainly not ready
  }
}

const seqOf = (el: XmlElement): number => Number(el.getChildText('body')?.split(' ')[1] ?? NaN);
const isChat = (tag: string) => (el: XmlElement): boolean => el.is('message') && (el.getChildText('body') ?? '').startsWith(`${tag} `);

describe('drain of a c2s node (cluster)', { skip: skip ?? false }, () => {
  let cluster: ClusterServer | undefined;
  const sessions: Session[] = [];
  before(async () => {
    cluster = await startCluster({ c2sNodes: 2, mucNodes: 1, config: { c2s: { drainGraceMs: GRACE_MS } } });
  });
  after(async () => {
    await Promise.all(sessions.map((s) => s.stop().catch(() => undefined)));
    await cluster?.dispose();
  });

  const mode = 'system-shutdown';
  {
    it('SIGTERM under load: readiness first, then <system-shutdown/>; nothing lost', { timeout: 90_000 }, (t) =>
      withServerLogs(t, cluster, async () => {
        const srv = cluster as ClusterServer;
        const victim = 1;
        const [a, b, c] = await Promise.all([newAccount(srv, 'da'), newAccount(srv, 'db'), newAccount(srv, 'dc')]);
        const sa = await login(srv, { ...a!, node: 0, resource: 'a' });
        const sb = await login(srv, { ...b!, node: 0, resource: 'b' });
        const sc = await login(srv, { ...c!, node: victim, resource: 'c' });
        sessions.push(sa, sb, sc);
        await Promise.all([sendPresence(sa), sendPresence(sb), sendPresence(sc)]);
        await sleep(300);

        // Load: a → b (both on a surviving node) and a → c (on the draining node), every 10 ms.
        let sending = true;
        let sent = 0;
        const pump = (async () => {
          while (sending) {
            sent++;
            await sa.send(xml('message', { to: b!.bare, type: 'chat' }, xml('body', {}, `ab ${sent}`)));
            await sa.send(xml('message', { to: c!.bare, type: 'chat' }, xml('body', {}, `ac ${sent}`)));
            await sleep(10);
          }
        })();
        await sleep(500);

        const port = srv.c2s[victim]!.httpPort;
        assert.equal(await ready(port), true, 'the node is ready before the SIGTERM');
        const t0 = Date.now();
        const stopping = srv.stopNode(victim);
        let notReadyAt = -1;
        while (Date.now() - t0 < GRACE_MS + 5_000) {
          if (!(await ready(port))) {
            notReadyAt = Date.now() - t0;
            break;
          }
          await sleep(20);
        }
        const condition = await sc.waitStreamError(GRACE_MS + 10_000);
        const closedAt = Date.now() - t0;
        await stopping;
        await sleep(500);
        sending = false;
        await pump;

        t.diagnostic(`SIGTERM → readiness false after ${notReadyAt} ms → <${condition}/> after ${closedAt} ms (grace ${GRACE_MS} ms); ${sent} messages each way sent during the run`);
        assert.ok(notReadyAt >= 0, 'readiness turned false');
        assert.ok(notReadyAt < closedAt, `readiness (${notReadyAt} ms) flips before the streams close (${closedAt} ms)`);
        assert.ok(closedAt >= GRACE_MS - 100, `streams close after the grace period (${closedAt} ms)`);
        assert.equal(condition, mode, 'a clean stream error');

        // a → b: every message, in order.
        const ab = (await sb.collect(sent, isChat('ab'), 15_000, 'a→b messages')).map(seqOf);
        assert.deepEqual(ab, Array.from({ length: sent }, (_, i) => i + 1), 'every a→b message arrived once, in order');

        // a → c: what c did not get before its stream closed waits offline; together, every one.
        const live = sc.drain(isChat('ac')).map(seqOf);
        const errors = sa.drain((el) => el.is('message') && el.attrs.type === 'error');
        const sc2 = await login(srv, { ...c!, node: 0, resource: 'c2' });
        sessions.push(sc2);
        await sendPresence(sc2);
        const rest = sent - live.length;
        const stored = rest > 0 ? (await sc2.collect(rest, isChat('ac'), 15_000, 'offline a→c messages')).map(seqOf) : [];
        t.diagnostic(`a→c: ${live.length} delivered before the stream closed, ${stored.length} kept offline, ${errors.length} bounced`);
        assert.equal(errors.length, 0, 'no a→c message was bounced');
        assert.deepEqual([...live, ...stored].sort((x, y) => x - y), Array.from({ length: sent }, (_, i) => i + 1), 'every a→c message delivered or kept offline, once');
        assert.deepEqual(live, [...live].sort((x, y) => x - y), 'live a→c messages in order');
        assert.deepEqual(stored, [...stored].sort((x, y) => x - y), 'offline a→c messages in order');
        // Invariant 1 across the session's end: everything kept offline was sent after everything delivered live.
        if (live.length > 0 && stored.length > 0) assert.ok((live.at(-1) as number) < (stored[0] as number), `live messages (up to ${String(live.at(-1))}) all precede the stored ones (from ${String(stored[0])})`);
        await srv.restartNode(victim);
      }),
    );
  }
});

describe('drain with see-other-host (embedded)', { skip: embeddedSkipReason() ?? false }, () => {
  it('clients are sent to the configured host with <see-other-host/> after the grace period', { timeout: 60_000 }, async (t) => {
    const srv = await startEmbedded({ config: { c2s: { drainGraceMs: 300, seeOtherHost: 'other.example.org:5222' } } });
    try {
      const a = await newAccount(srv, 'so');
      const s = await login(srv, { ...a, resource: 'r' });
      const t0 = Date.now();
      const stopping = srv.stop();
      const condition = await s.waitStreamError(10_000);
      const ms = Date.now() - t0;
      await stopping;
      t.diagnostic(`<${condition}/> after ${ms} ms (grace 300 ms)`);
      assert.equal(condition, 'see-other-host');
      assert.ok(ms >= 250, `after the grace period (${ms} ms)`);
      await s.stop().catch(() => undefined);
    } finally {
      await srv.dispose();
    }
  });
});
