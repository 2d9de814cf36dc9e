import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, it } from 'node:test';
import { computeScramCredential, CredentialFormatError, deriveCredentials, verifyPassword } from './credentials.js';
import { createMechanism, UnknownMechanismError } from './mechanisms.js';
import { saslPrep, SaslPrepError } from './saslprep.js';
import type { MechanismName } from './types.js';

describe('deriveCredentials', () => {
  it('produces both SCRAM records by default with 16-byte salts and 4096 iterations', async () => {
    const c = await deriveCredentials('pencil');
    const s1 = c['SCRAM-SHA-1'];
    const s256 = c['SCRAM-SHA-256'];
    assert.ok(s1 && s256);
    assert.equal(s1.iterations, 4096);
    assert.equal(s256.iterations, 4096);
    assert.equal(Buffer.from(s1.salt, 'base64').length, 16);
    assert.equal(Buffer.from(s256.salt, 'base64').length, 16);
    assert.notEqual(s1.salt, s256.salt);
    assert.equal(Buffer.from(s1.storedKey, 'base64').length, 20);
    assert.equal(Buffer.from(s256.serverKey, 'base64').length, 32);
    // Never the password or SaltedPassword: only these four fields.
    assert.deepEqual(Object.keys(s1).sort(), ['iterations', 'salt', 'serverKey', 'storedKey']);
    assert.ok(!JSON.stringify(c).includes('pencil'));
  });

  it('matches an independent RFC 5802 §3 computation', async () => {
    const c = await deriveCredentials('pencil', { iterations: 100, mechanisms: ['SCRAM-SHA-256'] });
    const rec = c['SCRAM-SHA-256'];
    assert.ok(rec);
    assert.equal(c['SCRAM-SHA-1'], undefined);
    const salted = pbkdf2Sync('pencil', Buffer.from(rec.salt, 'base64'), 100, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    assert.equal(createHash('sha256').update(clientKey).digest('base64'), rec.storedKey);
    assert.equal(createHmac('sha256', salted).update('Server Key').digest('base64'), rec.serverKey);
  });

  it('uses fresh salts each time', async () => {
    const a = await deriveCredentials('x', { iterations: 1 });
    const b = await deriveCredentials('x', { iterations: 1 });
    assert.notEqual(a['SCRAM-SHA-1']?.salt, b['SCRAM-SHA-1']?.salt);
  });

  it('SASLprep s the password: U+00AD is mapped away, U+00A0 becomes a space, NFKC applies', async () => {
    const c = await deriveCredentials('I\u00ADX', { iterations: 1 });
    assert.ok(await verifyPassword('IX', c));
    assert.ok(await verifyPassword('\u2168', c)); // ROMAN NUMERAL NINE → "IX" under NFKC (RFC 4013 §3 example)
    const d = await deriveCredentials('a\u00A0b', { iterations: 1 });
    assert.ok(await verifyPassword('a b', d));
  });

  it('rejects passwords that fail SASLprep or are empty, with SaslPrepError', async () => {
    for (const bad of ['', '\u00AD', 'a\u0007b', 'a\uDB40\uDC01b', '\uD800', 'x\u0221y' /* unassigned in Unicode 3.2 */]) {
      await assert.rejects(deriveCredentials(bad, { iterations: 1 }), SaslPrepError, JSON.stringify(bad));
    }
    // RandALCat must start and end a string that contains it (RFC 4013 §2.4 / RFC 3454 §6).
    await assert.rejects(deriveCredentials('\u05D0a', { iterations: 1 }), SaslPrepError);
  });

  it('rejects bad options', async () => {
    await assert.rejects(deriveCredentials('x', { iterations: 0 }), RangeError);
    await assert.rejects(deriveCredentials('x', { iterations: 1.5 }), RangeError);
    await assert.rejects(deriveCredentials('x', { mechanisms: [] }), RangeError);
  });
});

describe('verifyPassword', () => {
  it('accepts the right password and rejects others', async () => {
    const c = await deriveCredentials('correct horse', { iterations: 16 });
    assert.equal(await verifyPassword('correct horse', c), true);
    assert.equal(await verifyPassword('correct horsE', c), false);
    assert.equal(await verifyPassword('', c), false);
    assert.equal(await verifyPassword('bad\u0007', c), false);
  });

  it('prefers SCRAM-SHA-256 and falls back to SCRAM-SHA-1', async () => {
    const a = await deriveCredentials('one', { iterations: 16, mechanisms: ['SCRAM-SHA-256'] });
    const b = await deriveCredentials('two', { iterations: 16, mechanisms: ['SCRAM-SHA-1'] });
    const mixed = { 'SCRAM-SHA-256': a['SCRAM-SHA-256'], 'SCRAM-SHA-1': b['SCRAM-SHA-1'] };
    assert.equal(await verifyPassword('one', mixed), true);
    assert.equal(await verifyPassword('two', mixed), false);
    assert.equal(await verifyPassword('two', b), true);
    assert.equal(await verifyPassword('two', {}), false);
  });

  it('verifies the RFC 5802 example record', async () => {
    const rec = await computeScramCredential('SCRAM-SHA-1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92', 'base64'), 4096);
    assert.equal(await verifyPassword('pencil', { 'SCRAM-SHA-1': rec }), true);
  });

  it('throws CredentialFormatError for a corrupt record', async () => {
    await assert.rejects(
      verifyPassword('x', { 'SCRAM-SHA-1': { salt: 'c2FsdA==', iterations: -1, storedKey: '', serverKey: '' } }),
      CredentialFormatError,
    );
  });
});

describe('saslPrep / createMechanism', () => {
  it('prepares query strings with unassigned code points but not stored ones', () => {
    assert.equal(saslPrep('x\u0221y', { stored: false }), 'x\u0221y');
    assert.throws(() => saslPrep('x\u0221y', { stored: true }), SaslPrepError);
    assert.throws(() => saslPrep('\u00AD', { stored: false }), SaslPrepError);
  });

  it('throws UnknownMechanismError for an unknown name', () => {
    assert.throws(() => createMechanism('DIGEST-MD5' as MechanismName, { lookup: async () => null }), UnknownMechanismError);
  });
});
