import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  ConfigError,
  defaultConfig,
  describeConfig,
  leaf,
  loadConfig,
  moduleOptions,
  type ConfigSection,
  type HyphaeConfig,
  type LoadOptions,
} from './index.js';
import { modulesSchema } from './sections.js';

const dir = mkdtempSync(join(tmpdir(), 'hyphae-sections-'));
let n = 0;
function yamlFile(text: string): string {
  const file = join(dir, `s${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ConfigError');
}

// A fake module with an integer (bounds), a boolean and an enum; leaf() outside the default.
const idlePingSchema = z.strictObject({
  intervalSeconds: leaf(z.number().int().min(10).max(3600), {
    doc: 'Seconds between pings to idle clients.',
    expect: 'a whole number of seconds from 10 to 3600',
  }).default(300),
  enabled: leaf(z.boolean(), { doc: 'Ping idle clients (XEP-0199).', expect: 'true or false' }).default(true),
  mode: leaf(z.enum(['c2s', 's2s', 'both']), { doc: 'Which streams are pinged.', expect: 'one of c2s, s2s, both' }).default('c2s'),
});
const idlePing: ConfigSection<z.output<typeof idlePingSchema>> = { key: 'idlePing', schema: idlePingSchema };

// leaf() around the default works as well.
const carbons: ConfigSection<{ enabled: boolean }> = {
  key: 'carbons',
  schema: z.strictObject({
    enabled: leaf(z.boolean().default(true), { doc: 'Serve XEP-0280 message carbons.', expect: 'true or false' }),
  }),
};

const sections: readonly ConfigSection[] = [idlePing, carbons];
const IDLE_DEFAULTS = { intervalSeconds: 300, enabled: true, mode: 'c2s' };

function load(opts: LoadOptions) {
  return loadConfig({ file: null, env: {}, sections, ...opts });
}

test('absent sections, an empty modules: and an empty section all get the defaults', () => {
  const expected = { idlePing: IDLE_DEFAULTS, carbons: { enabled: true } };
  assert.deepEqual(load({}).modules, expected);
  assert.deepEqual(load({ file: yamlFile('modules:\n') }).modules, expected);
  assert.deepEqual(load({ file: yamlFile('modules:\n  idlePing: {}\n  carbons:\n') }).modules, expected);
  assert.deepEqual(defaultConfig(sections).modules, expected);
});

test('the modules schema fills an absent modules or section with the section defaults', () => {
  // loadConfig starts from defaultConfig(sections), so this is what a missing value would get without it.
  const schema = modulesSchema(sections);
  const expected = { idlePing: IDLE_DEFAULTS, carbons: { enabled: true } };
  assert.deepEqual(schema.parse(undefined), expected);
  assert.deepEqual(schema.parse({ carbons: { enabled: false } }), { idlePing: IDLE_DEFAULTS, carbons: { enabled: false } });
  assert.deepEqual(modulesSchema([]).parse(undefined), {});
});

test('without sections, modules is {}', () => {
  assert.deepEqual(loadConfig({ file: null, env: {} }).modules, {});
  assert.deepEqual(defaultConfig().modules, {});
});

test('YAML values are accepted and merged over the section defaults', () => {
  const c = load({ file: yamlFile('modules:\n  idlePing:\n    intervalSeconds: 60\n    mode: both\n  carbons:\n    enabled: false\n') });
  assert.deepEqual(c.modules, { idlePing: { intervalSeconds: 60, enabled: true, mode: 'both' }, carbons: { enabled: false } });
  assert.equal(c.c2s.port, 5222, 'the static keys are untouched');
});

test('a bad YAML value names modules.<key>.<leaf>, the value, the file and what is expected', () => {
  const cases: Array<[string, string, string]> = [
    ['intervalSeconds: 5', 'intervalSeconds = 5', 'a whole number of seconds from 10 to 3600'],
    ['intervalSeconds: 3601', 'intervalSeconds = 3601', 'a whole number of seconds from 10 to 3600'],
    ['intervalSeconds: 10.5', 'intervalSeconds = 10.5', 'a whole number of seconds from 10 to 3600'],
    ['enabled: "yes"', 'enabled = "yes"', 'true or false'],
    ['mode: sometimes', 'mode = "sometimes"', 'one of c2s, s2s, both'],
  ];
  for (const [yaml, shown, expect] of cases) {
    const file = yamlFile(`modules:\n  idlePing:\n    ${yaml}\n`);
    const e = configError(() => load({ file }));
    const key = `modules.idlePing.${yaml.split(':')[0]!}`;
    assert.equal(e.key, key, yaml);
    assert.equal(e.source, `file ${file}`, yaml);
    assert.equal(e.message, `Invalid configuration: modules.idlePing.${shown} (from file ${file}): expected ${expect}`);
  }
});

test('a section or modules that is not a mapping names it', () => {
  const file = yamlFile('modules:\n  carbons: true\n');
  let e = configError(() => load({ file }));
  assert.equal(e.message, `Invalid configuration: modules.carbons = true (from file ${file}): expected a mapping of modules.carbons.* keys`);
  const other = yamlFile('modules: 5\n');
  e = configError(() => load({ file: other }));
  assert.equal(e.message, `Invalid configuration: modules = 5 (from file ${other}): expected a mapping of modules.* keys`);
});

test('environment overrides of module leaves are coerced, beat the file and lose to overrides', () => {
  const file = yamlFile('modules:\n  idlePing:\n    intervalSeconds: 60\n    mode: s2s\n');
  const c = load({
    file,
    env: {
      HYPHAE_MODULES__IDLE_PING__INTERVAL_SECONDS: ' 120 ',
      HYPHAE_MODULES__IDLE_PING__MODE: 'both',
      HYPHAE_MODULES__CARBONS__ENABLED: 'FALSE',
    },
    overrides: { modules: { idlePing: { mode: 'c2s' } } },
  });
  assert.deepEqual(c.modules, { idlePing: { intervalSeconds: 120, enabled: true, mode: 'c2s' }, carbons: { enabled: false } });
});

test('bad environment values name the key, the variable and what is expected', () => {
  const cases: Array<[string, string, string, string]> = [
    ['HYPHAE_MODULES__IDLE_PING__INTERVAL_SECONDS', '9', 'modules.idlePing.intervalSeconds = 9', 'a whole number of seconds from 10 to 3600'],
    ['HYPHAE_MODULES__IDLE_PING__INTERVAL_SECONDS', 'abc', 'modules.idlePing.intervalSeconds = "abc"', 'a whole number of seconds from 10 to 3600'],
    ['HYPHAE_MODULES__CARBONS__ENABLED', 'on', 'modules.carbons.enabled = "on"', 'true or false'],
    ['HYPHAE_MODULES__IDLE_PING__MODE', 'never', 'modules.idlePing.mode = "never"', 'one of c2s, s2s, both'],
  ];
  for (const [variable, value, shown, expect] of cases) {
    const e = configError(() => load({ env: { [variable]: value } }));
    assert.equal(e.key, shown.split(' ')[0]);
    assert.equal(e.source, `env ${variable}`);
    assert.equal(e.message, `Invalid configuration: ${shown} (from env ${variable}): expected ${expect}`);
  }
});

test('unknown keys under modules are errors, with a suggestion when one is close', () => {
  let file = yamlFile('modules:\n  mam:\n    enabled: true\n');
  let e = configError(() => load({ file }));
  assert.equal(e.key, 'modules.mam');
  assert.equal(e.message, `Invalid configuration: unknown key 'modules.mam' (from file ${file})`);

  file = yamlFile('modules:\n  idlePong:\n    enabled: false\n');
  e = configError(() => load({ file }));
  assert.equal(e.message, `Invalid configuration: unknown key 'modules.idlePong' (from file ${file}); did you mean 'modules.idlePing'?`);

  file = yamlFile('modules:\n  idlePing:\n    intervalSecond: 60\n');
  e = configError(() => load({ file }));
  assert.equal(
    e.message,
    `Invalid configuration: unknown key 'modules.idlePing.intervalSecond' (from file ${file}); did you mean 'modules.idlePing.intervalSeconds'?`,
  );

  e = configError(() => load({ env: { HYPHAE_MODULES__CARBON__ENABLED: 'false' } }));
  assert.equal(
    e.message,
    "Invalid configuration: unknown key 'modules.carbon.enabled' (from env HYPHAE_MODULES__CARBON__ENABLED); did you mean HYPHAE_MODULES__CARBONS__ENABLED (modules.carbons.enabled)?",
  );

  // Without the module loaded, its section is unknown.
  file = yamlFile('modules:\n  carbons:\n    enabled: false\n');
  e = configError(() => loadConfig({ file, env: {} }));
  assert.equal(e.message, `Invalid configuration: unknown key 'modules.carbons' (from file ${file})`);
  e = configError(() => loadConfig({ file: null, env: { HYPHAE_MODULES__CARBONS__ENABLED: 'false' } }));
  assert.equal(e.message, "Invalid configuration: unknown key 'modules.carbons.enabled' (from env HYPHAE_MODULES__CARBONS__ENABLED)");
});

test('unusable section lists throw plain errors naming the section', () => {
  const bad: Array<[readonly ConfigSection[], string]> = [
    [[carbons, idlePing, carbons], "config section 'carbons': two sections have this key"],
    [[{ key: 'Carbons', schema: carbons.schema }], "config section 'Carbons': the key must be camelCase letters and digits"],
    [[{ key: 'idle_ping', schema: idlePing.schema }], "config section 'idle_ping': the key must be camelCase letters and digits"],
    [[{ key: 'loose', schema: z.object({}) }], "config section 'loose': the schema must be a z.strictObject"],
    [
      [{ key: 'required', schema: z.strictObject({ n: leaf(z.number(), { doc: 'A number.', expect: 'a number' }) }) }],
      "config section 'required': every leaf needs a .default(...), so that an absent section is valid",
    ],
    [[{ key: 'undocumented', schema: z.strictObject({ n: z.number().default(1) }) }], 'config schema: leaf modules.undocumented.n has no documentation'],
  ];
  for (const [list, message] of bad) {
    for (const call of [() => loadConfig({ file: null, env: {}, sections: list }), () => describeConfig(list)]) {
      assert.throws(call, (e: unknown) => e instanceof Error && !(e instanceof ConfigError) && e.message === message, message);
    }
  }
  assert.throws(() => defaultConfig([carbons, carbons]), { message: "config section 'carbons': two sections have this key" });
});

test('describeConfig lists the module keys after the static ones, with their env names', () => {
  const statics = describeConfig();
  const rows = describeConfig(sections);
  assert.equal(statics.length, 97);
  assert.deepEqual(rows.slice(0, 97), statics);
  assert.deepEqual(rows.slice(97), [
    {
      key: 'modules.idlePing.intervalSeconds',
      type: 'integer',
      default: '300',
      doc: 'Seconds between pings to idle clients.',
      env: 'HYPHAE_MODULES__IDLE_PING__INTERVAL_SECONDS',
    },
    { key: 'modules.idlePing.enabled', type: 'boolean', default: 'true', doc: 'Ping idle clients (XEP-0199).', env: 'HYPHAE_MODULES__IDLE_PING__ENABLED' },
    { key: 'modules.idlePing.mode', type: 'one of: c2s, s2s, both', default: 'c2s', doc: 'Which streams are pinged.', env: 'HYPHAE_MODULES__IDLE_PING__MODE' },
    { key: 'modules.carbons.enabled', type: 'boolean', default: 'true', doc: 'Serve XEP-0280 message carbons.', env: 'HYPHAE_MODULES__CARBONS__ENABLED' },
  ]);
});

test('moduleOptions reads a section back, typed; a hand-built config gets the defaults', () => {
  const loaded = load({ env: { HYPHAE_MODULES__IDLE_PING__MODE: 's2s' } });
  const options: { intervalSeconds: number; enabled: boolean; mode: 'c2s' | 's2s' | 'both' } = moduleOptions(loaded, idlePing);
  assert.deepEqual(options, { intervalSeconds: 300, enabled: true, mode: 's2s' });

  const handBuilt = { ...defaultConfig(), modules: {} };
  assert.deepEqual(moduleOptions(handBuilt, idlePing), IDLE_DEFAULTS);
  assert.deepEqual(moduleOptions(handBuilt, carbons), { enabled: true });
  const partial = { ...defaultConfig(), modules: { idlePing: { mode: 'both' } } };
  assert.deepEqual(moduleOptions(partial, idlePing), { intervalSeconds: 300, enabled: true, mode: 'both' });
  const { modules: _none, ...legacy } = defaultConfig();
  assert.deepEqual(moduleOptions(legacy as HyphaeConfig, carbons), { enabled: true }, 'a fixture cast without modules');
});
