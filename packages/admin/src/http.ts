/**
 * The admin HTTP API, served under `/admin` on each process's metrics/health
 * port (`http.host`:`http.port`), or on a listener of its own
 * (`http.adminHost`:`http.adminPort`, server.ts). JSON in, JSON out:
 *
 * | method | path | body | answer |
 * |---|---|---|---|
 * | GET | /admin/status | | ServiceStatus |
 * | GET | /admin/users?domain=d[&online=1] | | `{domain, users: [bare JID], count}` (domain omitted: every served domain; online: users with a session) |
 * | POST | /admin/users | `{jid, password}` | 201 `{jid}` |
 * | PUT | /admin/users/<jid> | `{password}` | `{jid}` |
 * | DELETE | /admin/users/<jid> | | `{jid, sessionsClosed}` |
 *
 * Errors: `{error: <code>, message}` with 400 (bad-request, invalid-jid,
 * unknown-domain, invalid-password), 401 (unauthorized), 403 (forbidden),
 * 404 (not-found: no such account; no-such-endpoint), 405
 * (method-not-allowed), 409 (conflict), 413 (payload-too-large), 415
 * (unsupported-media-type), 503 (unavailable: the store is unreachable),
 * 500 (internal).
 *
 * Access, checked in this order before anything else:
 * - Host: a loopback name (localhost), an IP address or one of
 *   `http.adminServerNames`; any other name is 403 — a browser tricked by
 *   DNS rebinding sends the attacker's name (an IP address cannot be
 *   rebound).
 * - Origin, when a browser sends one, must be this API's own origin, and
 *   Sec-Fetch-Site, when sent, same-origin or none: 403 otherwise (CSRF).
 *   No CORS header is ever sent, so a cross-origin page gets no preflight
 *   through either.
 * - With `http.adminToken` every request needs `Authorization: Bearer
 *   <token>` (whoever sends it). Without one only loopback clients are
 *   served, judged by the socket's address alone; a request carrying
 *   Forwarded / X-Forwarded-For / X-Real-IP came through a proxy and is
 *   refused (a proxy on the same host would otherwise make anyone
 *   "loopback"). A listener on a non-loopback address without a token is
 *   refused at start (AdminConfigError; the configuration refuses it too).
 * - A request with a body must be `Content-Type: application/json` (415):
 *   the forms and text/plain bodies a cross-site page can send without a
 *   preflight are never read.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { isLoopbackHost } from '@hyphae/config';
import type { Logger } from '@hyphae/observability';
import { StoreError } from '@hyphae/store';
import { AdminError, type AdminErrorCode } from './errors.js';
import type { Admin } from './ops.js';

export const ADMIN_PREFIX = '/admin';
/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Error codes of the HTTP API beyond the operations' own. */
export type HttpErrorCode =
  | AdminErrorCode
  | 'bad-request'
  | 'unauthorized'
  | 'forbidden'
  | 'no-such-endpoint'
  | 'method-not-allowed'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'unavailable'
  | 'internal';

/** The JSON body of every error answer. */
export interface HttpErrorBody {
  error: HttpErrorCode;
  message: string;
}

const STATUS: Record<HttpErrorCode, number> = {
  'bad-request': 400,
  'invalid-jid': 400,
  'unknown-domain': 400,
  'invalid-password': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  'no-such-endpoint': 404,
  'method-not-allowed': 405,
  conflict: 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  internal: 500,
  unavailable: 503,
};

export function httpStatusOf(code: HttpErrorCode): number {
  return STATUS[code];
}

class HttpError extends Error {
  constructor(readonly code: HttpErrorCode, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface AdminHttpOptions {
  /** `http.adminToken`: when set, required as a bearer token; null: loopback clients only. */
  token: string | null;
  /** Address the listener serving the API is bound to: unless it is loopback, a token is required. */
  listenHost: string;
  /** `http.adminServerNames`: Host header names accepted besides localhost and IP addresses. */
  serverNames?: readonly string[];
  logger?: Logger;
}

/** The API would be reachable beyond this host without a token: refused at start. */
export class AdminConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(message);
    this.name = 'AdminConfigError';
  }
}

/** Throws AdminConfigError when a listener on `listenHost` would serve the API without a token. */
export function checkExposure(listenHost: string, token: string | null): void {
  if (token === null && !isLoopbackHost(listenHost)) {
    throw new AdminConfigError('http.adminToken',
      `the admin API would listen on ${listenHost}, which is not loopback, without http.adminToken: set a token, or bind the API to loopback`);
  }
}

/** Whether a socket's remote address is loopback (127.0.0.0/8, ::1, or IPv4-mapped 127.x). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** The name part of a Host header (`name`, `name:port`, `[v6]:port`), lowercased, without a trailing dot. */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (v6) return v6[1] as string;
  return h.replace(/:\d+$/, '').replace(/\.$/, '');
}

/**
 * The Host rule (see the module comment): loopback names, IP addresses and
 * the configured names. A missing Host (HTTP/1.0) is refused too.
 */
export function hostAllowed(host: string | undefined, serverNames: ReadonlySet<string>): boolean {
  if (!host) return false;
  const name = hostName(host);
  return name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0 || serverNames.has(name);
}

/** An Origin header, when present, must be this API's own origin: http(s) and exactly the Host asked for. */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && host !== undefined && u.host === host.trim().toLowerCase();
  } catch {
    return false; // "null" (sandboxed frames, file:) and anything unparsable
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export type AuthResult = { ok: true } | { ok: false; code: 'unauthorized' | 'forbidden'; message: string };

/** The access rule of the API (see the module comment); `proxied`: the request carries forwarding headers. */
export function authorize(remoteAddress: string | undefined, authorization: string | undefined, token: string | null, proxied = false): AuthResult {
  if (token === null) {
    if (proxied) return { ok: false, code: 'forbidden', message: 'the admin API answers proxied requests only with http.adminToken set' };
    return isLoopback(remoteAddress)
      ? { ok: true }
      : { ok: false, code: 'forbidden', message: 'the admin API answers loopback clients only (set http.adminToken to allow others)' };
  }
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  // Compare digests: constant time, whatever the lengths.
  if (!m || !timingSafeEqual(digest(m[1] as string), digest(token))) {
    return { ok: false, code: 'unauthorized', message: 'a valid Authorization: Bearer <http.adminToken> header is required' };
  }
  return { ok: true };
}

const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

/** Host, Origin, Sec-Fetch-Site, then the token or loopback rule: throws the refusal. */
function checkAccess(req: IncomingMessage, token: string | null, serverNames: ReadonlySet<string>): void {
  const { host, origin } = req.headers;
  if (!hostAllowed(host, serverNames)) {
    throw new HttpError('forbidden', `Host ${JSON.stringify(host ?? '')} is not a name of this admin API (localhost, an IP address or http.adminServerNames)`);
  }
  if (!originAllowed(origin, host)) throw new HttpError('forbidden', `cross-origin requests are refused (Origin ${origin ?? ''})`);
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new HttpError('forbidden', `cross-site requests are refused (Sec-Fetch-Site ${site})`);
  const proxied = FORWARDING_HEADERS.some((h) => req.headers[h] !== undefined);
  const auth = authorize(req.socket.remoteAddress, req.headers.authorization, token, proxied);
  if (!auth.ok) throw new HttpError(auth.code, auth.message, auth.code === 'unauthorized' ? { 'www-authenticate': 'Bearer realm="hyphae-admin"' } : {});
}

/** A body is read only as JSON: anything else a browser could send cross-site without a preflight is refused. */
function checkBodyType(req: IncomingMessage): void {
  const hasBody = req.method === 'POST' || req.method === 'PUT'
    || req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError('unsupported-media-type', `the body must be Content-Type: application/json (got ${req.headers['content-type'] ?? 'none'})`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError('payload-too-large', `the body must be at most ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError('bad-request', 'the body must be a JSON object');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError('bad-request', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') throw new HttpError('bad-request', `'${name}' (a non-empty string) is required`);
  return v;
}

function allow(req: IncomingMessage, methods: string[]): void {
  if (!methods.includes(req.method ?? '')) {
    throw new HttpError('method-not-allowed', `${req.method ?? '?'} is not allowed here`, { allow: methods.join(', ') });
  }
}

/**
 * The request handler for everything under `/admin` (mount it on the
 * observability server, or serve it with startAdminServer). It answers every
 * request itself, errors included. Throws AdminConfigError when the listener
 * is not loopback and there is no token.
 */
export function adminHttpHandler(admin: Admin, opts: AdminHttpOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  checkExposure(opts.listenHost, opts.token);
  const log = opts.logger?.child({ component: 'admin-http' });
  const serverNames = new Set((opts.serverNames ?? []).map((n) => n.toLowerCase().replace(/\.$/, '')));

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    checkAccess(req, opts.token, serverNames);
    checkBodyType(req);
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname.replace(/\/+$/, '');

    if (path === `${ADMIN_PREFIX}/status`) {
      allow(req, ['GET']);
      return sendJson(res, 200, await admin.status());
    }
    if (path === `${ADMIN_PREFIX}/users`) {
      allow(req, ['GET', 'POST']);
      if (req.method === 'POST') {
        const body = await readJson(req);
        const jid = await admin.addUser(stringField(body, 'jid'), stringField(body, 'password'));
        return sendJson(res, 201, { jid });
      }
      const domain = url.searchParams.get('domain') || null;
      const online = ['1', 'true', 'yes'].includes(url.searchParams.get('online') ?? '');
      let users: string[];
      if (online) {
        users = (await admin.onlineUsers(domain ?? undefined)).map((u) => u.jid);
      } else {
        users = [];
        for (const d of domain === null ? admin.domains : [domain]) users.push(...(await admin.listUsers(d)));
      }
      return sendJson(res, 200, { domain, online, count: users.length, users });
    }
    if (path.startsWith(`${ADMIN_PREFIX}/users/`)) {
      let jid: string;
      try {
        jid = decodeURIComponent(path.slice(`${ADMIN_PREFIX}/users/`.length));
      } catch {
        throw new HttpError('bad-request', 'the JID in the path is not valid percent-encoding');
      }
      allow(req, ['PUT', 'DELETE']);
      if (req.method === 'PUT') {
        const body = await readJson(req);
        return sendJson(res, 200, { jid: await admin.setPassword(jid, stringField(body, 'password')) });
      }
      return sendJson(res, 200, await admin.deleteUser(jid));
    }
    throw new HttpError('no-such-endpoint', `no admin endpoint ${path}`);
  };

  return async (req, res) => {
    try {
      await route(req, res);
    } catch (e) {
      let code: HttpErrorCode;
      let message: string;
      let headers: Record<string, string> = {};
      if (e instanceof HttpError) {
        ({ code, message, headers } = e);
      } else if (e instanceof AdminError) {
        ({ code, message } = e);
      } else if (e instanceof StoreError) {
        log?.warn({ err: e }, 'admin request failed: store unreachable');
        code = 'unavailable';
        message = 'the store is not reachable; try again';
      } else {
        log?.error({ err: e, method: req.method, url: req.url }, 'admin request failed');
        code = 'internal';
        message = 'internal error (see the server log)';
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Refused early: the client may still be sending a body we will not read.
      if (code === 'payload-too-large' || code === 'unauthorized' || code === 'forbidden' || code === 'unsupported-media-type') headers.connection = 'close';
      const body: HttpErrorBody = { error: code, message };
      sendJson(res, STATUS[code], body, headers);
    }
  };
}
