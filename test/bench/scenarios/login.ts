/**
 * The login scenario: N users log in (TCP, STARTTLS, SCRAM, bind, initial
 * presence), `--login-concurrency` at a time, then log out.
 */
import { Pool } from '../pool.js';
import { cpuMark, loginAll, members, usageBetween, type Context, type GeneratorUsage, type LoginPhase } from './common.js';
import type { ServerUsage } from '../proc.js';

export interface LoginRun {
  run: number;
  login: LoginPhase;
  generator: GeneratorUsage;
  server: ServerUsage;
  warnings: string[];
}

export async function loginRun(ctx: Context, run: number): Promise<LoginRun> {
  const o = ctx.opts;
  const pool = Pool.start(o.workers, { domain: ctx.target.domain, occupants: o.users, timeoutMs: o.timeoutMs, mechanism: o.mechanism, resource: o.resource });
  try {
    const a = cpuMark(ctx);
    const login = await loginAll(ctx, pool, members(ctx, o.users), `login run ${run}/${o.runs}`);
    const b = cpuMark(ctx);
    const elu = Math.max(...(await pool.all('progress')).map((p) => p.elu));
    const { generator, server } = usageBetween(ctx, a, b, elu);
    return { run, login, generator, server, warnings: [] };
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
}
