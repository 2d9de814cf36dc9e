/**
 * File-transfer signalling for end-to-end tests: stanza builders for
 * XEP-0095/0096 stream initiation, XEP-0047 in-band bytestreams, XEP-0065
 * bytestream queries and XEP-0166 Jingle with XEP-0234 file descriptions and
 * XEP-0260 (SOCKS5) / XEP-0261 (IBB) transports; and "manual" peers: a
 * session whose incoming iq-sets of these namespaces are left to the test
 * to answer (instead of @xmpp/client's automatic <service-unavailable/>), so
 * the test decides the exact result or error that travels back.
 */
import { createHash } from 'node:crypto';
import { NS, Session, xml, type XmlElement } from './clients.js';

/** Namespaces of the file-transfer XEPs (protocol facts). */
export const FT_NS = {
  si: 'http://jabber.org/protocol/si',
  siFileTransfer: 'http://jabber.org/protocol/si/profile/file-transfer',
  featureNeg: 'http://jabber.org/protocol/feature-neg',
  data: NS.data,
  ibb: 'http://jabber.org/protocol/ibb',
  bytestreams: 'http://jabber.org/protocol/bytestreams',
  jingle: 'urn:xmpp:jingle:1',
  jingleErrors: 'urn:xmpp:jingle:errors:1',
  jingleFileTransfer: 'urn:xmpp:jingle:apps:file-transfer:5',
  jingleS5b: 'urn:xmpp:jingle:transports:s5b:1',
  jingleIbb: 'urn:xmpp:jingle:transports:ibb:1',
  hashes: 'urn:xmpp:hashes:2',
} as const;

// ---------------------------------------------------------------------------
// Manual peers.

const manual = new WeakSet<Session>();
/** Never settles: @xmpp/client then sends no reply of its own. */
const hold = (): Promise<XmlElement> => new Promise<XmlElement>(() => undefined);

/**
 * Leaves incoming iq-sets (and gets) of the file-transfer namespaces to the
 * test: they stay in the session's inbox, and nothing answers them unless
 * the test does (replyResult / replyError).
 */
export function manualPeer(s: Session): Session {
  if (manual.has(s)) return s;
  manual.add(s);
  const routes: Array<[string, string]> = [
    [FT_NS.si, 'si'],
    [FT_NS.ibb, 'open'],
    [FT_NS.ibb, 'data'],
    [FT_NS.ibb, 'close'],
    [FT_NS.jingle, 'jingle'],
    [FT_NS.bytestreams, 'query'],
  ];
  for (const [ns, name] of routes) {
    s.client.iqCallee.set(ns, name, hold);
    s.client.iqCallee.get(ns, name, hold);
  }
  return s;
}

/** The next iq-set whose payload is `name` in `ns` (and matches `pred`), buffered or future. */
export function nextSet(s: Session, ns: string, name: string, pred: (iq: XmlElement) => boolean = () => true, timeoutMs = 10_000): Promise<XmlElement> {
  return s.waitFor(
    (el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild(name, ns) !== undefined && pred(el),
    timeoutMs,
    `an iq-set <${name} xmlns='${ns}'/>`,
  );
}

/** Answers an iq with type='result' (and an optional payload). */
export function replyResult(s: Session, iq: XmlElement, payload?: XmlElement): Promise<void> {
  return s.send(xml('iq', { type: 'result', to: iq.attrs.from, id: iq.attrs.id }, payload));
}

/** Answers an iq with type='error' carrying exactly `error`. */
export function replyError(s: Session, iq: XmlElement, error: XmlElement): Promise<void> {
  return s.send(xml('iq', { type: 'error', to: iq.attrs.from, id: iq.attrs.id }, error));
}

/** `<error type=…><condition xmlns=stanzas/>[<text/>][app condition]</error>` (RFC 6120 §8.3.2). */
export function stanzaError(type: string, condition: string, opts: { text?: string; app?: XmlElement } = {}): XmlElement {
  return xml(
    'error',
    { type },
    xml(condition, { xmlns: NS.stanzas }),
    opts.text !== undefined ? xml('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }, opts.text) : null,
    opts.app ?? null,
  );
}

/**
 * A canonical text of an element: name, attributes sorted, children in
 * order, whitespace-only text between elements dropped. Two elements with
 * the same canonical text are the same XML (prefixes and quoting aside).
 */
export function canonical(el: XmlElement): string {
  const attrs = Object.entries(el.attrs)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => ` ${k}=${JSON.stringify(v)}`)
    .join('');
  const kids = el.children
    .map((c) => (typeof c === 'string' ? (c.trim() === '' && el.children.some((o) => typeof o !== 'string') ? '' : JSON.stringify(c)) : canonical(c)))
    .join('');
  return `<${el.name}${attrs}>${kids}</${el.name}>`;
}

// ---------------------------------------------------------------------------
// XEP-0095 / XEP-0096 stream initiation.

export interface FileInfo {
  name: string;
  size: number;
  /** The content, for the hashes: XEP-0096 'hash' (hex MD5), XEP-0234 <hash/> (XEP-0300, sha-256). */
  content?: Buffer;
  desc?: string;
  mediaType?: string;
  date?: string;
}

/** XEP-0096 §3.1 offer: `<si profile=file-transfer><file/><feature><x type=form><field var=stream-method>…`. */
export function siOffer(sid: string, file: FileInfo, methods: readonly string[]): XmlElement {
  const fileAttrs: Record<string, string> = { xmlns: FT_NS.siFileTransfer, name: file.name, size: String(file.size) };
  if (file.content) fileAttrs.hash = createHash('md5').update(file.content).digest('hex');
  if (file.date) fileAttrs.date = file.date;
  return xml(
    'si',
    { xmlns: FT_NS.si, id: sid, 'mime-type': file.mediaType ?? 'application/octet-stream', profile: FT_NS.siFileTransfer },
    xml('file', fileAttrs, file.desc !== undefined ? xml('desc', {}, file.desc) : null),
    xml(
      'feature',
      { xmlns: FT_NS.featureNeg },
      xml(
        'x',
        { xmlns: FT_NS.data, type: 'form' },
        xml('field', { var: 'stream-method', type: 'list-single' }, ...methods.map((m) => xml('option', {}, xml('value', {}, m)))),
      ),
    ),
  );
}

/** XEP-0095 §3.2 acceptance: the chosen stream method in a submitted form. */
export function siAccept(method: string): XmlElement {
  return xml(
    'si',
    { xmlns: FT_NS.si },
    xml('feature', { xmlns: FT_NS.featureNeg }, xml('x', { xmlns: FT_NS.data, type: 'submit' }, xml('field', { var: 'stream-method' }, xml('value', {}, method)))),
  );
}

// ---------------------------------------------------------------------------
// XEP-0047 in-band bytestreams.

export function ibbOpen(sid: string, blockSize: number, stanza: 'iq' | 'message' = 'iq'): XmlElement {
  return xml('open', { xmlns: FT_NS.ibb, 'block-size': String(blockSize), sid, stanza });
}

export function ibbData(sid: string, seq: number, bytes: Buffer): XmlElement {
  return xml('data', { xmlns: FT_NS.ibb, seq: String(seq & 0xffff), sid }, bytes.toString('base64'));
}

export function ibbClose(sid: string): XmlElement {
  return xml('close', { xmlns: FT_NS.ibb, sid });
}

/** Decodes a `<data/>` strictly (RFC 4648 §4 alphabet, padding only at the end). */
export function ibbDecode(data: XmlElement): Buffer {
  const text = data.text().replace(/\s+/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) throw new Error(`not base64: ${text.slice(0, 40)}…`);
  return Buffer.from(text, 'base64');
}

// ---------------------------------------------------------------------------
// XEP-0065 bytestreams.

export interface StreamHost {
  jid: string;
  host: string;
  port: number;
}

/** `<query xmlns=bytestreams/>`: to a proxy, the streamhost request (§4). */
export function bytestreamsQuery(): XmlElement {
  return xml('query', { xmlns: FT_NS.bytestreams });
}

/** The requester's offer to the target (§6.3.1). */
export function bytestreamsOffer(sid: string, hosts: readonly StreamHost[]): XmlElement {
  return xml('query', { xmlns: FT_NS.bytestreams, sid, mode: 'tcp' }, ...hosts.map((h) => xml('streamhost', { jid: h.jid, host: h.host, port: String(h.port) })));
}

/** The target's answer (§6.3.3). */
export function streamhostUsed(sid: string, jid: string): XmlElement {
  return xml('query', { xmlns: FT_NS.bytestreams, sid }, xml('streamhost-used', { jid }));
}

/** The requester's activation request to the proxy (§6.3.5). */
export function activate(sid: string, target: string): XmlElement {
  return xml('query', { xmlns: FT_NS.bytestreams, sid }, xml('activate', {}, target));
}

/** The streamhosts of a proxy's answer. */
export function streamhostsOf(answer: XmlElement): StreamHost[] {
  return (answer.getChild('query', FT_NS.bytestreams)?.getChildren('streamhost') ?? []).map((h) => ({
    jid: String(h.attrs.jid),
    host: String(h.attrs.host),
    port: h.attrs.port === undefined ? 1080 : Number(h.attrs.port),
  }));
}

// ---------------------------------------------------------------------------
// XEP-0166 Jingle, XEP-0234 file transfer, XEP-0260/0261 transports.

export function jingle(action: string, sid: string, attrs: Record<string, string>, ...children: XmlElement[]): XmlElement {
  return xml('jingle', { xmlns: FT_NS.jingle, action, sid, ...attrs }, ...children);
}

export function content(name: string, creator: 'initiator' | 'responder', senders: string | undefined, ...children: XmlElement[]): XmlElement {
  return xml('content', senders === undefined ? { creator, name } : { creator, name, senders }, ...children);
}

/** XEP-0234 §5 `<description><file>…</file></description>` with a XEP-0300 sha-256 hash when the content is known. */
export function fileDescription(file: FileInfo): XmlElement {
  return xml(
    'description',
    { xmlns: FT_NS.jingleFileTransfer },
    xml(
      'file',
      {},
      file.date !== undefined ? xml('date', {}, file.date) : null,
      file.desc !== undefined ? xml('desc', {}, file.desc) : null,
      xml('media-type', {}, file.mediaType ?? 'application/octet-stream'),
      xml('name', {}, file.name),
      xml('range', {}),
      xml('size', {}, String(file.size)),
      file.content ? xml('hash', { xmlns: FT_NS.hashes, algo: 'sha-256' }, createHash('sha256').update(file.content).digest('base64')) : null,
    ),
  );
}

export interface S5bCandidate {
  cid: string;
  host: string;
  jid: string;
  port: number;
  priority: number;
  type: 'direct' | 'assisted' | 'tunnel' | 'proxy';
}

/** XEP-0260 `<transport xmlns=s5b sid [dstaddr] [mode]>` with candidates (or a transport-info child). */
export function s5bTransport(sid: string, opts: { dstaddr?: string; mode?: 'tcp' | 'udp' }, ...children: XmlElement[]): XmlElement {
  const attrs: Record<string, string> = { xmlns: FT_NS.jingleS5b, sid };
  if (opts.dstaddr) attrs.dstaddr = opts.dstaddr;
  if (opts.mode) attrs.mode = opts.mode;
  return xml('transport', attrs, ...children);
}

export function s5bCandidate(c: S5bCandidate): XmlElement {
  return xml('candidate', { cid: c.cid, host: c.host, jid: c.jid, port: String(c.port), priority: String(c.priority), type: c.type });
}

/** XEP-0261 `<transport xmlns=ibb block-size sid [stanza]/>`. */
export function ibbTransport(sid: string, blockSize: number, stanza?: 'iq' | 'message'): XmlElement {
  return xml('transport', stanza ? { xmlns: FT_NS.jingleIbb, 'block-size': String(blockSize), sid, stanza } : { xmlns: FT_NS.jingleIbb, 'block-size': String(blockSize), sid });
}

/** XEP-0166 §6.7 `<reason><condition/>[<text/>]</reason>`. */
export function reason(condition: string, text?: string): XmlElement {
  return xml('reason', {}, xml(condition, {}), text !== undefined ? xml('text', {}, text) : null);
}

/** XEP-0166 §7.2.x: the unknown-session error (item-not-found + <unknown-session/>). */
export function unknownSessionError(): XmlElement {
  return stanzaError('cancel', 'item-not-found', { app: xml('unknown-session', { xmlns: FT_NS.jingleErrors }) });
}
