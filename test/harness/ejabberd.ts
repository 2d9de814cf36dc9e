/**
 * Runs a real ejabberd (Debian's `ejabberd` 23.01 on Erlang/OTP 25) as a
 * child process, for interop tests and as a comparison target for the load
 * tool (test/bench).
 *
 * Each instance lives in a fresh temporary directory: ejabberd.yml, the
 * certificate, the Mnesia spool, the logs and a private $HOME. It listens on
 * 127.0.0.1 only, on one free c2s port (STARTTLS required) plus one free
 * port for Erlang distribution (which only addUser's control node uses), so
 * any number of instances run side by side, next to the machine's own
 * ejabberd or RabbitMQ.
 *
 * How it is launched, and why not with `ejabberdctl foreground`:
 *
 * - The Debian ejabberdctl, run as root, re-executes itself through
 *   `su ejabberd` (INSTALLUSER is fixed in the script, before any config is
 *   read), and that user can neither read our temporary directory's key nor
 *   use our cookie. It also runs `erl` without `exec`, so the pid we would
 *   get is a shell's, while the load tool samples the CPU and RSS of the
 *   real VM from /proc/<pid>. So the harness runs `erl` itself with the
 *   arguments and environment ejabberdctl would build for `foreground-quiet`
 *   (+K true +P 250000, -mnesia dir, -s ejabberd, -noinput, -ejabberd quiet
 *   true; EJABBERD_CONFIG_PATH, EJABBERD_LOG_PATH, ERL_LIBS taken from the
 *   installed script, ...). `erl` is a shell script that execs erlexec,
 *   which execs beam.smp: the child's pid is the VM's.
 * - The node is private: its own name (`ejabberd-<random>@localhost`, short
 *   names), its own random cookie (-setcookie; HOME is the temporary
 *   directory, so no ~/.erlang.cookie is read or written), its own Mnesia
 *   directory. Distribution uses ejabberdctl's ERL_DIST_PORT scheme
 *   (`-erl_epmd_port <port> -start_epmd false`, listening on 127.0.0.1 only):
 *   the node never starts an epmd of its own (one would outlive the test),
 *   and when an epmd is already running (RabbitMQ's, on 127.0.0.1:4369) the
 *   node merely registers its unique name there, which disturbs nobody.
 *   addUser runs the same control node ejabberdctl would (`erl -hidden
 *   -dist_listen false ... -s ejabberd_ctl -extra <node> register ...`).
 * - Works as root or as any other user: every file is ours, nothing runs
 *   through su.
 *
 * The configuration is what an operator would write for a benchmark of a
 * basic server, close to the packaged example (TLS options, SCRAM storage,
 * modules), minus what would throttle or skew the load:
 *
 * - c2s listener: `shaper: none` (the example shapes every non-admin user to
 *   3000 bytes/s, which would measure the shaper, not the server),
 *   `max_fsm_queue` 1,000,000 (default 10,000 queued stanzas per session,
 *   after which ejabberd drops the session), `backlog: 1024` (the listener
 *   default is 5: a burst of logins would see SYN drops and 1 s
 *   retransmits), `starttls_required: true` with the given certificate and
 *   the example's TLS options (no SSLv3/TLS 1.0/1.1, HIGH ciphers).
 * - `max_user_sessions: infinity` (example: 10 resources per account).
 * - `auth_password_format: scram` (SHA-1): SCRAM-SHA-1 against stored keys,
 *   as Prosody's internal_hashed and our own server do; DIGEST-MD5 and
 *   X-OAUTH2 off as in the example.
 * - No mod_fail2ban (it bans an IP after failed logins, and every client of
 *   a load run shares 127.0.0.1), no mod_pres_counter (a presence rate
 *   limit), no HTTP/BOSH/WebSocket/MQTT/STUN/SIP/proxy65 listeners, no s2s
 *   listener, no ACME (`acme: auto: false`: nothing is fetched).
 * - Registration (option `registration`): mod_register with `access` and
 *   `ip_access` open to all, and the global `registration_timeout: infinity`
 *   (the default, 600 s, allows one registration per IP per 10 minutes).
 * - MUC (option `muc`): mod_muc on conference.<domain>, anyone may create
 *   rooms, `max_users` and the rooms' default `max_users` 100,000 (defaults
 *   200), `max_users_presence` the same (the default, 1000, stops presence
 *   broadcasts in bigger rooms, which would do less work than the others),
 *   `max_user_conferences` 100,000 (default 100); the per-occupant shapers
 *   and minimum message/presence intervals stay at their defaults (none).
 * - `max_fsm_queue` 1,000,000 globally too (MUC rooms' queues).
 * - Log level `warning` by default, so a load run is not measuring logging.
 * - Modules: roster (versioning), disco, ping, caps, carboncopy, version,
 *   vcard (no search), offline, stream_mgmt (as in the example; only used
 *   when a client enables it), plus register / muc when asked. Not
 *   mod_private (it logs a warning without mod_pubsub) nor mod_mam (extra
 *   work per message; mod_muc logs once at start that it recommends it).
 * - The VM: ERL_MAX_PORTS 262144 (ejabberdctl uses 32000; each connection
 *   takes one or more ports, so a large load run would hit it; the bigger
 *   port table costs about 5 MB of RSS, out of about 100 MB idle), everything
 *   else as ejabberdctl sets it (schedulers, busy-wait defaults untouched;
 *   `vmArgs` adds flags), plus +Bi (below).
 *
 * A test process that dies without stop(): a normal exit SIGKILLs the VM
 * (process 'exit' hook); a SIGKILLed test process is noticed by a watchdog
 * inside the VM (an `-eval`ed Erlang process that checks every second that
 * its parent pid, from /proc/self/stat, is still the test process), which
 * logs a warning, removes the temporary directory (unless HYPHAE_E2E_KEEP)
 * and halts the VM. The VM ignores SIGINT (+Bi): Ctrl-C, sent to the whole
 * process group, would otherwise halt it before that cleanup.
 *
 * ejabberd 23.01 refuses to start on an unknown or duplicated top-level
 * option ("Duplicated option: loglevel"), so a bad `extraYaml` fails fast
 * with ejabberd's message in the error.
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@hyphae/testkit';
import { issueServerCert, createTestCa } from '@hyphae/pki';
import { isRunning, probeStream, launchWithRetries, ownDir, removeDir, readText, spawnUnref, terminate, untilReady, type ForeignServer, type Spawned } from './child.js';

const EJABBERDCTL = process.env.HYPHAE_EJABBERDCTL ?? '/usr/sbin/ejabberdctl';
const READY_DEADLINE_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const CTL_TIMEOUT_MS = 30_000;
const LAUNCH_ATTEMPTS = 3;
/** Concurrent `ejabberdctl register` runs for `users` (each boots a small VM). */
const ADD_USER_CONCURRENCY = 4;

export type EjabberdLogLevel = 'critical' | 'error' | 'warning' | 'info' | 'debug';

export interface EjabberdOptions {
  /** The virtual host (default 'localhost'). */
  domain?: string;
  /**
   * Certificate and key, PEM, for `domain` (and the MUC domain). Absent: a
   * certificate for `domain` and `*.domain` issued by a fresh test CA
   * (@hyphae/pki), whose certificate is then `caPem`.
   */
  certPem?: string;
  keyPem?: string;
  /** The CA of `certPem` (ejabberd's `ca_file`, so it validates its own chain quietly). */
  caPem?: string;
  /** Accounts created (ejabberdctl register) once the server runs, before startEjabberd resolves. */
  users?: { user: string; password: string }[];
  /** XEP-0077 in-band registration open to anyone, from any IP, no rate limit (default false: no mod_register). */
  registration?: boolean;
  /** mod_muc on conference.<domain>, big rooms, no rate limits (default false). */
  muc?: boolean;
  /** ejabberd's `loglevel` (default 'warning'). */
  logLevel?: EjabberdLogLevel;
  /** c2s `max_stanza_size` in bytes (default 262144, as in the packaged example). */
  maxStanzaSize?: number;
  /**
   * YAML appended at the top level of ejabberd.yml. It must not repeat a
   * top-level key the harness writes (hosts, listen, modules, acl,
   * access_rules, shaper_rules, ...): see the generated file in `dir`.
   */
  extraYaml?: string;
  /** More `erl` arguments for the VM (e.g. ['+sbwt', 'none']), before `-s ejabberd`. */
  vmArgs?: string[];
}

/**
 * `pid` is the beam.smp process (the Erlang VM itself, not a wrapper); the
 * c2s endpoint has no direct TLS listener (directTlsPort 0); `addUser` runs
 * `ejabberdctl register`, a control node talking to ours over Erlang
 * distribution: each call boots a VM (0.2 to 0.5 s), so for many accounts
 * start with `registration: true` and register in-band (the load tool's
 * provision(): 40 accounts in about 0.3 s); `stop` waits 10 s for a clean
 * stop before SIGKILL.
 */
export interface EjabberdServer extends ForeignServer {
  /** ejabberd's version, from its application file (e.g. '23.01-1'). */
  readonly version: string;
  /** The Erlang node name (`ejabberd-<random>@localhost`). */
  readonly node: string;
  /** The certificate ejabberd presents, and its CA (PEM). */
  readonly certPem: string;
  readonly caPem: string | undefined;
}

// ---------------------------------------------------------------------------
// Installation.

interface Install {
  erl: string;
  erlLibs: string;
  version: string;
}

let install: Install | string | undefined;

/** What the installed ejabberdctl would run: its `erl`, its ERL_LIBS, and the ejabberd version found there. */
function findInstall(): Install | string {
  if (install !== undefined) return install;
  const hint = 'ejabberd not installed (apt-get install -y ejabberd)';
  let script: string;
  try {
    script = readFileSync(EJABBERDCTL, 'utf8');
  } catch {
    return (install = `${hint}: ${EJABBERDCTL} not found`);
  }
  const erl = process.env.HYPHAE_ERL ?? /^\s*ERL="?([^"\s]+)"?\s*$/m.exec(script)?.[1] ?? 'erl';
  const erlLibs = /^\s*ERL_LIBS='?([^'\s]+)'?\s*$/m.exec(script)?.[1] ?? '';
  const candidates = erlLibs.split(':').filter(Boolean);
  let version: string | undefined;
  for (const libDir of candidates) {
    let entries: string[] = [];
    try {
      entries = readdirSync(libDir).filter((e) => /^ejabberd-\d/.test(e));
    } catch {
      continue;
    }
    for (const e of entries) {
      try {
        const app = readFileSync(join(libDir, e, 'ebin', 'ejabberd.app'), 'utf8');
        version = /\{vsn,\s*"([^"]+)"\}/.exec(app)?.[1];
        if (version) break;
      } catch {
        // not this one
      }
    }
    if (version) break;
  }
  if (!version) return (install = `${hint}: no ejabberd application under ERL_LIBS (${erlLibs || 'unset'}) of ${EJABBERDCTL}`);
  if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', erl], { stdio: 'ignore' }).status !== 0) {
    return (install = `${hint}: the Erlang runtime (${erl}) is missing`);
  }
  return (install = { erl, erlLibs, version });
}

/** Null when ejabberd can run here, else why not (for `skip`). */
export function ejabberdSkipReason(): string | null {
  const i = findInstall();
  return typeof i === 'string' ? i : null;
}

// ---------------------------------------------------------------------------
// Config.

/** A YAML double-quoted scalar (JSON strings are valid YAML). */
const y = (s: string): string => JSON.stringify(s);

/** An Erlang string literal. */
const erlString = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

interface Layout {
  dir: string;
  configPath: string;
  spoolDir: string;
  logsDir: string;
  certFile: string;
  caFile: string;
}

const BIG = 100_000;

function configYaml(layout: Layout, o: Required<Pick<EjabberdOptions, 'domain' | 'logLevel' | 'maxStanzaSize'>> & EjabberdOptions, c2sPort: number, hasCa: boolean): string {
  const lines: string[] = [
    '# Written by the Hyphae test harness (test/harness/ejabberd.ts); see its header for the reasons.',
    `hosts:\n  - ${y(o.domain)}`,
    `loglevel: ${o.logLevel}`,
    `certfiles:\n  - ${y(layout.certFile)}`,
    ...(hasCa ? [`ca_file: ${y(layout.caFile)}`] : []),
    'acme:\n  auto: false',
    '',
    '# TLS as in the packaged example.',
    'c2s_ciphers: "HIGH:!aNULL:!eNULL:!3DES:@STRENGTH"',
    'c2s_protocol_options:\n  - "no_sslv3"\n  - "no_tlsv1"\n  - "no_tlsv1_1"\n  - "cipher_server_preference"\n  - "no_compression"',
    '',
    '# One c2s listener on loopback; no s2s, HTTP, MQTT, STUN or SIP listener.',
    'listen:',
    '  -',
    `    port: ${c2sPort}`,
    '    ip: "127.0.0.1"',
    '    module: ejabberd_c2s',
    '    access: c2s',
    '    starttls_required: true',
    `    max_stanza_size: ${Math.trunc(o.maxStanzaSize)}`,
    '    shaper: none',
    '    max_fsm_queue: 1000000',
    '    backlog: 1024',
    '',
    'auth_method: internal',
    'auth_password_format: scram',
    'auth_scram_hash: sha',
    'disable_sasl_mechanisms:\n  - "digest-md5"\n  - "X-OAUTH2"',
    'max_fsm_queue: 1000000',
    'registration_timeout: infinity',
    '',
    'acl:',
    '  local:',
    '    user_regexp: ""',
    'access_rules:',
    '  local:\n    allow: local',
    '  c2s:\n    allow: all',
    '  register:\n    allow: all',
    '  muc_create:\n    allow: all',
    'api_permissions:',
    '  "console commands":',
    '    from:\n      - ejabberd_ctl',
    '    who: all',
    '    what: "*"',
    'shaper_rules:',
    '  max_user_sessions: infinity',
    '  max_user_offline_messages:\n    100: all',
    '',
    'modules:',
    '  mod_roster:\n    versioning: true',
    '  mod_disco: {}',
    '  mod_ping: {}',
    '  mod_caps: {}',
    '  mod_carboncopy: {}',
    '  mod_version: {}',
    '  mod_vcard:\n    search: false',
    '  mod_offline:\n    access_max_user_messages: max_user_offline_messages',
    '  mod_stream_mgmt:\n    resend_on_timeout: if_offline',
  ];
  if (o.registration) {
    lines.push('  mod_register:', '    access: register', '    ip_access: all', '    password_strength: 0');
  }
  if (o.muc) {
    lines.push(
      '  mod_muc:',
      '    host: "conference.@HOST@"',
      '    access: all',
      '    access_create: muc_create',
      '    access_persistent: muc_create',
      `    max_users: ${BIG}`,
      `    max_users_presence: ${BIG}`,
      `    max_user_conferences: ${BIG}`,
      '    default_room_options:',
      `      max_users: ${BIG}`,
    );
  }
  lines.push('', o.extraYaml ?? '', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// The VM.

/** process.env without anything that would steer erl or ejabberd (or systemd notification) elsewhere. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(ERL_|EJABBERD_|CONTRIB_MODULES_|NOTIFY_SOCKET$|WATCHDOG_|INET_DIST|ERLANG_)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

interface Node {
  name: string;
  cookie: string;
  distPort: number;
}

/** The distribution arguments ejabberdctl builds with ERL_DIST_PORT set (no epmd started). */
function distArgs(n: Node): string[] {
  return ['-setcookie', n.cookie, '-erl_epmd_port', String(n.distPort), '-start_epmd', 'false'];
}

/**
 * The VM-side watchdog: halts the node when its parent (the test process)
 * is gone, after removing `dir` unless `keep`. The parent is read from
 * /proc/self/stat (field 4), so a recycled pid cannot fool it.
 */
function watchdogEval(parentPid: number, dir: string, keep: boolean): string {
  return [
    `Parent = <<"${parentPid}">>,`,
    `Dir = ${erlString(dir)},`,
    'PPid = fun() ->',
    '  case file:read_file("/proc/self/stat") of',
    '    {ok, Stat} -> [_, Rest] = string:split(Stat, <<") ">>, trailing), [_, P | _] = binary:split(Rest, <<" ">>, [global]), P;',
    '    _ -> Parent',
    '  end',
    'end,',
    'spawn(fun() ->',
    '  Loop = fun L() ->',
    '    timer:sleep(1000),',
    '    case PPid() of',
    '      Parent -> L();',
    '      _ ->',
    '        logger:warning("hyphae test harness: test process ~s is gone, shutting down", [Parent]),',
    '        timer:sleep(200),',
    keep ? '        ok,' : '        _ = (catch file:del_dir_r(Dir)),',
    '        erlang:halt(0)',
    '    end',
    '  end,',
    '  Loop()',
    'end).',
  ].join('\n');
}

/** Whether /proc/<pid> is an Erlang VM (comm beam.smp or beam). */
function isBeam(pid: number): boolean {
  return /^beam(\.smp)?$/.test(readText(`/proc/${pid}/comm`).trim());
}


const PORT_TAKEN = /eaddrinuse|address already in use|Failed to open socket/i;


/** Starts ejabberd; resolves once its c2s port answers a stream header and the `users` exist. */
export async function startEjabberd(opts: EjabberdOptions = {}): Promise<EjabberdServer> {
  const inst = findInstall();
  if (typeof inst === 'string') throw new Error(inst);

  const o = { ...opts, domain: opts.domain ?? 'localhost', logLevel: opts.logLevel ?? 'warning', maxStanzaSize: opts.maxStanzaSize ?? 262_144 };
  if ((opts.certPem === undefined) !== (opts.keyPem === undefined)) throw new Error('startEjabberd: certPem and keyPem go together');
  let certPem = opts.certPem;
  let keyPem = opts.keyPem;
  let caPem = opts.caPem;
  if (certPem === undefined || keyPem === undefined) {
    // A year, so ejabberd has no expiry warning to log.
    const notAfter = new Date(Date.now() + 365 * 86_400_000);
    const ca = await createTestCa({ name: `Hyphae ejabberd test CA (${o.domain})`, notAfter });
    const issued = await issueServerCert(ca, { domains: [o.domain, `*.${o.domain}`], xmppAddrs: [o.domain], notAfter });
    certPem = issued.certPem;
    keyPem = issued.keyPem;
    caPem = issued.caPem;
  }

  const dir = mkdtempSync(join(tmpdir(), 'hyphae-ejabberd-'));
  ownDir(dir);
  chmodSync(dir, 0o755);
  const layout: Layout = {
    dir,
    configPath: join(dir, 'ejabberd.yml'),
    spoolDir: join(dir, 'spool'),
    logsDir: join(dir, 'logs'),
    certFile: join(dir, 'certs', 'server.pem'),
    caFile: join(dir, 'certs', 'ca.pem'),
  };
  for (const sub of ['spool', 'logs', 'certs', 'home']) mkdirSync(join(dir, sub), { recursive: true });
  // ejabberd reads certificate and key from one file.
  writeFileSync(layout.certFile, `${certPem.trim()}\n${keyPem.trim()}\n`, { mode: 0o600 });
  if (caPem) writeFileSync(layout.caFile, caPem);
  const logPath = join(layout.logsDir, 'ejabberd.log');
  const mucDomain = o.muc ? `conference.${o.domain}` : undefined;

  const node: Node = {
    name: `ejabberd-${randomBytes(5).toString('hex')}@localhost`,
    cookie: randomBytes(16).toString('hex'),
    distPort: 0,
  };
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    HOME: join(dir, 'home'),
    EJABBERD_CONFIG_PATH: layout.configPath,
    EJABBERD_LOG_PATH: logPath,
    ERL_CRASH_DUMP: join(layout.logsDir, 'erl_crash.dump'),
    ERL_LIBS: inst.erlLibs,
    ERL_MAX_PORTS: '262144',
    ERL_MAX_ETS_TABLES: '1400',
    CONTRIB_MODULES_PATH: join(dir, 'contrib'),
    CONTRIB_MODULES_CONF_DIR: join(dir, 'contrib', 'conf'),
  };

  let child: ChildProcess | undefined;
  let spawned: Spawned | undefined;
  let c2sPort = 0;
  let stopped = false;

  const launch = async (): Promise<void> => {
    c2sPort = await freePort();
    do node.distPort = await freePort();
    while (node.distPort === c2sPort);
    env.ERL_DIST_PORT = String(node.distPort);
    writeFileSync(layout.configPath, configYaml(layout, o, c2sPort, caPem !== undefined));
    if (existsSync(logPath)) writeFileSync(logPath, '');
    const args = [
      '-sname', node.name,
      ...distArgs(node),
      '-kernel', 'inet_dist_use_interface', '{127,0,0,1}',
      // Ctrl-C reaches the whole process group: without +Bi the VM would halt at
      // once, before its watchdog could remove the directory; with it, the
      // watchdog sees the test process gone and cleans up.
      '+Bi',
      '+K', 'true',
      '+P', '250000',
      '-env', 'ERL_CRASH_DUMP_BYTES', '0',
      ...(o.vmArgs ?? []),
      '-mnesia', 'dir', erlString(layout.spoolDir),
      '-eval', watchdogEval(process.pid, dir, !!process.env.HYPHAE_E2E_KEEP),
      '-ejabberd', 'quiet', 'true',
      '-s', 'ejabberd',
      '-noinput',
    ];
    spawned = spawnUnref(inst.erl, args, { cwd: layout.spoolDir, env });
    const c = spawned.child;
    child = c;
    await untilReady(spawned, {
      name: 'ejabberd',
      bin: inst.erl,
      deadlineMs: READY_DEADLINE_MS,
      log: () => server.log(),
      portTaken: PORT_TAKEN,
      ready: () => probeStream(c2sPort, o.domain),
    });
    if (c.pid === undefined || !isBeam(c.pid)) {
      throw new Error(`ejabberd's process ${c.pid} is not beam.smp (${readText(`/proc/${c.pid}/comm`).trim()}): is ${inst.erl} a wrapper that does not exec?`);
    }
  };

  const ctl = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const ctlName = `ctl-${randomBytes(4).toString('hex')}-${node.name}`;
      const argv = ['-sname', ctlName, ...distArgs(node), '-dist_listen', 'false', '-hidden', '-noinput', '-s', 'ejabberd_ctl', '-extra', node.name, ...args];
      execFile(inst.erl, argv, { env, cwd: dir, timeout: CTL_TIMEOUT_MS }, (err, stdout, stderr) => {
        if (err) reject(new Error(`ejabberdctl ${args[0]} failed (${err.code ?? err.signal ?? err.message}): ${`${stdout}${stderr}`.trim()}`));
        else resolve(stdout);
      });
    });

  const server: EjabberdServer = {
    domain: o.domain,
    mucDomain,
    host: '127.0.0.1',
    version: inst.version,
    node: node.name,
    certPem,
    caPem,
    dir,
    get c2sPort() {
      return c2sPort;
    },
    get pid() {
      return child?.pid ?? 0;
    },
    get c2s() {
      return [{ nodeId: `ejabberd-${o.domain}`, host: '127.0.0.1', port: c2sPort, directTlsPort: 0, httpPort: 0 }];
    },
    async addUser(user, password) {
      await ctl(['register', user, o.domain, password]);
    },
    running: () => child !== undefined && isRunning(child),
    log: () => {
      const out = (spawned?.output() ?? '').trim();
      return readText(logPath) + (out ? `\n--- ejabberd stdout/stderr ---\n${out}\n` : '');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // OTP 25 turns SIGTERM into init:stop(): ejabberd stops its modules and Mnesia.
      if (child) await terminate(child, STOP_GRACE_MS);
      removeDir(dir);
    },
  };

  await launchWithRetries({
    attempts: LAUNCH_ATTEMPTS,
    launch,
    setup: async () => {
      const users = [...(opts.users ?? [])];
      await Promise.all(
        Array.from({ length: Math.min(ADD_USER_CONCURRENCY, users.length) }, async () => {
          for (let u = users.shift(); u; u = users.shift()) await server.addUser(u.user, u.password);
        }),
      );
    },
    child: () => child,
    cleanup: () => removeDir(dir),
  });
  return server;
}
