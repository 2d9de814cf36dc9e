/**
 * `hyphae user …` and `hyphae status`: clients of the admin HTTP API
 * (@hyphae/admin) of a running process — `hyphae all`, or any process of a
 * cluster (they all serve it on their http port).
 *
 * Where: `--url`, else http://<http.adminHost>:<http.adminPort> of the loaded
 * configuration when the API has its own port, http://<http.host>:<http.port>
 * otherwise (0.0.0.0 / :: become loopback). Token: HYPHAE_ADMIN_TOKEN,
 * else the configuration's http.adminToken. Exit codes: 0 done, 1 the
 * operation failed (or the server could not be reached), 2 usage.
 */
import { createInterface } from 'node:readline';
import { loadConfig, ConfigError, type HyphaeConfig } from '@hyphae/config';
import { moduleSections } from './modules.js';
import type { ServiceStatus, ShardGroupStatus, HttpErrorBody } from '@hyphae/admin';

export const ADMIN_USAGE = `       hyphae user add <jid> [--password <p>]     create an account (password prompted, or read from stdin)
       hyphae user passwd <jid> [--password <p>]  change an account's password
       hyphae user del <jid>                      delete an account (its sessions are closed)
       hyphae user list [<domain>] [--online]     list accounts (or users with a session)
       hyphae status                              c2s nodes, shard owners, sessions, users`;

export const ADMIN_HELP = `The user and status commands call the admin HTTP API of a running process
(hyphae all, or any process of a cluster):
  --url <http://host:port>  default: http.adminHost and http.adminPort of the
                            configuration, or http.host and http.port
  --json                    print the API's JSON answer
The bearer token comes from HYPHAE_ADMIN_TOKEN, else http.adminToken. Exit
status: 0 done, 1 failed, 2 usage error.`;

export interface CliIo {
  env: NodeJS.ProcessEnv;
  /** --config given to the command (else HYPHAE_CONFIG, else defaults). */
  configFile: string | undefined;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  stdin: NodeJS.ReadStream;
}

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  url: string | undefined;
  json: boolean;
  password: string | undefined;
  online: boolean;
}

function parse(args: string[]): Parsed {
  const out: Parsed = { positional: [], url: undefined, json: false, password: undefined, online: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const value = (name: string): string => {
      if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (a === '--url' || a.startsWith('--url=')) out.url = value('--url');
    else if (a === '--password' || a.startsWith('--password=')) out.password = value('--password');
    else if (a === '--json') out.json = true;
    else if (a === '--online') out.online = true;
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
    else out.positional.push(a);
  }
  return out;
}

function defaultUrl(config: HyphaeConfig): string {
  const own = config.http.adminPort !== null;
  if (!own && config.http.port === null) throw new UsageError('http.port is null in the configuration (no admin API there): give --url');
  let host = own ? config.http.adminHost : config.http.host;
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  if (host.includes(':')) host = `[${host}]`;
  return `http://${host}:${own ? config.http.adminPort : config.http.port}`;
}

/** Reads a password: hidden prompt (twice) on a terminal, else the first line of stdin. */
async function readPassword(io: CliIo, confirm: boolean): Promise<string> {
  if (!io.stdin.isTTY) {
    let data = '';
    io.stdin.setEncoding('utf8');
    for await (const chunk of io.stdin) {
      data += chunk as string;
      if (data.includes('\n')) break;
    }
    const line = data.split(/\r?\n/, 1)[0] ?? '';
    if (line === '') throw new UsageError('no password: give --password, or one line on stdin');
    return line;
  }
  const ask = (prompt: string): Promise<string> => new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    // Raw mode and no output stream: nothing typed is echoed.
    const rl = createInterface({ input: io.stdin, terminal: true });
    rl.once('line', (l) => {
      rl.close();
      process.stderr.write('\n');
      resolve(l);
    });
    rl.once('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(new UsageError('interrupted'));
    });
  });
  const first = await ask('Password: ');
  if (first === '') throw new UsageError('the password must not be empty');
  if (confirm && (await ask('Retype password: ')) !== first) throw new UsageError('the passwords do not match');
  return first;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly body: unknown, message: string) {
    super(message);
  }
}

interface Api {
  url: string;
  call(method: string, path: string, body?: unknown): Promise<unknown>;
}

function api(url: string, token: string | null): Api {
  const base = url.replace(/\/+$/, '');
  return {
    url: base,
    async call(method, path, body) {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          // Deleting a user waits for its roster actor (up to ~20 s in a failover).
          signal: AbortSignal.timeout(60_000),
        });
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new ApiError(0, null, `cannot reach the admin API at ${base}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
      }
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = text === '' ? null : JSON.parse(text);
      } catch {
        throw new ApiError(res.status, text, `${base}${path} answered HTTP ${res.status} with something that is not JSON (is that a Hyphae http port?)`);
      }
      if (!res.ok) {
        const err = parsed as Partial<HttpErrorBody> | null;
        throw new ApiError(res.status, parsed, `${err?.message ?? 'request failed'} (${err?.error ?? 'error'}, HTTP ${res.status})`);
      }
      return parsed;
    },
  };
}

function seconds(ms: number): string {
  return `${(Math.abs(ms) / 1000).toFixed(1)} s`;
}

function formatStatus(s: ServiceStatus): string[] {
  const lines: string[] = [];
  lines.push(`answered by ${s.answeredBy} (store ${s.store}, bus ${s.bus})`);
  lines.push(`c2s nodes: ${s.nodes.length}`);
  const width = Math.max(0, ...s.nodes.map((n) => n.node.length));
  for (const n of s.nodes) {
    const left = n.expiresAt - s.time;
    lines.push(`  ${n.node.padEnd(width)}  ${n.alive ? `alive  (heartbeat valid for ${seconds(left)})` : `DEAD   (heartbeat expired ${seconds(left)} ago)`}`);
  }
  lines.push(`sessions: ${s.sessions}`);
  const group = (g: ShardGroupStatus | null, name: string): void => {
    if (!g) {
      lines.push(`${name} shards: disabled`);
      return;
    }
    lines.push(`${name} shards: ${g.shards}, members: ${g.members.length ? g.members.join(', ') : '(none)'}`);
    const w = Math.max(7, ...g.owners.map((o) => o.holder.length));
    for (const o of g.owners) lines.push(`  ${o.holder.padEnd(w)}  ${o.shards}`);
    if (g.unowned > 0 || g.owners.length === 0) lines.push(`  ${'unowned'.padEnd(w)}  ${g.unowned}`);
  };
  group(s.shards.roster, 'roster');
  group(s.shards.muc, 'muc');
  lines.push('registered users:');
  const dw = Math.max(0, ...s.users.map((u) => u.domain.length));
  for (const u of s.users) lines.push(`  ${u.domain.padEnd(dw)}  ${u.registered}`);
  return lines;
}

/** Runs `hyphae user …` / `hyphae status` (args start with the command word); returns the exit code. */
export async function runAdminCli(args: string[], io: CliIo): Promise<number> {
  let p: Parsed;
  try {
    p = parse(args);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`hyphae: ${e.message}\nusage: ${ADMIN_USAGE.trimStart()}\n\n${ADMIN_HELP}`);
      return 2;
    }
    throw e;
  }
  const [command, sub, arg, ...extra] = p.positional;

  let config: HyphaeConfig | null = null;
  const envToken = io.env.HYPHAE_ADMIN_TOKEN?.trim() || null;
  if (p.url === undefined || envToken === null) {
    try {
      config = loadConfig({ file: io.configFile, env: io.env, sections: moduleSections() });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      if (p.url === undefined) {
        io.stderr(`hyphae: configuration error: ${e.message}`);
        return 2;
      }
      io.stderr(`hyphae: warning: configuration not loaded (${e.message}); sending no token`);
    }
  }

  try {
    const client = api(p.url ?? defaultUrl(config as HyphaeConfig), envToken ?? config?.http.adminToken ?? null);
    const print = (value: unknown, human: () => string[]): void => {
      if (p.json) io.stdout(JSON.stringify(value, null, 2));
      else for (const l of human()) io.stdout(l);
    };
    const needJid = (): string => {
      if (arg === undefined || extra.length > 0) throw new UsageError(`hyphae user ${sub ?? ''} takes one JID`);
      return arg;
    };

    if (command === 'status') {
      if (sub !== undefined) throw new UsageError('hyphae status takes no arguments');
      const s = (await client.call('GET', '/admin/status')) as ServiceStatus;
      print(s, () => formatStatus(s));
      return 0;
    }
    if (command !== 'user') throw new UsageError(`unknown command '${command ?? ''}'`);
    switch (sub) {
      case 'add': {
        const jid = needJid();
        const password = p.password ?? (await readPassword(io, true));
        const r = (await client.call('POST', '/admin/users', { jid, password })) as { jid: string };
        print(r, () => [`created ${r.jid}`]);
        return 0;
      }
      case 'passwd': {
        const jid = needJid();
        const password = p.password ?? (await readPassword(io, true));
        const r = (await client.call('PUT', `/admin/users/${encodeURIComponent(jid)}`, { password })) as { jid: string };
        print(r, () => [`password changed for ${r.jid}`]);
        return 0;
      }
      case 'del':
      case 'delete': {
        const jid = needJid();
        const r = (await client.call('DELETE', `/admin/users/${encodeURIComponent(jid)}`)) as { jid: string; sessionsClosed: number };
        print(r, () => [`deleted ${r.jid} (${r.sessionsClosed} session${r.sessionsClosed === 1 ? '' : 's'} closed)`]);
        return 0;
      }
      case 'list': {
        if (extra.length > 0) throw new UsageError('hyphae user list takes at most one domain');
        const q = new URLSearchParams();
        if (arg !== undefined) q.set('domain', arg);
        if (p.online) q.set('online', '1');
        const qs = q.toString();
        const r = (await client.call('GET', `/admin/users${qs ? `?${qs}` : ''}`)) as { users: string[] };
        print(r, () => r.users);
        return 0;
      }
      default:
        throw new UsageError(sub === undefined ? 'hyphae user needs a subcommand' : `unknown subcommand 'user ${sub}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`hyphae: ${e.message}\nusage: ${ADMIN_USAGE.trimStart()}\n\n${ADMIN_HELP}`);
      return 2;
    }
    if (e instanceof ApiError) {
      if (p.json && e.body !== null) io.stdout(JSON.stringify(e.body, null, 2));
      io.stderr(`hyphae: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
