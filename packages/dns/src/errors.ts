/**
 * Typed DNS failures. Lookups never throw strings or bare Node errors: every
 * failure is a `DnsError` carrying a stable `code`.
 *
 * - `NODATA`   — the name exists but has no record of the asked type.
 * - `NXDOMAIN` — the name does not exist.
 * - `TIMEOUT`  — no answer within the configured time (also: query cancelled).
 * - `SERVFAIL` — the server failed (SERVFAIL, REFUSED, bad response, …).
 * - `CONNREFUSED` — the resolver could not be reached.
 * - `BADNAME`  — the domain (or a static override) is malformed.
 * - `OTHER`    — anything else; `cause` keeps the original error.
 */
export type DnsErrorCode =
  | 'NODATA'
  | 'NXDOMAIN'
  | 'TIMEOUT'
  | 'SERVFAIL'
  | 'CONNREFUSED'
  | 'BADNAME'
  | 'OTHER';

export class DnsError extends Error {
  override readonly name = 'DnsError';
  readonly code: DnsErrorCode;
  /** The DNS name whose lookup failed, when there is one. */
  readonly query: string | undefined;

  constructor(code: DnsErrorCode, message: string, options: { query?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.query = options.query;
  }

  /** True for "there simply is no such record": the cases RFC 6120 §3.2.1 falls back on. */
  get isNoRecord(): boolean {
    return this.code === 'NODATA' || this.code === 'NXDOMAIN';
  }
}

/** Map a `node:dns` error code (c-ares) to a `DnsErrorCode`. */
export function fromNodeDnsError(err: unknown, query: string): DnsError {
  if (err instanceof DnsError) return err;
  const nodeCode = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  let code: DnsErrorCode;
  switch (nodeCode) {
    case 'ENODATA':
      code = 'NODATA';
      break;
    case 'ENOTFOUND':
      code = 'NXDOMAIN';
      break;
    case 'ETIMEOUT':
    case 'ECANCELLED':
      code = 'TIMEOUT';
      break;
    case 'ESERVFAIL':
    case 'EREFUSED':
    case 'EBADRESP':
    case 'EFORMERR':
    case 'ENOTIMP':
      code = 'SERVFAIL';
      break;
    case 'ECONNREFUSED':
      code = 'CONNREFUSED';
      break;
    case 'EBADNAME':
    case 'EBADQUERY':
      code = 'BADNAME';
      break;
    default:
      code = 'OTHER';
  }
  return new DnsError(code, `DNS lookup of ${query} failed: ${nodeCode || String(err)}`, { query, cause: err });
}
