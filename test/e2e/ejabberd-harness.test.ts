/**
 * The ejabberd harness (harness/ejabberd.ts) works, checked with real
 * clients over TCP and STARTTLS: accounts made with addUser log in with
 * @xmpp/client (SCRAM-SHA-1), exchange messages and read their roster, a
 * wrong password is refused (and does not get 127.0.0.1 banned); with
 * `registration: true` the load tool's provision() registers accounts
 * in-band, as a load run against ejabberd does, and its client logs them in;
 * two instances run side by side; stop() leaves no process and no
 * directory; `pid` is the Erlang VM itself; a killed test process takes its
 * ejabberd with it.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/ejabberd-harness.test.js
 */
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { TLSSocket } from 'node:tls';
import { NS, login, loginFails, withTimeout, xml, type Session } from '../harness/clients.js';
import { waitUntil } from '../harness/util.js';
import { ejabberdSkipReason, startEjabberd, type EjabberdOptions, type EjabberdServer } from '../harness/ejabberd.js';
import { BenchClient, XmppError, loginClient } from '../bench/client.js';
import { accounts, provision } from '../bench/provision.js';

const skip = ejabberdSkipReason();
const NS_ROSTER = 'jabber:iq:roster';

/** Pid → parent pid of every process visible in /proc. */
function processTable(): Map<number, number> {
  const table = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      table.set(Number(e), ppid);
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

/** `pid` and all its descendants. */
function processTree(pid: number): number[] {
  const table = processTable();
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const [p, pp] of table) if (pp === out[i]) out.push(p);
  }
  return out.filter((p) => table.has(p));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids of processes whose command line mentions `s`. */
function processesMentioning(s: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(s)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The TCP sockets `pid` listens on (from its fds and /proc/net/tcp{,6}). */
function listeningSockets(pid: number): { ip: string; port: number }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: { ip: string; port: number }[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      const [hexIp, hexPort] = f[1]!.split(':') as [string, string];
      const ip = hexIp.length === 8 ? (hexIp.match(/../g) ?? []).reverse().map((h) => parseInt(h, 16)).join('.') : hexIp;
      out.push({ ip, port: parseInt(hexPort, 16) });
    }
  }
  return out;
}

function portRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

/** Log lines at error level or worse. */
const problems = (e: EjabberdServer): string[] => e.log().split('\n').filter((l) => /\[(error|critical|alert|emergency)\]/.test(l));

async function withEjabberdLogs(t: TestContext, servers: readonly EjabberdServer[], fn: () => Promise<void>, lines = 80): Promise<void> {
  try {
    await fn();
  } catch (err) {
    for (const s of servers) {
      t.diagnostic(`--- ejabberd ${s.node} log, last ${lines} lines (${s.dir}; HYPHAE_E2E_KEEP=1 keeps it) ---`);
      for (const l of s.log().split('\n').slice(-lines)) t.diagnostic(l);
    }
    throw err;
  }
}

describe('ejabberd harness', { skip: skip ?? false }, () => {
  const started: EjabberdServer[] = [];
  const start = async (t: TestContext, opts: EjabberdOptions = {}): Promise<EjabberdServer> => {
    const e = await startEjabberd(opts);
    started.push(e);
    t.after(() => e.stop());
    return e;
  };
  after(async () => {
    await Promise.all(started.map((e) => e.stop()));
  });

  it('addUser accounts log in over STARTTLS with SCRAM-SHA-1, exchange messages, read the roster; wrong passwords fail; pid is beam.smp', { timeout: 60_000 }, async (t) => {
    const t0 = performance.now();
    const e = await start(t, { users: [{ user: 'alice', password: 'alice-pw' }, { user: 'bob', password: 'bob-pw' }] });
    t.diagnostic(`ejabberd ${e.version} ready with 2 users in ${Math.round(performance.now() - t0)} ms: c2s ${e.c2sPort}, pid ${e.pid}, node ${e.node}, ${e.dir}`);
    await withEjabberdLogs(t, [e], async () => {
      assert.equal(e.domain, 'localhost');
      assert.equal(e.mucDomain, undefined);
      assert.ok(e.running());
      assert.equal(readFileSync(`/proc/${e.pid}/comm`, 'utf8').trim(), 'beam.smp');
      const argv = readFileSync(`/proc/${e.pid}/cmdline`, 'utf8').split('\0');
      assert.match(argv[0] ?? '', /beam\.smp$/);
      assert.ok(argv.includes(e.node), 'the node name is on the VM command line');

      const t1 = performance.now();
      await e.addUser('carol', 'carol-pw');
      t.diagnostic(`addUser took ${Math.round(performance.now() - t1)} ms`);
      await assert.rejects(e.addUser('carol', 'other'), /already registered|conflict/);

      const sessions: Session[] = [];
      t.after(() => Promise.all(sessions.map((s) => s.stop())));
      for (const [username, password] of [['alice', 'alice-pw'], ['bob', 'bob-pw'], ['carol', 'carol-pw']] as const) {
        const s = await login(e, { username, password });
        sessions.push(s);
        assert.equal(s.bare, `${username}@localhost`);
        assert.ok(s.client.isSecure(), 'STARTTLS');
        assert.ok(s.offeredMechanisms.includes('SCRAM-SHA-1'), s.offeredMechanisms.join(','));
        assert.ok(!s.offeredMechanisms.includes('DIGEST-MD5'), s.offeredMechanisms.join(','));
      }
      const [alice, bob] = sessions as [Session, Session, Session];

      // The certificate on the wire is the harness's, issued by its CA.
      const sock = (alice.client.socket as { socket?: TLSSocket } | null)?.socket;
      assert.ok(sock instanceof TLSSocket, 'TLS socket under @xmpp/client');
      const peer = sock.getPeerX509Certificate();
      assert.ok(peer && e.caPem, 'peer certificate and CA');
      assert.equal(peer.fingerprint256, new X509Certificate(e.certPem).fingerprint256);
      assert.ok(peer.checkIssued(new X509Certificate(e.caPem)), 'issued by the harness CA');
      assert.equal(peer.checkHost('localhost'), 'localhost');

      const pong = await alice.ping('localhost');
      assert.equal(pong.attrs.type, 'result', pong.toString());

      // To a full JID, then to the bare JID once bob is available.
      await alice.send(xml('message', { to: bob.jid, type: 'chat', id: 'm1' }, xml('body', {}, 'hello bob')));
      const m1 = await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'm1', 10_000, 'message m1');
      assert.equal(m1.getChildText('body'), 'hello bob');
      assert.equal(m1.attrs.from, alice.jid);
      await bob.send(xml('presence'));
      await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid, 10_000, "bob's own presence");
      await alice.send(xml('message', { to: bob.bare, type: 'chat', id: 'm2' }, xml('body', {}, 'to your bare JID')));
      const m2 = await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'm2', 10_000, 'message m2');
      assert.equal(m2.getChildText('body'), 'to your bare JID');

      // Roster: empty, then with bob in it after a roster set.
      const r0 = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
      assert.equal(r0.attrs.type, 'result', r0.toString());
      assert.deepEqual(r0.getChild('query', NS_ROSTER)?.getChildren('item') ?? [], []);
      const set = await alice.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: bob.bare, name: 'Bob' }))));
      assert.equal(set.attrs.type, 'result', set.toString());
      const r1 = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
      const items = r1.getChild('query', NS_ROSTER)?.getChildren('item') ?? [];
      assert.deepEqual(items.map((i) => [i.attrs.jid, i.attrs.name, i.attrs.subscription]), [[bob.bare, 'Bob', 'none']]);

      // Wrong passwords fail, twice, and 127.0.0.1 is not banned for it (no mod_fail2ban).
      for (const [username, password] of [['alice', 'wrong'], ['nobody', 'x']] as const) {
        const bad = await loginFails(e, { username, password });
        assert.equal(bad.condition, 'not-authorized', bad.message);
      }
      const again = await login(e, { username: 'alice', password: 'alice-pw' });
      sessions.push(again);

      // No in-band registration unless asked for.
      const c = await BenchClient.connect({ endpoint: { host: e.host, port: e.c2sPort }, domain: e.domain, timeoutMs: 10_000 });
      t.after(() => c.destroy());
      // Without mod_register ejabberd treats the pre-authentication iq like any other
      // stanza before SASL: a not-authorized stream error.
      await assert.rejects(c.register('mallory', 'pw'), (err: unknown) => err instanceof XmppError && err.condition === 'not-authorized');
      assert.deepEqual(problems(e), []);
    });
  });

  it('registration: true — provision() registers accounts in-band with no rate limit; they log in; MUC rooms work', { timeout: 60_000 }, async (t) => {
    const e = await start(t, { registration: true, muc: true });
    await withEjabberdLogs(t, [e], async () => {
      assert.equal(e.mucDomain, 'conference.localhost');
      const list = accounts('ibr', 40);
      const endpoints = [{ host: e.host, port: e.c2sPort }];
      const first = await provision(list, { endpoints, domain: e.domain, concurrency: 20, timeoutMs: 10_000 });
      t.diagnostic(`registered ${first.created} accounts in-band in ${first.seconds.toFixed(2)} s`);
      assert.deepEqual([first.created, first.existing], [40, 0]);
      const second = await provision(list, { endpoints, domain: e.domain, concurrency: 20, timeoutMs: 10_000 });
      assert.deepEqual([second.created, second.existing], [0, 40], 'registering again: conflict, counted as existing');

      // The load tool's client logs in (SCRAM-SHA-1, server signature verified) ...
      const a = list[0]!;
      const { client, timings } = await loginClient({ endpoint: endpoints[0]!, domain: e.domain, timeoutMs: 10_000 }, { username: a.username, password: a.password, mechanism: 'SCRAM-SHA-1' });
      t.after(() => client.close(1_000).catch(() => undefined));
      assert.equal(client.jid.split('/')[0], `${a.username}@localhost`);
      t.diagnostic(`bench client login: ${JSON.stringify(timings)}`);
      await assert.rejects(
        loginClient({ endpoint: endpoints[0]!, domain: e.domain, timeoutMs: 10_000 }, { username: a.username, password: 'wrong', mechanism: 'SCRAM-SHA-1' }),
        (err: unknown) => err instanceof XmppError && err.condition === 'not-authorized',
      );

      // ... and so does @xmpp/client, which then creates a room and talks in it.
      const b = list[1]!;
      const s = await login(e, { username: b.username, password: b.password });
      t.after(() => s.stop());
      const info = await s.iq(xml('iq', { type: 'get', to: e.mucDomain }, xml('query', { xmlns: NS.discoInfo })));
      assert.equal(info.getChild('query', NS.discoInfo)?.getChild('identity')?.attrs.category, 'conference', info.toString());
      const room = `room1@${e.mucDomain}`;
      await s.send(xml('presence', { to: `${room}/bee` }, xml('x', { xmlns: NS.muc })));
      const self = await s.waitFor((el) => el.name === 'presence' && el.attrs.from === `${room}/bee`, 10_000, 'room self-presence');
      const codes = self.getChild('x', NS.mucUser)?.getChildren('status').map((st) => st.attrs.code) ?? [];
      assert.ok(codes.includes('110'), self.toString());
      // ejabberd creates rooms unlocked (instant) unless configured otherwise: talk right away.
      await s.send(xml('message', { to: room, type: 'groupchat', id: 'g1' }, xml('body', {}, 'hello room')));
      const echo = await s.waitFor((el) => el.name === 'message' && el.attrs.type === 'groupchat' && el.getChildText('body') === 'hello room', 10_000, 'groupchat echo');
      assert.equal(echo.attrs.from, `${room}/bee`);
      assert.deepEqual(problems(e), []);
    });
  });

  it('two instances side by side; stop() leaves no process, port or directory, and is idempotent', { timeout: 60_000 }, async (t) => {
    const t0 = performance.now();
    const [a, b] = await Promise.all([start(t, { users: [{ user: 'u', password: 'pa' }] }), start(t, { users: [{ user: 'u', password: 'pb' }], domain: 'ej-b.test' })]);
    t.diagnostic(`two instances ready in ${Math.round(performance.now() - t0)} ms`);
    await withEjabberdLogs(t, [a, b], async () => {
      assert.equal(new Set([a.c2sPort, b.c2sPort]).size, 2);
      assert.notEqual(a.dir, b.dir);
      assert.notEqual(a.node, b.node);
      assert.notEqual(a.pid, b.pid);
      for (const [e, pw] of [[a, 'pa'], [b, 'pb']] as const) {
        const s = await login(e, { username: 'u', password: pw });
        assert.equal(s.bare, `u@${e.domain}`);
        await s.stop();
      }
      // Each VM listens on its c2s port and its distribution port, on loopback, and nothing else
      // (no 5222/5269/5280/5443, no MQTT/STUN).
      for (const e of [a, b]) {
        const ports = listeningSockets(e.pid);
        t.diagnostic(`${e.node} listens on ${ports.map((p) => `${p.ip}:${p.port}`).join(', ')}`);
        assert.equal(ports.length, 2, JSON.stringify(ports));
        assert.ok(ports.some((p) => p.port === e.c2sPort));
        assert.ok(ports.every((p) => p.ip === '127.0.0.1'), JSON.stringify(ports));
      }

      const tree = processTree(a.pid);
      t.diagnostic(`a's VM ${a.pid} and its helpers: ${tree.join(', ')}`);
      const { pid, dir, c2sPort, node } = a;
      const t1 = performance.now();
      await a.stop();
      t.diagnostic(`stop took ${Math.round(performance.now() - t1)} ms`);
      assert.equal(a.running(), false);
      await waitUntil(() => tree.every((p) => !alive(p)), 5_000, `the VM's helper processes (${tree.join(', ')}) to exit`);
      assert.equal(alive(pid), false);
      assert.deepEqual(processesMentioning(node), [], 'no process left with the node name');
      assert.deepEqual(processesMentioning(dir), [], 'no process left with the directory');
      assert.equal(existsSync(dir), false, 'temporary directory removed');
      assert.ok(await portRefused(c2sPort), 'c2s port closed');
      await a.stop(); // idempotent

      assert.ok(b.running(), 'the other instance is unaffected');
      const s = await login(b, { username: 'u', password: 'pb' });
      await s.stop();
      await b.stop();
      assert.equal(existsSync(b.dir), false);
    });
  });

  it('a test process killed with SIGKILL takes its ejabberd (and directory) with it', { timeout: 60_000 }, async (t) => {
    const harness = new URL('../harness/ejabberd.js', import.meta.url).href;
    const code = [
      `const { startEjabberd } = await import(${JSON.stringify(harness)});`,
      'const e = await startEjabberd({});',
      'console.log(JSON.stringify({ pid: e.pid, dir: e.dir, node: e.node }));',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const env = { ...process.env };
    delete env.HYPHAE_E2E_KEEP;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const info = await withTimeout(
      new Promise<{ pid: number; dir: string; node: string }>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (line) resolve(JSON.parse(line) as { pid: number; dir: string; node: string });
        });
        child.once('exit', (c) => reject(new Error(`child exited ${c}: ${err}`)));
      }),
      30_000,
      'the child to start ejabberd',
    );
    t.after(() => {
      for (const p of processTree(info.pid)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      rmSync(info.dir, { recursive: true, force: true });
    });
    const tree = processTree(info.pid);
    assert.ok(alive(info.pid));
    child.kill('SIGKILL');
    const ms = await waitUntil(() => tree.every((p) => !alive(p)), 15_000, `ejabberd (pid ${info.pid}) to exit after its test process died`);
    t.diagnostic(`ejabberd exited ${ms} ms after the test process was killed`);
    assert.equal(existsSync(info.dir), false, 'the VM removed its directory before halting');
    assert.deepEqual(processesMentioning(info.node), []);
  });
});
