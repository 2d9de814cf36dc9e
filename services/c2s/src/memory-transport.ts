/**
 * An in-memory transport for tests of the stream layer, framed as RFC 7395
 * (WebSocket) frames it: one element per message, `<open/>` and `<close/>`
 * instead of the stream header — so the tests also prove the stream layer
 * needs neither TCP nor `<stream:stream>`. `startTls` can be switched on to
 * stand for a STARTTLS-capable transport.
 */
import { parse, type Element } from 'ltx';
import { escapeAttr } from '@hyphae/xml';
import type { ClientTransport, FramingError, TransportEvents } from './transport.js';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const dec = new TextDecoder();

export interface MemoryTransportOptions {
  secure?: boolean;
  /** Offer STARTTLS (the transport becomes secure when it is used). */
  startTls?: boolean;
  remoteAddress?: string;
}

export class MemoryTransport implements ClientTransport {
  readonly name = 'memory';
  readonly remoteAddress: string;
  secure: boolean;
  /** Every write, as written. */
  readonly written: Array<string | Uint8Array> = [];
  /** Calls of the framing hooks and controls, in order ('restart', 'startTls', 'close', …). */
  readonly calls: string[] = [];
  closed = false;
  /** What the client has not read yet, as the test sets it (a slow reader). */
  backlog = 0;
  private readonly tls: boolean;
  private events: TransportEvents | null = null;
  private read = 0;
  private waiter: (() => void) | null = null;

  constructor(opts: MemoryTransportOptions = {}) {
    this.secure = opts.secure ?? true;
    this.tls = opts.startTls ?? false;
    this.remoteAddress = opts.remoteAddress ?? '192.0.2.7';
    if (this.tls) this.startTls = () => {
      this.calls.push('startTls');
      this.secure = true;
    };
  }

  get canStartTls(): boolean {
    return this.tls && !this.secure;
  }

  startTls?: () => void;

  start(events: TransportEvents): void {
    this.events = events;
  }

  // --- the client's side -----------------------------------------------------------

  /** The client sends one message: `<open/>`, `<close/>` or an element. */
  receive(xml: string): void {
    const events = this.events;
    if (!events) throw new Error('not started');
    events.onBytes(Buffer.byteLength(xml));
    let el: Element;
    try {
      el = parse(xml) as Element;
    } catch {
      return events.onError({ condition: 'not-well-formed' });
    }
    if (el.name === 'open') return events.onStreamStart(el.name, el.attrs as Record<string, string>);
    if (el.name === 'close') return events.onStreamEnd();
    events.onElement(el);
  }

  /** Opens (or reopens) the client's stream to `to`. */
  open(to = 'example.org'): void {
    this.receive(`<open xmlns='${NS_FRAMING}' to='${escapeAttr(to)}' version='1.0'/>`);
  }

  /** The next element written to the client (waits for it). */
  async next(timeoutMs = 2000): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    while (this.read >= this.written.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nothing written within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const data = this.written[this.read++] as string | Uint8Array;
    return parse(typeof data === 'string' ? data : dec.decode(data)) as Element;
  }

  /** Everything written and not read yet, parsed. */
  drain(): Element[] {
    const out = this.written.slice(this.read).map((d) => parse(typeof d === 'string' ? d : dec.decode(d)) as Element);
    this.read = this.written.length;
    return out;
  }

  // --- ClientTransport -------------------------------------------------------------

  checkStreamStart(name: string, attrs: Readonly<Record<string, string>>): FramingError | null {
    if (name !== 'open' || attrs.xmlns !== NS_FRAMING) return { condition: 'invalid-namespace' };
    return null;
  }

  openStream(attrs: Record<string, string>): void {
    const a = Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeAttr(v)}'`).join('');
    this.write(`<open xmlns='${NS_FRAMING}'${a}/>`);
  }

  closeStream(): void {
    this.write(`<close xmlns='${NS_FRAMING}'/>`);
  }

  restartStream(): void {
    this.calls.push('restart');
  }

  write(data: string | Uint8Array): void {
    this.written.push(data);
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  flush(): void {}

  pause(): void {
    this.calls.push('pause');
  }

  resume(): void {
    this.calls.push('resume');
  }

  close(): void {
    this.calls.push('close');
    this.closed = true;
  }

  destroy(): void {
    this.calls.push('destroy');
    this.closed = true;
  }

  /** The connection drops (the peer went away). */
  drop(): void {
    this.events?.onClosed('closed');
  }
}
