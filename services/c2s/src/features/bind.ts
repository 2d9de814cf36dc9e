/**
 * Resource binding (RFC 6120 §7): the only thing a client may do between
 * SASL and its session. A bind registers the session in the registry; the
 * new session wins over an older one of the same resource (§7.7.2.2).
 */
import { Element } from 'ltx';
import { randomBytes } from 'node:crypto';
import { NS, StanzaError, iqResult, validateIq } from '@hyphae/stanza';
import { JID, prepResource } from '@hyphae/jid';
import type { SessionEntry } from '@hyphae/store';
import { temporaryFailure } from '../errors.js';
import type { CoreFeature, StreamInternals } from './types.js';

export const bind: CoreFeature = {
  name: 'bind',
  stage: 'post-auth',
  offer: () => new Element('bind', { xmlns: NS.bind }),
  handles: {
    'post-auth': async (el, stream) => {
      if (el.name !== 'iq') return false;
      const invalid = validateIq(el);
      if (invalid) stream.sendError(el, invalid);
      else {
        const payload = el.getChild('bind', NS.bind);
        if (payload && el.attrs.type === 'set') await bindResource(el, payload, stream);
        // Legacy session before bind is out of order; everything else too.
        else stream.sendError(el, new StanzaError('not-allowed', 'Bind a resource first'));
      }
      return true;
    },
    bound: (el, stream) => {
      if (el.name !== 'iq' || !el.getChild('bind', NS.bind)) return false;
      stream.sendError(el, new StanzaError('not-allowed', 'A resource is bound already'));
      return true;
    },
  },
};

async function bindResource(iq: Element, payload: Element, stream: StreamInternals): Promise<void> {
  const rt = stream.rt;
  const requested = payload.getChildText('resource');
  let resource: string;
  if (requested) {
    try {
      resource = prepResource(requested);
    } catch {
      // §7.7.2.1: a resource that cannot be prepared.
      return stream.sendError(iq, new StanzaError('bad-request', 'That resource is not allowed'));
    }
  } else {
    resource = `hyphae-${randomBytes(6).toString('hex')}`; // §7.6: server-generated
  }
  const jid = new JID(stream.username ?? '', stream.domain, resource);
  const bare = jid.toBareString();
  const entry: SessionEntry = {
    resource,
    sessionId: randomBytes(16).toString('hex'),
    node: rt.nodeId,
    priority: 0,
    available: false,
    boundAt: Date.now(),
  };
  let replaced: SessionEntry | null;
  try {
    replaced = await rt.stores.sessions.bind(bare, entry);
  } catch (err) {
    // Outcome unknown (the store was unreachable): take back whatever may
    // have been written; the client may try binding again.
    rt.logger.warn({ err, jid: jid.toString() }, 'bind failed');
    rt.stores.sessions.unbind(bare, resource, entry.sessionId).catch(() => undefined);
    return stream.sendError(iq, temporaryFailure());
  }
  if (!stream.isOpen) {
    // The connection went away while we were binding: leave no ghost behind.
    rt.stores.sessions.unbind(bare, resource, entry.sessionId).catch(() => undefined);
    return;
  }
  stream.bound(jid, entry);
  // §7.7.2.2: the new session wins; the old one ends with <conflict/>, wherever it is.
  if (replaced && replaced.sessionId !== entry.sessionId) rt.closeSession(replaced, 'conflict', 'Replaced by a new connection');
  const res = new Element('bind', { xmlns: NS.bind });
  res.c('jid').t(jid.toString());
  const reply = iqResult(iq, res);
  delete reply.attrs.from;
  stream.send(reply);
  rt.logger.info({ jid: jid.toString(), conn: stream.id, ip: stream.remoteAddress }, 'session bound');
  const session = stream.session;
  if (session) {
    await rt.registry.lifecycle('session/bound', { session, routing: rt.router }, (err) => {
      rt.logger.error({ err, jid: jid.toString() }, 'a session/bound hook failed');
    });
  }
}
