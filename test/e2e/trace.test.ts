/**
 * A trace id follows a stanza across services (DESIGN.md: routing metadata
 * in bus headers; logs in JSON): in a cluster at log level debug, the c2s
 * line of a room join, the roster line of the user actor that routes it and
 * the muc line of the room that handles it carry the same `trace`.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/trace.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { login, newAccount, uniqueName, xml } from '../harness/clients.js';
import { clusterSkipReason, startCluster, type ClusterServer } from '../harness/server.js';
import { waitUntil } from '../harness/util.js';

const skip = clusterSkipReason();

interface Line {
  proc: string;
  msg?: string;
  trace?: string;
  to?: string;
  room?: string;
}

function parseLines(raw: string[]): Line[] {
  const out: Line[] = [];
  for (const l of raw) {
    const m = /^\[([^\]]+)\] (\{.*\})$/.exec(l);
    if (!m) continue;
    try {
      out.push({ proc: m[1] as string, ...(JSON.parse(m[2] as string) as Omit<Line, 'proc'>) });
    } catch {
      // not a JSON line
    }
  }
  return out;
}

describe('trace ids across services (cluster)', { skip: skip ?? false }, () => {
  let cluster: ClusterServer | undefined;
  before(async () => {
    cluster = await startCluster({ c2sNodes: 1, rosterNodes: 1, mucNodes: 1, config: { log: { level: 'debug' } } });
  });
  after(async () => {
    await cluster?.dispose();
  });

  it('a room join is logged with one trace id by c2s, roster and muc', { timeout: 60_000 }, async (t) => {
    const srv = cluster as ClusterServer;
    const a = await newAccount(srv, 'tr');
    const s = await login(srv, { ...a, resource: 'r' });
    const room = `${uniqueName('trace')}@conference.${srv.domain}`;
    await s.send(xml('presence', { to: `${room}/me` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
    await s.waitFor((el) => el.is('message') && el.getChild('subject') !== undefined, 10_000);
    let trace: string | undefined;
    await waitUntil(() => {
      const lines = parseLines(srv.logs());
      trace = lines.find((l) => l.msg === 'stanza in' && l.to === `${room}/me`)?.trace;
      if (!trace) return false;
      const procs = new Set(lines.filter((l) => l.trace === trace).map((l) => l.proc.replace(/-\d+$/, '')));
      return procs.has('c2s') && procs.has('roster') && procs.has('muc');
    }, 10_000, 'log lines of c2s, roster and muc with the same trace id');
    const procs = [...new Set(parseLines(srv.logs()).filter((l) => l.trace === trace).map((l) => l.proc))].sort();
    t.diagnostic(`trace ${String(trace)} seen in: ${procs.join(', ')}`);
    assert.ok(trace && /^[0-9a-f]{16}$/.test(trace), `a trace id (${String(trace)})`);
    await s.stop();
  });
});
