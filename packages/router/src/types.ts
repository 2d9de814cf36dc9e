import type { Element } from 'ltx';
import type { JID } from '@hyphae/jid';

/** XEP (or RFC) a module implements, for the compliance table. */
export interface Spec {
  spec: string;
  version?: string;
}

/**
 * Where an iq handler listens:
 * - 'host': addressed to a served domain (or domain/resource);
 * - 'account': addressed to a local account's bare JID, or with no 'to'
 *   (RFC 6120 §10.3.3: the server answers on the account's behalf).
 */
export type IqTarget = 'host' | 'account';

export interface IqRequest {
  iq: Element;
  /** The child that selected the handler. */
  payload: Element;
  /** Sender (stamped by the edge). */
  from: JID;
  /** Resolved target: a domain JID for 'host', a bare JID for 'account'. */
  to: JID;
}

/**
 * Returns the result payload (null for an empty result), or throws a
 * StanzaError that becomes the error reply.
 */
export type IqHandler = (req: IqRequest) => Promise<Element | null | IqReply> | Element | null | IqReply;

export interface IqRoute {
  target: IqTarget;
  type: 'get' | 'set';
  xmlns: string;
  /** Element name of the payload child. */
  name: string;
  handle: IqHandler;
}

/**
 * One protocol area (Prosody's mod_* model): what it adds to disco, and the
 * stanzas it answers.
 */
export interface ServerModule {
  readonly name: string;
  readonly specs: Spec[];
  /** disco#info features of the server (host) and of accounts. */
  readonly hostFeatures?: string[];
  readonly accountFeatures?: string[];
  readonly iq?: IqRoute[];
  /**
   * XEP-0030 nodes of the host this module answers (e.g. XEP-0050's
   * `http://jabber.org/protocol/commands`): the children of the disco#info
   * or disco#items `<query node=…/>`, or null when `node` is not this
   * module's. May throw a StanzaError (e.g. `<forbidden/>`). A node no
   * module claims is `<item-not-found/>`.
   */
  readonly hostDiscoNode?: (kind: 'info' | 'items', node: string, req: IqRequest) => Promise<Element[] | null> | Element[] | null;
}

/** A handler's answer with work to do once the reply is on its way (e.g. closing sessions). */
export interface IqReply {
  payload: Element | null;
  after: () => Promise<void>;
}
