/**
 * One outbound stream per pair (local domain, remote domain): stanzas are
 * queued while it is set up and written in order once it is authenticated;
 * if it cannot be set up, every queued stanza is bounced to its sender with
 * <remote-server-not-found/> or <remote-server-timeout/> (never silent
 * loss). Idle streams close and are reopened on demand.
 */
import { parse } from 'ltx';
import { tryParseJid } from '@hyphae/jid';
import { StanzaError, canReplyWithError, type StanzaErrorCondition } from '@hyphae/stanza';
import type { S2sResult } from '@hyphae/router';
import { authenticate, openStream, ConnectError, type AuthMethod } from './connect.js';
import type { Link } from './link.js';
import type { S2sContext } from './context.js';

const dec = new TextDecoder();

export interface Queued {
  data: Uint8Array;
  respond(result: S2sResult): void;
}

/**
 * Bounces one stanza to its (local) sender through the router. Never
 * rejects (callers do not wait for it): an error that cannot be routed (the
 * session registry out of reach) is logged.
 */
export async function bounce(ctx: Pick<S2sContext, 'metrics' | 'router' | 'logger'>, data: Uint8Array, condition: StanzaErrorCondition, text?: string): Promise<void> {
  ctx.metrics.s2sBounced.inc({ condition });
  let stanza;
  try {
    stanza = parse(dec.decode(data));
  } catch {
    return;
  }
  if (!canReplyWithError(stanza)) return;
  const from = tryParseJid(String(stanza.attrs.from ?? ''));
  if (!from) return;
  try {
    await ctx.router.bounce(stanza, from, new StanzaError(condition, text));
  } catch (err) {
    ctx.logger.warn({ err, to: from.toString(), condition }, 's2s: could not bounce a stanza to its sender');
  }
}

export class OutboundStream {
  private state: 'connecting' | 'ready' | 'closed' = 'connecting';
  private queue: Queued[] = [];
  private link: Link | null = null;
  private idle: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  method: AuthMethod | null = null;

  constructor(
    private readonly ctx: S2sContext,
    readonly local: string,
    readonly remote: string,
    /** Called once when the stream is gone (failed, closed, idle). */
    private readonly onGone: (s: OutboundStream) => void,
  ) {
    // Stanzas wait at most queueTimeoutMs for the stream (then the senders hear so).
    this.deadline = setTimeout(() => this.fail('remote-server-timeout', 'timeout', `No stream to ${remote} after ${ctx.s2s.queueTimeoutMs} ms`), ctx.s2s.queueTimeoutMs);
    this.deadline.unref();
    void this.setUp();
  }

  /** Closed, or its connection is gone and the close not yet processed: the next stanza needs a new stream. */
  get isClosed(): boolean {
    return this.state === 'closed' || (this.state === 'ready' && (this.link?.isClosed ?? true));
  }

  enqueue(item: Queued): void {
    if (this.state === 'ready' && this.link && !this.link.isClosed) {
      this.write(item);
      return;
    }
    if (this.isClosed) {
      void bounce(this.ctx, item.data, 'remote-server-not-found', `The stream to ${this.remote} is closed`).finally(() => item.respond('bounced'));
      return;
    }
    if (this.queue.length >= this.ctx.s2s.maxQueue) {
      void bounce(this.ctx, item.data, 'resource-constraint', `Too many stanzas waiting for ${this.remote}`).finally(() => item.respond('bounced'));
      return;
    }
    this.queue.push(item);
  }

  private write(item: Queued): void {
    this.link?.send(item.data);
    this.ctx.metrics.stanzas.inc({ direction: 'out', kind: 's2s' });
    this.idle?.refresh();
    item.respond('sent');
  }

  private async setUp(): Promise<void> {
    const { ctx, local, remote } = this;
    const started = performance.now();
    try {
      const open = await openStream(ctx, local, remote);
      if (this.isClosed) {
        open.link.close();
        return;
      }
      this.link = open.link;
      this.method = await authenticate(ctx, open, local, remote);
      if (this.isClosed) {
        open.link.close();
        return;
      }
      // From now on the inbox only sees what a peer might send on our stream (errors, its close).
      open.inbox.redirect((e) => {
        if (e.kind === 'closed') this.gone(`closed: ${e.reason}`);
        else if (e.kind === 'element' && e.el.name === 'stream:error') {
          ctx.logger.info({ remote, condition: e.el.getChildElements()[0]?.name }, 's2s: stream error from the peer');
        }
      });
      if (open.link.isClosed) throw new ConnectError('stream', 'closed right after authentication');
      this.state = 'ready';
      if (this.deadline) clearTimeout(this.deadline);
      ctx.metrics.s2sAuth.inc({ direction: 'out', method: this.method });
      ctx.metrics.s2sStreams.inc({ direction: 'out', remote });
      ctx.logger.info({ local, remote, method: this.method, host: open.candidate.host, port: open.candidate.port, directTls: open.candidate.directTls, ms: Math.round(performance.now() - started) }, 's2s: outbound stream ready');
      this.idle = setTimeout(() => this.close('idle'), ctx.s2s.idleTimeoutMs);
      this.idle.unref();
      const queued = this.queue;
      this.queue = [];
      for (const item of queued) this.write(item);
    } catch (err) {
      const e = err instanceof ConnectError ? err : new ConnectError('stream', String(err));
      ctx.logger.warn({ local, remote, reason: e.reason, err: e.message }, 's2s: outbound stream failed');
      this.fail(e.reason === 'timeout' ? 'remote-server-timeout' : 'remote-server-not-found', e.reason, e.message);
    }
  }

  /** The stream could not be set up: every queued stanza is bounced. */
  private fail(condition: StanzaErrorCondition, reason: string, text: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.ctx.metrics.s2sFailures.inc({ direction: 'out', reason });
    this.cleanup();
    this.link?.destroy(text);
    const queued = this.queue;
    this.queue = [];
    for (const item of queued) void bounce(this.ctx, item.data, condition, text).finally(() => item.respond('bounced'));
    this.onGone(this);
  }

  /** Closes a ready stream (idle, shutdown). */
  close(why: string): void {
    if (this.state === 'closed') return;
    if (this.state === 'connecting') return this.fail('remote-server-not-found', 'shutdown', 'The server is shutting down');
    this.ctx.logger.debug({ local: this.local, remote: this.remote, why }, 's2s: closing outbound stream');
    this.link?.close(why);
    this.gone(why);
  }

  private gone(why: string): void {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    this.cleanup();
    if (wasReady) this.ctx.metrics.s2sStreams.dec({ direction: 'out', remote: this.remote });
    this.ctx.logger.debug({ local: this.local, remote: this.remote, why }, 's2s: outbound stream gone');
    // Nothing waits once the stream is ready, but never leave a sender without an answer.
    for (const item of this.queue.splice(0)) void bounce(this.ctx, item.data, 'remote-server-not-found', why).finally(() => item.respond('bounced'));
    this.onGone(this);
  }

  private cleanup(): void {
    if (this.deadline) clearTimeout(this.deadline);
    if (this.idle) clearTimeout(this.idle);
  }
}
