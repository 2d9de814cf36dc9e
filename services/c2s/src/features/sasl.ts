/**
 * SASL (RFC 6120 §6): the mechanisms of `c2s.saslMechanisms` (PLAIN only
 * over TLS, §13.8), challenges and responses in base64 (§6.4.2), at most
 * MAX_AUTH_FAILURES failures (§6.4.5), and on success a new stream (§6.4.6).
 */
import { Element } from 'ltx';
import { NS } from '@hyphae/stanza';
import { prepLocal } from '@hyphae/jid';
import { createMechanism, type MechanismName, type SaslMechanismServer, type SaslStep } from '@hyphae/sasl';
import type { CoreFeature, StreamInternals } from './types.js';

/** The negotiation in progress on one stream. */
export interface SaslState {
  mechanism: SaslMechanismServer | null;
  failures: number;
}

export function newSaslState(): SaslState {
  return { mechanism: null, failures: 0 };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 6120 §6.4.5: a reasonable number of retries, then the stream ends. */
const MAX_AUTH_FAILURES = 3;
const ELEMENTS = new Set(['auth', 'response', 'abort']);

function offeredMechanisms(stream: StreamInternals): MechanismName[] {
  // PLAIN sends the password itself: only over TLS (RFC 6120 §13.8).
  return stream.rt.config.c2s.saslMechanisms.filter((m) => m !== 'PLAIN' || stream.secure);
}

export const sasl: CoreFeature = {
  name: 'sasl',
  stage: 'pre-auth',
  offer(stream) {
    if (!stream.tlsSatisfied) return null;
    const mechs = new Element('mechanisms', { xmlns: NS.sasl });
    for (const m of offeredMechanisms(stream)) mechs.c('mechanism').t(m);
    return mechs;
  },
  handles: {
    'pre-auth': async (el, stream) => {
      if (el.attrs.xmlns !== NS.sasl || !ELEMENTS.has(el.name)) return false;
      // §5.3.1: TLS is mandatory-to-negotiate here.
      if (!stream.tlsSatisfied) saslFailure(stream, 'encryption-required', 'Use STARTTLS first');
      else await negotiate(el, stream);
      return true;
    },
  },
};

function saslFailure(stream: StreamInternals, condition: string, text?: string): void {
  const f = new Element('failure', { xmlns: NS.sasl });
  f.c(condition);
  if (text) f.c('text', { 'xml:lang': 'en' }).t(text);
  stream.send(f);
}

function authFailed(stream: StreamInternals, condition: string, text?: string): void {
  stream.rt.metrics.logins.inc({ result: 'failed', mechanism: condition });
  saslFailure(stream, condition, text);
  if (++stream.sasl.failures >= MAX_AUTH_FAILURES) stream.fail('policy-violation', 'Too many failed authentication attempts');
}

function authorizeAs(stream: StreamInternals, username: string, authzid: string): boolean {
  try {
    return authzid === `${prepLocal(username)}@${stream.domain}`;
  } catch {
    return false;
  }
}

async function negotiate(el: Element, stream: StreamInternals): Promise<void> {
  const state = stream.sasl;
  if (el.name === 'abort') {
    state.mechanism = null;
    return saslFailure(stream, 'aborted');
  }
  let data: Buffer | null = null;
  const text = el.getText();
  if (text !== '') {
    // §6.4.2: '=' is an empty response; anything else must be valid base64.
    if (text === '=') data = Buffer.alloc(0);
    else if (BASE64.test(text)) data = Buffer.from(text, 'base64');
    else {
      state.mechanism = null;
      return authFailed(stream, 'incorrect-encoding');
    }
  }
  const rt = stream.rt;
  let step: SaslStep;
  if (el.name === 'auth') {
    const name = el.attrs.mechanism as string | undefined;
    const offered = offeredMechanisms(stream) as string[];
    if (!name || !offered.includes(name)) return authFailed(stream, 'invalid-mechanism');
    state.mechanism = createMechanism(name as MechanismName, {
      lookup: (username) => rt.lookupCredentials(stream.domain, username),
      authorize: (username, authzid) => authorizeAs(stream, username, authzid),
      // Same fake salt for an unknown user on every node: no account enumeration.
      unknownUserSecret: rt.unknownUserSecret,
      unknownUserIterations: rt.config.c2s.scramIterations,
    });
    step = await state.mechanism.start(data);
  } else {
    if (!state.mechanism) return authFailed(stream, 'malformed-request');
    step = await state.mechanism.step(data ?? Buffer.alloc(0));
  }
  switch (step.kind) {
    case 'challenge':
      return stream.send(new Element('challenge', { xmlns: NS.sasl }).t(step.data.length ? step.data.toString('base64') : '='));
    case 'failure':
      state.mechanism = null;
      return authFailed(stream, step.condition, step.text);
    case 'success': {
      const mechanism = state.mechanism?.name ?? 'unknown';
      state.mechanism = null;
      let local: string;
      try {
        local = prepLocal(step.username);
      } catch {
        return authFailed(stream, 'not-authorized');
      }
      rt.metrics.logins.inc({ result: 'ok', mechanism });
      const success = new Element('success', { xmlns: NS.sasl });
      if (step.data && step.data.length) success.t(step.data.toString('base64'));
      stream.send(success);
      stream.authenticated(local);
      return;
    }
  }
}
