/**
 * The deployment files: deploy/Dockerfile, .dockerignore, docker-compose.yml
 * (+ deploy/compose.tls.yml), deploy/config/hyphae.yaml, Prometheus and
 * Grafana provisioning, and the Grafana dashboard.
 *
 * What this CAN check here:
 * - `docker-compose config` (or `docker compose config`) accepts the compose
 *   files, when either is installed (Debian: docker-compose); skipped otherwise;
 * - the compose structure: services, environment, unique node ids, mounted
 *   paths exist, published ports, healthchecks and depends_on conditions,
 *   Redis AOF, NATS JetStream, the shared TLS volume, and that every compose
 *   environment is a valid Hyphae configuration (the real config loader);
 * - Prometheus scrapes every Hyphae service of the compose file on its http.port;
 * - the dashboard: valid JSON, every PromQL expression parses (Prometheus'
 *   own lezer grammar), and every metric it uses is exposed by a real server
 *   (`hyphae all` via startEmbedded(), GET /metrics; histograms as
 *   _bucket/_sum/_count, prom-client default metrics included);
 * - the Dockerfile statically (stages, base images, non-root USER, ENTRYPOINT,
 *   CMD, EXPOSE, HEALTHCHECK, VOLUME, COPY sources exist and are not
 *   .dockerignored, no devDependencies reach the final stage), and a replay of
 *   its steps without Docker: deploy/assemble.mjs, the deps stage's exact
 *   `npm ci` command (offline, from the npm cache), the final stage's COPY
 *   layout; then the replayed image's ENTRYPOINT+CMD (`hyphae all`) is started
 *   with only production dependencies and answers the image HEALTHCHECK and
 *   the compose /readyz healthcheck, and tls-init generates/reuses one
 *   certificate.
 *
 * What it CANNOT check (no Docker engine on the build machines): building the
 * image (base image pull, npm 10 of node:20 instead of the local npm, the
 * glibc prebuilt binaries of lmdb in bookworm), running containers, the
 * compose stack's networking, volume permissions for uid 10001, and Grafana
 * or Prometheus actually loading their files (promtool is used when present).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, posix } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import { REPO_ROOT, distinctPorts, embeddedSkipReason, scrapeMetrics, startEmbedded, type HyphaeServer } from '../harness/server.js';

// ---------------------------------------------------------------------------
// Small helpers

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const repoPath = (rel: string): string => join(REPO_ROOT, rel);
const readRepo = (rel: string): string => readFileSync(repoPath(rel), 'utf8');
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);
/** A compose command/entrypoint as a list (the string form split on spaces: enough for these files). */
const argv = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : []);

/** YAML with YAML 1.1 merge keys (`<<: *anchor`), as docker compose reads it. */
function loadYaml(text: string): Obj {
  const doc = parseYaml(text, { merge: true, maxAliasCount: -1 }) as unknown;
  assert.ok(isObj(doc), 'YAML document is not a mapping');
  return doc;
}

/** Environment of a compose service as a map (mapping or KEY=value list form). */
function envOf(svc: Obj): Record<string, string> {
  const env = svc.environment;
  const out: Record<string, string> = {};
  if (Array.isArray(env)) {
    for (const item of env.map(String)) {
      const i = item.indexOf('=');
      if (i > 0) out[item.slice(0, i)] = item.slice(i + 1);
    }
  } else if (isObj(env)) {
    for (const [k, v] of Object.entries(env)) out[k] = v === null || v === undefined ? '' : String(v);
  }
  return out;
}

interface Mount {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly: boolean;
}
/** Volumes of a compose service (short "src:dst[:mode]" or long syntax), normalized. */
function mountsOf(svc: Obj): Mount[] {
  return asArray(svc.volumes).map((v): Mount => {
    if (typeof v === 'string') {
      const parts = v.split(':');
      const [source = '', target = '', mode = ''] = parts.length === 1 ? ['', parts[0], ''] : parts;
      const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
      return { type: bind ? 'bind' : 'volume', source, target, readOnly: mode.split(',').includes('ro') };
    }
    assert.ok(isObj(v), `unreadable volume entry ${JSON.stringify(v)}`);
    return {
      type: v.type === 'bind' ? 'bind' : 'volume',
      source: String(v.source ?? ''),
      target: String(v.target ?? ''),
      readOnly: v.read_only === true,
    };
  });
}

interface PortMap {
  published: number;
  target: number;
}
/** Published ports of a compose service (short "host:container" or long syntax), normalized. */
function portsOf(svc: Obj): PortMap[] {
  return asArray(svc.ports).map((p): PortMap => {
    if (typeof p === 'string' || typeof p === 'number') {
      const parts = String(p).split('/')[0]!.split(':');
      const target = Number(parts[parts.length - 1]);
      const published = parts.length >= 2 ? Number(parts[parts.length - 2]) : NaN;
      return { published, target };
    }
    assert.ok(isObj(p), `unreadable port entry ${JSON.stringify(p)}`);
    return { published: Number(p.published), target: Number(p.target) };
  });
}

/** depends_on as service → condition ('service_started' for the list form). */
function dependsOf(svc: Obj): Record<string, string> {
  const d = svc.depends_on;
  const out: Record<string, string> = {};
  if (Array.isArray(d)) for (const name of d) out[String(name)] = 'service_started';
  else if (isObj(d)) for (const [name, v] of Object.entries(d)) out[name] = isObj(v) ? String(v.condition ?? 'service_started') : 'service_started';
  return out;
}

/** Repository-relative path of a bind-mount source (relative to the compose project directory = repo root). */
function bindSourceInRepo(source: string): string | null {
  if (isAbsolute(source)) {
    const root = REPO_ROOT.replace(/\/$/, '');
    return source === root ? '.' : source.startsWith(root + '/') ? source.slice(root.length + 1) : null;
  }
  return posix.normalize(source.replace(/^\.\//, '')) || '.';
}

const HYPHAE_DOCKERFILE = 'deploy/Dockerfile';
const HYPHAE_ROLES = new Set(['all', 'c2s', 'sm', 'roster', 'muc', 'proxy65']);
/** Services built from deploy/Dockerfile. */
function hyphaeServices(compose: Obj): Array<[string, Obj]> {
  const services = compose.services as Obj;
  return Object.entries(services).filter((e): e is [string, Obj] => {
    const build = isObj(e[1]) ? e[1].build : undefined;
    return isObj(build) && String(build.dockerfile ?? '').replace(/^\.\//, '') === HYPHAE_DOCKERFILE;
  });
}
/** Long-running Hyphae services (`hyphae <role>`), i.e. not one-shot helpers with their own entrypoint. */
function hyphaeServers(compose: Obj): Array<[string, Obj, string]> {
  return hyphaeServices(compose)
    .filter(([, svc]) => svc.entrypoint === undefined)
    .map(([name, svc]) => [name, svc, argv(svc.command)[0] ?? 'all'] as [string, Obj, string]);
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  return spawnSync(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeout ?? 60_000 });
}

/** `docker-compose` (v1, Debian package) or `docker compose` (v2 plugin), or null. */
function composeCommand(): string[] | null {
  for (const cmd of [['docker-compose'], ['docker', 'compose']]) {
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), 'version'], { encoding: 'utf8', timeout: 20_000 });
    if (r.status === 0) return cmd;
  }
  return null;
}

function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).status === 0;
}

/** The project's own config loader (packages/config), to validate configurations as the server would. */
interface ConfigModule {
  loadConfig(opts: { file?: string | null; env?: Record<string, string | undefined> }): {
    domains: string[];
    dataDir: string;
    http: { host: string; port: number | null; adminHost: string; adminPort: number | null; adminToken: string | null };
    c2s: { host: string; port: number; directTlsPort: number | null };
    registration: { open: boolean };
  };
}
async function configModule(): Promise<ConfigModule | null> {
  const path = repoPath('packages/config/dist/index.js');
  if (!existsSync(path)) return null;
  return (await import(pathToFileURL(path).href)) as ConfigModule;
}

// ---------------------------------------------------------------------------
// The files

const compose = loadYaml(readRepo('docker-compose.yml'));
const composeText = readRepo('docker-compose.yml');
const services = compose.services as Obj;
const svc = (name: string): Obj => {
  const s = services[name];
  assert.ok(isObj(s), `docker-compose.yml has no service '${name}'`);
  return s;
};
const hyphaeConfigYaml = loadYaml(readRepo('deploy/config/hyphae.yaml'));
const HTTP_PORT = Number((hyphaeConfigYaml.http as Obj | undefined)?.port ?? 5280);
const DATA_DIR = String(hyphaeConfigYaml.dataDir ?? './data');

// ---------------------------------------------------------------------------
// docker-compose config

test('docker-compose config accepts docker-compose.yml (and with deploy/compose.tls.yml)', async (t) => {
  const cmd = composeCommand();
  if (!cmd) {
    t.skip('neither docker-compose nor `docker compose` is installed (Debian: apt-get install docker-compose)');
    return;
  }
  for (const files of [['docker-compose.yml'], ['docker-compose.yml', 'deploy/compose.tls.yml']]) {
    const args: string[] = [...cmd.slice(1), ...files.flatMap((f) => ['-f', f]), 'config'];
    const r = run(cmd[0]!, args);
    assert.equal(r.status, 0, `${cmd.join(' ')} ${args.join(' ')} failed:\n${r.stderr}\n${r.stdout}`);
    const resolved = loadYaml(r.stdout);
    const rs = resolved.services as Obj;
    for (const name of Object.keys(services)) assert.ok(isObj(rs[name]), `resolved config lacks service ${name}`);
    // What the merge keys expand to, as compose itself resolves them.
    const nodeIds = new Set<string>();
    for (const [name, s, role] of hyphaeServers(resolved)) {
      const env = envOf(s);
      assert.ok(env.NATS_URL && env.REDIS_URL, `${name}: NATS_URL/REDIS_URL not set after resolution`);
      assert.ok(env.HYPHAE_NODE_ID && !nodeIds.has(env.HYPHAE_NODE_ID), `${name}: missing or duplicate HYPHAE_NODE_ID`);
      nodeIds.add(env.HYPHAE_NODE_ID);
      assert.ok(HYPHAE_ROLES.has(role), `${name}: command ${role}`);
      const deps = dependsOf(s);
      assert.equal(deps.nats, 'service_healthy', `${name} depends_on nats`);
      assert.equal(deps.redis, 'service_healthy', `${name} depends_on redis`);
      assert.ok(mountsOf(s).some((m) => m.type === 'bind' && m.target === env.HYPHAE_CONFIG), `${name}: config not mounted at HYPHAE_CONFIG`);
    }
    const c2s1 = rs['c2s-1'] as Obj;
    assert.deepEqual(portsOf(c2s1).map((p) => `${p.published}:${p.target}`).sort(), ['5222:5222', '5223:5223']);
    if (files.length === 2) {
      const env = envOf(c2s1);
      assert.ok(env.HYPHAE_TLS__CERT && env.HYPHAE_TLS__KEY, 'compose.tls.yml sets tls.cert/tls.key on c2s-1');
      assert.ok(mountsOf(c2s1).some((m) => m.target === dirname(env.HYPHAE_TLS__CERT!)), 'compose.tls.yml mounts the certificate directory');
      assert.ok(mountsOf(c2s1).some((m) => m.target === '/etc/hyphae/hyphae.yaml'), 'the override keeps the base volumes');
    }
  }
});

// ---------------------------------------------------------------------------
// docker-compose.yml structure

test('compose: the services, their images and commands', () => {
  for (const name of ['nats', 'redis', 'sm', 'roster', 'muc', 'c2s-1', 'c2s-2', 'prometheus', 'grafana', 'tls-init']) svc(name);
  const built = hyphaeServices(compose);
  const images = new Set(built.map(([, s]) => s.image));
  assert.equal(images.size, 1, `every Hyphae service uses one image name, got ${[...images].join(', ')}`);
  assert.ok(typeof [...images][0] === 'string', 'Hyphae services name their image');
  for (const [name, s] of built) {
    const build = s.build as Obj;
    assert.equal(String(build.context), '.', `${name}: build context is the repository root`);
  }
  const roles = hyphaeServers(compose).map(([, , role]) => role);
  for (const role of ['sm', 'roster', 'muc', 'proxy65']) assert.equal(roles.filter((r) => r === role).length, 1, `one ${role}`);
  assert.equal(roles.filter((r) => r === 'c2s').length, 2, 'two c2s nodes');
  for (const [name, , role] of hyphaeServers(compose)) {
    assert.ok(HYPHAE_ROLES.has(role), `${name}: unknown command ${role}`);
    if (role === 'c2s') assert.match(name, /^c2s-\d+$/);
  }
});

test('compose: environment, unique node ids, and each environment is a valid Hyphae configuration', async (t) => {
  const ids = new Map<string, string>();
  const cfg = await configModule();
  for (const [name, s] of hyphaeServers(compose)) {
    const env = envOf(s);
    assert.match(env.NATS_URL ?? '', /^nats:\/\/nats:4222$/, `${name}: NATS_URL`);
    assert.match(env.REDIS_URL ?? '', /^redis:\/\/redis:6379$/, `${name}: REDIS_URL`);
  }
  for (const [name, s] of hyphaeServices(compose)) {
    const env = envOf(s);
    const id = env.HYPHAE_NODE_ID;
    assert.ok(id, `${name}: HYPHAE_NODE_ID`);
    assert.ok(!ids.has(id), `${name}: HYPHAE_NODE_ID ${id} is also ${ids.get(id)}'s`);
    ids.set(id, name);
    if (cfg) {
      // The config file as mounted plus this service's environment, through the real loader:
      // unknown HYPHAE_*__* keys and bad values are errors there.
      const loaded = cfg.loadConfig({ file: repoPath('deploy/config/hyphae.yaml'), env: { ...env, HYPHAE_CONFIG: undefined } });
      assert.equal(loaded.http.port, HTTP_PORT);
    }
  }
  if (!cfg) t.diagnostic('packages/config is not built: the environments were not run through the config loader');
});

test('compose: the configuration file and every bind mount exist in the repository', () => {
  for (const [name, s] of Object.entries(services)) {
    assert.ok(isObj(s));
    for (const m of mountsOf(s)) {
      if (m.type !== 'bind') continue;
      const rel = bindSourceInRepo(m.source);
      assert.ok(rel !== null && !rel.startsWith('..'), `${name}: bind mount ${m.source} is outside the repository`);
      assert.ok(existsSync(repoPath(rel)), `${name}: bind mount source ${m.source} does not exist`);
      assert.ok(m.readOnly, `${name}: bind mount ${m.source} should be read-only`);
    }
  }
  for (const [name, s] of hyphaeServices(compose)) {
    const env = envOf(s);
    const target = env.HYPHAE_CONFIG ?? '/etc/hyphae/hyphae.yaml';
    const m = mountsOf(s).find((x) => x.target === target);
    assert.ok(m && bindSourceInRepo(m.source) === 'deploy/config/hyphae.yaml', `${name}: deploy/config/hyphae.yaml mounted at ${target}`);
  }
  const named = new Set(Object.keys(isObj(compose.volumes) ? compose.volumes : {}));
  for (const [name, s] of Object.entries(services)) {
    assert.ok(isObj(s));
    for (const m of mountsOf(s)) if (m.type === 'volume' && m.source) assert.ok(named.has(m.source), `${name}: volume ${m.source} is not declared`);
  }
});

test('compose: deploy/config/hyphae.yaml is the development setup, valid for the real loader', async (t) => {
  const cfg = await configModule();
  if (!cfg) {
    t.skip('packages/config is not built');
    return;
  }
  const c = cfg.loadConfig({ file: repoPath('deploy/config/hyphae.yaml'), env: {} });
  assert.deepEqual(c.domains, ['localhost']);
  assert.equal(c.c2s.host, '0.0.0.0');
  assert.equal(c.http.host, '0.0.0.0');
  // The admin API on loopback, apart from the metrics (without a token it could not listen elsewhere).
  assert.deepEqual([c.http.adminHost, c.http.adminPort, c.http.adminToken], ['127.0.0.1', 5281, null]);
  assert.equal(c.c2s.port, 5222);
  assert.equal(c.c2s.directTlsPort, 5223);
  assert.equal(c.registration.open, true);
  assert.equal(c.dataDir, '/var/lib/hyphae');
  assert.equal(c.dataDir, DATA_DIR);
});

test('compose: c2s ports, the shared TLS volume, tls-init, federation reserved', () => {
  const published = new Map<number, string>();
  for (const [name, s] of Object.entries(services)) {
    assert.ok(isObj(s));
    for (const p of portsOf(s)) {
      assert.ok(!published.has(p.published), `host port ${p.published} published by ${name} and ${published.get(p.published)}`);
      published.set(p.published, name);
    }
  }
  const ports = (name: string) => portsOf(svc(name)).map((p) => `${p.published}:${p.target}`).sort();
  assert.deepEqual(ports('c2s-1'), ['5222:5222', '5223:5223']);
  assert.deepEqual(ports('c2s-2'), ['5322:5222', '5323:5223']);
  assert.ok(ports('prometheus').includes('9090:9090'));
  assert.ok(ports('grafana').includes('3000:3000'));
  assert.match(composeText, /#.*5269/, 'federation port 5269 reserved in a comment');

  // All c2s nodes and tls-init share one volume at <dataDir>/tls, where the self-signed pair lives.
  const tlsDir = posix.join(DATA_DIR, 'tls');
  const tlsVolume = (name: string) => mountsOf(svc(name)).find((m) => m.target === tlsDir && m.type === 'volume')?.source;
  const shared = tlsVolume('tls-init');
  assert.ok(shared, `tls-init mounts a named volume at ${tlsDir}`);
  for (const [name, , role] of hyphaeServers(compose)) {
    if (role === 'c2s') assert.equal(tlsVolume(name), shared, `${name} shares the ${shared} volume at ${tlsDir}`);
  }
  const init = svc('tls-init');
  assert.deepEqual(argv(init.entrypoint), ['node', '/app/deploy/tls-init.mjs']);
  assert.ok(existsSync(repoPath('deploy/tls-init.mjs')));
  assert.equal(String(init.restart ?? 'no'), 'no', 'tls-init runs once');
  for (const [name, , role] of hyphaeServers(compose)) {
    if (role === 'c2s') assert.equal(dependsOf(svc(name))['tls-init'], 'service_completed_successfully', `${name} waits for tls-init`);
  }
});

test('compose: healthchecks and depends_on conditions', () => {
  const hasHealthcheck = (s: Obj) => isObj(s.healthcheck) && s.healthcheck.disable !== true && asArray(s.healthcheck.test).length > 0;
  for (const [name, s, role] of hyphaeServers(compose)) {
    assert.ok(hasHealthcheck(s), `${name}: healthcheck`);
    const testCmd = argv((s.healthcheck as Obj).test);
    assert.ok(testCmd.includes('/readyz'), `${name}: the healthcheck probes /readyz (${testCmd.join(' ')})`);
    assert.ok(testCmd.some((a) => a === '/app/deploy/healthcheck.mjs'), `${name}: healthcheck uses deploy/healthcheck.mjs`);
    assert.equal(String(s.restart), 'unless-stopped', `${name}: restart policy`);
    if (role === 'c2s') for (const dep of ['sm', 'roster', 'muc']) assert.equal(dependsOf(s)[dep], 'service_healthy', `${name} waits for ${dep}`);
  }
  for (const name of ['nats', 'redis', 'prometheus']) assert.ok(hasHealthcheck(svc(name)), `${name}: healthcheck`);
  for (const [name, s] of Object.entries(services)) {
    assert.ok(isObj(s));
    for (const [dep, cond] of Object.entries(dependsOf(s))) {
      assert.ok(isObj(services[dep]), `${name} depends on unknown service ${dep}`);
      assert.ok(['service_started', 'service_healthy', 'service_completed_successfully'].includes(cond), `${name} → ${dep}: ${cond}`);
      if (cond === 'service_healthy') assert.ok(hasHealthcheck(services[dep] as Obj), `${name} waits for ${dep} to be healthy, which has no healthcheck`);
    }
  }
});

test('compose: redis with appendonly, nats with JetStream on a volume', () => {
  const redis = svc('redis');
  assert.match(String(redis.image), /^redis:7/);
  const rcmd = argv(redis.command);
  const ao = rcmd.indexOf('--appendonly');
  assert.ok(ao >= 0 && rcmd[ao + 1] === 'yes', `redis --appendonly yes (${rcmd.join(' ')})`);
  assert.ok(mountsOf(redis).some((m) => m.type === 'volume' && m.target === '/data'), 'redis keeps /data on a volume');

  const nats = svc('nats');
  assert.match(String(nats.image), /^nats:2/);
  const ncmd = argv(nats.command);
  assert.ok(ncmd.includes('-js') || ncmd.includes('--jetstream'), `nats -js (${ncmd.join(' ')})`);
  const sd = Math.max(ncmd.indexOf('-sd'), ncmd.indexOf('--store_dir'));
  assert.ok(sd >= 0, 'nats JetStream storage directory (-sd)');
  assert.ok(mountsOf(nats).some((m) => m.type === 'volume' && m.target === ncmd[sd + 1]), `JetStream storage ${ncmd[sd + 1]} on a volume`);
});

// ---------------------------------------------------------------------------
// Prometheus and Grafana provisioning

test('prometheus.yml scrapes every Hyphae service of the compose file on its http port', (t) => {
  const prom = svc('prometheus');
  assert.match(String(prom.image), /^prom\/prometheus/);
  const mount = mountsOf(prom).find((m) => bindSourceInRepo(m.source) === 'deploy/prometheus/prometheus.yml');
  assert.ok(mount, 'deploy/prometheus/prometheus.yml is mounted into prometheus');
  const configFlag = argv(prom.command).find((a) => a.startsWith('--config.file='));
  assert.equal(configFlag ? configFlag.slice('--config.file='.length) : '/etc/prometheus/prometheus.yml', mount.target);

  const config = loadYaml(readRepo('deploy/prometheus/prometheus.yml'));
  const targets = new Map<string, string>(); // host:port → metrics path
  for (const job of asArray(config.scrape_configs)) {
    assert.ok(isObj(job));
    for (const sc of asArray(job.static_configs)) {
      assert.ok(isObj(sc));
      for (const target of asArray(sc.targets)) targets.set(String(target), String(job.metrics_path ?? '/metrics'));
    }
  }
  const expected = hyphaeServers(compose).map(([name]) => `${name}:${HTTP_PORT}`);
  for (const target of expected) {
    assert.ok(targets.has(target), `prometheus.yml does not scrape ${target}`);
    assert.equal(targets.get(target), '/metrics');
  }
  for (const target of targets.keys()) {
    const host = target.split(':')[0]!;
    assert.ok(host === 'localhost' || isObj(services[host]), `prometheus.yml scrapes ${target}, which is not a compose service`);
  }
  if (onPath('promtool')) {
    const r = run('promtool', ['check', 'config', repoPath('deploy/prometheus/prometheus.yml')]);
    assert.equal(r.status, 0, `promtool check config:\n${r.stdout}${r.stderr}`);
  } else {
    t.diagnostic('promtool not installed: prometheus.yml checked structurally only');
  }
});

test('grafana: provisioning (datasource, dashboard provider) matches the compose mounts', () => {
  const grafana = svc('grafana');
  assert.match(String(grafana.image), /^grafana\/grafana/);
  const mounts = mountsOf(grafana);
  const prov = mounts.find((m) => bindSourceInRepo(m.source) === 'deploy/grafana/provisioning');
  assert.equal(prov?.target, '/etc/grafana/provisioning', 'provisioning mounted where Grafana reads it');
  const dash = mounts.find((m) => bindSourceInRepo(m.source) === 'deploy/grafana/dashboards');
  assert.ok(dash, 'deploy/grafana/dashboards is mounted');

  const datasources = loadYaml(readRepo('deploy/grafana/provisioning/datasources/prometheus.yml'));
  const ds = asArray(datasources.datasources).find((d) => isObj(d) && d.type === 'prometheus') as Obj | undefined;
  assert.ok(ds, 'a prometheus datasource is provisioned');
  const url = new URL(String(ds.url));
  assert.ok(isObj(services[url.hostname]), `datasource url host ${url.hostname} is a compose service`);
  assert.ok(portsOf(svc(url.hostname)).some((p) => p.target === Number(url.port)), `datasource port ${url.port}`);

  const providers = loadYaml(readRepo('deploy/grafana/provisioning/dashboards/hyphae.yml'));
  const provider = asArray(providers.providers)[0];
  assert.ok(isObj(provider) && isObj(provider.options));
  assert.equal(provider.options.path, dash.target, 'the dashboard provider reads the mounted dashboards');
  const home = envOf(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  if (home) {
    assert.ok(home.startsWith(dash.target + '/'), 'home dashboard is in the mounted directory');
    assert.ok(existsSync(repoPath(posix.join('deploy/grafana/dashboards', home.slice(dash.target.length + 1)))), `home dashboard ${home} exists`);
  }
});

// ---------------------------------------------------------------------------
// The dashboard

interface Target {
  panel: string;
  expr: string;
}
const dashboardText = readRepo('deploy/grafana/dashboards/hyphae.json');

function dashboardJson(): Obj {
  const d = JSON.parse(dashboardText) as unknown;
  assert.ok(isObj(d));
  return d;
}
function allPanels(d: Obj): Obj[] {
  const out: Obj[] = [];
  const walk = (list: unknown) => {
    for (const p of asArray(list)) {
      if (!isObj(p)) continue;
      out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}
function panelTargets(d: Obj): Target[] {
  return allPanels(d).flatMap((p) =>
    asArray(p.targets).filter(isObj).map((t) => ({ panel: String(p.title), expr: String(t.expr ?? '') })),
  );
}

/** Grafana's global variables in a range position, replaced so Prometheus' grammar accepts the expression. */
function grafanaToPromql(expr: string): string {
  return expr.replace(/\$\{?__(rate_interval|interval|range)\}?/g, '5m');
}

interface ParsedPromql {
  errors: string[];
  metrics: string[];
}
function parsePromql(expr: string): ParsedPromql {
  const text = grafanaToPromql(expr);
  const tree = promqlParser.parse(text);
  const errors: string[] = [];
  const metrics: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(`syntax error at ${node.from}: …${text.slice(Math.max(0, node.from - 20), node.to + 20)}…`);
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') metrics.push(text.slice(node.from, node.to));
    },
  });
  return { errors, metrics };
}

/** Every series name a Prometheus text exposition can produce, from its # TYPE lines and samples. */
function exposedSeries(text: string): { series: Set<string>; families: Map<string, string>; labels: Map<string, Set<string>> } {
  const series = new Set<string>();
  const families = new Map<string, string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      families.set(name, kind);
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) series.add(name + s);
      else if (kind === 'summary') for (const s of ['', '_sum', '_count']) series.add(name + s);
      else series.add(name);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (sample) {
      const name = sample[1]!;
      series.add(name);
      const set = labels.get(name) ?? new Set<string>();
      for (const m of (sample[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) set.add(m[1]!);
      labels.set(name, set);
    }
  }
  return { series, families, labels };
}

test('promql helpers: metric names are found, syntax errors are caught', () => {
  assert.deepEqual(
    parsePromql('histogram_quantile(0.99, sum by (le, path) (rate(a_bucket{service=~"$service"}[$__rate_interval]))) / on(node) group_left b_total').metrics,
    ['a_bucket', 'b_total'],
  );
  assert.ok(parsePromql('sum(rate(x[5m])').errors.length > 0);
  assert.ok(parsePromql('rate(x{a="b"}[$bogus])').errors.length > 0);
  const { series } = exposedSeries('# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c_total counter\n# TYPE g gauge\ng{a="x"} 1\n');
  assert.deepEqual([...series].sort(), ['c_total', 'g', 'h_bucket', 'h_count', 'h_sum']);
});

test('dashboard: JSON, uid, variables, datasources, layout, every expression parses', () => {
  const d = dashboardJson();
  assert.equal(d.uid, 'hyphae');
  assert.equal(typeof d.title, 'string');
  assert.ok(Number(d.schemaVersion) >= 36 && Number(d.schemaVersion) <= 41, `schemaVersion ${String(d.schemaVersion)}`);
  const vars = asArray((d.templating as Obj | undefined)?.list).filter(isObj);
  const byName = new Map(vars.map((v) => [String(v.name), v]));
  assert.equal(byName.get('datasource')?.type, 'datasource');
  for (const name of ['service', 'node']) {
    const v = byName.get(name);
    assert.equal(v?.type, 'query', `variable ${name}`);
    assert.equal(v?.includeAll, true, `variable ${name} offers All`);
  }

  const provisioned = loadYaml(readRepo('deploy/grafana/provisioning/datasources/prometheus.yml'));
  const uids = new Set(['${datasource}', '$datasource', ...asArray(provisioned.datasources).filter(isObj).map((x) => String(x.uid))]);
  const ids = new Set<number>();
  const rects: Array<{ title: string; x: number; y: number; w: number; h: number }> = [];
  for (const p of allPanels(d)) {
    const id = Number(p.id);
    assert.ok(!ids.has(id), `duplicate panel id ${id}`);
    ids.add(id);
    const g = p.gridPos as Obj;
    const r = { title: String(p.title), x: Number(g.x), y: Number(g.y), w: Number(g.w), h: Number(g.h) };
    assert.ok(r.x >= 0 && r.w > 0 && r.x + r.w <= 24 && r.h > 0, `panel ${r.title}: gridPos ${JSON.stringify(g)}`);
    for (const o of rects) {
      const overlap = r.x < o.x + o.w && o.x < r.x + r.w && r.y < o.y + o.h && o.y < r.y + r.h;
      assert.ok(!overlap, `panels '${r.title}' and '${o.title}' overlap`);
    }
    rects.push(r);
    if (p.type === 'row') continue;
    for (const ds of [p.datasource, ...asArray(p.targets).filter(isObj).map((t) => t.datasource)]) {
      if (ds === undefined) continue;
      assert.ok(isObj(ds) && uids.has(String(ds.uid)), `panel ${r.title}: datasource ${JSON.stringify(ds)}`);
    }
    assert.ok(asArray(p.targets).length > 0, `panel ${r.title} has no query`);
  }

  const targets = panelTargets(d);
  assert.ok(targets.length >= 20, `only ${targets.length} queries`);
  for (const t of targets) {
    const { errors, metrics } = parsePromql(t.expr);
    assert.deepEqual(errors, [], `panel '${t.panel}': ${t.expr}`);
    assert.ok(metrics.length > 0, `panel '${t.panel}' uses no metric: ${t.expr}`);
    for (const m of metrics) if (m.startsWith('hyphae_')) assert.match(t.expr, /\$service|\$node|hyphae_(nodes_alive|registry_sessions)/, `panel '${t.panel}' ignores the service/node variables`);
  }
});

let server: HyphaeServer | null = null;
after(async () => {
  await server?.dispose();
});

test('dashboard: every metric it uses is exposed by a real server (GET /metrics)', async (t) => {
  const skip = embeddedSkipReason();
  if (skip) {
    t.skip(skip);
    return;
  }
  server = await startEmbedded();
  const text = await scrapeMetrics(server.httpPort);
  const { series, families, labels } = exposedSeries(text);
  assert.ok(families.size > 20, 'the scrape has metric families');

  const d = dashboardJson();
  const used = new Map<string, string>(); // metric → first panel
  for (const target of panelTargets(d)) for (const m of parsePromql(target.expr).metrics) if (!used.has(m)) used.set(m, target.panel);
  // Template variables: label_values(<selector>, <label>).
  for (const v of asArray((d.templating as Obj).list).filter(isObj)) {
    if (v.type !== 'query') continue;
    const q = isObj(v.query) ? String(v.query.query) : String(v.query);
    const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q.trim());
    assert.ok(m, `variable ${String(v.name)}: unexpected query ${q}`);
    const parsed = parsePromql(m[1]!);
    assert.deepEqual(parsed.errors, [], `variable ${String(v.name)}: ${q}`);
    for (const name of parsed.metrics) {
      used.set(name, `variable ${String(v.name)}`);
      assert.ok(labels.get(name)?.has(m[2]!), `variable ${String(v.name)}: ${name} has no label ${m[2]}`);
    }
  }
  const missing = [...used].filter(([m]) => !series.has(m)).map(([m, p]) => `${m} (panel '${p}')`);
  assert.deepEqual(missing, [], 'metrics used by the dashboard that the server does not expose');

  // The panels the brief asks for, by the series they need.
  const required = [
    'hyphae_c2s_connections', 'hyphae_logins_total', 'hyphae_stanzas_total',
    'hyphae_routing_latency_seconds_bucket', 'hyphae_bus_latency_seconds_bucket', 'hyphae_store_latency_seconds_bucket',
    'hyphae_shards_owned', 'hyphae_muc_rooms', 'hyphae_muc_occupants', 'hyphae_sessions', 'hyphae_registry_sessions',
    'hyphae_nodes_alive', 'hyphae_stream_errors_total', 'hyphae_stanza_errors_total', 'hyphae_bus_connected',
    'hyphae_store_connected', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds',
  ];
  for (const m of required) assert.ok(used.has(m), `the dashboard has no panel on ${m}`);
  // Every Hyphae series carries service and node (the variables filter on them).
  for (const [name, set] of labels) if (name.startsWith('hyphae_')) for (const l of ['service', 'node']) assert.ok(set.has(l), `${name} lacks label ${l}`);

  const unused = [...families.keys()].filter((f) => f.startsWith('hyphae_') && ![...used.keys()].some((u) => u === f || u.startsWith(f + '_')));
  if (unused.length > 0) t.diagnostic(`Hyphae metrics without a dashboard panel: ${unused.join(', ')}`);
});

// ---------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}
interface Dockerfile {
  globalArgs: Map<string, string>;
  stages: Stage[];
}

function parseDockerfile(text: string): Dockerfile {
  const logical: Array<{ text: string; line: number }> = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (buf === '' && /^\s*#/.test(line)) return; // comment (or parser directive)
    if (buf !== '' && /^\s*#/.test(line)) return; // comments inside continuations are dropped too
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      buf += line.replace(/\\\s*$/, ' ');
      return;
    }
    buf += line;
    if (buf.trim() !== '') logical.push({ text: buf.trim(), line: start });
    buf = '';
  });
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text: l, line } of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const keyword = m[1]!.toUpperCase();
    const args = m[2] ?? '';
    if (keyword === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(f, `line ${line}: FROM ${args}`);
      const image = f[1]!.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, n: string) => globalArgs.get(n) ?? '');
      stages.push({ name: f[2] ?? String(stages.length), image, instructions: [] });
    } else if (stages.length === 0) {
      assert.equal(keyword, 'ARG', `line ${line}: only ARG may precede the first FROM`);
      const a = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(args)!;
      globalArgs.set(a[1]!, (a[2] ?? '').replace(/^"(.*)"$/, '$1'));
    } else {
      stages[stages.length - 1]!.instructions.push({ keyword, args, line });
    }
  }
  return { globalArgs, stages };
}

/** Exec form (JSON array) or null. */
function execForm(args: string): string[] | null {
  if (!args.trim().startsWith('[')) return null;
  const v = JSON.parse(args) as unknown;
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `not an exec form: ${args}`);
  return v as string[];
}

interface Copy {
  from: string | null;
  sources: string[];
  dest: string;
  line: number;
}
function copyOf(ins: Instruction): Copy {
  let rest = ins.args;
  let from: string | null = null;
  for (;;) {
    const flag = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest);
    if (!flag) break;
    if (flag[1] === 'from') from = flag[2] ?? null;
    rest = rest.slice(flag[0].length);
  }
  const parts = execForm(rest) ?? rest.split(/\s+/).filter(Boolean);
  assert.ok(parts.length >= 2, `line ${ins.line}: COPY needs a source and a destination`);
  return { from, sources: parts.slice(0, -1), dest: parts[parts.length - 1]!, line: ins.line };
}

/** .dockerignore semantics (moby/patternmatcher): last matching pattern wins, `!` re-includes, a match on a directory covers its content. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+/, '').replace(/\/+$/, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === '*' && pattern[i + 1] === '*') {
          i++;
          if (pattern[i + 1] === '/') {
            i++;
            re += '(?:.*/)?';
          } else re += '.*';
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const p = posix.normalize(path).replace(/^\.\//, '').replace(/\/+$/, '');
    if (p === '' || p === '.') return false;
    const segments = p.split('/');
    let excluded = false;
    for (const rule of rules) {
      let hit = false;
      for (let n = 1; n <= segments.length && !hit; n++) hit = rule.re.test(segments.slice(0, n).join('/'));
      if (hit) excluded = !rule.negate;
    }
    return excluded;
  };
}

const dockerfileText = readRepo('deploy/Dockerfile');
const dockerfile = parseDockerfile(dockerfileText);
const finalStage = dockerfile.stages[dockerfile.stages.length - 1]!;
const ignored = dockerignore(readRepo('.dockerignore'));
const last = (stage: Stage, keyword: string): Instruction | undefined => stage.instructions.filter((i) => i.keyword === keyword).pop();
const stageByName = (name: string): Stage => {
  const s = dockerfile.stages.find((x) => x.name === name);
  assert.ok(s, `no stage ${name}`);
  return s;
};
/** The npm ci / npm install commands of a stage's RUN instructions. */
const npmInstalls = (stage: Stage): string[] =>
  stage.instructions
    .filter((i) => i.keyword === 'RUN')
    .flatMap((i) => i.args.split(/&&|;|\|\|/).map((s) => s.trim()))
    .filter((c) => /^npm\s+(ci|install|i|clean-install)\b/.test(c));

test('.dockerignore: junk out, what the build needs in', () => {
  for (const p of ['node_modules', 'packages/xml/node_modules', 'packages/xml/dist', 'services/hyphae/dist/main.js', 'data', '.git', 'test/dist', 'test/e2e', 'test/bench/results', 'packages/xml/tsconfig.tsbuildinfo']) {
    assert.ok(ignored(p), `.dockerignore should exclude ${p}`);
  }
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.base.json', 'test/package.json', 'packages/xml/src/index.ts', 'packages/xml/tsconfig.json', 'services/hyphae/src/main.ts', 'services/hyphae/package.json', 'deploy/assemble.mjs']) {
    assert.ok(!ignored(p), `.dockerignore must not exclude ${p}`);
  }
});

test('Dockerfile: stages and base images', () => {
  const names = dockerfile.stages.map((s) => s.name);
  assert.ok(dockerfile.stages.length >= 2, 'multi-stage');
  assert.equal(new Set(names).size, names.length, 'stage names are unique');
  for (const s of dockerfile.stages) {
    assert.ok(s.image === 'node:20-bookworm-slim' || names.includes(s.image), `stage ${s.name}: FROM ${s.image}`);
  }
  assert.equal(finalStage.image, 'node:20-bookworm-slim', 'the final stage starts from the slim Node image');
  // The build stage compiles: npm ci (with devDependencies) then tsc.
  const build = dockerfile.stages.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && /\btsc -b\b/.test(i.args)));
  assert.ok(build, 'a stage runs tsc -b');
  assert.ok(npmInstalls(build).some((c) => /^npm ci\b/.test(c) && !/--omit=dev/.test(c)), 'the build stage installs every dependency (npm ci)');
  assert.notEqual(build, finalStage, 'compilation is not in the final stage');
});

test('Dockerfile: final stage (non-root user, entrypoint, command, ports, healthcheck, volume)', () => {
  const user = last(finalStage, 'USER');
  assert.ok(user, 'the final stage sets USER');
  const [name] = user.args.trim().split(':');
  assert.ok(name && name !== 'root' && name !== '0', `USER ${user.args} is root`);
  // A numeric uid lets Kubernetes verify runAsNonRoot; the user must exist with that uid.
  if (/^\d+$/.test(name!)) assert.match(dockerfileText, new RegExp(`useradd[^\\n]*--uid ${name}\\b`), `uid ${name} is created`);
  assert.deepEqual(execForm(last(finalStage, 'ENTRYPOINT')?.args ?? ''), ['node', 'services/hyphae/dist/main.js']);
  assert.deepEqual(execForm(last(finalStage, 'CMD')?.args ?? ''), ['all']);
  assert.equal(last(finalStage, 'WORKDIR')?.args, '/app');
  assert.ok(existsSync(repoPath('services/hyphae/src/main.ts')), 'the entrypoint is compiled from services/hyphae/src/main.ts');
  const exposed = finalStage.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
  for (const p of ['5222', '5223', '5280']) assert.ok(exposed.includes(p), `EXPOSE ${p}`);
  const hc = last(finalStage, 'HEALTHCHECK');
  assert.ok(hc && /CMD\s+\[.*"\/healthz"/.test(hc.args), `HEALTHCHECK on /healthz: ${hc?.args}`);
  const volume = last(finalStage, 'VOLUME');
  assert.ok(volume && (execForm(volume.args) ?? volume.args.split(/\s+/)).includes('/var/lib/hyphae'), 'VOLUME /var/lib/hyphae');
  assert.match(dockerfileText, /mkdir -p \/var\/lib\/hyphae\/tls/, 'the data directory (and tls/, the shared volume mount point) exist in the image');
  const env = finalStage.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
  assert.match(env, /HYPHAE_CONFIG=\/etc\/hyphae\/hyphae\.yaml/);
  assert.match(env, /NODE_ENV=production/);
});

test('Dockerfile: every COPY source exists and is in the build context', () => {
  const seen: string[] = [];
  for (const stage of dockerfile.stages) {
    for (const ins of stage.instructions) {
      if (ins.keyword === 'ADD') assert.fail(`line ${ins.line}: use COPY, not ADD`);
      if (ins.keyword !== 'COPY') continue;
      const c = copyOf(ins);
      if (c.from !== null) {
        assert.ok(seen.includes(c.from), `line ${c.line}: COPY --from=${c.from} names no earlier stage`);
        continue;
      }
      for (const src of c.sources) {
        assert.ok(!/[*?[]/.test(src), `line ${c.line}: no globs in COPY sources (${src})`);
        assert.ok(existsSync(repoPath(src)), `line ${c.line}: COPY source ${src} does not exist`);
        assert.ok(!ignored(src), `line ${c.line}: COPY source ${src} is excluded by .dockerignore`);
      }
    }
    seen.push(stage.name);
  }
  // What RUN steps execute from the context exists too.
  for (const m of dockerfileText.matchAll(/node (deploy\/[\w.-]+\.mjs)/g)) assert.ok(existsSync(repoPath(m[1]!)), `${m[1]} exists`);
});

test('Dockerfile: no devDependencies, TypeScript sources or test workspace in the final stage', () => {
  for (const cmd of npmInstalls(finalStage)) assert.match(cmd, /--omit=dev|--production/, `final stage: ${cmd}`);
  const copies = finalStage.instructions.filter((i) => i.keyword === 'COPY').map(copyOf);
  const modules = copies.filter((c) => c.sources.some((s) => /node_modules/.test(s)));
  assert.ok(modules.length > 0, 'node_modules come from another stage');
  for (const c of modules) {
    assert.ok(c.from, `line ${c.line}: node_modules copied from the build context`);
    const installs = npmInstalls(stageByName(c.from));
    assert.ok(installs.length > 0, `stage ${c.from} installs no dependencies`);
    for (const cmd of installs) assert.match(cmd, /--omit=dev/, `stage ${c.from} (copied into the final stage): ${cmd}`);
    assert.ok(installs.some((cmd) => /--workspace[= ]services\/hyphae/.test(cmd)), `stage ${c.from}: only the server's workspaces (not test/)`);
  }
  for (const c of copies) {
    if (c.from === null) {
      for (const s of c.sources) assert.ok(!/^(test|packages|services)(\/|$)|\.ts$|^\.$/.test(s), `line ${c.line}: the final stage copies ${s} from the context`);
      continue;
    }
    const from = stageByName(c.from);
    const compiles = from.instructions.some((i) => i.keyword === 'RUN' && /\btsc\b/.test(i.args));
    if (compiles) {
      // From the build stage only the assembled runtime tree (deploy/assemble.mjs runtime <dir>).
      const out = /assemble\.mjs runtime (\S+)/.exec(from.instructions.map((i) => i.args).join('\n'))?.[1];
      assert.ok(out, `stage ${c.from} assembles no runtime tree`);
      for (const s of c.sources) assert.equal(s.replace(/\/$/, ''), out.replace(/\/$/, ''), `line ${c.line}: copies ${s} from the build stage, not the runtime tree ${out}`);
    }
  }
});

// ---------------------------------------------------------------------------
// Replaying the image without Docker

function waitExit(child: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

let replayDir: string | null = null;
let replayChild: ChildProcess | null = null;
before(() => {
  process.on('exit', () => replayChild?.kill('SIGKILL'));
});
after(async () => {
  if (replayChild) {
    replayChild.kill('SIGKILL');
    await waitExit(replayChild, 5_000);
  }
  if (replayDir && !process.env.HYPHAE_E2E_KEEP) rmSync(replayDir, { recursive: true, force: true });
});

test('image replay: assemble + production npm ci + final-stage layout start `hyphae all`, pass the healthchecks; tls-init', { timeout: 240_000 }, async (t) => {
  if (!existsSync(repoPath('services/hyphae/dist/main.js'))) {
    t.skip('services/hyphae is not built');
    return;
  }
  const root = (replayDir = mkdtempSync(join(tmpdir(), 'hyphae-image-')));
  const stageDirs = new Map<string, Map<string, string>>(); // stage → (absolute path in the stage → local dir)

  // manifests stage: `node deploy/assemble.mjs manifests /manifests` on the context.
  const manifestsRun = /node deploy\/assemble\.mjs manifests (\S+)/.exec(dockerfileText);
  assert.ok(manifestsRun, 'the Dockerfile assembles the manifests');
  const manifests = join(root, 'manifests');
  let r = run(process.execPath, ['deploy/assemble.mjs', 'manifests', manifests]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(manifests, 'test/package.json')), 'the manifests include the test workspace (npm ci checks the lockfile against it)');
  assert.ok(!existsSync(join(manifests, 'packages/xml/src')), 'the manifests are manifests only');

  // build stage: the runtime tree (from the local build instead of `tsc -b` in the image).
  const runtimeRun = /node deploy\/assemble\.mjs runtime (\S+) (\S+)/.exec(dockerfileText);
  assert.ok(runtimeRun, 'the Dockerfile assembles the runtime tree');
  const out = join(root, 'out');
  r = run(process.execPath, ['deploy/assemble.mjs', 'runtime', out, runtimeRun[2]!]);
  assert.equal(r.status, 0, `assemble runtime: ${r.stderr}`);
  assert.ok(existsSync(join(out, 'services/hyphae/dist/main.js')));
  assert.ok(!existsSync(join(out, 'test')), 'no test workspace in the runtime tree');
  const leftovers = spawnSync('find', [out, '(', '-name', '*.ts', '-o', '-name', '*.map', '-o', '-name', '*.test.js', '-o', '-name', 'src', ')', '-print'], { encoding: 'utf8' }).stdout.trim();
  assert.equal(leftovers, '', 'no TypeScript, maps, tests or sources in the runtime tree');
  stageDirs.set(stageName(/assemble\.mjs runtime/), new Map([[runtimeRun[1]!, out]]));

  // deps stage: its exact npm command, offline (from the npm cache `npm ci` filled).
  const depsStage = stageName(/npm ci[^&]*--omit=dev/);
  const depsWorkdir = last(stageByName(depsStage), 'WORKDIR')?.args ?? '/';
  const deps = join(root, 'deps');
  cpSync(manifests, deps, { recursive: true });
  const [npmCmd] = npmInstalls(stageByName(depsStage));
  assert.ok(npmCmd);
  const npmArgs = npmCmd.split(/\s+/).slice(1);
  r = run('npm', [...npmArgs, '--offline', '--loglevel=error'], { cwd: deps, timeout: 180_000 });
  if (r.status !== 0 && /ENOTCACHED|offline/i.test(r.stderr)) {
    t.skip(`the npm cache lacks packages for an offline \`${npmCmd}\` (run npm ci at the root first): ${r.stderr.split('\n')[0]}`);
    return;
  }
  assert.equal(r.status, 0, `${npmCmd} --offline:\n${r.stderr}`);
  for (const dev of ['typescript', '@types/node', 'fast-check', '@xmpp/client', 'hdr-histogram-js', '@prometheus-io/lezer-promql']) {
    assert.ok(!existsSync(join(deps, 'node_modules', dev)), `the production dependencies include ${dev}`);
  }
  for (const dep of ['lmdb', 'ioredis', '@nats-io/transport-node', 'prom-client', 'pino', 'selfsigned', 'zod', 'yaml']) {
    assert.ok(existsSync(join(deps, 'node_modules', dep, 'package.json')), `the production dependencies lack ${dep}`);
  }
  stageDirs.set(depsStage, new Map([[depsWorkdir, deps]]));

  // final stage: replay its COPY instructions into <root>/fs.
  const fs = join(root, 'fs');
  const workdir = last(finalStage, 'WORKDIR')!.args;
  const local = (p: string) => join(fs, isAbsolute(p) ? p : posix.join(workdir, p));
  for (const ins of finalStage.instructions.filter((i) => i.keyword === 'COPY')) {
    const c = copyOf(ins);
    for (const src of c.sources) {
      let from: string;
      if (c.from === null) from = repoPath(src);
      else {
        const dirs = stageDirs.get(c.from);
        const hit = dirs && [...dirs].find(([abs]) => src === abs || src.startsWith(abs.replace(/\/$/, '') + '/'));
        assert.ok(hit, `line ${c.line}: the replay does not know ${src} of stage ${c.from} (extend this test)`);
        from = join(hit[1], src.slice(hit[0].replace(/\/$/, '').length));
      }
      const destDir = c.dest.endsWith('/') || c.sources.length > 1 || (statSync(from).isDirectory() && src.endsWith('/'));
      const to = destDir && !statSync(from).isDirectory() ? join(local(c.dest), posix.basename(src)) : local(c.dest);
      mkdirSync(dirname(to), { recursive: true });
      if (statSync(from).isDirectory() && c.from === depsStage && src.endsWith('node_modules')) renameSync(from, to);
      else cpSync(from, to, { recursive: true, verbatimSymlinks: true });
    }
  }
  const app = local('.');
  assert.ok(!existsSync(join(app, 'test')) && !existsSync(join(app, 'node_modules/typescript')), 'no test workspace, no devDependencies in /app');
  assert.ok(!existsSync(join(app, 'packages/xml/src')), 'no TypeScript sources in /app');

  // The image's environment, with paths into the replayed filesystem.
  const imageEnv: Record<string, string> = {};
  for (const ins of finalStage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g)) imageEnv[m[1]!] = m[2]!.startsWith('/') ? join(fs, m[2]!) : m[2]!;
  }
  assert.ok(imageEnv.HYPHAE_CONFIG && existsSync(imageEnv.HYPHAE_CONFIG), 'the image has its configuration file');
  // Six different ports: two freePort() calls in a row may return the same one.
  const [port, directTlsPort, httpPort, s2sPort, s2sDirectPort, adminPort] = await distinctPorts(6);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: root,
    ...imageEnv,
    // Host-only changes: free loopback ports, a writable data dir instead of /var/lib/hyphae.
    HYPHAE_DATA_DIR: join(root, 'data'),
    HYPHAE_HTTP__HOST: '0.0.0.0',
    HYPHAE_HTTP__PORT: String(httpPort),
    HYPHAE_HTTP__ADMIN_PORT: String(adminPort),
    HYPHAE_C2S__HOST: '127.0.0.1',
    HYPHAE_C2S__PORT: String(port),
    HYPHAE_C2S__DIRECT_TLS_PORT: String(directTlsPort),
    HYPHAE_S2S__HOST: '127.0.0.1',
    HYPHAE_S2S__PORT: String(s2sPort),
    HYPHAE_S2S__DIRECT_TLS_PORT: String(s2sDirectPort),
    HYPHAE_NODE_ID: 'image-replay',
    HYPHAE_LOG__LEVEL: 'warn',
  };
  const inImage = (args: string[]) => args.map((a) => (a.startsWith('/app/') ? join(fs, a) : a));
  const entry = execForm(last(finalStage, 'ENTRYPOINT')!.args)!;
  const cmd = execForm(last(finalStage, 'CMD')!.args)!;
  const healthcheck = inImage(execForm(/CMD\s+(\[.*\])/.exec(last(finalStage, 'HEALTHCHECK')!.args)![1]!)!);
  const readyCheck = inImage(argv((svc('c2s-1').healthcheck as Obj).test).slice(1));
  const probe = (args: string[]) => run(args[0] === 'node' ? process.execPath : args[0]!, args.slice(1), { cwd: app, env, timeout: 20_000 });

  // Module resolution must not reach the repository's node_modules.
  assert.ok(!join(app).startsWith(REPO_ROOT), 'the replay runs outside the repository');
  const logs: string[] = [];
  const child = (replayChild = spawn(process.execPath, [...entry.slice(1), ...cmd], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stdout?.on('data', (c: Buffer) => logs.push(c.toString()));
  child.stderr?.on('data', (c: Buffer) => logs.push(c.toString()));
  const deadline = Date.now() + 60_000;
  let health = probe(healthcheck);
  while (health.status !== 0 && Date.now() < deadline && child.exitCode === null) {
    await new Promise((res) => setTimeout(res, 300));
    health = probe(healthcheck);
  }
  assert.equal(health.status, 0, `image HEALTHCHECK (${healthcheck.join(' ')}) failed: ${health.stderr}\nserver log:\n${logs.join('')}`);
  let ready = probe(readyCheck);
  for (let i = 0; i < 20 && ready.status !== 0; i++) {
    await new Promise((res) => setTimeout(res, 250));
    ready = probe(readyCheck);
  }
  assert.equal(ready.status, 0, `compose healthcheck (${readyCheck.join(' ')}) failed: ${ready.stderr}\n${logs.join('')}`);
  assert.ok(existsSync(join(root, 'data', 'tls', 'selfsigned.crt')), 'hyphae all generated its certificate into <dataDir>/tls');
  const version = run(process.execPath, [...entry.slice(1), 'version'], { cwd: app, env });
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), (JSON.parse(readRepo('services/hyphae/package.json')) as { version: string }).version);

  child.kill('SIGTERM');
  await waitExit(child, 20_000);
  assert.equal(child.exitCode, 0, `SIGTERM: clean exit (log:\n${logs.join('')})`);
  replayChild = null;
  assert.notEqual(probe(healthcheck).status, 0, 'the healthcheck fails when nothing answers');

  // tls-init (compose): generates the shared pair once, later runs keep it.
  const tlsInit = inImage(argv(svc('tls-init').entrypoint));
  const tlsEnv = { ...env, HYPHAE_DATA_DIR: join(root, 'shared') };
  const init = () => run(process.execPath, tlsInit.slice(1), { cwd: app, env: tlsEnv });
  r = init();
  assert.equal(r.status, 0, `tls-init: ${r.stderr}${r.stdout}`);
  const crt = join(root, 'shared', 'tls', 'selfsigned.crt');
  const first = readFileSync(crt, 'utf8');
  assert.match(first, /BEGIN CERTIFICATE/);
  r = init();
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(crt, 'utf8'), first, 'tls-init reuses the pair');
  // With tls.cert/tls.key set to missing files it fails (before any c2s node would start).
  r = run(process.execPath, tlsInit.slice(1), { cwd: app, env: { ...tlsEnv, HYPHAE_TLS__CERT: join(root, 'none.pem'), HYPHAE_TLS__KEY: join(root, 'none.key') } });
  assert.notEqual(r.status, 0, 'tls-init fails on unreadable certificates');
});

/** The name of the (single) stage whose RUN instructions match re. */
function stageName(re: RegExp): string {
  const stages = dockerfile.stages.filter((s) => s.instructions.some((i) => i.keyword === 'RUN' && re.test(i.args)));
  assert.equal(stages.length, 1, `one stage runs ${re}`);
  return stages[0]!.name;
}
