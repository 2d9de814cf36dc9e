/** XEP-0202 against §3's example and XEP-0082's formats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, type Element } from 'ltx';
import { parseJid } from '@hyphae/jid';
import { ModuleRegistry, type Routing } from '@hyphae/module-api';
import { time, timeInstance, tzo, utc, NS_TIME } from './index.js';

const noRouting = new Proxy({}, { get: () => assert.fail('the module used routing') }) as Routing;

/** The instant of §3's example, 2006-12-19T17:58:35Z, and its UTC-6 offset. */
const EXAMPLE_MS = Date.UTC(2006, 11, 19, 17, 58, 35, 412);

async function ask(type: 'get' | 'set', target: 'host' | 'account' = 'host'): Promise<Element | null> {
  const reg = ModuleRegistry.of({ time: timeInstance({ now: () => EXAMPLE_MS, offset: () => 360 }) });
  const route = reg.findIq(target, type, NS_TIME, 'time');
  if (!route) throw new Error(`no ${target} ${type} route`);
  const iq = parse(`<iq type='${type}' id='time_1' to='capulet.com'><time xmlns='${NS_TIME}'/></iq>`) as Element;
  const out = await route.handle({ iq, payload: iq.getChildElements()[0] as Element, from: parseJid('romeo@montague.net/orchard'), to: parseJid('capulet.com'), routing: noRouting });
  return out as Element | null;
}

test('a get to the server: §3 example 2 exactly (UTC in whole seconds, offset as TZD)', async () => {
  const answer = await ask('get');
  assert.equal(answer?.toString(), `<time xmlns="${NS_TIME}"><tzo>-06:00</tzo><utc>2006-12-19T17:58:35Z</utc></time>`);
});

test('a set is <not-allowed/>; accounts have no server route (the router answers <service-unavailable/>)', async () => {
  await assert.rejects(ask('set'), { condition: 'not-allowed', type: 'cancel' });
  const reg = ModuleRegistry.of({ time: timeInstance() });
  assert.equal(reg.findIq('account', 'get', NS_TIME, 'time'), undefined);
  assert.deepEqual(reg.features('server'), [NS_TIME]);
  assert.deepEqual(reg.features('account'), []);
});

test('XEP-0082 TZD and DateTime formats', () => {
  assert.equal(tzo(0), '+00:00');
  assert.equal(tzo(360), '-06:00');
  assert.equal(tzo(-330), '+05:30');
  assert.equal(tzo(-765), '+12:45');
  assert.equal(tzo(570), '-09:30');
  assert.equal(utc(0), '1970-01-01T00:00:00Z');
  assert.match(utc(Date.now()), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
});

test('the default clock answers now, with the offset of this process', async () => {
  const route = ModuleRegistry.of({ time: time.create({} as never) }).findIq('host', 'get', NS_TIME, 'time');
  assert.ok(route);
  const iq = parse(`<iq type='get' id='t'><time xmlns='${NS_TIME}'/></iq>`) as Element;
  const before = Date.now();
  const out = (await route.handle({ iq, payload: iq.getChildElements()[0] as Element, from: parseJid('a@b.c/d'), to: parseJid('b.c'), routing: noRouting })) as Element;
  const at = Date.parse(out.getChildText('utc') ?? '');
  assert.ok(at >= Math.floor(before / 1000) * 1000 && at <= Date.now(), `utc ${out.getChildText('utc')}`);
  assert.equal(out.getChildText('tzo'), tzo(new Date(at).getTimezoneOffset()));
});
