/**
 * What a client sends, by stage of its stream: before authentication and
 * before bind the built-in features take their elements, then module nonzas;
 * anything else ends the stream (RFC 6120 §4.9.3.12). Once bound, stanzas go
 * the stanza/out path and other elements to the module nonza that takes them
 * (XEP-0198, XEP-0352…), or end the stream with <unsupported-stanza-type/>.
 */
import type { Element } from 'ltx';
import type { StreamStage } from '@hyphae/module-api';
import type { JID } from '@hyphae/jid';
import { CORE_FEATURES } from './features/index.js';
import { handleStanza, STANZAS, type OutboundStream } from './stanza-out.js';
import type { C2sSession } from './client-session.js';

export interface ReceivingStream extends OutboundStream {
  readonly stage: StreamStage;
  readonly jid: JID | null;
  readonly session: C2sSession | null;
}

export async function receive(stream: ReceivingStream, el: Element): Promise<void> {
  stream.rt.metrics.stanzas.inc({ direction: 'in', kind: STANZAS.has(el.name) ? el.name : 'nonza' });
  const stage = stream.stage;
  if (stage === 'bound') return receiveBound(stream, el);
  for (const feature of CORE_FEATURES) {
    const handle = feature.handles?.[stage];
    if (handle && (await handle(el, stream))) return;
  }
  if (!STANZAS.has(el.name) && stream.tlsSatisfied && (await moduleNonza(stream, stage, el))) return;
  stream.fail('not-authorized', stage === 'pre-auth' ? 'Authenticate first' : 'Bind a resource first');
}

async function receiveBound(stream: ReceivingStream, el: Element): Promise<void> {
  if (!STANZAS.has(el.name)) {
    if (await moduleNonza(stream, 'bound', el)) return;
    return stream.fail('unsupported-stanza-type', `<${el.name}/> is not a stanza`);
  }
  const jid = stream.jid;
  const session = stream.session;
  if (!jid || !session) return;
  return handleStanza(stream, el, jid, session);
}

/** Hands a nonza to the module that takes it in this stage; false when none does. */
async function moduleNonza(stream: ReceivingStream, stage: StreamStage, el: Element): Promise<boolean> {
  const handler = stream.rt.registry.nonza(stage, el.attrs.xmlns as string | undefined, el.name);
  if (!handler) return false;
  await handler.handle(el, stream);
  return true;
}
