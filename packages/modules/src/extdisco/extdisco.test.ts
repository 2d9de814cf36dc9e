/**
 * XEP-0215 against the XEP's own examples (§3.1–§3.3, §6) and the TURN REST
 * credential scheme coturn checks (username "<expiry>:<user>", password
 * base64(HMAC-SHA1(secret, username))). The HMAC is checked with an HMAC
 * built here from plain SHA-1 (RFC 2104) — itself checked against RFC 2202 —
 * and with a vector computed outside Node (Python's hmac, openssl dgst).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { NS, StanzaError } from '@hyphae/stanza';
import { ModuleRegistry, type IqReply, type ModuleInstance, type Routing } from '@hyphae/module-api';
import { extdiscoInstance, parseExternalService, turnCredentials, NS_EXTDISCO, type ExtDiscoConfig } from './index.js';
import { discoInstance } from '../disco/index.js';

/** Handlers here never route: a Routing that fails the test if used. */
const noRouting = new Proxy({}, { get: () => assert.fail('the handler used routing') }) as Routing;

/** RFC 2104 HMAC over SHA-1 (block size 64), without createHmac. */
function hmacSha1(key: Buffer, data: Buffer): Buffer {
  const k = Buffer.alloc(64);
  (key.length > 64 ? createHash('sha1').update(key).digest() : key).copy(k);
  const ipad = Buffer.from(k.map((b) => b ^ 0x36));
  const opad = Buffer.from(k.map((b) => b ^ 0x5c));
  const inner = createHash('sha1').update(ipad).update(data).digest();
  return createHash('sha1').update(opad).update(inner).digest();
}

// The services of XEP-0215 Example 2 (the ftp entry aside: not a type Hyphae announces).
const EXAMPLE_SERVICES = [
  'stun:stun.shakespeare.lit:9998/udp',
  'turn:relay.shakespeare.lit:9999/udp',
  'stun:192.0.2.1:8888/udp',
  'turn:192.0.2.1:8889/udp',
];
const SECRET = 'north-shared-secret';
const TTL = 86_400;
/** Chosen so that the credentials expire at 1700086400 (2023-11-15T22:13:20Z). */
const NOW_MS = (1_700_086_400 - TTL) * 1000;

function mod(config: Partial<ExtDiscoConfig> = {}): ModuleInstance {
  return extdiscoInstance({
    config: { services: EXAMPLE_SERVICES, turnSecret: SECRET, ttlSeconds: TTL, ...config },
    domains: ['shakespeare.lit', 'capulet.lit'],
    now: () => NOW_MS,
  });
}

type Answer = { result: Element | null } | { error: StanzaError };

/** Runs an iq through the module's routes the way the router does (host target). */
async function call(m: ModuleInstance, iqXml: string, from = 'bard@shakespeare.lit/globe'): Promise<Answer> {
  const iq = parse(iqXml);
  const payload = iq.getChildElements()[0] as Element;
  const route = ModuleRegistry.of({ extdisco: m }).findIq('host', String(iq.attrs.type), payload.attrs.xmlns as string | undefined, payload.name);
  if (!route) throw new Error(`no route for ${iqXml}`);
  try {
    const out = await route.handle({ iq, payload, from: parseJid(from), to: parseJid(String(iq.attrs.to)), routing: noRouting });
    return { result: out !== null && 'after' in out ? (out as IqReply).payload : (out as Element | null) };
  } catch (err) {
    if (err instanceof StanzaError) return { error: err };
    throw err;
  }
}

function result(a: Answer): Element {
  if ('error' in a) throw new Error(`expected a result, got <${a.error.condition}/>: ${a.error.text ?? ''}`);
  assert.ok(a.result, 'empty result');
  return a.result;
}

function condition(a: Answer): string {
  if (!('error' in a)) throw new Error(`expected an error, got ${a.result?.toString() ?? 'an empty result'}`);
  return a.error.condition;
}

const ALL = "<iq from='bard@shakespeare.lit/globe' id='ul2bc7y6' to='shakespeare.lit' type='get'><services xmlns='urn:xmpp:extdisco:2'/></iq>";
const TURN_ONLY = "<iq from='bard@shakespeare.lit/globe' id='yv2c19f7' to='shakespeare.lit' type='get'><services xmlns='urn:xmpp:extdisco:2' type='turn'/></iq>";
const creds = (inner: string) => `<iq from='bard@shakespeare.lit/globe' id='xi2cax48' to='shakespeare.lit' type='get'><credentials xmlns='urn:xmpp:extdisco:2'>${inner}</credentials></iq>`;

test('our HMAC-SHA1 matches RFC 2202 test case 2, and the module matches it and an externally computed vector', () => {
  assert.equal(hmacSha1(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')).toString('hex'), 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79');
  const c = turnCredentials(SECRET, 'juliet@capulet.lit', 1_700_086_400);
  assert.equal(c.username, '1700086400:juliet@capulet.lit');
  // python3: base64(hmac.new(b'north-shared-secret', b'1700086400:juliet@capulet.lit', sha1)); same from `openssl dgst -sha1 -hmac`.
  assert.equal(c.password, '1XnuAMy00Qso6WZoWaH6vb7CjqM=');
  assert.equal(c.password, hmacSha1(Buffer.from(SECRET), Buffer.from(c.username)).toString('base64'));
});

test('parses service entries: transports default to udp (stun/turn) and tcp (stuns/turns); IPv6 loses its brackets', () => {
  assert.deepEqual(parseExternalService('stun:stun.example.org:3478'), { type: 'stun', host: 'stun.example.org', port: 3478, transport: 'udp' });
  assert.deepEqual(parseExternalService('turn:turn.example.org:3478/tcp'), { type: 'turn', host: 'turn.example.org', port: 3478, transport: 'tcp' });
  assert.deepEqual(parseExternalService('turns:turn.example.org:5349'), { type: 'turns', host: 'turn.example.org', port: 5349, transport: 'tcp' });
  assert.deepEqual(parseExternalService('stuns:[2001:db8::1]:5349'), { type: 'stuns', host: '2001:db8::1', port: 5349, transport: 'tcp' });
  for (const bad of ['stun:example.org', 'ftp:example.org:21', 'turn:example.org:0', 'turn:example.org:70000', 'turn:example.org:3478/sctp']) {
    assert.throws(() => parseExternalService(bad), /not an external service/, bad);
  }
});

test('§3.1 (Examples 1–2): every service, in configured order; TURN entries carry coturn credentials for the requester', async () => {
  const list = result(await call(mod(), ALL));
  assert.equal(list.name, 'services');
  assert.equal(list.attrs.xmlns, NS_EXTDISCO);
  assert.equal(list.attrs.type, undefined);
  const items = list.getChildElements();
  assert.deepEqual(
    items.map((s) => [s.name, s.attrs.type, s.attrs.host, s.attrs.port, s.attrs.transport]),
    [
      ['service', 'stun', 'stun.shakespeare.lit', '9998', 'udp'],
      ['service', 'turn', 'relay.shakespeare.lit', '9999', 'udp'],
      ['service', 'stun', '192.0.2.1', '8888', 'udp'],
      ['service', 'turn', '192.0.2.1', '8889', 'udp'],
    ],
  );
  for (const s of items.filter((i) => i.attrs.type === 'stun')) {
    for (const a of ['username', 'password', 'restricted', 'expires']) assert.equal(s.attrs[a], undefined, `${a} on a STUN entry: ${s.toString()}`);
  }
  for (const s of items.filter((i) => i.attrs.type === 'turn')) {
    assert.equal(s.attrs.restricted, '1');
    assert.equal(s.attrs.username, '1700086400:bard@shakespeare.lit', 'username = expiry:bare JID of the requester');
    assert.equal(s.attrs.password, hmacSha1(Buffer.from(SECRET), Buffer.from(String(s.attrs.username))).toString('base64'));
    assert.equal(s.attrs.expires, '2023-11-15T22:13:20Z', 'XEP-0082 DateTime in UTC = the expiry in the username');
  }
});

test('§3.2 (Examples 3–4): type=turn lists the TURN services only and echoes the type; an unknown type is an empty list', async () => {
  const list = result(await call(mod(), TURN_ONLY));
  assert.equal(list.attrs.type, 'turn');
  assert.deepEqual(list.getChildElements().map((s) => `${s.attrs.host}:${s.attrs.port}`), ['relay.shakespeare.lit:9999', '192.0.2.1:8889']);
  const none = result(await call(mod(), ALL.replace("<services xmlns='urn:xmpp:extdisco:2'/>", "<services xmlns='urn:xmpp:extdisco:2' type='ftp'/>")));
  assert.equal(none.attrs.type, 'ftp');
  assert.equal(none.getChildElements().length, 0);
});

test('credentials are per user and per moment: another user, another username and password', async () => {
  const a = result(await call(mod(), TURN_ONLY)).getChildElements()[0] as Element;
  const b = result(await call(mod(), TURN_ONLY, 'juliet@capulet.lit/balcony')).getChildElements()[0] as Element;
  assert.equal(b.attrs.username, '1700086400:juliet@capulet.lit');
  assert.equal(b.attrs.password, '1XnuAMy00Qso6WZoWaH6vb7CjqM=');
  assert.notEqual(a.attrs.password, b.attrs.password);
  let now = 1_000_000_000_000;
  const m = extdiscoInstance({ config: { services: ['turns:turn.example.org:5349'], turnSecret: SECRET, ttlSeconds: 600 }, domains: ['shakespeare.lit'], now: () => now });
  const first = result(await call(m, TURN_ONLY.replace("type='turn'", "type='turns'"))).getChildElements()[0] as Element;
  assert.equal(first.attrs.username, `${1_000_000_000 + 600}:bard@shakespeare.lit`);
  assert.equal(first.attrs.transport, 'tcp');
  now += 5_000;
  const later = result(await call(m, TURN_ONLY.replace("type='turn'", "type='turns'"))).getChildElements()[0] as Element;
  assert.equal(later.attrs.username, `${1_000_000_005 + 600}:bard@shakespeare.lit`);
});

test('without turnSecret the TURN services are listed without credentials and not restricted', async () => {
  const items = result(await call(mod({ turnSecret: null }), ALL)).getChildElements();
  assert.equal(items.length, 4);
  for (const s of items) {
    for (const a of ['username', 'password', 'restricted', 'expires']) assert.equal(s.attrs[a], undefined, `${a}: ${s.toString()}`);
  }
  assert.equal(condition(await call(mod({ turnSecret: null }), creds("<service host='relay.shakespeare.lit' type='turn'/>"))), 'item-not-found');
});

test('§3.3 (Examples 5–6): credentials for a service named by host and type; port narrows it', async () => {
  const m = mod({ services: ['turn:turn.shakespeare.lit:3478/udp', 'turn:turn.shakespeare.lit:3478/tcp', 'turns:turn.shakespeare.lit:5349', 'stun:turn.shakespeare.lit:3478'] });
  const answer = result(await call(m, creds("<service host='turn.shakespeare.lit' type='turn' />")));
  assert.equal(answer.name, 'credentials');
  assert.equal(answer.attrs.xmlns, NS_EXTDISCO);
  const services = answer.getChildElements();
  assert.deepEqual(services.map((s) => [s.attrs.host, s.attrs.type, s.attrs.port, s.attrs.transport]), [
    ['turn.shakespeare.lit', 'turn', '3478', 'udp'],
    ['turn.shakespeare.lit', 'turn', '3478', 'tcp'],
  ]);
  for (const s of services) {
    assert.equal(s.attrs.username, '1700086400:bard@shakespeare.lit');
    assert.equal(s.attrs.password, hmacSha1(Buffer.from(SECRET), Buffer.from('1700086400:bard@shakespeare.lit')).toString('base64'));
  }
  const byPort = result(await call(m, creds("<service host='TURN.shakespeare.lit' type='turns' port='5349'/>"))).getChildElements();
  assert.deepEqual(byPort.map((s) => `${s.attrs.type}:${s.attrs.port}`), ['turns:5349']);
  assert.equal(condition(await call(m, creds("<service host='turn.shakespeare.lit' type='turn' port='9999'/>"))), 'item-not-found');
  assert.equal(condition(await call(m, creds("<service host='elsewhere.lit' type='turn'/>"))), 'item-not-found');
  // A STUN service has no credentials to hand out.
  assert.equal(condition(await call(m, creds("<service host='turn.shakespeare.lit' type='stun'/>"))), 'item-not-found');
});

test('bad request shapes → <bad-request/> (type modify)', async () => {
  const m = mod();
  const cases: Array<[string, string]> = [
    ['credentials without <service/>', creds('')],
    ['service without host', creds("<service type='turn'/>")],
    ['service without type', creds("<service host='relay.shakespeare.lit'/>")],
    ['empty host', creds("<service host='' type='turn'/>")],
    ['port not a number', creds("<service host='relay.shakespeare.lit' type='turn' port='x'/>")],
    ['port out of range', creds("<service host='relay.shakespeare.lit' type='turn' port='65536'/>")],
    ['a foreign child', creds("<service host='relay.shakespeare.lit' type='turn'/><foo/>")],
    ['a service in another namespace', creds("<service xmlns='urn:example' host='relay.shakespeare.lit' type='turn'/>")],
    ['services with a child', ALL.replace("<services xmlns='urn:xmpp:extdisco:2'/>", "<services xmlns='urn:xmpp:extdisco:2'><service host='x' type='turn'/></services>")],
    ['empty type', ALL.replace("<services xmlns='urn:xmpp:extdisco:2'/>", "<services xmlns='urn:xmpp:extdisco:2' type=''/>")],
    ['type not an NCName', ALL.replace("<services xmlns='urn:xmpp:extdisco:2'/>", "<services xmlns='urn:xmpp:extdisco:2' type='tu rn'/>")],
  ];
  for (const [what, xml] of cases) {
    const a = await call(m, xml);
    assert.equal(condition(a), 'bad-request', what);
    assert.equal('error' in a && a.error.type, 'modify', what);
  }
});

test('only users of served domains: a domain JID or a foreign user gets <forbidden/>', async () => {
  assert.equal(condition(await call(mod(), ALL, 'proxy.shakespeare.lit')), 'forbidden');
  assert.equal(condition(await call(mod(), ALL, 'romeo@montague.lit/orchard')), 'forbidden');
  assert.equal(condition(await call(mod(), creds("<service host='relay.shakespeare.lit' type='turn'/>"), 'romeo@montague.lit/orchard')), 'forbidden');
});

test('§6: the host feature is advertised only with services configured; without them the iqs are not handled', async () => {
  const features = async (m: ModuleInstance): Promise<string[]> => {
    let registry: ModuleRegistry | null = null;
    registry = ModuleRegistry.of({ disco: discoInstance({ modules: () => registry ?? assert.fail('no registry') }), extdisco: m });
    const route = registry.findIq('host', 'get', NS.discoInfo, 'query');
    const iq = parse(`<iq type='get' id='d' to='shakespeare.lit'><query xmlns='${NS.discoInfo}'/></iq>`);
    const out = (await route?.handle({ iq, payload: iq.getChildElements()[0] as Element, from: parseJid('bard@shakespeare.lit/globe'), to: parseJid('shakespeare.lit'), routing: noRouting })) as Element;
    return out.getChildren('feature').map((f) => String(f.attrs.var));
  };
  assert.ok((await features(mod())).includes(NS_EXTDISCO));
  const off = mod({ services: [] });
  assert.ok(!(await features(off)).includes(NS_EXTDISCO));
  assert.equal(off.iq, undefined, 'no routes: the router answers <service-unavailable/>');
});
