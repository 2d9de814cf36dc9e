import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Element, parse } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import {
  applyConfigSubmit,
  configForm,
  defaultConfig,
  parseConfig,
  roomFeatures,
  roomInfoForm,
  serializeConfig,
  type ConfigLimits,
  type RoomConfig,
} from './config.js';

const LIMITS: ConfigLimits = { maxOccupants: 300, defaultMaxUsers: 200, maxHistory: 50, defaultHistory: 20 };
const DATA = 'jabber:x:data';
const RC = 'http://jabber.org/protocol/muc#roomconfig';

/** A submit form from [var, value | values] pairs. */
function submit(fields: Array<[string, string | string[]]>, type = 'submit'): Element {
  const x = new Element('x', { xmlns: DATA, type });
  for (const [v, vals] of fields) {
    const f = x.c('field', { var: v });
    for (const val of Array.isArray(vals) ? vals : [vals]) f.c('value').t(val);
  }
  return x;
}

function fieldMap(x: Element): Map<string, { type?: string; values: string[]; options: string[] }> {
  const m = new Map<string, { type?: string; values: string[]; options: string[] }>();
  for (const f of x.getChildren('field')) {
    m.set(String(f.attrs.var), {
      type: f.attrs.type as string | undefined,
      values: f.getChildren('value').map((v) => v.getText()),
      options: f.getChildren('option').map((o) => o.getChildText('value') ?? ''),
    });
  }
  return m;
}

function rejects(x: Element, cfg: RoomConfig, condition: string, name: string): void {
  assert.throws(
    () => applyConfigSubmit(x, cfg, LIMITS),
    (e: unknown) => e instanceof StanzaError && e.condition === condition && typeof e.text === 'string' && e.text.length > 0,
    name,
  );
}

test('defaultConfig', () => {
  assert.deepEqual(defaultConfig(LIMITS), {
    name: '',
    description: '',
    language: '',
    public: true,
    persistent: false,
    password: '',
    membersOnly: false,
    moderated: false,
    maxUsers: 200,
    whois: 'moderators',
    historyLength: 20,
    changeSubject: false,
    allowInvites: false,
    allowPm: 'anyone',
    enableLogging: false,
  });
  // defaults beyond the hard caps are clamped
  const c = defaultConfig({ maxOccupants: 10, defaultMaxUsers: 200, maxHistory: 5, defaultHistory: 20 });
  assert.equal(c.maxUsers, 10);
  assert.equal(c.historyLength, 5);
});

test('configForm: type form, FORM_TYPE first, every field with the current value', () => {
  const cfg: RoomConfig = {
    ...defaultConfig(LIMITS),
    name: 'A Dark Cave',
    description: 'The place for all good witches!',
    language: 'en',
    password: 'cauldronburn',
    membersOnly: true,
    moderated: true,
    maxUsers: 42,
    whois: 'anyone',
    historyLength: 7,
    changeSubject: true,
    allowInvites: true,
    allowPm: 'participants',
    public: false,
    persistent: true,
  };
  const x = configForm(cfg, LIMITS);
  assert.equal(x.name, 'x');
  assert.equal(x.attrs.xmlns, DATA);
  assert.equal(x.attrs.type, 'form');
  const first = x.getChildren('field')[0]!;
  assert.equal(first.attrs.var, 'FORM_TYPE');
  assert.equal(first.attrs.type, 'hidden');
  assert.equal(first.getChildText('value'), RC);
  const m = fieldMap(x);
  const expected: Array<[string, string, string]> = [
    ['muc#roomconfig_roomname', 'text-single', 'A Dark Cave'],
    ['muc#roomconfig_roomdesc', 'text-single', 'The place for all good witches!'],
    ['muc#roomconfig_lang', 'text-single', 'en'],
    ['muc#roomconfig_publicroom', 'boolean', '0'],
    ['muc#roomconfig_persistentroom', 'boolean', '1'],
    ['muc#roomconfig_passwordprotectedroom', 'boolean', '1'],
    ['muc#roomconfig_roomsecret', 'text-private', 'cauldronburn'],
    ['muc#roomconfig_membersonly', 'boolean', '1'],
    ['muc#roomconfig_moderatedroom', 'boolean', '1'],
    ['muc#roomconfig_maxusers', 'list-single', '42'],
    ['muc#roomconfig_whois', 'list-single', 'anyone'],
    ['muc#maxhistoryfetch', 'text-single', '7'],
    ['muc#roomconfig_changesubject', 'boolean', '1'],
    ['muc#roomconfig_allowinvites', 'boolean', '1'],
    ['muc#roomconfig_allowpm', 'list-single', 'participants'],
    ['muc#roomconfig_enablelogging', 'boolean', '0'],
  ];
  assert.equal(m.size, expected.length + 1);
  for (const [v, type, value] of expected) {
    const f = m.get(v);
    assert.ok(f, v);
    assert.equal(f.type, type, v);
    assert.deepEqual(f.values, [value], v);
  }
  // list-single options: the current maxusers value is offered, none above the cap, sorted
  const maxusers = m.get('muc#roomconfig_maxusers')!.options.map(Number);
  assert.ok(maxusers.includes(42) && maxusers.includes(300));
  assert.ok(maxusers.every((n) => n >= 1 && n <= 300));
  assert.deepEqual(maxusers, [...maxusers].sort((a, b) => a - b));
  assert.deepEqual(m.get('muc#roomconfig_whois')!.options, ['moderators', 'anyone']);
  assert.deepEqual(m.get('muc#roomconfig_allowpm')!.options, ['anyone', 'participants', 'moderators', 'none']);
  // only list fields carry options (XEP-0004 §3.2)
  for (const [v, f] of m) if (f.type !== 'list-single') assert.deepEqual(f.options, [], v);
});

test('configForm → submit round trip leaves the configuration unchanged', () => {
  const cfg: RoomConfig = { ...defaultConfig(LIMITS), name: 'n', password: 'pw', whois: 'anyone', allowPm: 'none' };
  const form = configForm(cfg, LIMITS);
  form.attrs.type = 'submit';
  const r = applyConfigSubmit(parse(form.toString()), cfg, LIMITS);
  assert.deepEqual(r.config, cfg);
  assert.deepEqual(r.statusCodes, []);
});

test('applyConfigSubmit: an empty submit (instant room, §10.1.2) changes nothing', () => {
  const cfg = defaultConfig(LIMITS);
  const r = applyConfigSubmit(parse(`<x xmlns='${DATA}' type='submit'/>`), cfg, LIMITS);
  assert.deepEqual(r, { config: cfg, statusCodes: [] });
  assert.notEqual(r.config, cfg, 'a fresh object');
});

test('applyConfigSubmit: every field is applied; booleans accept 1/true/0/false', () => {
  const cfg = defaultConfig(LIMITS);
  const r = applyConfigSubmit(
    submit([
      ['FORM_TYPE', RC],
      ['muc#roomconfig_roomname', 'A Dark Cave'],
      ['muc#roomconfig_roomdesc', 'The place for all good witches!'],
      ['muc#roomconfig_lang', 'en-GB'],
      ['muc#roomconfig_publicroom', 'false'],
      ['muc#roomconfig_persistentroom', 'true'],
      ['muc#roomconfig_passwordprotectedroom', '1'],
      ['muc#roomconfig_roomsecret', 'cauldronburn'],
      ['muc#roomconfig_membersonly', '1'],
      ['muc#roomconfig_moderatedroom', 'true'],
      ['muc#roomconfig_maxusers', '10'],
      ['muc#roomconfig_whois', 'moderators'],
      ['muc#maxhistoryfetch', '50'],
      ['muc#roomconfig_changesubject', '1'],
      ['muc#roomconfig_allowinvites', 'true'],
      ['muc#roomconfig_allowpm', 'moderators'],
      ['muc#roomconfig_enablelogging', '0'],
      ['muc#roomconfig_roomadmins', ['wiccarocks@shakespeare.lit', 'hecate@shakespeare.lit']], // unknown here: ignored
      ['x-unknown', 'whatever'],
    ]),
    cfg,
    LIMITS,
  );
  assert.deepEqual(r.config, {
    name: 'A Dark Cave',
    description: 'The place for all good witches!',
    language: 'en-GB',
    public: false,
    persistent: true,
    password: 'cauldronburn',
    membersOnly: true,
    moderated: true,
    maxUsers: 10,
    whois: 'moderators',
    historyLength: 50,
    changeSubject: true,
    allowInvites: true,
    allowPm: 'moderators',
    enableLogging: false,
  });
  assert.deepEqual(r.statusCodes, [104]);
  // the input is not modified
  assert.deepEqual(cfg, defaultConfig(LIMITS));
});

test('applyConfigSubmit: boolean lexical forms (XEP-0004 §3.3)', () => {
  const cfg = defaultConfig(LIMITS);
  const cases: Array<[string, boolean]> = [['1', true], ['true', true], ['0', false], ['false', false], [' true ', true], ['', false]];
  for (const [v, expected] of cases) {
    assert.equal(applyConfigSubmit(submit([['muc#roomconfig_persistentroom', v]]), cfg, LIMITS).config.persistent, expected, `'${v}'`);
  }
  // a boolean field with no <value/> is false (XEP-0004 default)
  const x = parse(`<x xmlns='${DATA}' type='submit'><field var='muc#roomconfig_publicroom'/></x>`);
  assert.equal(applyConfigSubmit(x, cfg, LIMITS).config.public, false);
});

test('applyConfigSubmit: history length under either var; the registered one wins', () => {
  const cfg = defaultConfig(LIMITS);
  assert.equal(applyConfigSubmit(submit([['muc#roomconfig_historylength', '5']]), cfg, LIMITS).config.historyLength, 5);
  assert.equal(applyConfigSubmit(submit([['muc#maxhistoryfetch', '6']]), cfg, LIMITS).config.historyLength, 6);
  assert.equal(
    applyConfigSubmit(submit([['muc#roomconfig_historylength', '5'], ['muc#maxhistoryfetch', '0']]), cfg, LIMITS).config.historyLength,
    0,
  );
  assert.equal(applyConfigSubmit(submit([['muc#maxhistoryfetch', '50']]), cfg, LIMITS).config.historyLength, 50);
});

test("applyConfigSubmit: maxusers bounds and 'none'", () => {
  const cfg = defaultConfig(LIMITS);
  assert.equal(applyConfigSubmit(submit([['muc#roomconfig_maxusers', '1']]), cfg, LIMITS).config.maxUsers, 1);
  assert.equal(applyConfigSubmit(submit([['muc#roomconfig_maxusers', '300']]), cfg, LIMITS).config.maxUsers, 300);
  assert.equal(applyConfigSubmit(submit([['muc#roomconfig_maxusers', 'none']]), cfg, LIMITS).config.maxUsers, 300);
});

test('applyConfigSubmit: password protection', () => {
  const open = defaultConfig(LIMITS);
  const locked: RoomConfig = { ...open, password: 'old' };
  const rows: Array<[string, RoomConfig, Array<[string, string]>, string]> = [
    ['protect with a secret', open, [['muc#roomconfig_passwordprotectedroom', '1'], ['muc#roomconfig_roomsecret', 'new']], 'new'],
    ['unprotect drops the secret', locked, [['muc#roomconfig_passwordprotectedroom', '0'], ['muc#roomconfig_roomsecret', 'x']], ''],
    ['protected, secret omitted: keeps the current one', locked, [['muc#roomconfig_passwordprotectedroom', '1']], 'old'],
    ['secret alone sets it', open, [['muc#roomconfig_roomsecret', 'solo']], 'solo'],
    ['empty secret alone clears it', locked, [['muc#roomconfig_roomsecret', '']], ''],
    ['neither: unchanged', locked, [['muc#roomconfig_roomname', 'n']], 'old'],
  ];
  for (const [name, cfg, fields, expected] of rows) {
    assert.equal(applyConfigSubmit(submit(fields), cfg, LIMITS).config.password, expected, name);
  }
  assert.deepEqual(applyConfigSubmit(submit([['muc#roomconfig_roomsecret', 'other']]), locked, LIMITS).statusCodes, [104]);
});

// A malformed form is a bad-request; values the room cannot take are not-acceptable (§10.1.3, XEP-0004 §3.3).
test('applyConfigSubmit: every error path', () => {
  const cfg = defaultConfig(LIMITS);
  const locked: RoomConfig = { ...cfg, password: 'old' };
  const badRequest: Array<[string, Element]> = [
    ['form type cancel', submit([], 'cancel')],
    ['form type form', submit([], 'form')],
    ['form type result', submit([], 'result')],
    ['no type', parse(`<x xmlns='${DATA}'/>`)],
    ['not a data form', parse(`<x xmlns='urn:other' type='submit'/>`)],
    ['wrong FORM_TYPE', submit([['FORM_TYPE', 'http://jabber.org/protocol/muc#roominfo']])],
    ['two FORM_TYPE values', submit([['FORM_TYPE', [RC, RC]]])],
    ['duplicate field', submit([['muc#roomconfig_roomname', 'a'], ['muc#roomconfig_roomname', 'b']])],
    ['two values in a single-valued field', submit([['muc#roomconfig_roomname', ['a', 'b']]])],
  ];
  for (const [name, x] of badRequest) rejects(x, cfg, 'bad-request', name);
  const notAcceptable: Array<[string, Element, RoomConfig]> = [
    ['non-boolean', submit([['muc#roomconfig_publicroom', 'yes']]), cfg],
    ['non-boolean (TRUE)', submit([['muc#roomconfig_moderatedroom', 'TRUE']]), cfg],
    ['non-boolean password flag', submit([['muc#roomconfig_passwordprotectedroom', '2']]), cfg],
    ['non-boolean enablelogging', submit([['muc#roomconfig_enablelogging', 'no']]), cfg],
    ['maxusers not a number', submit([['muc#roomconfig_maxusers', 'ten']]), cfg],
    ['maxusers negative', submit([['muc#roomconfig_maxusers', '-5']]), cfg],
    ['maxusers fraction', submit([['muc#roomconfig_maxusers', '2.5']]), cfg],
    ['maxusers empty', submit([['muc#roomconfig_maxusers', '']]), cfg],
    ['history not a number', submit([['muc#maxhistoryfetch', 'lots']]), cfg],
    ['history (Prosody var) negative', submit([['muc#roomconfig_historylength', '-1']]), cfg],
    ['unknown whois', submit([['muc#roomconfig_whois', 'none']]), cfg],
    ['empty whois', submit([['muc#roomconfig_whois', '']]), cfg],
    ['unknown allowpm', submit([['muc#roomconfig_allowpm', 'visitors']]), cfg],
    ['malformed language', submit([['muc#roomconfig_lang', 'en GB']]), cfg],
    ['maxusers 0', submit([['muc#roomconfig_maxusers', '0']]), cfg],
    ['maxusers above the cap', submit([['muc#roomconfig_maxusers', '301']]), cfg],
    ['history above the cap', submit([['muc#maxhistoryfetch', '51']]), cfg],
    ['history above the cap (Prosody var)', submit([['muc#roomconfig_historylength', '1000']]), cfg],
    ['public logging', submit([['muc#roomconfig_enablelogging', '1']]), cfg],
    ['public logging (true)', submit([['muc#roomconfig_enablelogging', 'true']]), cfg],
    ['protected without a secret', submit([['muc#roomconfig_passwordprotectedroom', '1']]), cfg],
    ['protected with an empty secret', submit([['muc#roomconfig_passwordprotectedroom', '1'], ['muc#roomconfig_roomsecret', '']]), locked],
  ];
  for (const [name, x, c] of notAcceptable) rejects(x, c, 'not-acceptable', name);
});

test('applyConfigSubmit: FORM_TYPE may be absent; fixed fields without var are skipped', () => {
  const cfg = defaultConfig(LIMITS);
  const x = parse(
    `<x xmlns='${DATA}' type='submit'><field type='fixed'><value>note</value></field><field var='muc#roomconfig_roomname'><value>n</value></field></x>`,
  );
  assert.equal(applyConfigSubmit(x, cfg, LIMITS).config.name, 'n');
});

test('applyConfigSubmit: status codes (§10.2.1): 172/173 for anonymity, 104 for the rest', () => {
  const semi = defaultConfig(LIMITS);
  const non: RoomConfig = { ...semi, whois: 'anyone' };
  const rows: Array<[string, RoomConfig, Array<[string, string]>, number[]]> = [
    ['now non-anonymous', semi, [['muc#roomconfig_whois', 'anyone']], [172]],
    ['now semi-anonymous', non, [['muc#roomconfig_whois', 'moderators']], [173]],
    ['whois unchanged', non, [['muc#roomconfig_whois', 'anyone']], []],
    ['other change', semi, [['muc#roomconfig_roomname', 'x']], [104]],
    ['both', semi, [['muc#roomconfig_whois', 'anyone'], ['muc#roomconfig_moderatedroom', '1']], [104, 172]],
    ['logging stays off: never 170/171', semi, [['muc#roomconfig_enablelogging', 'false']], []],
    ['unknown field only', semi, [['x-foo', '1']], []],
  ];
  for (const [name, cfg, fields, codes] of rows) {
    assert.deepEqual(applyConfigSubmit(submit(fields), cfg, LIMITS).statusCodes, codes, name);
  }
  // each setting on its own counts as a change
  const singles: Array<[string, string]> = [
    ['muc#roomconfig_roomname', 'n'],
    ['muc#roomconfig_roomdesc', 'd'],
    ['muc#roomconfig_lang', 'de'],
    ['muc#roomconfig_publicroom', '0'],
    ['muc#roomconfig_persistentroom', '1'],
    ['muc#roomconfig_roomsecret', 's'],
    ['muc#roomconfig_membersonly', '1'],
    ['muc#roomconfig_moderatedroom', '1'],
    ['muc#roomconfig_maxusers', '7'],
    ['muc#maxhistoryfetch', '3'],
    ['muc#roomconfig_changesubject', '1'],
    ['muc#roomconfig_allowinvites', '1'],
    ['muc#roomconfig_allowpm', 'none'],
  ];
  for (const f of singles) assert.deepEqual(applyConfigSubmit(submit([f]), semi, LIMITS).statusCodes, [104], f[0]);
});

test('roomFeatures: one of each pair, sorted, no duplicates', () => {
  const base = defaultConfig(LIMITS);
  assert.deepEqual(roomFeatures(base), [
    'http://jabber.org/protocol/disco#info',
    'http://jabber.org/protocol/muc',
    'muc_open',
    'muc_public',
    'muc_semianonymous',
    'muc_temporary',
    'muc_unmoderated',
    'muc_unsecured',
  ]);
  const all: RoomConfig = { ...base, public: false, persistent: true, password: 'p', membersOnly: true, moderated: true, whois: 'anyone' };
  assert.deepEqual(roomFeatures(all), [
    'http://jabber.org/protocol/disco#info',
    'http://jabber.org/protocol/muc',
    'muc_hidden',
    'muc_membersonly',
    'muc_moderated',
    'muc_nonanonymous',
    'muc_passwordprotected',
    'muc_persistent',
  ]);
  for (const f of [roomFeatures(base), roomFeatures(all)]) {
    assert.equal(new Set(f).size, f.length);
    assert.deepEqual(f, [...f].sort());
  }
});

test('roomInfoForm: XEP-0128 result with the muc#roominfo FORM_TYPE', () => {
  const cfg: RoomConfig = { ...defaultConfig(LIMITS), name: 'Cave', description: 'witches', language: 'en', changeSubject: true, historyLength: 9 };
  const x = roomInfoForm(cfg, 3, 'Spells');
  assert.equal(x.attrs.xmlns, DATA);
  assert.equal(x.attrs.type, 'result');
  const fields = x.getChildren('field');
  assert.equal(fields[0]?.attrs.var, 'FORM_TYPE');
  assert.equal(fields[0]?.attrs.type, 'hidden');
  assert.equal(fields[0]?.getChildText('value'), 'http://jabber.org/protocol/muc#roominfo');
  const m = fieldMap(x);
  const expected: Array<[string, string]> = [
    ['muc#roominfo_description', 'witches'],
    ['muc#roominfo_occupants', '3'],
    ['muc#roominfo_subject', 'Spells'],
    ['muc#roominfo_lang', 'en'],
    ['muc#roominfo_subjectmod', '1'],
    ['muc#roomconfig_changesubject', '1'],
    ['muc#roomconfig_roomname', 'Cave'],
    ['muc#maxhistoryfetch', '9'],
  ];
  for (const [v, value] of expected) assert.deepEqual(m.get(v)?.values, [value], v);
  assert.deepEqual(fieldMap(roomInfoForm(defaultConfig(LIMITS), 0, '')).get('muc#roominfo_subjectmod')?.values, ['0']);
  assert.deepEqual(fieldMap(roomInfoForm(defaultConfig(LIMITS), 0, '')).get('muc#roominfo_subject')?.values, ['']);
  // vars are unique (XEP-0004)
  assert.equal(m.size, fields.length);
});

test('serializeConfig / parseConfig round trip', () => {
  const cfg: RoomConfig = {
    ...defaultConfig(LIMITS),
    name: 'ünï "q"',
    password: 'p',
    membersOnly: true,
    whois: 'anyone',
    allowPm: 'moderators',
    maxUsers: 5,
    historyLength: 0,
  };
  assert.deepEqual(parseConfig(serializeConfig(cfg), LIMITS), cfg);
  assert.deepEqual(parseConfig(serializeConfig(defaultConfig(LIMITS)), LIMITS), defaultConfig(LIMITS));
});

test('parseConfig: missing / wrong-typed keys take defaults, numbers are clamped, junk throws', () => {
  const d = defaultConfig(LIMITS);
  assert.deepEqual(parseConfig('{}', LIMITS), d);
  assert.deepEqual(parseConfig('{"membersOnly":true}', LIMITS), { ...d, membersOnly: true });
  assert.deepEqual(
    parseConfig('{"public":"yes","maxUsers":"10","whois":"none","allowPm":5,"name":7,"historyLength":1.5,"enableLogging":true}', LIMITS),
    d,
  );
  assert.equal(parseConfig('{"maxUsers":100000}', LIMITS).maxUsers, 300);
  assert.equal(parseConfig('{"maxUsers":0}', LIMITS).maxUsers, 1);
  assert.equal(parseConfig('{"historyLength":999}', LIMITS).historyLength, 50);
  assert.equal(parseConfig('{"historyLength":-3}', LIMITS).historyLength, 0);
  assert.throws(() => parseConfig('not json', LIMITS), SyntaxError);
  assert.throws(() => parseConfig('[]', LIMITS), TypeError);
  assert.throws(() => parseConfig('null', LIMITS), TypeError);
  assert.throws(() => parseConfig('"s"', LIMITS), TypeError);
});
