/**
 * The chat scenario: N users online, each sending `<message type="chat">`
 * to its K contacts in turn (ring neighbours, bare JIDs), at an offered
 * total rate stepped up through --rate until latency or loss climbs. Every
 * message is delivered once; the receive side checks loss and per-sender
 * order and records send → receive latency.
 */
import { randomBytes } from 'node:crypto';
import { Pool } from '../pool.js';
import type { ServerUsage } from '../proc.js';
import type { LoadStep } from '../results.js';
import { loginAll, members, sleep, type Context, type GeneratorUsage, type LoginPhase } from './common.js';
import { messagePhase, type MessagesPhase } from './messaging.js';
import { keepStepping } from './steps.js';

export interface MessageStep {
  offered: number;
  messages: MessagesPhase;
  generator: GeneratorUsage;
  server: ServerUsage;
}

export interface ChatRun {
  run: number;
  login: LoginPhase;
  steps: MessageStep[];
  warnings: string[];
}

/** A message step as a point of the load curve (deliveries/s against messages/s offered). */
export function loadStep(s: MessageStep): LoadStep {
  return {
    offered: s.offered,
    achieved: s.messages.deliveriesPerSecond,
    latency: s.messages.latency,
    lost: s.messages.lostDeliveries,
    errors: s.messages.errors,
    serverCores: s.server.processes.length ? s.server.cores : null,
  };
}

/** Steps the rate up through `rates` with `phase`, stopping once the server falls behind. */
export async function stepUp(ctx: Context, label: string, fan: number, phase: (rate: number, step: number) => Promise<MessageStep>): Promise<MessageStep[]> {
  const o = ctx.opts;
  const steps: MessageStep[] = [];
  for (let i = 0; i < o.rates.length; i++) {
    const rate = o.rates[i] as number;
    const s = await phase(rate, i);
    steps.push(s);
    const ls = loadStep(s);
    ctx.log(`${label}: ${rate}/s offered → ${ls.achieved} deliveries/s, p50 ${ls.latency.p50} ms, p99 ${ls.latency.p99} ms, lost ${ls.lost}, server ${ls.serverCores ?? '-'} cores`);
    if (!keepStepping(ls, o.stopP99, rate * fan)) {
      if (i < o.rates.length - 1) ctx.log(`${label}: stopping here (p99 above ${o.stopP99} ms, deliveries below 80% of the offer, or something lost)`);
      break;
    }
    await sleep(1_000);
  }
  return steps;
}

export async function chatRun(ctx: Context, run: number): Promise<ChatRun> {
  const o = ctx.opts;
  const n = o.users;
  const label = `chat run ${run}/${o.runs}`;
  const warnings: string[] = [];
  const runId = `${randomBytes(3).toString('hex')}${run}`;
  const pool = Pool.start(o.workers, { domain: ctx.target.domain, occupants: n, timeoutMs: o.timeoutMs, mechanism: o.mechanism, resource: o.resource });
  try {
    const list = members(ctx, n);
    const login = await loginAll(ctx, pool, list, label);
    const jids = list.map((m) => `${m.username}@${ctx.target.domain}`);
    const steps = await stepUp(ctx, label, 1, async (rate, step) => {
      const r = await messagePhase(ctx, pool, {
        kind: 'chat',
        label: `${label} step ${step + 1}`,
        runId: `${runId}s${step}`,
        room: '',
        jids,
        contacts: o.contacts,
        members: n,
        senders: o.senders > 0 ? o.senders : n,
        rate,
        warnings,
      });
      return { offered: rate, ...r };
    });
    return { run, login, steps, warnings };
  } finally {
    await pool.all('closeAll').catch(() => undefined);
    await pool.terminate();
  }
}
