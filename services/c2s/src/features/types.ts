/**
 * The stream features built into c2s, in the manner of xmpp.js's stream
 * features middleware: each is a small object that offers its child of
 * `<stream:features/>` in one stage and takes the elements that belong to it.
 * Modules add theirs through the registry (`streamFeatures`, `nonza`,
 * `preAuthIq`); these need the stream's internals, so they live here.
 */
import type { Element } from 'ltx';
import type { JID } from '@hyphae/jid';
import type { SessionEntry } from '@hyphae/store';
import type { StanzaError, StreamErrorCondition } from '@hyphae/stanza';
import type { StreamContext, StreamStage } from '@hyphae/module-api';
import type { C2sRuntime } from '../runtime.js';
import type { ClientTransport } from '../transport.js';
import type { SaslState } from './sasl.js';

/** What the built-in features may use of the stream (stream.ts implements it). */
export interface StreamInternals extends StreamContext {
  /** Connection id, for logs. */
  readonly id: string;
  readonly rt: C2sRuntime;
  readonly transport: ClientTransport;
  /** TLS is in place, or not required (RFC 6120 §5.3.1). */
  readonly tlsSatisfied: boolean;
  /** The authenticated localpart, once SASL succeeded. */
  readonly username: string | null;
  readonly sasl: SaslState;
  /** Still open: not closing or closed. */
  readonly isOpen: boolean;
  send(data: Element | Uint8Array | string): void;
  /** Answers an element of the client with a stanza error, unless it must not be (RFC 6120 §8.3.1). */
  sendError(el: Element, err: StanzaError): void;
  fail(condition: StreamErrorCondition, text?: string): void;
  /** After `<proceed/>`: the transport turns TLS on and a new stream follows (§5.4.3.3). */
  upgradeTls(): void;
  /** After SASL `<success/>`: the account is known and a new stream follows (§6.4.6). */
  authenticated(localpart: string): void;
  /** After a successful bind: the stream is a session with this JID and registry entry. */
  bound(jid: JID, entry: SessionEntry): void;
}

/** Takes `el` when it belongs to the feature: resolves true; false lets the next one look. */
export type ElementHandler = (el: Element, stream: StreamInternals) => boolean | Promise<boolean>;

export interface CoreFeature {
  readonly name: string;
  /** The stage whose `<stream:features/>` offers it. */
  readonly stage: StreamStage;
  /** The child of `<stream:features/>` to offer now; null (or absent): nothing. */
  offer?(stream: StreamInternals): Element | null;
  /**
   * Elements it takes, per stage. In the 'bound' stage only stanzas get
   * here, without the stream's default namespace, iqs already validated.
   */
  readonly handles?: Partial<Record<StreamStage, ElementHandler>>;
}
