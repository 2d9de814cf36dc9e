import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plainMessage } from './client.js';
import { deriveCredentials } from './credentials.js';
import { createMechanism } from './mechanisms.js';
import type { Credentials, MechanismOptions, SaslStep } from './types.js';

const ITER = 64;
const accountsPromise = (async (): Promise<Record<string, Credentials>> => ({
  alice: await deriveCredentials('wonderland', { iterations: ITER }),
  bob: await deriveCredentials('b\u00ADuilder', { iterations: ITER, mechanisms: ['SCRAM-SHA-1'] }),
}))();

async function plain(extra: Partial<MechanismOptions> = {}) {
  const accounts = await accountsPromise;
  return createMechanism('PLAIN', { lookup: async (u) => accounts[u] ?? null, ...extra });
}
function assertFailure(step: SaslStep, condition: string): void {
  assert.equal(step.kind, 'failure', `expected failure ${condition}, got ${JSON.stringify(step)}`);
  if (step.kind === 'failure') assert.equal(step.condition, condition);
}

describe('PLAIN', () => {
  it('authenticates with an initial response', async () => {
    const s = await plain();
    assert.deepEqual(await s.start(plainMessage('alice', 'wonderland')), { kind: 'success', username: 'alice' });
  });

  it('sends an empty challenge when there is no initial response', async () => {
    for (const initial of [null, Buffer.alloc(0)]) {
      const s = await plain();
      assert.deepEqual(await s.start(initial), { kind: 'challenge', data: Buffer.alloc(0) });
      assert.deepEqual(await s.step(plainMessage('alice', 'wonderland')), { kind: 'success', username: 'alice' });
    }
  });

  it('verifies against a SCRAM-SHA-1-only account and SASLprep s the password', async () => {
    // Stored as "builder" (U+00AD is mapped to nothing); any spelling that prepares the same matches.
    assert.equal((await (await plain()).start(plainMessage('bob', 'builder'))).kind, 'success');
    assert.equal((await (await plain()).start(plainMessage('bob', 'bu\u00ADilder'))).kind, 'success');
  });

  it('SASLprep s the authcid', async () => {
    const step = await (await plain()).start(plainMessage('ali\u00ADce', 'wonderland'));
    assert.deepEqual(step, { kind: 'success', username: 'alice' });
    assertFailure(await (await plain()).start(plainMessage('al\u0007ice', 'wonderland')), 'not-authorized');
    assertFailure(await (await plain()).start(plainMessage('\u00AD', 'wonderland')), 'not-authorized');
  });

  it('fails a wrong password and an unknown user alike', async () => {
    assertFailure(await (await plain()).start(plainMessage('alice', 'nope')), 'not-authorized');
    assertFailure(await (await plain()).start(plainMessage('mallory', 'wonderland')), 'not-authorized');
    // A password that cannot be prepared simply does not match.
    assertFailure(await (await plain()).start(plainMessage('alice', 'wonder\u0007land')), 'not-authorized');
  });

  it('rejects embedded NULs and empty fields as malformed', async () => {
    const cases = [
      'alice\0wonderland', // one NUL
      '\0alice\0wonder\0land', // NUL inside the password
      'x\0y\0alice\0wonderland',
      '\0\0wonderland', // empty authcid
      '\0alice\0', // empty password
      '\0\0',
      'alicewonderland',
    ];
    for (const c of cases) assertFailure(await (await plain()).start(Buffer.from(c, 'utf8')), 'malformed-request');
    assertFailure(await (await plain()).start(Buffer.from([0, 0x61, 0, 0xc3, 0x28])), 'malformed-request'); // bad UTF-8
    assertFailure(await (await plain()).start(Buffer.alloc(9000, 0x61)), 'malformed-request');
    // An empty response after the empty challenge is malformed too (no endless loop).
    const s = await plain();
    await s.start(null);
    assertFailure(await s.step(Buffer.alloc(0)), 'malformed-request');
  });

  it('handles authzid through authorize', async () => {
    assertFailure(await (await plain()).start(plainMessage('alice', 'wonderland', 'admin@example.org')), 'invalid-authzid');
    const calls: string[][] = [];
    const s = await plain({ authorize: (u, z) => { calls.push([u, z]); return z === 'alice@example.org'; } });
    assert.deepEqual(await s.start(plainMessage('alice', 'wonderland', 'alice@example.org')), {
      kind: 'success', username: 'alice', authzid: 'alice@example.org',
    });
    assert.deepEqual(calls, [['alice', 'alice@example.org']]);
    // authorize is not consulted for a failed password.
    const s2 = await plain({ authorize: () => assert.fail('called') });
    assertFailure(await s2.start(plainMessage('alice', 'x', 'alice@example.org')), 'not-authorized');
    // An empty authzid is the same as none.
    assert.deepEqual(await (await plain()).start(plainMessage('alice', 'wonderland', '')), { kind: 'success', username: 'alice' });
  });

  it('maps lookup errors and corrupt records to temporary-auth-failure', async () => {
    const s1 = createMechanism('PLAIN', { lookup: async () => { throw new Error('down'); } });
    assertFailure(await s1.start(plainMessage('alice', 'x')), 'temporary-auth-failure');
    const s2 = createMechanism('PLAIN', {
      lookup: async () => ({ 'SCRAM-SHA-256': { salt: '!!', iterations: 1, storedKey: '', serverKey: '' } }),
    });
    assertFailure(await s2.start(plainMessage('alice', 'x')), 'temporary-auth-failure');
    const s3 = createMechanism('PLAIN', { lookup: async () => ({}) });
    assertFailure(await s3.start(plainMessage('alice', 'x')), 'not-authorized');
  });

  it('rejects steps out of order', async () => {
    assertFailure(await (await plain()).step(plainMessage('alice', 'wonderland')), 'malformed-request');
    const s = await plain();
    assert.equal((await s.start(plainMessage('alice', 'wonderland'))).kind, 'success');
    assertFailure(await s.step(plainMessage('alice', 'wonderland')), 'malformed-request');
    assertFailure(await s.start(plainMessage('alice', 'wonderland')), 'malformed-request');
    const f = await plain();
    assertFailure(await f.start(plainMessage('alice', 'bad')), 'not-authorized');
    assertFailure(await f.step(plainMessage('alice', 'wonderland')), 'malformed-request');
  });
});
