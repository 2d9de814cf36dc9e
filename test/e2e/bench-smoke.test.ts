/**
 * Smoke test of the load tool (test/bench, docs/benchmarks.md): its framer
 * and SCRAM client on fixed inputs, then the tool itself, as `npm run bench`
 * runs it, for a few seconds against a server it spawns: the muc scenario
 * (JSON fields present, nothing lost or reordered) and the wire check
 * against @xmpp/client.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/bench-smoke.test.js
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Framer } from '../bench/framing.js';
import { ScramClient } from '../bench/scram.js';
import { HYPHAE_BIN, embeddedSkipReason } from '../harness/server.js';
import { runBench } from '../harness/bench-tool.js';
import { contactsOf } from '../bench/group.js';
import { bestStep, keepStepping, medianCurve } from '../bench/scenarios/steps.js';
import type { LoadStep } from '../bench/results.js';

const COMPARE = fileURLToPath(new URL('../bench/compare.js', import.meta.url));

function mucSkipReason(): string | null {
  const base = embeddedSkipReason();
  if (base) return base;
  if (process.env.HYPHAE_E2E_EXTERNAL) return 'HYPHAE_E2E_EXTERNAL is set: the smoke test spawns its own server';
  const r = spawnSync(process.execPath, [HYPHAE_BIN, 'help'], { encoding: 'utf8', timeout: 20_000 });
  if (!/^\s+muc\s/m.test(r.stdout ?? '')) return `the server build has no muc service (\`${HYPHAE_BIN} help\`): rebuild with npx tsc -b services/hyphae`;
  return null;
}

const bench = runBench;

describe('bench: framer', () => {
  const stream =
    `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x1' from='localhost' version='1.0'>` +
    `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>` +
    ` \n` + // whitespace keepalive
    `<message from="r@c/a&gt;b" to='u@d' type='groupchat' note="a > b / c"><body>x &lt; y</body><x xmlns='y'><x><x/></x></x></message>` +
    `<presence from='r@c/n'/>` +
    `<iq type='result' id="q'1"><query><![CDATA[ </iq> <b> ]]></query></iq>` +
    `<message><body>é ü 😀</body></message>` +
    `</stream:stream>`;
  const expected = [
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    `<message from="r@c/a&gt;b" to='u@d' type='groupchat' note="a > b / c"><body>x &lt; y</body><x xmlns='y'><x><x/></x></x></message>`,
    "<presence from='r@c/n'/>",
    `<iq type='result' id="q'1"><query><![CDATA[ </iq> <b> ]]></query></iq>`,
    '<message><body>é ü 😀</body></message>',
  ];
  const run = (chunks: string[]): { headers: string[]; elements: string[]; ends: number } => {
    const out = { headers: [] as string[], elements: [] as string[], ends: 0 };
    const f = new Framer({ header: (t) => out.headers.push(t), element: (x) => out.elements.push(x), end: () => out.ends++ });
    for (const c of chunks) f.write(c);
    return out;
  };

  it('frames a stream given in one piece', () => {
    const r = run([stream]);
    assert.equal(r.headers.length, 1);
    assert.match(r.headers[0] as string, /^<stream:stream .*id='x1'.*>$/);
    assert.deepEqual(r.elements, expected);
    assert.equal(r.ends, 1);
  });

  it('frames the same stream split at every position, and byte by byte', () => {
    for (let i = 1; i < stream.length; i++) {
      const r = run([stream.slice(0, i), stream.slice(i)]);
      assert.deepEqual(r.elements, expected, `split at ${i}`);
      assert.equal(r.headers.length, 1, `split at ${i}`);
      assert.equal(r.ends, 1, `split at ${i}`);
    }
    const r = run([...stream]);
    assert.deepEqual(r.elements, expected);
  });

  it('frames several stanzas per chunk and stanzas spread over many chunks', () => {
    const many = Array.from({ length: 200 }, (_, i) => `<message id='m${i}' type='groupchat'><body>hyb1 r 1 ${i} 0</body></message>`);
    const all = `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>${many.join('')}`;
    for (const size of [1, 7, 64, 1000, 4096]) {
      const chunks: string[] = [];
      for (let i = 0; i < all.length; i += size) chunks.push(all.slice(i, i + size));
      assert.deepEqual(run(chunks).elements, many, `chunks of ${size}`);
    }
  });
});

describe('bench: SCRAM client', () => {
  it('RFC 5802 §5 SCRAM-SHA-1 example', async () => {
    const c = new ScramClient('SCRAM-SHA-1', 'user', 'pencil', 'fyko+d2lbbFgONRv9qkxdawL');
    assert.equal(c.first(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const final = await c.final('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096');
    assert.equal(final, 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    c.verify('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=');
    assert.throws(() => c.verify('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA='), /does not verify/);
  });

  it('RFC 7677 §3 SCRAM-SHA-256 example', async () => {
    const c = new ScramClient('SCRAM-SHA-256', 'user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
    assert.equal(c.first(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const final = await c.final('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    assert.equal(final, 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    c.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  it('refuses a server nonce that does not extend the client nonce', async () => {
    const c = new ScramClient('SCRAM-SHA-1', 'user', 'pencil', 'abc');
    c.first();
    await assert.rejects(c.final('r=xyz123,s=QSXCR+Q6sek8bf92,i=4096'), /nonce/);
  });
});

describe('bench: rising load and contacts', () => {
  const step = (offered: number, achieved: number, p99: number | null, lost = 0, errors = 0): LoadStep => ({
    offered,
    achieved,
    latency: { count: 10, p50: p99 === null ? null : p99 / 2, p99, p999: p99, max: p99, mean: p99 },
    lost,
    errors,
    serverCores: 0.5,
  });

  it('contacts are ring neighbours on both sides: symmetric, k of them, never oneself', () => {
    assert.deepEqual(contactsOf(0, 10, 4).sort((a, b) => a - b), [1, 2, 8, 9]);
    for (let i = 0; i < 12; i++) {
      const c = contactsOf(i, 12, 6);
      assert.equal(new Set(c).size, 6);
      assert.ok(!c.includes(i));
      for (const j of c) assert.ok(contactsOf(j, 12, 6).includes(i), `${i} ↔ ${j}`);
    }
  });

  it('the best step is the highest rate under the bar with nothing lost or refused', () => {
    const steps = [step(100, 100, 2), step(200, 200, 49.9), step(400, 400, 50), step(800, 790, 3, 1), step(1600, 1500, 10, 0, 2)];
    assert.equal(bestStep(steps, 50)?.offered, 200);
    assert.equal(bestStep([step(100, 100, 60)], 50), null);
  });

  it('stepping stops on latency, loss, errors or throughput below 80% of the offer', () => {
    assert.equal(keepStepping(step(100, 100, 10), 1000, 100), true);
    assert.equal(keepStepping(step(100, 100, 1001), 1000, 100), false);
    assert.equal(keepStepping(step(100, 100, 10, 1), 1000, 100), false);
    assert.equal(keepStepping(step(100, 100, 10, 0, 1), 1000, 100), false);
    assert.equal(keepStepping(step(100, 79, 10), 1000, 100), false);
    assert.equal(keepStepping(step(100, 100, null), 1000, 100), false);
  });

  it('the curve is the median per offered rate over the runs that reached it', () => {
    const c = medianCurve([[step(100, 90, 5), step(200, 180, 40)], [step(100, 100, 7)], [step(100, 95, 6), step(200, 200, 20)]], 'messages/s', 'deliveries/s');
    assert.deepEqual(c.points.map((p) => [p.offered, p.achieved, p.p99, p.runs]), [[100, 95, 6, 3], [200, 190, 30, 2]]);
  });
});

describe('bench: the tool against a spawned server', () => {
  const skip = mucSkipReason();

  it('muc --spawn embedded --occupants 5 --duration 2: results complete, nothing lost', { timeout: 30_000, skip: skip ?? false }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hyphae-bench-smoke-'));
    try {
      const json = join(dir, 'muc.json');
      const r = await bench(['muc', '--spawn', 'embedded', '--occupants', '5', '--duration', '2', '--rate', '50', '--drain', '5', '--json', json, '--quiet'], 28_000);
      for (const line of r.stdout.trim().split('\n')) t.diagnostic(line);
      assert.equal(r.code, 0, `exit code ${r.code}; stderr:\n${r.stderr.slice(-3000)}`);
      const res = JSON.parse(readFileSync(json, 'utf8')) as Record<string, any>;
      assert.equal(res.tool, 'hyphae-bench');
      assert.equal(res.scenario, 'muc');
      assert.equal(res.ok, true);
      assert.equal(res.target.mode, 'embedded');
      assert.ok(res.machine.nproc >= 1 && typeof res.machine.cpuModel === 'string');
      assert.equal(res.runs.length, 1);
      const run = res.runs[0];
      assert.equal(run.login.users, 5);
      assert.equal(run.join.occupants, 5);
      assert.equal(run.join.presencesReceived, 25, 'every occupant saw every occupant');
      assert.ok(run.join.lastSelfPresenceMs > 0 && run.join.lastSubjectMs >= run.join.lastSelfPresenceMs);
      const m = run.messages;
      assert.ok(m.sent >= 90 && m.sent <= 101, `sent ${m.sent} at 50/s for 2 s`);
      assert.equal(m.errors, 0);
      assert.equal(m.expectedDeliveries, m.sent * 5);
      assert.equal(m.receivedDeliveries, m.expectedDeliveries);
      assert.equal(m.lostDeliveries, 0);
      assert.equal(m.outOfOrder, 0);
      assert.ok(m.deliveriesPerSecond > 0);
      for (const k of ['p50', 'p99', 'p999', 'max']) assert.equal(typeof m.latency[k], 'number', `latency ${k}`);
      assert.equal(m.latency.count, m.receivedDeliveries, 'no warm-up at 2 s: every delivery measured');
      assert.ok(run.generator.cpuSeconds >= 0 && run.generator.workers === 1);
      assert.ok(run.server.processes.length >= 1, 'the spawned server was sampled');
      assert.ok(run.server.maxRssBytes > 0 && run.server.cpuSeconds > 0);
      for (const k of ['groupchat_deliveries_per_s', 'latency_p50', 'latency_p99', 'latency_p999', 'latency_max', 'lost_deliveries', 'join_last_subject', 'server_cpu']) {
        assert.ok(k in res.summary, `summary.${k}`);
      }
      assert.equal(res.summary.lost_deliveries.median, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const json = (args: string[], timeoutMs: number) => async (t: { diagnostic(s: string): void }): Promise<Record<string, any>> => {
    const dir = mkdtempSync(join(tmpdir(), 'hyphae-bench-smoke-'));
    try {
      const file = join(dir, 'out.json');
      const r = await bench([...args, '--spawn', 'embedded', '--json', file, '--quiet'], timeoutMs);
      for (const line of r.stdout.trim().split('\n')) t.diagnostic(line);
      assert.equal(r.code, 0, `exit code ${r.code}; stderr:\n${r.stderr.slice(-3000)}`);
      return JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('chat: two rates, every message delivered once, in order; a curve point per rate', { timeout: 40_000, skip: skip ?? false }, async (t) => {
    const res = await json(['chat', '--users', '30', '--contacts', '4', '--rate', '100,200', '--duration', '1', '--drain', '5'], 38_000)(t);
    assert.equal(res.ok, true);
    const steps = res.runs[0].steps;
    assert.deepEqual(steps.map((s: any) => s.offered), [100, 200]);
    for (const s of steps) {
      assert.ok(s.messages.sent >= 0.9 * s.offered, `sent ${s.messages.sent} at ${s.offered}/s for 1 s`);
      assert.equal(s.messages.expectedDeliveries, s.messages.sent, 'a chat message is delivered once');
      assert.equal(s.messages.receivedDeliveries, s.messages.sent);
      assert.equal(s.messages.lostDeliveries, 0);
      assert.equal(s.messages.outOfOrder, 0);
    }
    assert.deepEqual(res.curve.points.map((p: any) => p.offered), [100, 200]);
    // Which rate is "best" (p99 under 50 ms) depends on the machine's load: only that it is one of those offered.
    assert.ok([100, 200].includes(res.summary.best_offered_rate.median), `best offered rate ${res.summary.best_offered_rate.median}`);
    assert.equal(res.summary.lost_deliveries.median, 0);
    assert.ok(res.summary.route_cache_hit_rate_at_best.median > 0, 'the route cache is counted through the metrics port');
  });

  it('presence: mutual rosters set up through the protocol, every contact seen at login, each change to every contact', { timeout: 40_000, skip: skip ?? false }, async (t) => {
    const res = await json(['presence', '--users', '12', '--contacts', '4', '--rate', '10,20', '--duration', '1', '--drain', '5'], 38_000)(t);
    assert.equal(res.ok, true);
    const run = res.runs[0];
    assert.equal(run.roster.pairs, 24);
    assert.equal(run.roster.asked, 24);
    assert.equal(run.initial.expected, 48);
    assert.equal(run.initial.pairs, 48, 'each user saw each of its 4 contacts');
    for (const s of run.steps) {
      assert.equal(s.messages.expectedDeliveries, s.messages.sent * 4);
      assert.equal(s.messages.receivedDeliveries, s.messages.expectedDeliveries);
      assert.equal(s.messages.outOfOrder, 0);
    }
  });

  it('login: open-loop arrivals at two rates, every login completed, step timings', { timeout: 40_000, skip: skip ?? false }, async (t) => {
    const res = await json(['login', '--users', '5', '--rate', '10,20', '--duration', '1'], 38_000)(t);
    const steps = res.runs[0].steps;
    assert.deepEqual(steps.map((s: any) => [s.offered, s.attempted, s.completed, s.failed]), [[10, 10, 10, 0], [20, 20, 20, 0]]);
    for (const k of ['connect', 'tls', 'auth', 'bind', 'roster']) assert.equal(steps[1].steps[k].count, 20, k);
    assert.ok(res.summary.max_logins_per_s.median > 0);
    assert.equal(res.summary.failures.median, 0);
  });

  it('idle: sessions held, server memory per session measured', { timeout: 40_000, skip: skip ?? false }, async (t) => {
    const res = await json(['idle', '--users', '50', '--idle', '1'], 38_000)(t);
    const run = res.runs[0];
    assert.equal(run.sessions, 50);
    assert.ok(run.rssIdleBytes > 0 && run.rssBeforeBytes > 0);
    assert.equal(typeof res.summary.rss_per_session_kib.median, 'number');
  });

  it('compare --quick: starts the server, runs the tool against it, writes the comparison, report and plots', { timeout: 60_000, skip: skip ?? false }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hyphae-compare-smoke-'));
    try {
      const r = await bench(['--quick', '--runs', '1', '--servers', 'hyphae-embedded', '--scenarios', 'chat,login', '--out', dir], 58_000, COMPARE);
      assert.equal(r.code, 0, `exit code ${r.code}; stderr:\n${r.stderr.slice(-3000)}`);
      const c = JSON.parse(readFileSync(join(dir, 'compare.json'), 'utf8')) as Record<string, any>;
      assert.equal(c.tool, 'hyphae-bench-compare');
      assert.equal(c.servers.length, 1);
      assert.equal(c.servers[0].scenarios.chat.ok, true);
      assert.equal(c.servers[0].scenarios.login.summary.failures.median, 0);
      assert.equal(c.commands.length, 2);
      const md = readFileSync(join(dir, 'compare.md'), 'utf8');
      t.diagnostic(md.split('\n').slice(0, 12).join('\n'));
      assert.match(md, /chat/);
      assert.match(readFileSync(join(dir, 'chat-latency.svg'), 'utf8'), /^<svg|<\?xml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('wirecheck: logs in with the same stanzas as @xmpp/client', { timeout: 30_000, skip: embeddedSkipReason() ?? false }, async (t) => {
    const r = await bench(['wirecheck', '--spawn', 'embedded', '--quiet'], 28_000);
    for (const line of r.stdout.trim().split('\n')) t.diagnostic(line);
    assert.equal(r.code, 0, `exit code ${r.code}:\n${r.stdout}\n${r.stderr.slice(-3000)}`);
    assert.match(r.stdout, /^identical$/m);
  });
});
