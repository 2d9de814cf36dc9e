/**
 * XEP-0220 §2.3: as the receiving server, asking the authoritative server of
 * the originating domain whether a dialback key is its own — on a separate
 * connection of its own, negotiated up to TLS, then <db:verify/>.
 */
import { Element } from 'ltx';
import { openStream, ConnectError } from './connect.js';
import { isDialback } from './link.js';
import type { S2sContext } from './context.js';

export type VerifyOutcome = 'valid' | 'invalid' | 'error';

export async function verifyKey(ctx: S2sContext, q: { receiving: string; originating: string; streamId: string; key: string }): Promise<VerifyOutcome> {
  let open;
  try {
    open = await openStream(ctx, q.receiving, q.originating);
  } catch (err) {
    ctx.logger.info({ remote: q.originating, err: (err as Error).message }, 's2s: cannot reach the authoritative server to verify a dialback key');
    ctx.metrics.s2sFailures.inc({ direction: 'in', reason: err instanceof ConnectError ? `verify-${err.reason}` : 'verify' });
    return 'error';
  }
  const { link, inbox } = open;
  const timer = setTimeout(() => link.destroy('verification timed out'), ctx.s2s.connectTimeoutMs);
  try {
    link.send(new Element('db:verify', { from: q.receiving, to: q.originating, id: q.streamId }).t(q.key));
    for (;;) {
      const el = await inbox.element();
      if (!isDialback(el, 'verify') || el.attrs.id !== q.streamId) continue;
      const type = el.attrs.type;
      return type === 'valid' ? 'valid' : type === 'invalid' ? 'invalid' : 'error';
    }
  } catch (err) {
    ctx.logger.info({ remote: q.originating, err: (err as Error).message }, 's2s: dialback verification failed');
    return 'error';
  } finally {
    clearTimeout(timer);
    link.close('verified');
  }
}
