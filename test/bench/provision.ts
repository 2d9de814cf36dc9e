/**
 * Accounts for a load run: XEP-0077 in-band registration (over STARTTLS, no
 * authentication) with a concurrency limit, or an external command run once
 * per account. Accounts that already exist are fine either way.
 */
import { spawn } from 'node:child_process';
import { BenchClient, XmppError, type Endpoint } from './client.js';

export interface Account {
  /** Index in the run (occupant number). */
  idx: number;
  username: string;
  password: string;
}

/** Deterministic accounts: `<prefix><i>` with a password derived from the name (so reruns can log in). */
export function accounts(prefix: string, count: number): Account[] {
  return Array.from({ length: count }, (_, idx) => ({ idx, username: `${prefix}${idx}`, password: `pw-${prefix}${idx}-hy` }));
}

/** Runs `fn` over `items` with at most `limit` in flight; resolves with the results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

export interface ProvisionResult {
  created: number;
  existing: number;
  seconds: number;
}

export interface ProvisionOptions {
  endpoints: readonly Endpoint[];
  domain: string;
  concurrency: number;
  timeoutMs: number;
  /** Shell command run per account instead of registration. */
  command?: string | null;
  progress?: (done: number, total: number) => void;
}

export async function provision(list: readonly Account[], o: ProvisionOptions): Promise<ProvisionResult> {
  const t0 = performance.now();
  let created = 0;
  let existing = 0;
  let done = 0;
  await mapLimit(list, o.concurrency, async (a, i) => {
    const outcome = o.command ? await runCommand(o.command, a, o.domain) : await registerOne(a, o.endpoints[i % o.endpoints.length] as Endpoint, o);
    if (outcome === 'created') created++;
    else existing++;
    done++;
    if (o.progress && (done % 50 === 0 || done === list.length)) o.progress(done, list.length);
  });
  return { created, existing, seconds: (performance.now() - t0) / 1000 };
}

async function registerOne(a: Account, endpoint: Endpoint, o: ProvisionOptions): Promise<'created' | 'exists'> {
  for (let attempt = 1; ; attempt++) {
    const c = await BenchClient.connect({ endpoint, domain: o.domain, timeoutMs: o.timeoutMs });
    try {
      return await c.register(a.username, a.password);
    } catch (err) {
      // resource-constraint / policy-violation: the server's registration rate limit.
      const cond = err instanceof XmppError ? err.condition : null;
      if (attempt < 3 && (cond === 'resource-constraint' || cond === 'wait')) {
        await new Promise((r) => setTimeout(r, 500 * attempt));
        continue;
      }
      throw new Error(`registering ${a.username}: ${(err as Error).message}${cond === 'resource-constraint' || cond === 'not-allowed' || cond === 'policy-violation' ? ' (the server limits registrations per IP: raise registration.maxPerIp or allowlist this host, or use --provision-cmd)' : ''}`);
    } finally {
      await c.close(1_000).catch(() => undefined);
    }
  }
}

/**
 * Runs the command through the shell with the account in the environment
 * (BENCH_USER, BENCH_PASSWORD, BENCH_DOMAIN) and in placeholders {user},
 * {password}, {domain}; without placeholders, user and password are appended
 * as arguments. Exit 0 → created; non-zero with "exist", "conflict" or
 * "already" in its output → existing; anything else fails the run.
 */
function runCommand(command: string, a: Account, domain: string): Promise<'created' | 'exists'> {
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const hasPlaceholder = /\{(user|password|domain)\}/.test(command);
  const line = hasPlaceholder
    ? command.replace(/\{user\}/g, quote(a.username)).replace(/\{password\}/g, quote(a.password)).replace(/\{domain\}/g, quote(domain))
    : `${command} ${quote(a.username)} ${quote(a.password)}`;
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', line], {
      env: { ...process.env, BENCH_USER: a.username, BENCH_PASSWORD: a.password, BENCH_DOMAIN: domain },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve('created');
      else if (/exist|conflict|already/i.test(output)) resolve('exists');
      else reject(new Error(`--provision-cmd for ${a.username} exited ${code}: ${output.trim().slice(0, 300)}`));
    });
  });
}
