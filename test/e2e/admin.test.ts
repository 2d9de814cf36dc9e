/**
 * Operator administration against real servers, in both modes:
 * - the `hyphae user …` / `hyphae status` CLI, spawned as real processes
 *   against the admin HTTP API of a running process (embedded: loopback
 *   without a token; cluster: `http.adminToken`, against sm and c2s nodes);
 * - XEP-0050 ad-hoc commands / XEP-0133 service administration from real
 *   @xmpp/client sessions, as an admin (`admins` config) and as a non-admin.
 *
 * Run: npx tsc -b services/hyphae test && node --test test/dist/e2e/admin.test.js
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NS, Session, login, loginFails, uniqueName, xml, stanzaErrorCondition, type XmlElement } from '../harness/clients.js';
import { HYPHAE_BIN, clusterSkipReason, embeddedSkipReason, startCluster, startEmbedded, type ClusterServer, type HyphaeServer } from '../harness/server.js';
import { waitUntil, withServerLogs } from '../harness/util.js';

const NS_COMMANDS = 'http://jabber.org/protocol/commands';
const NS_ADMIN = 'http://jabber.org/protocol/admin';
const CMD = {
  addUser: `${NS_ADMIN}#add-user`,
  deleteUser: `${NS_ADMIN}#delete-user`,
  changeUserPassword: `${NS_ADMIN}#change-user-password`,
  getOnlineUsersNum: `${NS_ADMIN}#get-online-users-num`,
  getRegisteredUsersNum: `${NS_ADMIN}#get-registered-users-num`,
};
const TOKEN = 'e2e-admin-token-0123456789abcdef';
const ADMIN = { username: 'boss', password: 'boss-password' };

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node services/hyphae/dist/main.js <args>` with a clean environment (plus `env`), `input` on stdin. */
function cli(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('HYPHAE_') || k === 'NATS_URL' || k === 'REDIS_URL' || k === 'NODE_TEST_CONTEXT' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  Object.assign(env, opts.env ?? {});
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HYPHAE_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function commandEl(node: string, attrs: Record<string, string> = {}, form?: Record<string, string | string[]>): XmlElement {
  const c = xml('command', { xmlns: NS_COMMANDS, node, ...attrs });
  if (form) {
    const x = c.c('x', { xmlns: NS.data, type: 'submit' });
    x.c('field', { var: 'FORM_TYPE', type: 'hidden' }).c('value').t(NS_ADMIN);
    for (const [k, v] of Object.entries(form)) {
      const f = x.c('field', { var: k });
      for (const one of Array.isArray(v) ? v : [v]) f.c('value').t(one);
    }
  }
  return c;
}

/** The commands application condition of an error answer, or null. */
function appCondition(answer: XmlElement): string | null {
  const err = answer.getChild('error');
  const app = err?.getChildElements().find((e) => e.attrs.xmlns === NS_COMMANDS);
  return app ? app.name : null;
}

function adminSuite(mode: 'embedded' | 'cluster'): void {
  const skip = mode === 'embedded' ? embeddedSkipReason() : clusterSkipReason();

  describe(`administration (${mode})`, { skip: skip ?? false }, () => {
    let server: HyphaeServer | undefined;
    const sessions: Session[] = [];
    /** Admin API base URLs: embedded — the process; cluster — [sm, c2s-0, c2s-1]. */
    let urls: string[] = [];
    let tokenEnv: Record<string, string> = {};
    let configDir = '';

    const srv = (): HyphaeServer => server as HyphaeServer;
    const url = (i = 0): string => urls[i % urls.length] as string;
    const run = (args: string[], opts: { input?: string; urlIndex?: number; env?: Record<string, string> } = {}) =>
      cli([...args, '--url', url(opts.urlIndex ?? 0)], { env: { ...tokenEnv, ...(opts.env ?? {}) }, ...(opts.input === undefined ? {} : { input: opts.input }) });
    const track = (s: Session): Session => {
      sessions.push(s);
      return s;
    };
    /** A user's last node: in a cluster, sessions spread over both c2s nodes. */
    const nodeFor = (i: number): number => (mode === 'cluster' ? i % 2 : 0);

    before(async () => {
      const config = { admins: [`${ADMIN.username}@localhost`], ...(mode === 'cluster' ? { http: { adminToken: TOKEN } } : {}) };
      if (mode === 'embedded') {
        server = await startEmbedded({ config });
        urls = [`http://127.0.0.1:${server.httpPort}`];
      } else {
        const c = await startCluster({ c2sNodes: 2, rosterNodes: 2, mucNodes: 2, config });
        server = c;
        urls = [`http://127.0.0.1:${c.smHttpPort}`, ...c.c2s.map((n) => `http://127.0.0.1:${n.httpPort}`)];
        tokenEnv = { HYPHAE_ADMIN_TOKEN: TOKEN };
      }
      configDir = mkdtempSync(join(tmpdir(), 'hyphae-admin-cli-'));
      ok(await run(['user', 'add', `${ADMIN.username}@localhost`, '--password', ADMIN.password]), 'create the admin account');
    });
    after(async () => {
      await Promise.all(sessions.map((s) => s.stop().catch(() => undefined)));
      await server?.dispose();
      if (configDir) rmSync(configDir, { recursive: true, force: true });
    });

    // --- CLI ---------------------------------------------------------------

    it('user add (--password, and from stdin): the account logs in; a second add is a conflict (exit 1); usage errors exit 2', { timeout: 120_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const name = uniqueName('cli');
        let r = ok(await run(['user', 'add', `${name}@localhost`, '--password', 'first-pw'], { urlIndex: 1 }), 'user add');
        assert.equal(r.stdout.trim(), `created ${name}@localhost`);
        await track(await login(srv(), { username: name, password: 'first-pw', node: nodeFor(0) })).stop();

        r = await run(['user', 'add', `${name}@localhost`, '--password', 'x']);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /conflict.*409/);

        const piped = uniqueName('pipe');
        ok(await run(['user', 'add', `${piped}@localhost`], { input: 'from-stdin-pw\n' }), 'user add with the password on stdin');
        await (track(await login(srv(), { username: piped, password: 'from-stdin-pw', node: nodeFor(1) }))).stop();

        r = await run(['user', 'add', `${uniqueName('x')}@localhost`]); // no --password, nothing on stdin
        assert.equal(r.code, 2, r.stderr);
        assert.equal((await run(['user', 'add'])).code, 2);
        assert.equal((await run(['user', 'frobnicate'])).code, 2);
        assert.equal((await run(['user', 'add', 'a@localhost', '--bogus'])).code, 2);
        r = await run(['user', 'add', `${uniqueName('x')}@elsewhere.example`, '--password', 'x']);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /unknown-domain/);
        r = await cli(['status', '--url', 'http://127.0.0.1:1']);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /cannot reach the admin API/);
      }));

    it('user passwd: the new password works, the old one not; a missing account exits 1', { timeout: 60_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const name = uniqueName('pw');
        ok(await run(['user', 'add', `${name}@localhost`, '--password', 'old-pw']), 'user add');
        const r = ok(await run(['user', 'passwd', `${name}@localhost`, '--password', 'new-pw'], { urlIndex: 2 }), 'user passwd');
        assert.equal(r.stdout.trim(), `password changed for ${name}@localhost`);
        await track(await login(srv(), { username: name, password: 'new-pw', node: nodeFor(1) })).stop();
        const fail = await loginFails(srv(), { username: name, password: 'old-pw' });
        assert.equal(fail.condition, 'not-authorized');
        const missing = await run(['user', 'passwd', `${uniqueName('nobody')}@localhost`, '--password', 'x']);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /not-found.*404/);
      }));

    it('user list (all, --online, --json) and user del of a logged-in user: its stream ends with <not-authorized/>', { timeout: 60_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const name = uniqueName('del');
        const bare = `${name}@localhost`;
        ok(await run(['user', 'add', bare, '--password', 'pw']), 'user add');
        let r = ok(await run(['user', 'list']), 'user list');
        const listed = r.stdout.trim().split('\n');
        assert.ok(listed.includes(bare) && listed.includes(`${ADMIN.username}@localhost`), r.stdout);
        assert.deepEqual([...listed].sort(), listed, 'sorted');
        r = ok(await run(['user', 'list', 'localhost', '--json']), 'user list --json');
        const json = JSON.parse(r.stdout) as { users: string[]; count: number; domain: string };
        assert.equal(json.domain, 'localhost');
        assert.equal(json.count, json.users.length);
        assert.ok(json.users.includes(bare));

        const s = track(await login(srv(), { username: name, password: 'pw', node: nodeFor(1), resource: 'r1' }));
        r = ok(await run(['user', 'list', '--online'], { urlIndex: 1 }), 'user list --online');
        assert.ok(r.stdout.split('\n').includes(bare), r.stdout);

        r = ok(await run(['user', 'del', bare]), 'user del');
        assert.equal(r.stdout.trim(), `deleted ${bare} (1 session closed)`);
        assert.equal(await s.waitStreamError(10_000), 'not-authorized');
        await s.waitOffline();
        assert.equal((await loginFails(srv(), { username: name, password: 'pw' })).condition, 'not-authorized');
        r = ok(await run(['user', 'list', '--json']), 'user list');
        assert.ok(!(JSON.parse(r.stdout) as { users: string[] }).users.includes(bare));
        r = await run(['user', 'del', bare]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /not-found/);
      }));

    it('status: the c2s nodes alive, the shard owners of roster and muc, sessions, registered users', { timeout: 60_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const c2sIds = srv().c2s.map((n) => n.nodeId).sort();
        const rosterIds = mode === 'cluster' ? (srv() as ClusterServer).roster.map((n) => n.nodeId) : c2sIds;
        const mucIds = mode === 'cluster' ? (srv() as ClusterServer).muc.map((n) => n.nodeId) : c2sIds;
        interface Status {
          nodes: Array<{ node: string; alive: boolean; expiresAt: number }>;
          sessions: number;
          shards: Record<'roster' | 'muc', { shards: number; members: string[]; owners: Array<{ holder: string; shards: number }>; unowned: number }>;
          users: Array<{ domain: string; registered: number }>;
        }
        let st: Status | undefined;
        // Every instance has its fair share once the cluster has settled.
        await waitUntil(async () => {
          const r = ok(await run(['status', '--json']), 'status --json');
          st = JSON.parse(r.stdout) as Status;
          return st.shards.roster.owners.length === rosterIds.length && st.shards.muc.owners.length === mucIds.length;
        }, 30_000, 'every roster and muc instance to own shards');
        const s = st as Status;
        assert.deepEqual(s.nodes.map((n) => n.node), c2sIds);
        assert.ok(s.nodes.every((n) => n.alive));
        for (const g of ['roster', 'muc'] as const) {
          const ids = g === 'roster' ? rosterIds : mucIds;
          assert.deepEqual(s.shards[g].members, [...ids].sort());
          assert.deepEqual(s.shards[g].owners.map((o) => o.holder), [...ids].sort());
          assert.equal(s.shards[g].owners.reduce((a, o) => a + o.shards, 0) + s.shards[g].unowned, 64);
        }
        assert.equal(s.users.length, 1);
        assert.equal(s.users[0]?.domain, 'localhost');
        assert.ok((s.users[0]?.registered ?? 0) >= 1);
        assert.equal(typeof s.sessions, 'number');

        // Human-readable, from every process of the cluster.
        for (let i = 0; i < urls.length; i++) {
          const r = ok(await run(['status'], { urlIndex: i }), `status via ${url(i)}`);
          for (const id of [...c2sIds, ...rosterIds]) assert.ok(r.stdout.includes(id), `${id} in:\n${r.stdout}`);
          assert.match(r.stdout, /roster shards: 64/);
          assert.match(r.stdout, /muc shards: 64/);
          assert.match(r.stdout, /localhost\s+\d+/);
        }
      }));

    it('the default URL and token come from the configuration (--config)', { timeout: 30_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const port = new URL(url(0)).port;
        const file = join(configDir, 'cli.yaml');
        // Cluster: a wildcard http.host (probed on loopback) with the token; embedded, no token: the
        // API's own listener on loopback (http.adminPort), which the CLI prefers over http.port.
        const http = mode === 'cluster' ? { host: '0.0.0.0', port: Number(port), adminToken: TOKEN } : { host: '0.0.0.0', port: 1, adminHost: '127.0.0.1', adminPort: Number(port) };
        writeFileSync(file, JSON.stringify({ http }));
        const r = ok(await cli(['status', '--config', file]), 'status --config');
        assert.match(r.stdout, /^answered by /);
      }));

    if (mode === 'cluster') {
      it('http.adminToken: without the token (or a wrong one) the CLI gets 401 and exits 1', { timeout: 30_000 }, async () => {
        let r = await cli(['status', '--url', url(0)]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /unauthorized.*401/);
        r = await cli(['user', 'list', '--url', url(1)], { env: { HYPHAE_ADMIN_TOKEN: 'wrong-token-wrong-token' } });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /401/);
        const res = await fetch(`${url(2)}/admin/status`);
        assert.equal(res.status, 401);
        assert.equal(((await res.json()) as { error: string }).error, 'unauthorized');
      });
    }

    // --- XEP-0050 / XEP-0133 -----------------------------------------------

    const exec = (s: Session, node: string, attrs: Record<string, string> = {}, form?: Record<string, string | string[]>) =>
      s.iq(xml('iq', { type: 'set', to: srv().domain }, commandEl(node, attrs, form)));

    async function startCommand(s: Session, node: string): Promise<string> {
      const a = await exec(s, node, { action: 'execute' });
      assert.equal(a.attrs.type, 'result', a.toString());
      const c = a.getChild('command', NS_COMMANDS);
      assert.equal(c?.attrs.status, 'executing');
      assert.equal(c?.getChild('x', NS.data)?.attrs.type, 'form');
      assert.ok(c?.attrs.sessionid);
      return c?.attrs.sessionid as string;
    }

    async function completeCommand(s: Session, node: string, form: Record<string, string | string[]>): Promise<XmlElement> {
      const sid = await startCommand(s, node);
      return exec(s, node, { sessionid: sid, action: 'complete' }, form);
    }

    it('XEP-0133: disco lists the commands to an admin only; a non-admin is forbidden', { timeout: 60_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const admin = track(await login(srv(), { ...ADMIN, node: nodeFor(1) }));
        const pleb = uniqueName('pleb');
        ok(await run(['user', 'add', `${pleb}@localhost`, '--password', 'pw']), 'user add');
        const user = track(await login(srv(), { username: pleb, password: 'pw', node: nodeFor(0) }));

        const info = await admin.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoInfo })));
        assert.ok(info.getChild('query', NS.discoInfo)?.getChildren('feature').some((f) => f.attrs.var === NS_COMMANDS));

        const itemsOf = async (s: Session): Promise<string[]> => {
          const a = await s.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoItems, node: NS_COMMANDS })));
          assert.equal(a.attrs.type, 'result', a.toString());
          return a.getChild('query', NS.discoItems)?.getChildren('item').map((i) => i.attrs.node as string) ?? [];
        };
        assert.deepEqual(await itemsOf(admin), Object.values(CMD));
        assert.deepEqual(await itemsOf(user), []);

        const nodeInfo = await admin.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoInfo, node: CMD.addUser })));
        assert.equal(nodeInfo.getChild('query', NS.discoInfo)?.getChild('identity')?.attrs.type, 'command-node');
        const denied = await user.iq(xml('iq', { type: 'get', to: srv().domain }, xml('query', { xmlns: NS.discoInfo, node: CMD.addUser })));
        assert.equal(stanzaErrorCondition(denied), 'forbidden');

        for (const node of Object.values(CMD)) {
          const a = await exec(user, node);
          assert.equal(a.attrs.type, 'error');
          assert.equal(stanzaErrorCondition(a), 'forbidden', node);
        }
        const unknown = await exec(admin, `${NS_ADMIN}#shutdown`);
        assert.equal(stanzaErrorCondition(unknown), 'item-not-found');
      }));

    it('XEP-0133 add-user, change-user-password, delete-user (the user\'s stream ends), user counts', { timeout: 90_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const admin = track(await login(srv(), { ...ADMIN, node: nodeFor(0) }));
        const name = uniqueName('adhoc');
        const bare = `${name}@localhost`;

        let a = await completeCommand(admin, CMD.addUser, { accountjid: bare, password: 'pw1', 'password-verify': 'pw1' });
        assert.equal(a.attrs.type, 'result', a.toString());
        let c = a.getChild('command', NS_COMMANDS);
        assert.equal(c?.attrs.status, 'completed');
        assert.equal(c?.getChild('note')?.attrs.type, 'info');
        await track(await login(srv(), { username: name, password: 'pw1', node: nodeFor(1) })).stop();

        a = await completeCommand(admin, CMD.changeUserPassword, { accountjid: bare, password: 'pw2' });
        assert.equal(a.getChild('command', NS_COMMANDS)?.attrs.status, 'completed', a.toString());
        const user = track(await login(srv(), { username: name, password: 'pw2', node: nodeFor(1) }));
        assert.equal((await loginFails(srv(), { username: name, password: 'pw1' })).condition, 'not-authorized');

        // Counts, for the domain addressed.
        const count = async (node: string, field: string): Promise<number> => {
          const r = await exec(admin, node);
          const cmd = r.getChild('command', NS_COMMANDS);
          assert.equal(cmd?.attrs.status, 'completed', r.toString());
          const x = cmd?.getChild('x', NS.data);
          assert.equal(x?.attrs.type, 'result');
          return Number(x?.getChildren('field').find((f) => f.attrs.var === field)?.getChildText('value'));
        };
        assert.ok((await count(CMD.getOnlineUsersNum, 'onlineusersnum')) >= 2, 'the admin and the user are online');
        const listed = ok(await run(['user', 'list', '--json']), 'user list');
        assert.equal(await count(CMD.getRegisteredUsersNum, 'registeredusersnum'), (JSON.parse(listed.stdout) as { count: number }).count);

        a = await completeCommand(admin, CMD.deleteUser, { accountjids: [bare] });
        c = a.getChild('command', NS_COMMANDS);
        assert.equal(c?.attrs.status, 'completed', a.toString());
        assert.equal(await user.waitStreamError(10_000), 'not-authorized');
        assert.equal((await loginFails(srv(), { username: name, password: 'pw2' })).condition, 'not-authorized');
      }));

    it('XEP-0050 error paths: conflict, bad-payload, malformed-action, bad-action, bad-sessionid, cancel', { timeout: 60_000 }, (t) =>
      withServerLogs(t, server, async () => {
        const admin = track(await login(srv(), { ...ADMIN, node: nodeFor(1) }));
        const expectError = (a: XmlElement, cond: string, app: string | null) => {
          assert.equal(a.attrs.type, 'error', a.toString());
          assert.equal(stanzaErrorCondition(a), cond, a.toString());
          assert.equal(appCondition(a), app, a.toString());
        };
        // An existing account.
        expectError(await completeCommand(admin, CMD.addUser, { accountjid: `${ADMIN.username}@localhost`, password: 'x' }), 'conflict', null);
        // A required field missing; a malformed JID; an account that does not exist.
        expectError(await completeCommand(admin, CMD.addUser, { accountjid: `${uniqueName('n')}@localhost` }), 'bad-request', 'bad-payload');
        expectError(await completeCommand(admin, CMD.changeUserPassword, { accountjid: 'a@@b', password: 'x' }), 'jid-malformed', null);
        expectError(await completeCommand(admin, CMD.deleteUser, { accountjids: [`${uniqueName('ghost')}@localhost`] }), 'item-not-found', null);
        // No form at all.
        let sid = await startCommand(admin, CMD.addUser);
        expectError(await exec(admin, CMD.addUser, { sessionid: sid, action: 'complete' }), 'bad-request', 'bad-payload');
        // Actions.
        expectError(await exec(admin, CMD.addUser, { action: 'dance' }), 'bad-request', 'malformed-action');
        expectError(await exec(admin, CMD.addUser, { action: 'complete' }), 'bad-request', 'bad-action');
        sid = await startCommand(admin, CMD.addUser);
        expectError(await exec(admin, CMD.addUser, { sessionid: sid, action: 'next' }), 'bad-request', 'bad-action');
        expectError(await exec(admin, CMD.addUser, { sessionid: 'no-such-session', action: 'complete' }), 'bad-request', 'bad-sessionid');
        // Cancel ends the session.
        const canceled = await exec(admin, CMD.addUser, { sessionid: sid, action: 'cancel' });
        assert.equal(canceled.attrs.type, 'result', canceled.toString());
        assert.equal(canceled.getChild('command', NS_COMMANDS)?.attrs.status, 'canceled');
        expectError(await exec(admin, CMD.addUser, { sessionid: sid, action: 'complete' }, { accountjid: `${uniqueName('n')}@localhost`, password: 'x' }), 'bad-request', 'bad-sessionid');
        // A session belongs to the full JID that started it.
        sid = await startCommand(admin, CMD.addUser);
        const other = track(await login(srv(), { ...ADMIN, node: nodeFor(1), resource: 'second' }));
        expectError(await exec(other, CMD.addUser, { sessionid: sid, action: 'cancel' }), 'bad-request', 'bad-sessionid');
      }));
  });
}

adminSuite('embedded');
adminSuite('cluster');
