/**
 * Command line of the load tool: `npm run bench -- <scenario> [--option value …]`.
 */
import { availableParallelism } from 'node:os';
import type { ScramMechanism } from './scram.js';

export const SCENARIOS = ['chat', 'presence', 'login', 'overload', 'idle', 'muc', 'proxy', 'wirecheck'] as const;
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
  /** Offered rate; rising-load scenarios (chat, presence, login) step through every rate given (--rate 500,1000,2000). */
  rate: number;
  rates: number[];
  /** chat, presence: contacts per user (ring neighbours; even). */
  contacts: number;
  /** The latency bar: the best step is the highest rate whose p99 stays under it (ms). */
  maxP99: number;
  /** Stop stepping up once a step's p99 exceeds this (ms), or it lost deliveries. */
  stopP99: number;
  /** idle: seconds the sessions sit idle while the server is sampled. */
  idle: number;
  /** A cluster's Redis (127.0.0.1): its commands per delivered stanza are counted in each send phase. */
  redisPort: number | null;
  /** Hyphae metrics ports (127.0.0.1): the routers' session-cache hit rate is counted in each send phase. */
  metricsPorts: number[];
  /** --spawn: run the server with `node --cpu-prof`, profiles written to this directory when it stops. */
  cpuProf: string | null;
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
  /** CPUs (a taskset list) the server processes are pinned to, the tool taking the others; null: not pinned. */
  serverCpus: string | null;
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
  chat       N users online, each sending chat messages to its online contacts; offered rate stepped up (--rate R1,R2,…)
  presence   N users with K-contact rosters (mutual subscriptions) log in, then change status; rate stepped up
  login      logins (connect, STARTTLS, SCRAM, bind, roster get, presence, close) arriving at each --rate in turn
  overload   --users logins at --rate (more than the server sustains), each waiting for the echo of its initial
             presence and staying connected; every login (in / refused / lost) and echo (echoed / error / lost)
             is accounted for; exit status 2 when anything was lost
  idle       N authenticated sessions sit idle: server RSS per session and CPU at rest
  muc        N occupants join one room, then groupchat at an offered rate (see docs/benchmarks.md)
  proxy      --mbytes through the XEP-0065 SOCKS5 proxy, then through a plain loopback relay; throughput ratio
  wirecheck  log in once with this tool's client and once with @xmpp/client; compare what each sends

target (an external server):
  --host H                 c2s address (127.0.0.1)
  --port P[,P2…]           STARTTLS port(s); clients are spread over them (5222)
  --domain D               XMPP domain (localhost)
  --muc-domain M           MUC service (conference.<domain>)
  --proxy-domain P         XEP-0065 proxy (proxy.<domain>)
  --server-pid PID[,PID…]  sample these processes' CPU and RSS from /proc during the run
  --redis-port P           a Hyphae cluster's Redis on 127.0.0.1: count its commands per routed stanza
  --metrics-port P[,P2…]   Hyphae processes' metrics ports on 127.0.0.1: count route cache hits and misses
or a server this tool starts (and stops) itself:
  --spawn embedded|cluster hyphae all, or a cluster with its own nats-server and redis-server
  --c2s-nodes N            cluster: c2s processes (2)
  --muc-nodes N            cluster: muc processes (2)
  --roster-nodes N         cluster: roster processes (2)
  --server-config JSON     extra config overrides for the spawned server(s)
  --server-log-level L     spawned server log level (warn)
  --server-cpus LIST       pin the server processes (every thread) to these CPUs, the tool to the others
                           (overload with --spawn: 0; none: no pinning)
  --cpu-prof DIR           profile the spawned server(s) (node --cpu-prof); .cpuprofile files land in DIR
                           when they stop (summary: node test/dist/bench/cpuprofile.js FILE)

load:
  --occupants N            room occupants (50)
  --users N                accounts to provision and log in (chat 1000, presence 200, login 200, idle 10000; muc: = occupants)
  --senders K              members that send, in turn (0 = every member)
  --rate R[,R2…]           offered rate, all senders together: msgs/s, presence changes/s or logins/s; a list
                           steps up through the rates (chat 1000,2000,…; presence 50,100,…; login 25,50,…; muc 100)
  --contacts K             chat, presence: contacts per user, even (chat 10, presence 50)
  --max-p99 MS             the latency bar for the best step (50; login 1000)
  --stop-p99 MS            stop stepping once a step's p99 is above this, or it lost anything (1000; login 5000)
  --idle S                 idle: seconds the sessions sit idle while sampled (15)
  --duration S             seconds of sending, per step (chat, presence, login: 5; others 10)
  --messages M             stop after M messages instead (0 = no limit)
  --warmup S               first seconds not in latency and throughput (1 when duration ≥ 5, else 0)
  --drain S                how long to wait for outstanding deliveries (10; overload: for each echo, 60)
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
    'contacts', 'max-p99', 'stop-p99', 'idle', 'redis-port', 'metrics-port', 'cpu-prof',
    'body-bytes', 'runs', 'json', 'server-pid', 'spawn', 'c2s-nodes', 'muc-nodes', 'roster-nodes', 'server-config',
    'server-log-level', 'server-cpus', 'workers', 'login-concurrency', 'provision', 'provision-cmd', 'register-concurrency', 'user-prefix',
    'mechanism', 'resource', 'timeout', 'pause', 'quiet',
  ]);
  for (const k of raw.keys()) if (!known.has(k)) throw new Error(`unknown option --${k} (see --help)`);
  const get = (k: string): string | undefined => raw.get(k);

  const domain = get('domain') ?? 'localhost';
  const spawn = get('spawn') ?? null;
  if (spawn !== null && spawn !== 'embedded' && spawn !== 'cluster') throw new Error(`--spawn: expected embedded or cluster, got "${spawn}"`);
  const occupants = int('occupants', get('occupants') ?? '50', 1);
  // Rising-load scenarios run one phase per rate: shorter phases keep a staircase within minutes.
  const duration = num('duration', get('duration') ?? (['chat', 'presence', 'login'].includes(scenario) ? '5' : '10'), 0.1);
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
  if (spawn === null && raw.has('cpu-prof')) throw new Error('--cpu-prof profiles a server the tool spawns: use it with --spawn');
  if (spawn !== null && (raw.has('port') || raw.has('host') || raw.has('server-pid'))) {
    throw new Error('--spawn starts its own server: --host, --port and --server-pid are for an external one');
  }
  const defaultUsers: Record<Scenario, number> = { chat: 1000, presence: 200, login: 200, overload: 1000, idle: 10000, muc: occupants, proxy: 2, wirecheck: 1 };
  const users = int('users', get('users') ?? String(defaultUsers[scenario]), 1);
  const defaultRates: Record<Scenario, string> = {
    chat: '1000,2000,4000,6000,8000,10000,12000,16000,20000,24000,28000,32000',
    presence: '25,50,100,200,300,400,600,800,1000,1200',
    login: '25,50,100,150,200,300,400,600',
    // Twice the 100 logins/s a one-core cluster sustained (issue 21, finding 10).
    overload: '200',
    idle: '0',
    muc: '100',
    proxy: '0',
    wirecheck: '0',
  };
  const rates = (get('rate') ?? defaultRates[scenario]).split(',').map((r) => num('rate', r.trim(), 0));
  const contacts = int('contacts', get('contacts') ?? (scenario === 'presence' ? '50' : '10'), 2);
  if (contacts % 2 !== 0) throw new Error(`--contacts must be even (ring neighbours on both sides), got ${contacts}`);
  if ((scenario === 'chat' || scenario === 'presence') && users <= contacts) throw new Error(`--users (${users}) must be more than --contacts (${contacts})`);
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
    rate: rates[0] as number,
    rates,
    contacts,
    maxP99: num('max-p99', get('max-p99') ?? (scenario === 'login' ? '1000' : '50'), 0),
    stopP99: num('stop-p99', get('stop-p99') ?? (scenario === 'login' ? '5000' : '1000'), 0),
    idle: num('idle', get('idle') ?? '15', 0),
    redisPort: get('redis-port') ? int('redis-port', get('redis-port') as string, 1) : null,
    cpuProf: get('cpu-prof') ?? null,
    metricsPorts: (get('metrics-port') ?? '').split(',').filter((s) => s.trim() !== '').map((p) => int('metrics-port', p.trim(), 1)),
    duration,
    messages: int('messages', get('messages') ?? '0', 0),
    warmup: num('warmup', get('warmup') ?? (duration >= 5 ? '1' : '0'), 0),
    drain: num('drain', get('drain') ?? (scenario === 'overload' ? '60' : '10'), 0),
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
    serverCpus: serverCpus(get('server-cpus'), scenario, spawn),
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

/** --server-cpus: a taskset list, 'none', or the overload scenario's default (CPU 0 of a spawned server, when there is another CPU for the tool). */
function serverCpus(v: string | undefined, scenario: Scenario, spawn: string | null): string | null {
  if (v === undefined) return scenario === 'overload' && spawn !== null && availableParallelism() >= 2 ? '0' : null;
  if (v === 'none') return null;
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw new Error(`--server-cpus: a CPU list such as 0 or 0-1,3, or none; got "${v}"`);
  return v;
}

export class UsageRequest extends Error {
  constructor() {
    super('usage');
  }
}
