// Minimal typings for the parts of @xmpp/client 0.14 (plain JavaScript, no
// bundled types) that the e2e harness uses. Elements are ltx elements.
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events';

  export type XmlChild = XmlElement | string | null | undefined | false;

  export interface XmlElement {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<XmlElement | string>;
    parent: XmlElement | null;
    is(name: string, xmlns?: string): boolean;
    getName(): string;
    getNS(): string | undefined;
    getAttr(name: string): string | undefined;
    getChild(name: string, xmlns?: string): XmlElement | undefined;
    getChildren(name: string, xmlns?: string): XmlElement[];
    getChildElements(): XmlElement[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    text(): string;
    c(name: string, attrs?: Record<string, string>): XmlElement;
    t(text: string): XmlElement;
    up(): XmlElement;
    append(...nodes: XmlChild[]): XmlElement;
    toString(): string;
  }

  export interface XmlParser extends EventEmitter {
    write(data: string): void;
    end(data?: string): void;
  }

  export interface XmlFactory {
    (name: string, attrs?: Record<string, string | undefined> | null, ...children: XmlChild[]): XmlElement;
    Element: new (name: string, attrs?: Record<string, string | undefined>) => XmlElement;
    Parser: new () => XmlParser;
    escapeXML(s: string): string;
  }
  export const xml: XmlFactory;

  export interface Jid {
    local: string;
    domain: string;
    resource: string;
    bare(): Jid;
    toString(): string;
  }
  export function jid(address: string): Jid;
  export function jid(local: string, domain: string, resource?: string): Jid;

  export interface XmppError extends Error {
    condition: string;
    text: string;
    element?: XmlElement;
  }

  export interface Credentials {
    username: string;
    password: string;
  }

  export type Authenticate = (credentials: Credentials, mechanism: string) => Promise<void>;

  export interface ClientOptions {
    service: string;
    domain: string;
    resource?: string;
    username?: string;
    password?: string;
    credentials?: (authenticate: Authenticate, mechanisms: string[], fast: unknown, entity: unknown) => Promise<void>;
    timeout?: number;
  }

  export interface IqContext {
    stanza: XmlElement;
    element: XmlElement;
    from: Jid;
    to: Jid;
  }
  export type IqHandler = (ctx: IqContext) => XmlElement | Promise<XmlElement> | undefined | boolean;

  export interface Client extends EventEmitter {
    jid: Jid | null;
    status: string;
    socket: unknown;
    timeout: number;
    reconnect: { stop(): void; start(): void };
    iqCaller: { request(el: XmlElement, timeoutMs?: number): Promise<XmlElement> };
    iqCallee: { get(ns: string, name: string, handler: IqHandler): void; set(ns: string, name: string, handler: IqHandler): void };
    isSecure(): boolean;
    start(): Promise<Jid>;
    /** Opens the socket (the first half of start()). */
    connect(service: string): Promise<void>;
    /** Opens the stream; negotiation goes on until 'online' (the second half of start()). */
    open(options: { domain: string; lang?: string }): Promise<unknown>;
    stop(): Promise<unknown>;
    disconnect(): Promise<unknown>;
    send(el: XmlElement): Promise<void>;
    write(s: string): Promise<void>;
  }

  export function client(options: ClientOptions): Client;
}
