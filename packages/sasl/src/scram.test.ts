import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { createScramClient } from './client.js';
import { computeScramCredential, deriveCredentials, type ScramMechanismName } from './credentials.js';
import { createMechanism, createMechanismWithHooks } from './mechanisms.js';
import type { Credentials, MechanismOptions, SaslMechanismServer, SaslStep } from './types.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const text = (step: SaslStep): string => {
  assert.ok(step.kind === 'challenge' || step.kind === 'success', `expected data, got ${JSON.stringify(step)}`);
  return step.data?.toString('utf8') ?? '';
};
function assertFailure(step: SaslStep, condition: string): void {
  assert.equal(step.kind, 'failure', `expected failure ${condition}, got ${JSON.stringify(step)}`);
  if (step.kind === 'failure') assert.equal(step.condition, condition);
}

function lookupFrom(accounts: Record<string, Credentials>): MechanismOptions['lookup'] {
  return async (u) => accounts[u] ?? null;
}

/** Fast credentials for the many negative tests (the iteration count is not under test there). */
const ITER = 64;
const accountsPromise = (async () => ({
  alice: await deriveCredentials('wonderland', { iterations: ITER }),
  'a,b=c': await deriveCredentials('escape', { iterations: ITER }),
}))();

/** Drives a full exchange with the test client; returns every step. */
async function exchange(
  mech: ScramMechanismName, server: SaslMechanismServer, user: string, pass: string,
  opts: Parameters<typeof createScramClient>[3] = {},
): Promise<{ first: SaslStep; final: SaslStep; verified: boolean }> {
  const client = createScramClient(mech, user, pass, opts);
  const first = await server.start(client.first);
  assert.equal(first.kind, 'challenge', JSON.stringify(first));
  const final = await server.step(await client.final(b(text(first))));
  const verified = final.kind === 'success' && final.data !== undefined && client.verifyServerFinal(final.data);
  return { first, final, verified };
}

describe('SCRAM RFC examples', () => {
  it('reproduces the RFC 5802 §5 SCRAM-SHA-1 exchange byte for byte', async () => {
    const cred = await computeScramCredential('SCRAM-SHA-1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92', 'base64'), 4096);
    assert.equal(cred.salt, 'QSXCR+Q6sek8bf92');
    const server = createMechanismWithHooks('SCRAM-SHA-1', {
      lookup: lookupFrom({ user: { 'SCRAM-SHA-1': cred } }),
    }, { serverNonce: () => '3rfcNHYJY1ZVvWVs7j' });
    const s1 = await server.start(b('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL'));
    assert.deepEqual(s1, {
      kind: 'challenge', data: b('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'),
    });
    const s2 = await server.step(b('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts='));
    assert.deepEqual(s2, { kind: 'success', username: 'user', data: b('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=') });
  });

  it('reproduces the RFC 7677 §3 SCRAM-SHA-256 exchange byte for byte', async () => {
    const cred = await computeScramCredential('SCRAM-SHA-256', 'pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    const server = createMechanismWithHooks('SCRAM-SHA-256', {
      lookup: lookupFrom({ user: { 'SCRAM-SHA-256': cred } }),
    }, { serverNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' });
    const s1 = await server.start(b('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    assert.equal(text(s1), 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    const s2 = await server.step(b(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    ));
    assert.deepEqual(s2, { kind: 'success', username: 'user', data: b('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=') });
  });

  it('our test client reproduces the RFC 5802 client messages', async () => {
    const c = createScramClient('SCRAM-SHA-1', 'user', 'pencil', { clientNonce: 'fyko+d2lbbFgONRv9qkxdawL' });
    assert.equal(c.first.toString(), 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const fin = await c.final(b('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
    assert.equal(fin.toString(), 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    assert.ok(c.verifyServerFinal(b('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=')));
    assert.ok(!c.verifyServerFinal(b('v=rmF9pqV8S7suAoZWja4dJRkFsKQ=').subarray(0, 10)));
  });
});

for (const mech of ['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
  describe(mech, () => {
    const server = async (extra: Partial<MechanismOptions> = {}) =>
      createMechanism(mech, { lookup: lookupFrom(await accountsPromise), ...extra });

    it('authenticates with deriveCredentials output and a client computation', async () => {
      const r = await exchange(mech, await server(), 'alice', 'wonderland');
      assert.equal(r.final.kind, 'success');
      if (r.final.kind === 'success') {
        assert.equal(r.final.username, 'alice');
        assert.equal(r.final.authzid, undefined);
      }
      assert.ok(r.verified, 'server signature verifies');
    });

    it('accepts the gs2 flag "y" (no -PLUS offered) and checks c= against it', async () => {
      const r = await exchange(mech, await server(), 'alice', 'wonderland', { cbindFlag: 'y' });
      assert.equal(r.final.kind, 'success');
    });

    it('takes the client-first message as a response after an empty initial challenge', async () => {
      const s = await server();
      assert.deepEqual(await s.start(null), { kind: 'challenge', data: Buffer.alloc(0) });
      const client = createScramClient(mech, 'alice', 'wonderland');
      const first = await s.step(client.first);
      const fin = await s.step(await client.final(b(text(first))));
      assert.equal(fin.kind, 'success');
      assert.ok(fin.kind === 'success' && fin.data && client.verifyServerFinal(fin.data));
    });

    it('fails a wrong password with not-authorized', async () => {
      const r = await exchange(mech, await server(), 'alice', 'looking-glass');
      assertFailure(r.final, 'not-authorized');
    });

    it('does not reveal an unknown user before the final step', async () => {
      const s1 = await server();
      const s2 = await server();
      const a = await s1.start(b('n,,n=nobody,r=abc'));
      const c = await s2.start(b('n,,n=nobody,r=abc'));
      assert.equal(a.kind, 'challenge');
      const first = text(a);
      const m = /^r=abc([^,]+),s=([A-Za-z0-9+/=]+),i=(\d+)$/.exec(first);
      assert.ok(m, first);
      // Same shape as a real account's answer: 16-byte salt, default iterations.
      assert.equal(Buffer.from(m[2] ?? '', 'base64').length, 16);
      assert.equal(m[3], '4096');
      // Deterministic salt: a second probe sees the same one.
      assert.equal(/s=([^,]+)/.exec(text(c))?.[1], m[2]);
      // A different name gets a different salt.
      const other = await (await server()).start(b('n,,n=nobody2,r=abc'));
      assert.notEqual(/s=([^,]+)/.exec(text(other))?.[1], m[2]);
      // Fails only at the end, like a wrong password.
      const r = await exchange(mech, await server(), 'nobody', 'x');
      assertFailure(r.final, 'not-authorized');
    });

    it('gives unknown users a stand-in salt that honours unknownUserSecret/Iterations', async () => {
      const key = Buffer.alloc(32, 7);
      const one = await (await server({ unknownUserSecret: key, unknownUserIterations: 10000 })).start(b('n,,n=ghost,r=x'));
      const two = await (await server({ unknownUserSecret: key, unknownUserIterations: 10000 })).start(b('n,,n=ghost,r=x'));
      assert.equal(text(one).split(',').slice(1).join(','), text(two).split(',').slice(1).join(','));
      assert.match(text(one), /,i=10000$/);
    });

    it('treats an account without a record for this hash as unknown', async () => {
      const other: ScramMechanismName = mech === 'SCRAM-SHA-1' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-1';
      const creds = await deriveCredentials('pw', { iterations: ITER, mechanisms: [other] });
      const s = createMechanism(mech, { lookup: lookupFrom({ bob: creds }) });
      const r = await exchange(mech, s, 'bob', 'pw');
      assertFailure(r.final, 'not-authorized');
    });

    it('unescapes =2C and =3D in the username', async () => {
      const r = await exchange(mech, await server(), 'a,b=c', 'escape');
      const first = createScramClient(mech, 'a,b=c', 'escape').first.toString();
      assert.match(first, /^n,,n=a=2Cb=3Dc,r=/);
      assert.equal(r.final.kind, 'success');
      if (r.final.kind === 'success') assert.equal(r.final.username, 'a,b=c');
    });

    it('rejects other "=" sequences in the username as malformed', async () => {
      for (const name of ['a=2c', 'a=', 'a=3', 'a=41', '=']) {
        assertFailure(await (await server()).start(b(`n,,n=${name},r=abc`)), 'malformed-request');
      }
    });

    it('SASLprep s the username (U+00AD is mapped away) and fails unpreparable names', async () => {
      const r = await exchange(mech, await server(), 'al\u00ADice', 'wonderland');
      assert.equal(r.final.kind, 'success');
      if (r.final.kind === 'success') assert.equal(r.final.username, 'alice');
      assertFailure(await (await server()).start(b('n,,n=a\u0007b,r=abc')), 'not-authorized');
    });

    it('rejects bad gs2 headers', async () => {
      const cases = [
        'p=tls-unique,,n=alice,r=abc', // channel binding requested, but no -PLUS offered
        'p=tls-exporter,,n=alice,r=abc',
        'x,,n=alice,r=abc',
        'F,n,,n=alice,r=abc', // GS2 non-standard flag is not SCRAM
        'n,n=alice,r=abc',
        'n',
        'n,',
        'n,x=foo,n=alice,r=abc',
        'n,a=,n=alice,r=abc',
        'n,a=x=2,n=alice,r=abc',
        ',,n=alice,r=abc',
        'N,,n=alice,r=abc',
      ];
      for (const c of cases) assertFailure(await (await server()).start(b(c)), 'malformed-request');
    });

    it('rejects malformed client-first-message-bare', async () => {
      const cases = [
        'n,,m=ext,n=alice,r=abc', // reserved-mext MUST cause failure
        'n,,n=alice,r=abc,m=ext',
        'n,,r=abc,n=alice',
        'n,,n=alice',
        'n,,n=,r=abc',
        'n,,n=alice,r=',
        'n,,n=alice,r=a b', // space is not printable
        'n,,n=alice,r=ab\u00e9',
        'n,,n=alice,r=abc,',
        'n,,n=alice,r=abc,1=x',
        'n,,n=alice,r=abc,x=',
        'n,,n=al\0ice,r=abc',
        '',
      ];
      for (const c of cases) {
        const s = await server();
        const step = c === '' ? await s.step(b(c)) : await s.start(b(c));
        assertFailure(step, 'malformed-request');
      }
      assertFailure(await (await server()).start(Buffer.from([0x6e, 0x2c, 0x2c, 0xff])), 'malformed-request');
      assertFailure(await (await server()).start(Buffer.alloc(9000, 0x61)), 'malformed-request');
    });

    it('ignores unknown extensions in client messages', async () => {
      const s = await server();
      const client = createScramClient(mech, 'alice', 'wonderland', { clientNonce: 'nonce' });
      const first = await s.start(b(`${client.first.toString()},x=ext`));
      assert.equal(first.kind, 'challenge');
      // The bare message the server signs includes ",x=ext", so the client's proof (without it) fails,
      // proving the server signs exactly what was received.
      assertFailure(await s.step(await client.final(b(text(first)))), 'not-authorized');
    });

    it('fails a channel-binding mismatch', async () => {
      for (const [flag, cb] of [['n', 'eSws'], ['y', 'biws'], ['n', 'biwsbiws']] as const) {
        const s = await server();
        const client = createScramClient(mech, 'alice', 'wonderland', { cbindFlag: flag });
        const first = await s.start(client.first);
        const fin = (await client.final(b(text(first)))).toString().replace(/^c=[^,]*/, `c=${cb}`);
        assertFailure(await s.step(b(fin)), 'malformed-request');
      }
    });

    it('fails c= that does not include the authzid', async () => {
      const s = await server({ authorize: () => true });
      const client = createScramClient(mech, 'alice', 'wonderland', { authzid: 'admin@example.org' });
      const first = await s.start(client.first);
      const fin = (await client.final(b(text(first)))).toString().replace(/^c=[^,]*/, 'c=biws');
      assertFailure(await s.step(b(fin)), 'malformed-request');
    });

    it('fails a nonce mismatch', async () => {
      for (const mutate of [
        (n: string) => `${n}x`, (n: string) => n.slice(0, -1), () => 'cn', // client nonce only
        (n: string) => `${n.slice(0, -1)}${n.endsWith('A') ? 'B' : 'A'}`,
      ]) {
        const s = await server();
        const client = createScramClient(mech, 'alice', 'wonderland', { clientNonce: 'cn' });
        const first = await s.start(client.first);
        const fin = (await client.final(b(text(first)))).toString();
        const nonce = /r=([^,]+)/.exec(fin)?.[1] ?? '';
        assertFailure(await s.step(b(fin.replace(`r=${nonce}`, `r=${mutate(nonce)}`))), 'malformed-request');
      }
    });

    it('rejects malformed client-final messages', async () => {
      const bad = (fin: string): string[] => {
        const [c, r, p] = fin.split(',');
        return [
          `${r},${c},${p}`, `${c},${r}`, `${c},${p}`, `${c},${r},${p},x=1`, `${c},${r},m=1,${p}`,
          `${c},${r},p=`, `${c},${r},p=@@@@`, `${c},${r},p=YWJj`, `c=b!ws,${r},${p}`, `${c},${r},${p}\0`,
          `${c},${r},,${p}`,
        ];
      };
      const client0 = createScramClient(mech, 'alice', 'wonderland');
      const s0 = await server();
      const fin0 = (await client0.final(b(text(await s0.start(client0.first))))).toString();
      for (const msg of bad(fin0)) {
        const s = await server();
        const client = createScramClient(mech, 'alice', 'wonderland');
        const first = await s.start(client.first);
        await client.final(b(text(first)));
        const nonce = /^r=([^,]+)/.exec(text(first))?.[1] ?? '';
        const rewritten = msg.replace(/r=[^,]+/, `r=${nonce}`);
        assertFailure(await s.step(b(rewritten)), 'malformed-request');
      }
    });

    it('ignores an unknown extension in client-final (signed as sent)', async () => {
      const s = await server();
      const client = createScramClient(mech, 'alice', 'wonderland');
      const first = await s.start(client.first);
      const fin = (await client.final(b(text(first)))).toString();
      const withExt = fin.replace(',p=', ',x=hello,p=');
      // The proof was computed over the message without x=, so it must fail as not-authorized (not malformed).
      assertFailure(await s.step(b(withExt)), 'not-authorized');
    });

    it('rejects steps out of order and replays', async () => {
      // step before start
      assertFailure(await (await server()).step(b('n,,n=alice,r=abc')), 'malformed-request');
      // start twice
      const s1 = await server();
      await s1.start(b('n,,n=alice,r=abc'));
      assertFailure(await s1.start(b('n,,n=alice,r=abc')), 'malformed-request');
      assertFailure(await s1.step(b('c=biws,r=x,p=YWJj')), 'malformed-request'); // ended
      // replay of the final message after success
      const s2 = await server();
      const client = createScramClient(mech, 'alice', 'wonderland');
      const first = await s2.start(client.first);
      const fin = await client.final(b(text(first)));
      assert.equal((await s2.step(fin)).kind, 'success');
      assertFailure(await s2.step(fin), 'malformed-request');
      // replay of a captured final against a new exchange (new server nonce)
      const s3 = await server();
      await s3.start(client.first);
      assertFailure(await s3.step(fin), 'malformed-request');
      // after a failure nothing more is accepted
      const s4 = await server();
      const c4 = createScramClient(mech, 'alice', 'nope');
      const f4 = await s4.start(c4.first);
      const fin4 = await c4.final(b(text(f4)));
      assertFailure(await s4.step(fin4), 'not-authorized');
      assertFailure(await s4.step(fin4), 'malformed-request');
      // a client-first sent as the final message
      const s5 = await server();
      await s5.start(b('n,,n=alice,r=abc'));
      assertFailure(await s5.step(b('n,,n=alice,r=abc')), 'malformed-request');
    });

    it('fails a concurrent step while the lookup is pending', async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => { release = r; });
      const accounts = await accountsPromise;
      const s = createMechanism(mech, { lookup: async (u) => { await gate; return accounts[u as 'alice'] ?? null; } });
      const p1 = s.start(b('n,,n=alice,r=abc'));
      const p2 = s.step(b('c=biws,r=abc,p=YWJj'));
      release();
      assertFailure(await p2, 'malformed-request');
      assertFailure(await p1, 'malformed-request');
    });

    it('authzid: default rejects it, authorize decides otherwise', async () => {
      const r1 = await exchange(mech, await server(), 'alice', 'wonderland', { authzid: 'admin@example.org' });
      assertFailure(r1.final, 'invalid-authzid');
      const seen: string[][] = [];
      const r2 = await exchange(mech, await server({
        authorize: (u, z) => { seen.push([u, z]); return z === 'a,b=c@example.org'; },
      }), 'alice', 'wonderland', { authzid: 'a,b=c@example.org' });
      assert.equal(r2.final.kind, 'success');
      if (r2.final.kind === 'success') assert.equal(r2.final.authzid, 'a,b=c@example.org');
      assert.deepEqual(seen, [['alice', 'a,b=c@example.org']]);
      // authorize is consulted only after a valid proof
      const r3 = await exchange(mech, await server({ authorize: () => assert.fail('called') }), 'alice', 'bad', { authzid: 'x' });
      assertFailure(r3.final, 'not-authorized');
      // authorize refusing
      const r4 = await exchange(mech, await server({ authorize: () => false }), 'alice', 'wonderland', { authzid: 'x' });
      assertFailure(r4.final, 'invalid-authzid');
    });

    it('maps a throwing lookup to temporary-auth-failure', async () => {
      const s = createMechanism(mech, { lookup: async () => { throw new Error('db down'); } });
      assertFailure(await s.start(b('n,,n=alice,r=abc')), 'temporary-auth-failure');
    });

    it('maps a corrupt stored record to temporary-auth-failure', async () => {
      const s = createMechanism(mech, {
        lookup: async () => ({ [mech]: { salt: 'c2FsdA==', iterations: 4096, storedKey: 'short', serverKey: 'x' } }),
      });
      assertFailure(await s.start(b('n,,n=alice,r=abc')), 'temporary-auth-failure');
    });
  });
}

describe('interop with sasl-scram-sha-1 (independent client)', () => {
  interface JsScramMechanism {
    response(cred: { username: string; password: string; authzid?: string }): string | Promise<string>;
    challenge(chal: string): JsScramMechanism;
    _serverSignature?: Uint8Array;
  }
  type JsScramCtor = new (opts?: { genNonce?: () => string }) => JsScramMechanism;
  const require = createRequire(import.meta.url);
  const Mechanism = require('sasl-scram-sha-1') as JsScramCtor;

  async function run(user: string, pass: string, creds: Credentials, authzid?: string) {
    const server = createMechanism('SCRAM-SHA-1', {
      lookup: lookupFrom({ [user]: creds }),
      authorize: (_u, z) => z === 'ok@example.org',
    });
    const client = new Mechanism();
    const cred = authzid ? { username: user, password: pass, authzid } : { username: user, password: pass };
    const s1 = await server.start(b(await client.response(cred)));
    client.challenge(text(s1));
    const s2 = await server.step(b(await client.response(cred)));
    return { s2, client };
  }

  it('completes a full exchange and the client sees our server signature', async () => {
    const creds = await deriveCredentials('pencil', { mechanisms: ['SCRAM-SHA-1'] });
    const { s2, client } = await run('user', 'pencil', creds);
    assert.equal(s2.kind, 'success');
    assert.ok(s2.kind === 'success' && s2.data);
    const v = s2.data.toString().replace(/^v=/, '');
    assert.equal(v, Buffer.from(client._serverSignature ?? []).toString('base64'));
  });

  it('handles escaped names and authzid from the independent client', async () => {
    const creds = await deriveCredentials('pw', { mechanisms: ['SCRAM-SHA-1'], iterations: ITER });
    const { s2 } = await run('we,ird=name', 'pw', creds, 'ok@example.org');
    assert.equal(s2.kind, 'success');
    if (s2.kind === 'success') {
      assert.equal(s2.username, 'we,ird=name');
      assert.equal(s2.authzid, 'ok@example.org');
    }
  });

  it('fails the independent client with a wrong password', async () => {
    const creds = await deriveCredentials('pencil', { mechanisms: ['SCRAM-SHA-1'], iterations: ITER });
    const { s2 } = await run('user', 'pen', creds);
    assertFailure(s2, 'not-authorized');
  });
});
