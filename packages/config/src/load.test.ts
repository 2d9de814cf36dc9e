import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, defaultConfig, describeConfig, isLoopbackHost, loadConfig, type DeepPartial, type HyphaeConfig } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'hyphae-config-'));
let n = 0;
function yamlFile(text: string): string {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

function withoutNodeId(c: HyphaeConfig): Omit<HyphaeConfig, 'nodeId'> {
  const { nodeId: _ignored, ...rest } = c;
  return rest;
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

test('defaults', () => {
  const c = loadConfig({ file: null, env: {} });
  assert.deepEqual(withoutNodeId(c), withoutNodeId(defaultConfig()));
  assert.deepEqual(c.domains, ['localhost']);
  assert.equal(c.natsUrl, null);
  assert.equal(c.redisUrl, null);
  assert.equal(c.log.level, 'info');
  assert.deepEqual(c.http, { host: '127.0.0.1', port: 5280, adminToken: null, adminHost: '127.0.0.1', adminPort: null, adminServerNames: [] });
  assert.deepEqual(c.admins, []);
  assert.equal(c.c2s.port, 5222);
  assert.equal(c.c2s.directTlsPort, 5223);
  assert.equal(c.c2s.maxStanzaBytes, 262144);
  assert.deepEqual(c.c2s.saslMechanisms, ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']);
  assert.deepEqual(c.registration.allowlist, ['127.0.0.0/8', '::1/128']);
  assert.deepEqual(c.sm, { heartbeatIntervalMs: 1000, nodeTtlMs: 5000 });
  // Forward-secret AEAD suites only, TLS 1.2 at least (issue 21, finding 8).
  assert.equal(c.tls.minVersion, 'TLSv1.2');
  assert.doesNotMatch(c.tls.ciphers, /(^|:)(AES|DHE-|ECDHE-[A-Z]+-AES\d+-SHA(:|$))/);
  assert.equal(c.tls.handshakeTimeoutMs, 10_000);
  assert.match(c.nodeId, /^[A-Za-z0-9_-]+-\d+-[0-9a-f]{4}$/);
  assert.ok(c.nodeId.includes(`-${process.pid}-`));
});

test('defaultConfig returns a fresh object with a fresh node id', () => {
  const a = defaultConfig();
  const b = defaultConfig();
  a.domains.push('x');
  assert.deepEqual(b.domains, ['localhost']);
  // 4 random hex digits: two calls collide with probability 1/65536; try a few times.
  const ids = new Set(Array.from({ length: 5 }, () => defaultConfig().nodeId));
  assert.ok(ids.size > 1);
});

test('YAML file is merged over the defaults', () => {
  const file = yamlFile(`
domains: [Example.COM, chat.example.com]
natsUrl: nats://nats:4222
c2s:
  port: 15222
  requireTls: false
  saslMechanisms: [PLAIN]
registration:
  allowlist: []
sm: {}
`);
  const c = loadConfig({ file, env: {} });
  assert.deepEqual(c.domains, ['example.com', 'chat.example.com'], 'domains are lowercased');
  assert.equal(c.natsUrl, 'nats://nats:4222');
  assert.equal(c.c2s.port, 15222);
  assert.equal(c.c2s.requireTls, false);
  assert.deepEqual(c.c2s.saslMechanisms, ['PLAIN']);
  assert.equal(c.c2s.maxDepth, 32, 'untouched keys keep their default');
  assert.deepEqual(c.registration.allowlist, []);
  assert.equal(c.sm.nodeTtlMs, 5000);
});

test('empty file and sections left empty are fine', () => {
  assert.equal(loadConfig({ file: yamlFile(''), env: {} }).c2s.port, 5222);
  assert.equal(loadConfig({ file: yamlFile('# nothing\n'), env: {} }).c2s.port, 5222);
  assert.equal(loadConfig({ file: yamlFile('c2s:\n  # port: 1\n'), env: {} }).c2s.port, 5222);
});

test('HYPHAE_CONFIG names the file when opts.file is undefined; file: null ignores it', () => {
  const file = yamlFile('c2s:\n  port: 6000\n');
  assert.equal(loadConfig({ env: { HYPHAE_CONFIG: file } }).c2s.port, 6000);
  assert.equal(loadConfig({ file: null, env: { HYPHAE_CONFIG: file } }).c2s.port, 5222);
  const other = yamlFile('c2s:\n  port: 6001\n');
  assert.equal(loadConfig({ file: other, env: { HYPHAE_CONFIG: file } }).c2s.port, 6001);
});

test('a missing file is an error with key "file"', () => {
  const missing = join(dir, 'nope.yaml');
  let e = configError(() => loadConfig({ file: missing, env: {} }));
  assert.equal(e.key, 'file');
  assert.match(e.message, /nope\.yaml/);
  assert.match(e.message, /not found/);
  e = configError(() => loadConfig({ env: { HYPHAE_CONFIG: missing } }));
  assert.equal(e.key, 'file');
  assert.match(e.message, /HYPHAE_CONFIG/);
});

test('invalid YAML, duplicate keys and non-mapping documents are errors with key "file"', () => {
  for (const text of ['c2s: [unclosed', 'c2s:\n  port: 1\n  port: 2\n', '- a\n- b\n', 'just a string']) {
    const file = yamlFile(text);
    const e = configError(() => loadConfig({ file, env: {} }));
    assert.equal(e.key, 'file', text);
    assert.ok(e.message.includes(file), e.message);
  }
});

test('unknown keys in the file are rejected, with a suggestion', () => {
  const file = yamlFile('c2s:\n  prot: 5222\n');
  let e = configError(() => loadConfig({ file, env: {} }));
  assert.equal(e.key, 'c2s.prot');
  assert.ok(e.message.includes(file));
  assert.match(e.message, /did you mean 'c2s\.port'/);

  e = configError(() => loadConfig({ file: yamlFile('listen: 1\n'), env: {} }));
  assert.equal(e.key, 'listen');

  e = configError(() => loadConfig({ file: yamlFile('c2s:\n  require_tls: false\n'), env: {} }));
  assert.equal(e.key, 'c2s.require_tls');
  assert.match(e.message, /c2s\.requireTls/);

  e = configError(() => loadConfig({ file: yamlFile('log:\n  level: info\n  format: json\n'), env: {} }));
  assert.equal(e.key, 'log.format');
});

test('unknown keys in overrides are rejected', () => {
  const e = configError(() => loadConfig({ file: null, env: {}, overrides: { c2s: { nope: 1 } } as DeepPartial<HyphaeConfig> }));
  assert.equal(e.key, 'c2s.nope');
  assert.match(e.message, /overrides/);
});

test('a section replaced by a scalar names the section', () => {
  const e = configError(() => loadConfig({ file: yamlFile('c2s: 5222\n'), env: {} }));
  assert.equal(e.key, 'c2s');
  assert.match(e.message, /mapping/);
});

test('environment overrides of every type', () => {
  const c = loadConfig({
    file: null,
    env: {
      HYPHAE_C2S__PORT: '5333', // integer
      HYPHAE_C2S__REQUIRE_TLS: 'false', // boolean
      HYPHAE_REGISTRATION__OPEN: 'TRUE', // boolean, any case
      HYPHAE_REGISTRATION__ALLOWLIST: '10.0.0.0/8, ::1/128', // list
      HYPHAE_C2S__SASL_MECHANISMS: 'SCRAM-SHA-1,PLAIN', // list of enum
      HYPHAE_HTTP__PORT: 'null', // nullable
      HYPHAE_C2S__DIRECT_TLS_PORT: 'null',
      HYPHAE_C2S__HOST: '0.0.0.0', // string
      HYPHAE_LOG_LEVEL: 'debug', // enum, alias
      HYPHAE_DOMAINS: 'Example.org,muc.example.org',
      HYPHAE_NODE_ID: 'c2s-0',
      HYPHAE_DATA_DIR: '/var/lib/hyphae',
      NATS_URL: 'nats://a:4222,nats://b:4222',
      REDIS_URL: 'redis://redis:6379/0',
      HYPHAE_TLS__CERT: '/tls/tls.crt',
      HYPHAE_TLS__KEY: '/tls/tls.key',
      HYPHAE_SM__NODE_TTL_MS: '10000',
    },
  });
  assert.equal(c.c2s.port, 5333);
  assert.equal(c.c2s.requireTls, false);
  assert.equal(c.registration.open, true);
  assert.deepEqual(c.registration.allowlist, ['10.0.0.0/8', '::1/128']);
  assert.deepEqual(c.c2s.saslMechanisms, ['SCRAM-SHA-1', 'PLAIN']);
  assert.equal(c.http.port, null);
  assert.equal(c.c2s.directTlsPort, null);
  assert.equal(c.c2s.host, '0.0.0.0');
  assert.equal(c.log.level, 'debug');
  assert.deepEqual(c.domains, ['example.org', 'muc.example.org']);
  assert.equal(c.nodeId, 'c2s-0');
  assert.equal(c.dataDir, '/var/lib/hyphae');
  assert.equal(c.natsUrl, 'nats://a:4222,nats://b:4222');
  assert.equal(c.redisUrl, 'redis://redis:6379/0');
  assert.deepEqual(c.tls, { ...defaultConfig().tls, cert: '/tls/tls.crt', key: '/tls/tls.key' });
  assert.equal(c.sm.nodeTtlMs, 10000);
});

test('env: empty values are unset, [] is an empty list, generated names beat aliases', () => {
  const c = loadConfig({
    file: null,
    env: {
      NATS_URL: '',
      HYPHAE_C2S__PORT: '',
      HYPHAE_REGISTRATION__ALLOWLIST: '[]',
      REDIS_URL: 'redis://alias:6379',
      HYPHAE_REDIS_URL: 'redis://generated:6379',
      HYPHAE_LOG_LEVEL: 'debug',
      HYPHAE_LOG__LEVEL: 'warn',
    },
  });
  assert.equal(c.natsUrl, null);
  assert.equal(c.c2s.port, 5222);
  assert.deepEqual(c.registration.allowlist, []);
  assert.equal(c.redisUrl, 'redis://generated:6379');
  assert.equal(c.log.level, 'warn');
});

test('env: Kubernetes service variables are ignored, unknown HYPHAE_X__Y are errors', () => {
  const c = loadConfig({
    file: null,
    env: { HYPHAE_PORT: 'tcp://10.0.0.1:5222', HYPHAE_C2S_PORT: 'tcp://10.0.0.2:5222', HYPHAE_C2S_SERVICE_HOST: '10.0.0.2' },
  });
  assert.equal(c.c2s.port, 5222);
  const e = configError(() => loadConfig({ file: null, env: { HYPHAE_C2S__PROT: '1' } }));
  assert.equal(e.key, 'c2s.prot');
  assert.match(e.message, /HYPHAE_C2S__PROT/);
  assert.match(e.message, /HYPHAE_C2S__PORT/);
});

test('precedence: defaults < file < env < overrides', () => {
  const file = yamlFile('c2s:\n  port: 1111\n  maxDepth: 10\n  maxAttributes: 20\nhttp:\n  port: 2222\n');
  const c = loadConfig({
    file,
    env: { HYPHAE_C2S__PORT: '3333', HYPHAE_C2S__MAX_DEPTH: '11' },
    overrides: { c2s: { port: 4444 } },
  });
  assert.equal(c.c2s.port, 4444, 'overrides beat env');
  assert.equal(c.c2s.maxDepth, 11, 'env beats file');
  assert.equal(c.c2s.maxAttributes, 20, 'file beats defaults');
  assert.equal(c.http.port, 2222);
  assert.equal(c.c2s.authTimeoutSeconds, 30, 'defaults');
});

test('overrides replace lists whole and may set null', () => {
  const c = loadConfig({ file: null, env: {}, overrides: { domains: ['a.example'], http: { port: null } } });
  assert.deepEqual(c.domains, ['a.example']);
  assert.equal(c.http.port, null);
});

/** [key expected in the error, how to produce it] — covers every key of the schema. */
const BAD: Array<[string, { env?: Record<string, string>; overrides?: unknown; file?: string }]> = [
  ['domains', { env: { HYPHAE_DOMAINS: '[]' } }],
  ['domains', { env: { HYPHAE_DOMAINS: 'a b.example' } }],
  ['domains', { env: { HYPHAE_DOMAINS: 'user@example.com' } }],
  ['domains', { env: { HYPHAE_DOMAINS: 'a.example,A.example' } }],
  ['nodeId', { env: { HYPHAE_NODE_ID: 'node.1' } }],
  ['dataDir', { overrides: { dataDir: '' } }],
  ['natsUrl', { env: { NATS_URL: 'http://nats:4222' } }],
  ['redisUrl', { env: { REDIS_URL: 'localhost:6379' } }],
  ['log.level', { env: { HYPHAE_LOG_LEVEL: 'verbose' } }],
  ['http.host', { overrides: { http: { host: '' } } }],
  ['http.port', { env: { HYPHAE_HTTP__PORT: '65536' } }],
  ['tls.cert', { env: { HYPHAE_TLS__KEY: '/k.pem' } }],
  ['tls.key', { env: { HYPHAE_TLS__CERT: '/c.pem' } }],
  ['c2s.host', { overrides: { c2s: { host: ' ' } } }],
  ['c2s.port', { env: { HYPHAE_C2S__PORT: '-1' } }],
  ['c2s.port', { env: { HYPHAE_C2S__PORT: 'abc' } }],
  ['c2s.port', { overrides: { c2s: { port: 1.5 } } }],
  ['c2s.port', { file: 'c2s:\n  port: "5222"\n' }],
  ['c2s.directTlsPort', { env: { HYPHAE_C2S__DIRECT_TLS_PORT: '5222' } }],
  ['c2s.requireTls', { env: { HYPHAE_C2S__REQUIRE_TLS: 'yes' } }],
  ['c2s.maxStanzaBytes', { env: { HYPHAE_C2S__MAX_STANZA_BYTES: '9999' } }],
  ['c2s.maxDepth', { env: { HYPHAE_C2S__MAX_DEPTH: '0' } }],
  ['c2s.maxAttributes', { env: { HYPHAE_C2S__MAX_ATTRIBUTES: '1' } }],
  ['c2s.idleTimeoutSeconds', { env: { HYPHAE_C2S__IDLE_TIMEOUT_SECONDS: '0' } }],
  ['c2s.authTimeoutSeconds', { env: { HYPHAE_C2S__AUTH_TIMEOUT_SECONDS: '0' } }],
  ['c2s.maxConnectionsPerIp', { env: { HYPHAE_C2S__MAX_CONNECTIONS_PER_IP: '0' } }],
  ['c2s.maxBytesPerSecond', { env: { HYPHAE_C2S__MAX_BYTES_PER_SECOND: '-1' } }],
  ['c2s.maxWriteBufferBytes', { env: { HYPHAE_C2S__MAX_WRITE_BUFFER_BYTES: '1024' } }],
  ['roster.shards', { env: { HYPHAE_ROSTER__SHARDS: '0' } }],
  ['roster.maxItems', { env: { HYPHAE_ROSTER__MAX_ITEMS: '0' } }],
  ['roster.maxNameLength', { env: { HYPHAE_ROSTER__MAX_NAME_LENGTH: 'x' } }],
  ['roster.offlineCap', { env: { HYPHAE_ROSTER__OFFLINE_CAP: '-1' } }],
  ['roster.leaseTtlMs', { env: { HYPHAE_ROSTER__LEASE_TTL_MS: '10' } }],
  ['roster.maxQueued', { env: { HYPHAE_ROSTER__MAX_QUEUED: '0' } }],
  ['c2s.saslMechanisms', { env: { HYPHAE_C2S__SASL_MECHANISMS: 'DIGEST-MD5' } }],
  ['c2s.saslMechanisms', { env: { HYPHAE_C2S__SASL_MECHANISMS: '[]' } }],
  ['c2s.saslMechanisms', { env: { HYPHAE_C2S__SASL_MECHANISMS: 'PLAIN,PLAIN' } }],
  ['c2s.scramIterations', { env: { HYPHAE_C2S__SCRAM_ITERATIONS: '1000' } }],
  ['registration.open', { env: { HYPHAE_REGISTRATION__OPEN: '1' } }],
  ['registration.maxPerIp', { env: { HYPHAE_REGISTRATION__MAX_PER_IP: '-1' } }],
  ['registration.windowSeconds', { env: { HYPHAE_REGISTRATION__WINDOW_SECONDS: '0' } }],
  ['registration.allowlist', { env: { HYPHAE_REGISTRATION__ALLOWLIST: '10.0.0.0/8,10.0.0.0/33' } }],
  ['registration.allowlist', { env: { HYPHAE_REGISTRATION__ALLOWLIST: 'localhost' } }],
  ['sm.heartbeatIntervalMs', { env: { HYPHAE_SM__HEARTBEAT_INTERVAL_MS: '10' } }],
  ['sm.nodeTtlMs', { env: { HYPHAE_SM__NODE_TTL_MS: '1999' } }],
  ['muc.enabled', { env: { HYPHAE_MUC__ENABLED: 'on' } }],
  ['c2s.drainGraceMs', { env: { HYPHAE_C2S__DRAIN_GRACE_MS: '-1' } }],
  ['proxy65.enabled', { env: { HYPHAE_PROXY65__ENABLED: 'maybe' } }],
  ['proxy65.subdomain', { env: { HYPHAE_PROXY65__SUBDOMAIN: 'a.b' } }],
  ['proxy65.host', { overrides: { proxy65: { host: '' } } }],
  ['proxy65.port', { env: { HYPHAE_PROXY65__PORT: '70000' } }],
  ['proxy65.advertisedHost', { overrides: { proxy65: { advertisedHost: '' } } }],
  ['proxy65.advertisedPort', { env: { HYPHAE_PROXY65__ADVERTISED_PORT: '0' } }],
  ['proxy65.maxStreams', { env: { HYPHAE_PROXY65__MAX_STREAMS: '0' } }],
  ['proxy65.maxStreamsPerUser', { env: { HYPHAE_PROXY65__MAX_STREAMS_PER_USER: '0' } }],
  ['proxy65.pairingTimeoutMs', { env: { HYPHAE_PROXY65__PAIRING_TIMEOUT_MS: '5' } }],
  ['proxy65.idleTimeoutMs', { env: { HYPHAE_PROXY65__IDLE_TIMEOUT_MS: '5' } }],
  ['proxy65.maxBytesPerSecond', { env: { HYPHAE_PROXY65__MAX_BYTES_PER_SECOND: '-1' } }],
  ['proxy65.maxBytes', { env: { HYPHAE_PROXY65__MAX_BYTES: '-1' } }],
  ['extdisco.services', { env: { HYPHAE_EXTDISCO__SERVICES: 'stun:example.org' } }],
  ['extdisco.turnSecret', { env: { HYPHAE_EXTDISCO__TURN_SECRET: 'short' } }],
  ['extdisco.ttlSeconds', { env: { HYPHAE_EXTDISCO__TTL_SECONDS: '10' } }],
  ['s2s.enabled', { env: { HYPHAE_S2S__ENABLED: 'perhaps' } }],
  ['s2s.host', { overrides: { s2s: { host: '' } } }],
  ['s2s.port', { env: { HYPHAE_S2S__PORT: '65536' } }],
  ['s2s.directTlsPort', { env: { HYPHAE_S2S__DIRECT_TLS_PORT: '-1' } }],
  ['s2s.shards', { env: { HYPHAE_S2S__SHARDS: '0' } }],
  ['s2s.leaseTtlMs', { env: { HYPHAE_S2S__LEASE_TTL_MS: '10' } }],
  ['s2s.requireTls', { env: { HYPHAE_S2S__REQUIRE_TLS: 'y' } }],
  ['s2s.dialback', { env: { HYPHAE_S2S__DIALBACK: '2' } }],
  ['s2s.caFile', { overrides: { s2s: { caFile: '' } } }],
  ['s2s.caOnly', { env: { HYPHAE_S2S__CA_ONLY: 'no way' } }],
  ['s2s.dialbackSecret', { env: { HYPHAE_S2S__DIALBACK_SECRET: 'short' } }],
  ['s2s.dnsServers', { overrides: { s2s: { dnsServers: ['not a server'] } } }],
  ['s2s.staticRoutes', { overrides: { s2s: { staticRoutes: ['example.org'] } } }],
  ['s2s.blocklist', { overrides: { s2s: { blocklist: ['not a domain!'] } } }],
  ['s2s.connectTimeoutMs', { env: { HYPHAE_S2S__CONNECT_TIMEOUT_MS: '1' } }],
  ['s2s.queueTimeoutMs', { env: { HYPHAE_S2S__QUEUE_TIMEOUT_MS: '1' } }],
  ['s2s.maxQueue', { env: { HYPHAE_S2S__MAX_QUEUE: '0' } }],
  ['s2s.idleTimeoutMs', { env: { HYPHAE_S2S__IDLE_TIMEOUT_MS: '5' } }],
  ['s2s.maxInboundPerDomain', { env: { HYPHAE_S2S__MAX_INBOUND_PER_DOMAIN: '0' } }],
  ['s2s.maxStanzasPerSecond', { env: { HYPHAE_S2S__MAX_STANZAS_PER_SECOND: '-2' } }],
  ['s2s.maxConnectionsPerIp', { env: { HYPHAE_S2S__MAX_CONNECTIONS_PER_IP: '0' } }],
  ['tls.minVersion', { env: { HYPHAE_TLS__MIN_VERSION: 'TLSv1.1' } }],
  ['tls.ciphers', { env: { HYPHAE_TLS__CIPHERS: 'NOT-A-CIPHER' } }],
  ['tls.handshakeTimeoutMs', { env: { HYPHAE_TLS__HANDSHAKE_TIMEOUT_MS: '50' } }],
  ['c2s.seeOtherHost', { env: { HYPHAE_C2S__SEE_OTHER_HOST: 'a b:5222' } }],
  ['http.adminToken', { env: { HYPHAE_HTTP__ADMIN_TOKEN: 'short' } }],
  ['http.adminHost', { overrides: { http: { adminHost: '' } } }],
  ['http.adminPort', { env: { HYPHAE_HTTP__ADMIN_PORT: '70000' } }],
  ['http.adminServerNames', { overrides: { http: { adminServerNames: ['not a name'] } } }],
  ['registration.maxAttemptsPerStream', { env: { HYPHAE_REGISTRATION__MAX_ATTEMPTS_PER_STREAM: '0' } }],
  ['s2s.refusePrivateAddresses', { env: { HYPHAE_S2S__REFUSE_PRIVATE_ADDRESSES: 'maybe' } }],
  ['s2s.allowedAddresses', { overrides: { s2s: { allowedAddresses: ['10.0.0.0/33'] } } }],
  ['s2s.allowIpLiteralDomains', { env: { HYPHAE_S2S__ALLOW_IP_LITERAL_DOMAINS: 'sure' } }],
  ['admins', { env: { HYPHAE_ADMINS: 'alice' } }],
  ['muc.subdomain', { env: { HYPHAE_MUC__SUBDOMAIN: 'con.ference' } }],
  ['muc.shards', { env: { HYPHAE_MUC__SHARDS: '5000' } }],
  ['muc.leaseTtlMs', { env: { HYPHAE_MUC__LEASE_TTL_MS: '499' } }],
  ['muc.maxRoomsPerUser', { env: { HYPHAE_MUC__MAX_ROOMS_PER_USER: '-1' } }],
  ['muc.maxOccupants', { env: { HYPHAE_MUC__MAX_OCCUPANTS: '0' } }],
  ['muc.defaultMaxUsers', { env: { HYPHAE_MUC__DEFAULT_MAX_USERS: 'many' } }],
  ['muc.maxHistory', { env: { HYPHAE_MUC__MAX_HISTORY: '-5' } }],
  ['muc.defaultHistory', { env: { HYPHAE_MUC__DEFAULT_HISTORY: '1.5' } }],
  ['muc.maxMessageBytes', { env: { HYPHAE_MUC__MAX_MESSAGE_BYTES: '10' } }],
  ['muc.messagesPerSecond', { env: { HYPHAE_MUC__MESSAGES_PER_SECOND: '0' } }],
  ['muc.defaultMaxUsers', { env: { HYPHAE_MUC__DEFAULT_MAX_USERS: '3000' } }],
  ['muc.defaultHistory', { env: { HYPHAE_MUC__DEFAULT_HISTORY: '300' } }],
];

test('every validation error names its key, the value and the source', () => {
  for (const [key, how] of BAD) {
    const file = how.file === undefined ? null : yamlFile(how.file);
    const e = configError(() =>
      loadConfig({ file, env: how.env ?? {}, overrides: how.overrides as DeepPartial<HyphaeConfig> | undefined }),
    );
    const label = `${key} ${JSON.stringify(how)}`;
    assert.equal(e.key, key, `${label}: ${e.message}`);
    assert.ok(e.message.includes(key), `${label}: message names the key: ${e.message}`);
    assert.match(e.message, /expected|must/, `${label}: says what is expected: ${e.message}`);
    if (how.env) {
      const variable = Object.keys(how.env)[0]!;
      assert.ok(e.message.includes(variable), `${label}: names the variable: ${e.message}`);
      const value = how.env[variable]!.split(',').at(-1)!;
      if (value !== '[]') assert.ok(e.message.includes(value), `${label}: shows the value: ${e.message}`);
    }
    if (file) assert.ok(e.message.includes(file), `${label}: names the file: ${e.message}`);
    if (how.overrides) assert.match(e.message, /overrides/, label);
  }
  const covered = new Set(BAD.map(([k]) => k));
  for (const row of describeConfig()) assert.ok(covered.has(row.key), `no validation test for ${row.key}`);
});

test('several problems are all reported; key is the first', () => {
  const e = configError(() => loadConfig({ file: null, env: { HYPHAE_C2S__PORT: 'x', HYPHAE_HTTP__PORT: 'y' } }));
  assert.equal(e.issues.length, 2);
  assert.deepEqual(e.issues.map((i) => i.key).sort(), ['c2s.port', 'http.port']);
  assert.ok(e.message.includes('c2s.port') && e.message.includes('http.port'));
});

test('http.adminToken is required when the admin API would listen on a non-loopback address', () => {
  let e = configError(() => loadConfig({ file: null, env: { HYPHAE_HTTP__HOST: '0.0.0.0' } }));
  assert.equal(e.key, 'http.adminToken');
  assert.match(e.message, /0\.0\.0\.0 \(http\.host\), which is not loopback/);
  e = configError(() => loadConfig({ file: null, env: { HYPHAE_HTTP__ADMIN_PORT: '5281', HYPHAE_HTTP__ADMIN_HOST: '::' } }));
  assert.equal(e.key, 'http.adminToken');
  assert.match(e.message, /http\.adminHost/);
  // Metrics on every interface, the admin API on its own loopback listener (the chart's and compose's layout).
  const split = loadConfig({ file: null, env: { HYPHAE_HTTP__HOST: '0.0.0.0', HYPHAE_HTTP__ADMIN_PORT: '5281' } });
  assert.deepEqual([split.http.adminHost, split.http.adminPort, split.http.adminToken], ['127.0.0.1', 5281, null]);
  loadConfig({ file: null, env: { HYPHAE_HTTP__HOST: '0.0.0.0', HYPHAE_HTTP__ADMIN_TOKEN: 'a-token-of-16-chars' } });
  loadConfig({ file: null, env: {}, overrides: { http: { host: '::', port: null } } }); // no listener, no API
  for (const h of ['127.0.0.1', '127.9.9.9', '::1', '[::1]', '0:0:0:0:0:0:0:1', 'localhost', 'LocalHost', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', 'example.org', 'localhost.example.org', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
});

test('IPv6 literals and IP domains are accepted', () => {
  const c = loadConfig({ file: null, env: { HYPHAE_DOMAINS: 'localhost,127.0.0.1,[::1],bücher.example' } });
  assert.deepEqual(c.domains, ['localhost', '127.0.0.1', '[::1]', 'bücher.example']);
});

test('describeConfig lists every key with type, default, doc and env', () => {
  const rows = describeConfig();
  assert.equal(rows.length, 97);
  const byKey = new Map(rows.map((r) => [r.key, r]));
  assert.deepEqual(byKey.get('c2s.port'), {
    key: 'c2s.port',
    type: 'integer',
    default: '5222',
    doc: 'STARTTLS port (RFC 6120); 0 picks a free port (tests).',
    env: 'HYPHAE_C2S__PORT',
  });
  assert.equal(byKey.get('c2s.requireTls')?.env, 'HYPHAE_C2S__REQUIRE_TLS');
  assert.equal(byKey.get('http.port')?.type, 'integer | null');
  assert.equal(byKey.get('natsUrl')?.env, 'HYPHAE_NATS_URL, NATS_URL');
  assert.equal(byKey.get('registration.allowlist')?.default, '127.0.0.0/8,::1/128');
  assert.match(byKey.get('log.level')?.type ?? '', /^one of: fatal, error/);
  for (const r of rows) {
    assert.ok(r.doc.length > 10, r.key);
    assert.match(r.env, /^HYPHAE_[A-Z0-9_]+/);
  }
});
