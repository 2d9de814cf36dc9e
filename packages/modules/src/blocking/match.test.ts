/** XEP-0191 §6 matching (XEP-0016 §2.1 order) and §5's own-resources rule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJid } from '@hyphae/jid';
import { candidates, isBlocked, isBlockedAddress } from './match.js';

const OWNER = 'juliet@capulet.lit';
const blocks = (items: string[], from: string): boolean => isBlocked(new Set(items.map((i) => parseJid(i).toString())), OWNER, parseJid(from));

test('§6: the candidates of an address, in the order of the XEP', () => {
  assert.deepEqual(candidates(parseJid('romeo@montague.lit/orchard')), ['romeo@montague.lit/orchard', 'romeo@montague.lit', 'montague.lit/orchard', 'montague.lit']);
  assert.deepEqual(candidates(parseJid('romeo@montague.lit')), ['romeo@montague.lit', 'montague.lit']);
  assert.deepEqual(candidates(parseJid('montague.lit/orchard')), ['montague.lit/orchard', 'montague.lit']);
  assert.deepEqual(candidates(parseJid('montague.lit')), ['montague.lit']);
});

test('§6: what each kind of item blocks', () => {
  const rows: Array<[item: string, from: string, blocked: boolean]> = [
    // <user@domain/resource>: only that resource
    ['romeo@montague.lit/orchard', 'romeo@montague.lit/orchard', true],
    ['romeo@montague.lit/orchard', 'romeo@montague.lit/garden', false],
    ['romeo@montague.lit/orchard', 'romeo@montague.lit', false],
    // <user@domain>: any resource
    ['romeo@montague.lit', 'romeo@montague.lit/orchard', true],
    ['romeo@montague.lit', 'romeo@montague.lit', true],
    ['romeo@montague.lit', 'benvolio@montague.lit/x', false],
    ['romeo@montague.lit', 'montague.lit', false],
    // <domain/resource>: only that resource (XEP-0016 §2.1 derives it from any sender)
    ['montague.lit/orchard', 'montague.lit/orchard', true],
    ['montague.lit/orchard', 'romeo@montague.lit/orchard', true],
    ['montague.lit/orchard', 'montague.lit/garden', false],
    ['montague.lit/orchard', 'montague.lit', false],
    // <domain>: the domain, every user@domain and domain/resource, not subdomains (1.3)
    ['montague.lit', 'montague.lit', true],
    ['montague.lit', 'romeo@montague.lit/orchard', true],
    ['montague.lit', 'montague.lit/orchard', true],
    ['montague.lit', 'chat.montague.lit', false],
    ['montague.lit', 'romeo@chat.montague.lit', false],
    // a MUC occupant is a full JID: room@service/nick
    ['balcony@rooms.capulet.lit/tybalt', 'balcony@rooms.capulet.lit/tybalt', true],
    ['balcony@rooms.capulet.lit/tybalt', 'balcony@rooms.capulet.lit/nurse', false],
    ['balcony@rooms.capulet.lit', 'balcony@rooms.capulet.lit/nurse', true],
    // RFC 7622 comparison: items and senders are prepared alike
    ['Romeo@Montague.LIT', 'romeo@montague.lit/x', true],
    ['romeo@montague.lit/Orchard', 'romeo@montague.lit/orchard', false],
  ];
  for (const [item, from, blocked] of rows) assert.equal(blocks([item], from), blocked, `${item} blocks ${from}`);
});

test('§5: never the user\'s own bare JID or resources, whatever the list holds', () => {
  assert.equal(blocks(['capulet.lit', OWNER, `${OWNER}/balcony`], `${OWNER}/balcony`), false);
  assert.equal(blocks(['capulet.lit'], OWNER), false);
  assert.equal(blocks(['capulet.lit'], 'nurse@capulet.lit/kitchen'), true, 'other users of the own domain are blocked by it');
  assert.equal(blocks(['capulet.lit'], 'capulet.lit'), true, 'the server itself too, as the XEP says of a domain');
});

test('addresses from stanzas: absent or unparsable ones are never blocked; an empty list costs no parse', () => {
  const list = new Set(['montague.lit']);
  assert.equal(isBlockedAddress(list, OWNER, undefined), false);
  assert.equal(isBlockedAddress(list, OWNER, ''), false);
  assert.equal(isBlockedAddress(list, OWNER, '@montague.lit'), false);
  assert.equal(isBlockedAddress(list, OWNER, 'ROMEO@Montague.lit/x'), true);
  assert.equal(isBlockedAddress(new Set(), OWNER, 'not a jid@@'), false);
});
