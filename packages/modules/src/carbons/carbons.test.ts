/** XEP-0280 §3–§5 against its examples: the disco features, enabling and disabling at the edge, the iq routes' errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CARBONS_FLAG, NS_CARBONS, NS_CARBONS_RULES } from './index.js';
import { World, ROMEO, JULIET, el, entry, session } from './test-world.js';

test('§3: the server advertises carbons and the §6 rules; accounts advertise nothing', () => {
  const w = new World();
  assert.deepEqual(w.reg.features('server'), [NS_CARBONS, NS_CARBONS_RULES]);
  assert.deepEqual(w.reg.features('account'), []);
});

test('§4/§5 at the edge: enable and disable set the session flag and answer a result; repeated requests are results too (§10.1)', async () => {
  const w = new World();
  const garden = session(`${ROMEO}/garden`);
  assert.equal(await w.out(garden, `<iq type='set' id='enable1'><enable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
  assert.deepEqual([...garden.flags], [CARBONS_FLAG]);
  assert.deepEqual(garden.written, [`<iq to="${ROMEO}/garden" id="enable1" type="result"/>`]);
  assert.equal(await w.out(garden, `<iq type='set' id='enable2' to='${ROMEO}'><enable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
  assert.equal(garden.written[1], `<iq to="${ROMEO}/garden" from="${ROMEO}" id="enable2" type="result"/>`);
  for (const id of ['disable1', 'disable2']) {
    assert.equal(await w.out(garden, `<iq type='set' id='${id}'><disable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
    assert.equal(garden.written.at(-1), `<iq to="${ROMEO}/garden" id="${id}" type="result"/>`);
  }
  assert.deepEqual([...garden.flags], []);
});

test('the edge leaves to the router: another JID, a get, other payloads; a stanza it does not take costs no promise', async () => {
  const w = new World();
  const garden = session(`${ROMEO}/garden`);
  for (const xml of [
    `<iq type='set' id='x' to='${JULIET}'><enable xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='set' id='x' to='${ROMEO}/home'><enable xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='get' id='x'><enable xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='set' id='x'><private xmlns='${NS_CARBONS}'/></iq>`,
    `<iq type='set' id='x'><query xmlns='jabber:iq:private'/></iq>`,
    `<presence/>`,
  ]) {
    assert.equal(w.out(garden, xml), undefined, xml);
  }
  assert.deepEqual(garden.written, []);
  assert.deepEqual([...garden.flags], []);
});

test('a registry failure while enabling is answered <internal-server-error/> of type wait', async () => {
  const w = new World();
  const garden = session(`${ROMEO}/garden`);
  garden.failFlags = true;
  assert.equal(await w.out(garden, `<iq type='set' id='e'><enable xmlns='${NS_CARBONS}'/></iq>`), 'stop');
  const answer = el(garden.written[0] ?? '');
  assert.equal(answer.attrs.type, 'error');
  assert.equal(answer.getChild('error')?.attrs.type, 'wait');
  assert.ok(answer.getChild('error')?.getChild('internal-server-error'), answer.toString());
  assert.deepEqual(w.warnings, ['could not record the carbons flag']);
});

test('§4.1/§5.1 iq routes: another account or a remote client <not-allowed/>; a get <bad-request/>', async () => {
  const w = new World();
  assert.equal(await w.iq(`${ROMEO}/garden`, 'set', 'enable', JULIET), '<not-allowed/> cancel');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'set', 'disable', JULIET), '<not-allowed/> cancel');
  assert.equal(await w.iq('iago@remote.example/x', 'set', 'enable', ROMEO), '<not-allowed/> cancel');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'get', 'enable', ROMEO), '<bad-request/> modify');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'get', 'disable', ROMEO), '<bad-request/> modify');
  assert.deepEqual(w.updates, []);
});

test('an own request that reaches the router updates the registry entry, keeping the other flags', async () => {
  const w = new World();
  w.registry.set(ROMEO, [entry('garden', { carbons: true }), entry('home')]);
  assert.equal(await w.iq(`${ROMEO}/home`, 'set', 'enable', ROMEO), 'null');
  assert.equal(await w.iq(`${ROMEO}/garden`, 'set', 'disable', ROMEO), 'null');
  assert.deepEqual(w.updates, [[ROMEO, 'home', { flags: [CARBONS_FLAG] }], [ROMEO, 'garden', { flags: ['blocking'] }]]);
  assert.equal(await w.iq(`${ROMEO}/gone`, 'set', 'enable', ROMEO), '<item-not-found/> cancel');
});

test('a copy that reaches a session after it disabled carbons (routers elsewhere not told yet) is dropped there', async () => {
  const w = new World();
  const garden = session(`${ROMEO}/garden`);
  const hook = w.module.hooks?.['session/deliver'];
  assert.ok(hook);
  const parse = el;
  const deliver = (xml: string) => {
    const data = new TextEncoder().encode(xml);
    return hook({ session: garden, kind: 'message', data, stanza: () => parse(xml), replace: () => undefined, routing: w.routing });
  };
  const copy = `<message from="${ROMEO}" to="${ROMEO}/garden" type="chat"><received xmlns="${NS_CARBONS}"><forwarded xmlns="urn:xmpp:forward:0"><message from="${JULIET}/balcony" type="chat"><body>x</body></message></forwarded></received></message>`;
  const plain = `<message from="${JULIET}/balcony" to="${ROMEO}/garden" type="chat"><body>mentions ${NS_CARBONS}</body></message>`;
  assert.equal(deliver(copy), undefined, 'never asked: not this hook\'s business');
  await w.out(garden, `<iq type='set' id='e'><enable xmlns='${NS_CARBONS}'/></iq>`);
  assert.equal(deliver(copy), undefined, 'enabled: delivered');
  await w.out(garden, `<iq type='set' id='d'><disable xmlns='${NS_CARBONS}'/></iq>`);
  assert.equal(deliver(copy), 'stop', 'disabled: dropped');
  assert.equal(deliver(plain), undefined, 'an ordinary message still goes through');
});
