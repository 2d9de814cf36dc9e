/**
 * The admin HTTP API, served under `/admin` on each process's metrics/health
 * port (`http.host`:`http.port`). JSON in, JSON out:
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
 * (method-not-allowed), 409 (conflict), 413 (payload-too-large), 503
 * (unavailable: the store is unreachable), 500 (internal).
 *
 * Access: with `http.adminToken` set every request needs
 * `Authorization: Bearer <token>` (whoever sends it); without one only
 * loopback clients (127.0.0.0/8, ::1) are served — so an `http.host` of
 * 0.0.0.0 does not expose the API, but a reverse proxy on the same machine
 * would: set a token then.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
  logger?: Logger;
}

/** Whether a socket's remote address is loopback (127.0.0.0/8, ::1, or IPv4-mapped 127.x). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export type AuthResult = { ok: true } | { ok: false; code: 'unauthorized' | 'forbidden'; message: string };

/** The access rule of the API (see the module comment). */
export function authorize(remoteAddress: string | undefined, authorization: string | undefined, token: string | null): AuthResult {
  if (token === null) {
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
 * observability server). It answers every request itself, errors included.
 */
export function adminHttpHandler(admin: Admin, opts: AdminHttpOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const log = opts.logger?.child({ component: 'admin-http' });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const auth = authorize(req.socket.remoteAddress, req.headers.authorization, opts.token);
    if (!auth.ok) throw new HttpError(auth.code, auth.message, auth.code === 'unauthorized' ? { 'www-authenticate': 'Bearer realm="hyphae-admin"' } : {});
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
      if (code === 'payload-too-large' || code === 'unauthorized' || code === 'forbidden') headers.connection = 'close';
      const body: HttpErrorBody = { error: code, message };
      sendJson(res, STATUS[code], body, headers);
    }
  };
}
