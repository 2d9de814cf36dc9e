/**
 * The embedded server keeps its accounts across restarts (same data
 * directory): after a graceful SIGTERM and after kill -9.
 *
 * Run: npx tsc -b test && node --test test/dist/e2e/restart.test.js
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NS, login, loginFails, newAccount, tryRegister, xml } from '../harness/clients.js';
import { embeddedSkipReason, startEmbedded, type HyphaeServer } from '../harness/server.js';
import { withServerLogs } from '../harness/util.js';

const skip = embeddedSkipReason();

describe('restart (embedded)', () => {
  let server: HyphaeServer | undefined;
  const srv = (): HyphaeServer => {
    if (!server) throw new Error('server did not start');
    return server;
  };
  const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, { timeout: 90_000, skip: skip ?? false }, (t) => withServerLogs(t, server, () => fn(t)));
  };

  before(async () => {
    if (skip) return;
    server = await startEmbedded();
  }, { timeout: 60_000 });
  after(async () => {
    await server?.dispose();
  });

  test('SIGTERM drains: clients see their stream closed, the process exits 0; accounts survive the restart', async (t) => {
    const acc = await newAccount(srv(), 'keep');
    const changed = await newAccount(srv(), 'chg');
    // A password change must survive too.
    const c = await login(srv(), changed);
    const res = await c.iq(
      xml('iq', { type: 'set', to: srv().domain }, xml('query', { xmlns: NS.register }, xml('username', {}, changed.username), xml('password', {}, 'changed-pw'))),
    );
    assert.equal(res.attrs.type, 'result', res.toString());
    await c.stop();

    const s = await login(srv(), acc);
    const stopStarted = Date.now();
    const stopping = srv().stop();
    await s.waitOffline(15_000);
    const clientClosedMs = Date.now() - stopStarted;
    await stopping;
    const [status] = srv().exitStatus();
    t.diagnostic(`SIGTERM: client stream closed after ${clientClosedMs} ms, process exited after ${Date.now() - stopStarted} ms; stream errors seen: ${s.streamErrors.join(', ') || 'none'}`);
    assert.deepEqual(status && { code: status.code, signal: status.signal }, { code: 0, signal: null }, 'graceful exit');
    for (const e of s.streamErrors) assert.equal(e, 'system-shutdown', 'the only acceptable stream error on shutdown');

    const restartAt = Date.now();
    await srv().restart();
    t.diagnostic(`restart to ready in ${Date.now() - restartAt} ms`);

    const again = await login(srv(), acc);
    assert.equal(again.bare, acc.bare);
    assert.equal((await again.ping(srv().domain)).attrs.type, 'result');
    await again.stop();
    assert.equal((await loginFails(srv(), { ...acc, password: 'wrong' })).condition, 'not-authorized');
    assert.equal((await loginFails(srv(), changed)).condition, 'not-authorized', 'old password after change + restart');
    const ch = await login(srv(), { username: changed.username, password: 'changed-pw', mechanism: 'PLAIN' });
    await ch.stop();
    const dup = await tryRegister(srv(), acc.username, 'other');
    assert.equal(dup.condition, 'conflict', 'the username is still taken after restart');
  });

  test('kill -9 right after registration: the acknowledged account survives', async (t) => {
    const accounts = [await newAccount(srv(), 'k1'), await newAccount(srv(), 'k2'), await newAccount(srv(), 'k3')];
    await srv().kill();
    const [status] = srv().exitStatus();
    assert.equal(status?.signal, 'SIGKILL');
    const at = Date.now();
    await srv().restart();
    t.diagnostic(`restart after kill -9 to ready in ${Date.now() - at} ms`);
    for (const acc of accounts) {
      const s = await login(srv(), acc);
      assert.equal(s.bare, acc.bare);
      await s.stop();
    }
  });

  test('cancelled accounts stay cancelled across a restart', async () => {
    const acc = await newAccount(srv(), 'gone');
    const s = await login(srv(), acc);
    const res = await s.iq(xml('iq', { type: 'set', to: srv().domain }, xml('query', { xmlns: NS.register }, xml('remove'))));
    assert.equal(res.attrs.type, 'result', res.toString());
    await s.waitOffline(10_000);
    await srv().restart();
    assert.equal((await loginFails(srv(), acc)).condition, 'not-authorized');
  });
});
