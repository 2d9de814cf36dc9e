/**
 * Command line of the load tool: `npm run bench -- <scenario> [--option value …]`.
 */
import type { ScramMechanism } from './scram.js';

export const SCENARIOS = ['muc', 'login', 'proxy', 'wirecheck'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Options {
  scenario: Scenario;
  host: string;
  /** One or more c2s ports (comma-separated on the command line): clients are spread over them. */
  ports: number[];
  domain: string;
  mucDomain: string;
  /** XEP-0065 proxy JID (proxy scenario). */
  proxyDomain: string;
  /** Megabytes streamed per run (proxy scenario). */
  mbytes: number;
  users: number;
  occupants: number;
  senders: number;
  rate: number;
  duration: number;
  messages: number;
  warmup: number;
  drain: number;
  bodyBytes: number;
  runs: number;
  json: string | null;
  serverPids: number[];
  spawn: 'embedded' | 'cluster' | null;
  c2sNodes: number;
  mucNodes: number;
  rosterNodes: number;
  serverConfig: Record<string, unknown>;
  serverLogLevel: string;
  workers: number;
  loginConcurrency: number;
  provision: 'ibr' | 'cmd' | 'none';
  provisionCmd: string | null;
  registerConcurrency: number;
  userPrefix: string;
  mechanism: ScramMechanism;
  resource: string;
  timeoutMs: number;
  pause: number;
  quiet: boolean;
}

export const USAGE = `usage: npm run bench -- <scenario> [options]

scenarios:
  muc        N occupants join one room, then groupchat at an offered rate (see docs/benchmarks.md)
  login      N users log in (connect, STARTTLS, SCRAM, bind, presence) and log out
  proxy      --mbytes through the XEP-0065 SOCKS5 proxy, then through a plain loopback relay; throughput ratio
  wirecheck  log in once with this tool's client and once with @xmpp/client; compare what each sends

target (an external server):
  --host H                 c2s address (127.0.0.1)
  --port P[,P2…]           STARTTLS port(s); clients are spread over them (5222)
  --domain D               XMPP domain (localhost)
  --muc-domain M           MUC service (conference.<domain>)
  --proxy-domain P         XEP-0065 proxy (proxy.<domain>)
  --server-pid PID[,PID…]  sample these processes' CPU and RSS from /proc during the run
or a server this tool starts (and stops) itself:
  --spawn embedded|cluster hyphae all, or a cluster with its own nats-server and redis-server
  --c2s-nodes N            cluster: c2s processes (2)
  --muc-nodes N            cluster: muc processes (2)
  --roster-nodes N         cluster: roster processes (2)
  --server-config JSON     extra config overrides for the spawned server(s)
  --server-log-level L     spawned server log level (warn)

load:
  --occupants N            room occupants (50)
  --users N                accounts to provision and log in (login: 50; muc: = occupants)
  --senders K              occupants that send, in turn (0 = every occupant)
  --rate R                 offered groupchat messages/s, all senders together (100)
  --duration S             seconds of sending (10)
  --messages M             stop after M messages instead (0 = no limit)
  --warmup S               first seconds not in latency and throughput (1 when duration ≥ 5, else 0)
  --drain S                how long to wait for outstanding deliveries (10)
  --body-bytes B           padding added to each message body (0)
  --runs N                 repeat the scenario N times; the summary gives medians (1)
  --pause S                seconds between runs (2)

clients:
  --workers W              worker threads holding the clients (1)
  --login-concurrency C    logins in flight (20)
  --provision ibr|cmd|none create accounts by XEP-0077 registration (ibr, default), by --provision-cmd, or not
  --provision-cmd CMD      shell command per account: {user} {password} {domain}, else user and password appended
  --register-concurrency C registrations in flight (10)
  --user-prefix P          account names P0, P1, … (bench)
  --mechanism M            SCRAM-SHA-1 (default) or SCRAM-SHA-256
  --resource R             resource to bind (bench)
  --timeout MS             deadline of each protocol step (30000)

output:
  --json FILE              machine-readable results
  --quiet                  no progress lines
`;

function num(name: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number ≥ ${min}, got "${v}"`);
  return n;
}

function int(name: string, v: string, min = 0): number {
  const n = num(name, v, min);
  if (!Number.isInteger(n)) throw new Error(`--${name}: expected an integer, got "${v}"`);
  return n;
}

export function parseOptions(argv: readonly string[]): Options {
  const flags = new Set(['quiet', 'help']);
  const raw = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (flags.has(key)) {
      raw.set(key, 'true');
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(`--${key} needs a value`);
    raw.set(key, value);
  }
  if (raw.has('help') || positional.length === 0) throw new UsageRequest();
  const scenario = positional[0] as Scenario;
  if (!SCENARIOS.includes(scenario)) throw new Error(`unknown scenario "${positional[0]}" (known: ${SCENARIOS.join(', ')})`);
  if (positional.length > 1) throw new Error(`unexpected argument "${positional[1]}"`);

  const known = new Set([
    'host', 'port', 'domain', 'muc-domain', 'proxy-domain', 'mbytes', 'users', 'occupants', 'senders', 'rate', 'duration', 'messages', 'warmup', 'drain',
    'body-bytes', 'runs', 'json', 'server-pid', 'spawn', 'c2s-nodes', 'muc-nodes', 'roster-nodes', 'server-config',
    'server-log-level', 'workers', 'login-concurrency', 'provision', 'provision-cmd', 'register-concurrency', 'user-prefix',
    'mechanism', 'resource', 'timeout', 'pause', 'quiet',
  ]);
  for (const k of raw.keys()) if (!known.has(k)) throw new Error(`unknown option --${k} (see --help)`);
  const get = (k: string): string | undefined => raw.get(k);

  const domain = get('domain') ?? 'localhost';
  const spawn = get('spawn') ?? null;
  if (spawn !== null && spawn !== 'embedded' && spawn !== 'cluster') throw new Error(`--spawn: expected embedded or cluster, got "${spawn}"`);
  const occupants = int('occupants', get('occupants') ?? '50', 1);
  const duration = num('duration', get('duration') ?? '10', 0.1);
  const provisionCmd = get('provision-cmd') ?? null;
  const provision = (get('provision') ?? (provisionCmd ? 'cmd' : 'ibr')) as Options['provision'];
  if (!['ibr', 'cmd', 'none'].includes(provision)) throw new Error(`--provision: expected ibr, cmd or none, got "${provision}"`);
  if (provision === 'cmd' && !provisionCmd) throw new Error('--provision cmd needs --provision-cmd');
  const mechanism = (get('mechanism') ?? 'SCRAM-SHA-1').toUpperCase() as ScramMechanism;
  if (mechanism !== 'SCRAM-SHA-1' && mechanism !== 'SCRAM-SHA-256') throw new Error(`--mechanism: SCRAM-SHA-1 or SCRAM-SHA-256, got "${mechanism}"`);
  let serverConfig: Record<string, unknown> = {};
  const sc = get('server-config');
  if (sc) {
    try {
      serverConfig = JSON.parse(sc) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`--server-config: not JSON: ${(err as Error).message}`);
    }
  }
  if (spawn !== null && (raw.has('port') || raw.has('host') || raw.has('server-pid'))) {
    throw new Error('--spawn starts its own server: --host, --port and --server-pid are for an external one');
  }
  const users = int('users', get('users') ?? String(scenario === 'muc' ? occupants : scenario === 'proxy' ? 2 : 50), 1);
  if (scenario === 'muc' && users < occupants) throw new Error(`--users (${users}) must be at least --occupants (${occupants})`);
  const senders = int('senders', get('senders') ?? '0', 0);
  if (senders > occupants) throw new Error(`--senders (${senders}) cannot exceed --occupants (${occupants})`);
  return {
    scenario,
    host: get('host') ?? '127.0.0.1',
    ports: (get('port') ?? '5222').split(',').map((p) => int('port', p.trim(), 1)),
    domain,
    mucDomain: get('muc-domain') ?? `conference.${domain}`,
    proxyDomain: get('proxy-domain') ?? `proxy.${domain}`,
    mbytes: num('mbytes', get('mbytes') ?? '200', 0.001),
    users,
    occupants,
    senders,
    rate: num('rate', get('rate') ?? '100', 0),
    duration,
    messages: int('messages', get('messages') ?? '0', 0),
    warmup: num('warmup', get('warmup') ?? (duration >= 5 ? '1' : '0'), 0),
    drain: num('drain', get('drain') ?? '10', 0),
    bodyBytes: int('body-bytes', get('body-bytes') ?? '0', 0),
    runs: int('runs', get('runs') ?? '1', 1),
    json: get('json') ?? null,
    serverPids: (get('server-pid') ?? '').split(',').filter((s) => s.trim() !== '').map((p) => int('server-pid', p.trim(), 1)),
    spawn,
    c2sNodes: int('c2s-nodes', get('c2s-nodes') ?? '2', 1),
    mucNodes: int('muc-nodes', get('muc-nodes') ?? '2', 1),
    rosterNodes: int('roster-nodes', get('roster-nodes') ?? '2', 1),
    serverConfig,
    serverLogLevel: get('server-log-level') ?? 'warn',
    workers: int('workers', get('workers') ?? '1', 1),
    loginConcurrency: int('login-concurrency', get('login-concurrency') ?? '20', 1),
    provision,
    provisionCmd,
    registerConcurrency: int('register-concurrency', get('register-concurrency') ?? '10', 1),
    userPrefix: get('user-prefix') ?? 'bench',
    mechanism,
    resource: get('resource') ?? 'bench',
    timeoutMs: int('timeout', get('timeout') ?? '30000', 100),
    pause: num('pause', get('pause') ?? '2', 0),
    quiet: raw.has('quiet'),
  };
}

export class UsageRequest extends Error {
  constructor() {
    super('usage');
  }
}
