/**
 * Runs a real Prosody (Debian's `prosody` 0.12) for federation tests: our
 * server and Prosody talk server-to-server on loopback.
 *
 * Each instance lives in a fresh temporary directory: config, data, pidfile,
 * certificates, a debug log, and a plugins directory holding one test-only
 * module (`mod_hyphae_test`, written from `PLUGIN_LUA` below) that
 *
 * - routes outgoing s2s for the domains in `staticRoutes` to a fixed
 *   host:port, with no DNS: Prosody 0.12's mod_s2s builds its resolver with
 *   `require"net.resolvers.service".new(to_host, "xmpp-server", ...)` (and
 *   "xmpps-server" for XEP-0368 direct TLS) right after firing
 *   `s2sout-created`, which has no way to replace it (0.12 has no
 *   `s2sout-pre-connect` event). The module wraps that `new` function: a
 *   routed domain gets a `net.resolvers.basic` resolver for the IP and port
 *   (an IP literal, so basic does no lookup either), other domains go to
 *   DNS as before. Dialback verification connections back to a routed
 *   domain go through the same path.
 * - shuts Prosody down when the test process is gone (it polls
 *   /proc/<pid>), so a test runner killed with SIGKILL leaves no Prosody
 *   behind.
 *
 * Prosody runs in the foreground (`-F`) as a child process, listening on
 * 127.0.0.1 only, on free ports (c2s, c2s direct TLS, s2s); no HTTP, no
 * admin socket, so any number of instances can run side by side.
 *
 * As root: the `prosody` binary does not switch users (only prosodyctl
 * does), and mod_posix refuses to run as root ("Danger, Will Robinson!"),
 * after which 0.12.3 does not even exit (its shutdown path fails on
 * `prosody.main_thread`) — so the config sets `run_as_root = true` when we
 * are root. That also keeps `prosodyctl` (used by addUser) from switching to
 * the `prosody` user, who could not write into our temporary directory.
 * As another user nothing special is needed: every file is ours.
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@hyphae/testkit';
import type { TestContext } from 'node:test';
import { isRunning, probeStream, launchWithRetries, ownDir, removeDir, readText, spawnUnref, tail, terminate, untilReady, type ForeignServer, type Spawned } from './child.js';

const PROSODY_BIN = process.env.HYPHAE_PROSODY ?? 'prosody';
const PROSODYCTL_BIN = process.env.HYPHAE_PROSODYCTL ?? 'prosodyctl';
const READY_DEADLINE_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 3;

export interface ProsodyRoute {
  host: string;
  port: number;
  /** Connect with XEP-0368 direct TLS instead of STARTTLS (default false). */
  directTls?: boolean;
}

export interface ProsodyOptions {
  /** The VirtualHost Prosody serves. */
  domain: string;
  /** Prosody's certificate (and key) for `domain` (and the MUC domain, if any), PEM. */
  certPem: string;
  keyPem: string;
  /** The test CA, PEM: Prosody's trust anchor for peers' certificates when `trustCa` is true. */
  caPem: string;
  /**
   * Whether Prosody trusts `caPem` when it verifies the certificates of s2s
   * peers (default true). False: only the system store (/etc/ssl/certs), so a
   * test-CA certificate is invalid to it and authentication falls back to
   * dialback (or fails, with `s2sSecureAuth`).
   */
  trustCa?: boolean;
  /** `s2s_secure_auth`: require valid peer certificates, no dialback on its own (default false). */
  s2sSecureAuth?: boolean;
  /** Accounts created before start. */
  users?: { user: string; password: string }[];
  /** Outgoing s2s for these domains goes to host:port instead of DNS. */
  staticRoutes?: Record<string, ProsodyRoute>;
  /** Adds a MUC component: true → `conference.<domain>`, a string → that domain. */
  muc?: boolean | string;
  /** More modules for modules_enabled (e.g. 's2s_bidi'). */
  modules?: string[];
  /** Lua appended to the global section (before VirtualHost), e.g. `s2s_timeout = 10`. */
  extraConfig?: string;
  /** Lua appended inside the VirtualHost section. */
  extraHostConfig?: string;
  /** XEP-0077 in-band registration (mod_register; loopback is on Prosody's registration allowlist, so unthrottled). Default false. */
  registration?: boolean;
  /** Lowest level written to the log file (default debug; the load tool uses warn). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface ProsodyServer extends ForeignServer {
  /** c2s, XEP-0368 direct TLS. */
  readonly c2sDirectTlsPort: number;
  /** s2s, STARTTLS (required). */
  readonly s2sPort: number;
}

let availability: string | null | undefined;

/** Null when Prosody can run here, else why not (for `skip`). */
export function prosodySkipReason(): string | null {
  if (availability !== undefined) return availability;
  const missing = [PROSODY_BIN, PROSODYCTL_BIN].filter(
    (b) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', b], { stdio: 'ignore' }).status !== 0,
  );
  availability = missing.length
    ? `prosody not installed (${missing.join(', ')} not found; install with: apt-get install -y prosody lua-unbound)`
    : null;
  return availability;
}

/** Whether the prosody binary is installed and runs. */
export function prosodyAvailable(): boolean {
  return prosodySkipReason() === null;
}

// ---------------------------------------------------------------------------
// Config generation.

/** A Lua string literal. */
function lua(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0)}`)}"`;
}

const BASE_MODULES = ['roster', 'saslauth', 'tls', 'dialback', 'disco', 'ping', 'version', 'private', 'hyphae_test'];

/** The test-only Prosody module: static s2s routes and the parent watchdog. */
const PLUGIN_LUA = `-- Written by the Hyphae test harness (test/harness/prosody.ts). Test use only.
module:set_global();

local basic = require "net.resolvers.basic";
local manual = require "net.resolvers.manual";
local service = require "net.resolvers.service";
local lfs = require "lfs";

local routes = module:get_option("hyphae_test_routes", {});

-- mod_s2s (0.12) calls service.new(to_host, "xmpp-server", "tcp", extra) and,
-- when it has a TLS context, service.new(to_host, "xmpps-server", ...) for
-- XEP-0368 first. A routed domain answers the service it is routed for with
-- the fixed target and the other with no targets.
local original_new = service.new;
service.new = function (hostname, srv, conn_type, extra)
	local route = routes[hostname];
	if not route then
		return original_new(hostname, srv, conn_type, extra);
	end
	local wanted = route.direct_tls and "xmpps-server" or "xmpp-server";
	if srv ~= wanted then
		module:log("debug", "static route for %s: no %s targets", hostname, srv);
		return manual.new({}, conn_type, extra);
	end
	module:log("info", "static route for %s (%s): %s port %d", hostname, srv, route.host, route.port);
	return basic.new(route.host, route.port, conn_type, extra);
end

function module.unload()
	service.new = original_new;
end

-- Stop when the process that started us is gone (a killed test runner).
local parent = module:get_option_number("hyphae_test_parent_pid");
if parent and lfs.attributes("/proc/self") then
	module:add_timer(1, function ()
		if not lfs.attributes("/proc/" .. parent) then
			module:log("warn", "test process %d is gone, shutting down", parent);
			-- As mod_posix does on SIGTERM: shutdown must run in the main thread.
			prosody.main_thread:run(function ()
				prosody.unlock_globals();
				prosody.shutdown("test process gone");
				prosody.lock_globals();
			end);
			return nil;
		end
		return 1;
	end);
end
`;

interface Layout {
  dir: string;
  configPath: string;
  logPath: string;
  mucDomain: string | undefined;
}

function writeConfig(
  layout: Layout,
  opts: ProsodyOptions,
  ports: { c2s: number; c2sDirectTls: number; s2s: number },
): void {
  const { dir, configPath, logPath, mucDomain } = layout;
  const certs = join(dir, 'certs');
  const certFile = join(certs, `${opts.domain}.crt`);
  const keyFile = join(certs, `${opts.domain}.key`);
  // Outside certs/, which Prosody indexes looking for host certificates.
  const caFile = join(dir, 'test-ca.pem');
  const trustCa = opts.trustCa ?? true;
  const modules = [...BASE_MODULES, ...(opts.registration ? ['register'] : []), ...(opts.modules ?? [])];
  const routes = Object.entries(opts.staticRoutes ?? {})
    .map(
      ([domain, r]) =>
        `\t[${lua(domain.toLowerCase())}] = { host = ${lua(r.host)}; port = ${Math.trunc(r.port)}; direct_tls = ${r.directTls ? 'true' : 'false'} };`,
    )
    .join('\n');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const lines = [
    '-- Written by the Hyphae test harness (test/harness/prosody.ts).',
    // See the header comment: as root, mod_posix refuses to start without it.
    `run_as_root = ${isRoot ? 'true' : 'false'}`,
    `pidfile = ${lua(join(dir, 'prosody.pid'))}`,
    `data_path = ${lua(join(dir, 'data'))}`,
    `plugin_paths = { ${lua(join(dir, 'plugins'))} }`,
    `installer_plugin_path = ${lua(join(dir, 'custom_plugins'))}`,
    `certificates = ${lua(certs)}`,
    `log = { { levels = { min = ${lua(opts.logLevel ?? 'debug')} }, to = "file", filename = ${lua(logPath)} } }`,
    '',
    'interfaces = { "127.0.0.1" }',
    'local_interfaces = { "127.0.0.1" }',
    `c2s_ports = { ${ports.c2s} }`,
    `c2s_direct_tls_ports = { ${ports.c2sDirectTls} }`,
    'legacy_ssl_ports = { }',
    `s2s_ports = { ${ports.s2s} }`,
    's2s_direct_tls_ports = { }',
    'http_ports = { }',
    'https_ports = { }',
    'component_ports = { }',
    'use_ipv6 = false',
    '',
    `modules_enabled = { ${modules.map(lua).join(', ')} }`,
    'modules_disabled = { "admin_shell", "admin_telnet", "admin_socket", "http", "bosh", "websocket" }',
    'authentication = "internal_hashed"',
    'storage = "internal"',
    `allow_registration = ${opts.registration ? 'true' : 'false'}`,
    'c2s_require_encryption = true',
    's2s_require_encryption = true',
    `s2s_secure_auth = ${opts.s2sSecureAuth ? 'true' : 'false'}`,
    `ssl = { certificate = ${lua(certFile)}; key = ${lua(keyFile)}${trustCa ? `; cafile = ${lua(caFile)}` : ''} }`,
    `hyphae_test_parent_pid = ${process.pid}`,
    `hyphae_test_routes = {\n${routes}\n}`,
    '',
    opts.extraConfig ?? '',
    '',
    `VirtualHost ${lua(opts.domain)}`,
    opts.extraHostConfig ?? '',
    '',
    mucDomain ? `Component ${lua(mucDomain)} "muc"` : '',
    '',
  ];
  writeFileSync(configPath, lines.join('\n'));
  mkdirSync(certs, { recursive: true });
  writeFileSync(certFile, opts.certPem);
  writeFileSync(keyFile, opts.keyPem, { mode: 0o600 });
  // Written even when not trusted, for tests and humans looking at the directory.
  writeFileSync(caFile, opts.caPem);
}

// ---------------------------------------------------------------------------

function runProsodyctl(configPath: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(PROSODYCTL_BIN, ['--config', configPath, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`prosodyctl ${args[0]} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

async function threeFreePorts(): Promise<[number, number, number]> {
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [a, b, c] = [...ports];
  return [a!, b!, c!];
}

/** Starts Prosody; resolves when its c2s port answers a stream header. */
export async function startProsody(opts: ProsodyOptions): Promise<ProsodyServer> {
  const skip = prosodySkipReason();
  if (skip) throw new Error(skip);

  const dir = mkdtempSync(join(tmpdir(), 'hyphae-prosody-'));
  ownDir(dir);
  chmodSync(dir, 0o755);
  for (const sub of ['data', 'plugins', 'certs']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'plugins', 'mod_hyphae_test.lua'), PLUGIN_LUA);
  const mucDomain = opts.muc === true ? `conference.${opts.domain}` : typeof opts.muc === 'string' ? opts.muc : undefined;
  const layout: Layout = { dir, configPath: join(dir, 'prosody.cfg.lua'), logPath: join(dir, 'prosody.log'), mucDomain };

  let child: ChildProcess | undefined;
  let spawned: Spawned | undefined;
  let ports = { c2s: 0, c2sDirectTls: 0, s2s: 0 };
  let stopped = false;

  const launch = async (): Promise<void> => {
    const [c2s, c2sDirectTls, s2s] = await threeFreePorts();
    ports = { c2s, c2sDirectTls, s2s };
    writeConfig(layout, opts, ports);
    if (existsSync(layout.logPath)) writeFileSync(layout.logPath, '');
    spawned = spawnUnref(PROSODY_BIN, ['--config', layout.configPath, '-F'], { cwd: dir });
    child = spawned.child;
    await untilReady(spawned, {
      name: 'prosody',
      bin: PROSODY_BIN,
      deadlineMs: READY_DEADLINE_MS,
      log: () => server.log(),
      portTaken: /Failed to open server port/,
      ready: async () => /Activated service 's2s' on/.test(readText(layout.logPath)) && (await probeStream(ports.c2s, opts.domain)),
    });
  };

  const server: ProsodyServer = {
    domain: opts.domain,
    mucDomain,
    host: '127.0.0.1',
    dir,
    get c2sPort() {
      return ports.c2s;
    },
    get c2sDirectTlsPort() {
      return ports.c2sDirectTls;
    },
    get s2sPort() {
      return ports.s2s;
    },
    get pid() {
      return child?.pid ?? 0;
    },
    get c2s() {
      return [{ nodeId: `prosody-${opts.domain}`, host: '127.0.0.1', port: ports.c2s, directTlsPort: ports.c2sDirectTls, httpPort: 0 }];
    },
    addUser: (user, password) => runProsodyctl(layout.configPath, ['register', user, opts.domain, password]),
    running: () => child !== undefined && isRunning(child),
    log: () => {
      const output = spawned?.output() ?? '';
      return readText(layout.logPath) + (output ? `\n--- prosody stdout/stderr ---\n${output}` : '');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child) await terminate(child, STOP_GRACE_MS);
      removeDir(dir);
    },
  };

  await launchWithRetries({
    attempts: PORT_ATTEMPTS,
    launch,
    setup: async () => {
      for (const u of opts.users ?? []) await server.addUser(u.user, u.password);
    },
    child: () => child,
    cleanup: () => removeDir(dir),
  });
  return server;
}


/**
 * Runs `fn`; when it throws, attaches the tail of each Prosody's log to the
 * test's diagnostics (one line each) before rethrowing.
 */
export async function withProsodyLogs(t: TestContext, servers: readonly ProsodyServer[], fn: () => Promise<void>, lines = 80): Promise<void> {
  try {
    await fn();
  } catch (err) {
    for (const s of servers) {
      t.diagnostic(`--- prosody ${s.domain} log, last ${lines} lines (${s.dir}; HYPHAE_E2E_KEEP=1 keeps it) ---`);
      for (const l of tail(s.log(), lines).split('\n')) t.diagnostic(l);
    }
    throw err;
  }
}
