import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressPolicy, isIpLiteralDomain } from './address-policy.js';

const refused = (p: AddressPolicy, a: string) => {
  const v = p.check(a);
  return v.ok ? null : v.range;
};

test('loopback, unspecified, link-local, multicast, broadcast and reserved addresses are always refused', () => {
  const p = new AddressPolicy({ refusePrivate: false, allowed: [] });
  const cases: Record<string, string> = {
    '127.0.0.1': 'loopback', '127.255.0.9': 'loopback', '::1': 'loopback', '::ffff:127.0.0.1': 'loopback', '64:ff9b::7f00:1': 'loopback',
    '0.0.0.0': 'unspecified', '::': 'unspecified',
    '169.254.169.254': 'linkLocal', 'fe80::1': 'linkLocal',
    '224.0.0.1': 'multicast', 'ff02::1': 'multicast', '255.255.255.255': 'broadcast',
    '192.0.2.1': 'reserved', '240.0.0.1': 'reserved', '2001:db8::1': 'reserved',
  };
  for (const [a, range] of Object.entries(cases)) assert.equal(refused(p, a), range, a);
  for (const a of ['10.0.0.5', '192.168.1.1', 'fd00::1', '8.8.8.8', '2001:4860:4860::8888']) assert.equal(refused(p, a), null, a);
  assert.equal(refused(p, 'localhost'), 'not an IP address');
});

test('private ranges are refused by default (s2s.refusePrivateAddresses); s2s.allowedAddresses overrides any refusal', () => {
  const p = new AddressPolicy({ refusePrivate: true, allowed: [] });
  for (const a of ['10.0.0.5', '172.16.3.4', '192.168.1.1', '100.64.0.1', 'fc00::1', 'fd12:3456::1', '::ffff:10.0.0.1']) assert.ok(refused(p, a), a);
  for (const a of ['8.8.8.8', '172.32.0.1', '2a00:1450::1']) assert.equal(refused(p, a), null, a);
  const allow = new AddressPolicy({ refusePrivate: true, allowed: ['127.0.0.0/8', '::1', '10.1.0.0/16', '::ffff:192.168.0.0/112'] });
  for (const a of ['127.0.0.1', '::ffff:127.0.0.2', '::1', '10.1.2.3', '192.168.7.7']) assert.equal(refused(allow, a), null, a);
  for (const a of ['10.2.0.1', '169.254.1.1', 'fe80::5']) assert.ok(refused(allow, a), a);
});

test('IP-literal domains', () => {
  for (const d of ['127.0.0.1', '192.0.2.1', '[::1]', '[2001:db8::1]', '::1']) assert.equal(isIpLiteralDomain(d), true, d);
  for (const d of ['example.org', '[example.org]', '127.0.0.1.nip.io']) assert.equal(isIpLiteralDomain(d), false, d);
});
