/**
 * loadConfig: defaults ← YAML file ← environment ← programmatic overrides,
 * validated once with the schema; any problem throws ConfigError naming the
 * key, the bad value, what was expected and where the value came from.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { closestKey, hint, readEnv } from './env.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { FORWARD_SECRET_CIPHERS, configLeaves, configSchema, type ConfigSection, type CrossFieldParams } from './schema.js';
import { moduleDefaults, modulesSchema } from './sections.js';
import type { HyphaeConfig } from './types.js';

export { ConfigError } from './errors.js';
export type { ConfigIssue } from './errors.js';

/** Every property optional, recursively; arrays are replaced whole, never merged. */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

export interface LoadOptions {
  /**
   * YAML file to read. undefined → the file named by HYPHAE_CONFIG, if any;
   * null → no file at all (HYPHAE_CONFIG ignored). A named file that does not
   * exist is an error (key 'file').
   */
  file?: string | null;
  /** Environment to read overrides from; default process.env. Pass {} in tests for isolation. */
  env?: Record<string, string | undefined>;
  /** Applied last (tests, embedded mode). */
  overrides?: DeepPartial<HyphaeConfig>;
  /** The config sections of the modules in use, validated at modules.<key>; none: `modules` must be empty. */
  sections?: readonly ConfigSection[];
}

/**
 * A node id that is unique per process and safe as a NATS subject token:
 * the host name (dots and other specials become '-'), the pid, 4 random hex
 * digits (pids repeat across containers, which all tend to be pid 1).
 */
function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'node';
  return `${host}-${process.pid}-${randomBytes(2).toString('hex')}`;
}

/** The built-in defaults, with those of the given module sections (a fresh object each call; nodeId differs per call). */
export function defaultConfig(sections: readonly ConfigSection[] = []): HyphaeConfig {
  return {
    domains: ['localhost'],
    nodeId: defaultNodeId(),
    dataDir: './data',
    natsUrl: null,
    redisUrl: null,
    log: { level: 'info' },
    http: { host: '127.0.0.1', port: 5280, adminToken: null, adminHost: '127.0.0.1', adminPort: null, adminServerNames: [] },
    admins: [],
    tls: { cert: null, key: null, minVersion: 'TLSv1.2', ciphers: FORWARD_SECRET_CIPHERS, handshakeTimeoutMs: 10_000 },
    c2s: {
      host: '127.0.0.1',
      port: 5222,
      directTlsPort: 5223,
      requireTls: true,
      maxStanzaBytes: 262144,
      maxDepth: 32,
      maxAttributes: 64,
      idleTimeoutSeconds: 600,
      authTimeoutSeconds: 30,
      maxConnectionsPerIp: 100,
      maxBytesPerSecond: 1_048_576,
      maxWriteBufferBytes: 4_194_304,
      saslMechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'],
      scramIterations: 4096,
      drainGraceMs: 2000,
      seeOtherHost: null,
    },
    registration: { open: true, maxPerIp: 5, windowSeconds: 3600, allowlist: ['127.0.0.0/8', '::1/128'], maxAttemptsPerStream: 5 },
    sm: { heartbeatIntervalMs: 1000, nodeTtlMs: 5000 },
    roster: { shards: 64, maxItems: 1000, maxNameLength: 1023, offlineCap: 1000, leaseTtlMs: 5000, maxQueued: 10_000 },
    muc: {
      enabled: true,
      subdomain: 'conference',
      shards: 64,
      leaseTtlMs: 5000,
      maxRoomsPerUser: 100,
      maxOccupants: 2000,
      defaultMaxUsers: 200,
      maxHistory: 200,
      defaultHistory: 20,
      maxMessageBytes: 65536,
      messagesPerSecond: 20,
    },
    proxy65: {
      enabled: true,
      subdomain: 'proxy',
      host: '127.0.0.1',
      port: 7777,
      advertisedHost: null,
      advertisedPort: null,
      maxStreams: 1000,
      maxStreamsPerUser: 10,
      pairingTimeoutMs: 60_000,
      idleTimeoutMs: 300_000,
      maxBytesPerSecond: 0,
      maxBytes: 0,
    },
    extdisco: { services: [], turnSecret: null, ttlSeconds: 86_400 },
    s2s: {
      enabled: true,
      host: '127.0.0.1',
      port: 5269,
      directTlsPort: 5270,
      shards: 64,
      leaseTtlMs: 10_000,
      requireTls: true,
      dialback: true,
      caFile: null,
      caOnly: false,
      dialbackSecret: null,
      dnsServers: [],
      staticRoutes: [],
      blocklist: [],
      connectTimeoutMs: 10_000,
      queueTimeoutMs: 30_000,
      maxQueue: 1000,
      idleTimeoutMs: 600_000,
      maxInboundPerDomain: 16,
      maxStanzasPerSecond: 500,
      maxConnectionsPerIp: 100,
      refusePrivateAddresses: true,
      allowedAddresses: [],
      allowIpLiteralDomains: false,
    },
    modules: moduleDefaults(sections),
  };
}

type Tree = Record<string, unknown>;

function isPlainObject(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Where each key's current value came from, by dotted path. */
type Sources = Map<string, string>;

function mergeLayer(target: Tree, layer: Tree, path: string[], source: string, sources: Sources, nullSectionIsEmpty: boolean): void {
  for (const [name, value] of Object.entries(layer)) {
    if (value === undefined) continue;
    const p = [...path, name];
    const current = target[name];
    if (isPlainObject(current) && isPlainObject(value)) {
      mergeLayer(current, value, p, source, sources, nullSectionIsEmpty);
      continue;
    }
    // `c2s:` with every sub-key commented out parses as null: an empty section, not an error.
    if (nullSectionIsEmpty && value === null && isPlainObject(current)) continue;
    target[name] = clone(value);
    sources.set(p.join('.'), source);
  }
}

function setPath(target: Tree, path: readonly string[], value: unknown): void {
  let node = target;
  for (const seg of path.slice(0, -1)) {
    const next = node[seg];
    if (!isPlainObject(next)) node[seg] = {};
    node = node[seg] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

function readYaml(file: string, via: string): Tree {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : (e as Error).message;
    throw new ConfigError([{ key: 'file', source: via, message: `configuration file ${abs} (from ${via}): ${why}` }]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    throw new ConfigError([
      { key: 'file', source: `file ${abs}`, message: `configuration file ${abs} is not valid YAML: ${first.message}` },
    ]);
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (!isPlainObject(data)) {
    throw new ConfigError([
      { key: 'file', source: `file ${abs}`, message: `configuration file ${abs} must contain a mapping of keys at the top level` },
    ]);
  }
  return data;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function valueAt(tree: unknown, path: readonly PropertyKey[]): unknown {
  let node = tree;
  for (const seg of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[seg];
  }
  return node;
}

function sourceOf(sources: Sources, path: readonly PropertyKey[]): string {
  const names = path.filter((s): s is string => typeof s === 'string');
  for (let n = names.length; n > 0; n--) {
    const s = sources.get(names.slice(0, n).join('.'));
    if (s) return s;
  }
  return 'default';
}

/** 'registration.allowlist[1]' */
function display(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${String(seg)}` : String(seg);
  return out;
}

function toIssues(error: z.ZodError, input: Tree, sources: Sources, sections: readonly ConfigSection[]): ConfigIssue[] {
  const leaves = new Map(configLeaves(sections).map((l) => [l.key, l]));
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) {
        const full = [...path, k];
        const key = full.map(String).join('.');
        const source = sourceOf(sources, full);
        issues.push({ key, source, message: `unknown key '${key}' (from ${source})${hint(closestKey(key, sections), source.startsWith('env '))}` });
      }
      continue;
    }
    const key = path.filter((s) => typeof s === 'string').join('.') || 'config';
    const source = sourceOf(sources, path);
    const value = valueAt(input, path);
    const leaf = leaves.get(key);
    const shown = `${display(path) || 'config'} = ${describeValue(value)} (from ${source})`;
    let message: string;
    if (!leaf) {
      // A section (c2s, log, …) replaced by something that is not a mapping.
      message = `${shown}: expected a mapping of ${key}.* keys`;
    } else if (issue.code === 'custom' && (issue.params as Partial<CrossFieldParams> | undefined)?.crossField) {
      const related = (issue.params as CrossFieldParams).related.split('.');
      const other = `${related.join('.')} = ${describeValue(valueAt(input, related))} (from ${sourceOf(sources, related)})`;
      message = `${shown}: ${issue.message}; ${other}`;
    } else if (issue.code === 'custom') {
      message = `${shown}: ${issue.message}; expected ${leaf.meta.expect}`;
    } else {
      message = `${shown}: expected ${leaf.meta.expect}`;
    }
    issues.push({ key, source, message });
  }
  return issues;
}

/**
 * Load the configuration: defaults ← YAML file ← environment ← overrides.
 * Throws ConfigError on any problem; never returns an invalid configuration.
 */
export function loadConfig(opts: LoadOptions = {}): HyphaeConfig {
  const env = opts.env ?? process.env;
  const sections = opts.sections ?? [];
  const sources: Sources = new Map();
  const merged = defaultConfig(sections) as unknown as Tree;

  let file: string | null = null;
  let via = '';
  if (opts.file === undefined) {
    const fromEnv = env.HYPHAE_CONFIG?.trim();
    if (fromEnv) {
      file = fromEnv;
      via = 'env HYPHAE_CONFIG';
    }
  } else if (opts.file !== null) {
    file = opts.file;
    via = 'option file';
  }
  if (file !== null) {
    const data = readYaml(file, via);
    mergeLayer(merged, data, [], `file ${resolve(file)}`, sources, true);
  }

  for (const { path, value, variable } of readEnv(env, sections)) {
    setPath(merged, path, value);
    sources.set(path.join('.'), `env ${variable}`);
  }

  if (opts.overrides) mergeLayer(merged, opts.overrides as Tree, [], 'overrides', sources, false);

  const schema = configSchema.extend({ modules: modulesSchema(sections) });
  const result = schema.safeParse(merged);
  if (!result.success) throw new ConfigError(toIssues(result.error, merged, sources, sections));
  return result.data;
}
