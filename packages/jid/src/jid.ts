/**
 * XMPP addresses (JIDs) per RFC 7622.
 *
 *   jid = [ localpart "@" ] domainpart [ "/" resourcepart ]
 *
 * - localpart: PRECIS IdentifierClass, UsernameCaseMapped profile
 *   (RFC 7622 §3.3, RFC 8265 §3.3), minus the characters of §3.3.1.
 * - domainpart: IP literal, or an internationalized domain name processed
 *   with UTS #46 (non-transitional, STD3 rules) to its U-label form and held
 *   to IDNA2008 (RFC 7622 §3.2).
 * - resourcepart: PRECIS FreeformClass, OpaqueString profile (RFC 7622 §3.4,
 *   RFC 8265 §4.2).
 * - each part 1 to 1023 octets of UTF-8 after preparation (RFC 7622 §3.1).
 *
 * A JID holds prepared parts only, so equality is plain string equality of
 * the parts (RFC 7622 §3.1: compare after enforcement, octet for octet).
 */
import { isIPv6 } from 'node:net';
import { toASCII, toUnicode } from 'tr46';
import { Memo } from './memo.js';
import { PrecisError, checkIdna2008Label, enforceOpaqueString, enforceUsernameCaseMapped } from './precis.js';

/** Which part of a JID was at fault; 'jid' for the whole address or a token. */
export type JidPart = 'local' | 'domain' | 'resource' | 'jid';

/** An invalid JID or JID part. */
export class JidError extends Error {
  override readonly name = 'JidError';
  readonly part: JidPart;

  constructor(part: JidPart, message: string, options?: ErrorOptions) {
    super(message, options);
    this.part = part;
  }
}

/** RFC 7622 §3.2/§3.3/§3.4: each part is at most 1023 octets of UTF-8. */
const MAX_PART_OCTETS = 1023;
/**
 * Parts longer than this (in UTF-16 code units) are rejected before any
 * Unicode processing, so hostile input stays cheap.  Preparation can shrink
 * a string only a little (NFC composing decomposed input: at most 4 code
 * units into one 3-octet character, so ≤ 4/3 units per output octet), so no
 * part longer than 2 × 1023 units can prepare to ≤ 1023 octets, except by way
 * of code points that UTS #46 deletes from domains, which no real address
 * uses.
 */
const MAX_RAW_PART = 2048;
/**
 * Same idea for one domain label before UTS #46: a U-label whose A-label
 * fits in 63 octets has fewer than 63 code points, and mapping shrinks by at
 * most 4×.  Checked before calling tr46, whose cost grows with label length.
 */
const MAX_RAW_LABEL = 4 * 63;
/** Label limit in A-label form (RFC 7622 §3.2, RFC 5890 §2.3.2.1). */
const MAX_LABEL_OCTETS = 63;

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function checkLength(part: JidPart, what: string, s: string): void {
  // UTF-8 never uses fewer octets than UTF-16 code units, nor more than 3 per
  // unit, so the byte count is only needed in between.
  if (s.length > MAX_PART_OCTETS || (s.length * 3 > MAX_PART_OCTETS && utf8Length(s) > MAX_PART_OCTETS)) {
    throw new JidError(part, `${what} is longer than ${MAX_PART_OCTETS} octets (RFC 7622 §3)`);
  }
}

function checkRaw(part: JidPart, what: string, s: string): void {
  if (s.length === 0) throw new JidError(part, `${what} is empty (RFC 7622 §3)`);
  if (s.length > MAX_RAW_PART) throw new JidError(part, `${what} is too long`);
}

function wrap(part: JidPart, what: string, e: unknown): never {
  if (e instanceof PrecisError) throw new JidError(part, `invalid ${what}: ${e.message}`, { cause: e });
  throw e;
}

// ---------------------------------------------------------------------------
// localpart (RFC 7622 §3.3)

// Printable ASCII except space and the §3.3.1 characters " & ' / : < > @.
// For such strings UsernameCaseMapped reduces to ASCII lowercasing: width
// mapping, NFC and the Bidi Rule are no-ops and all of 0x21-0x7E is PVALID.
const RE_ASCII_LOCAL = /^[!#-%(-.0-9;=?A-~]+$/;
// RFC 7622 §3.3.1: allowed by IdentifierClass but not in a localpart.
const RE_LOCAL_FORBIDDEN = /["&'/:<>@]/;

/** Prepares (enforces) a localpart; throws JidError with part 'local'. */
export function prepLocal(s: string): string {
  checkRaw('local', 'localpart', s);
  let out: string;
  if (RE_ASCII_LOCAL.test(s)) {
    out = s.toLowerCase();
  } else {
    try {
      out = enforceUsernameCaseMapped(s);
    } catch (e) {
      wrap('local', 'localpart', e);
    }
    if (RE_LOCAL_FORBIDDEN.test(out)) {
      throw new JidError('local', `localpart contains one of " & ' / : < > @ (RFC 7622 §3.3.1)`);
    }
  }
  checkLength('local', 'localpart', out);
  return out;
}

// ---------------------------------------------------------------------------
// resourcepart (RFC 7622 §3.4)

// Printable ASCII including space: OpaqueString leaves it unchanged.
const RE_ASCII_RESOURCE = /^[ -~]+$/;

/** Prepares (enforces) a resourcepart; throws JidError with part 'resource'. */
export function prepResource(s: string): string {
  checkRaw('resource', 'resourcepart', s);
  let out: string;
  if (RE_ASCII_RESOURCE.test(s)) {
    out = s;
  } else {
    try {
      out = enforceOpaqueString(s);
    } catch (e) {
      wrap('resource', 'resourcepart', e);
    }
  }
  checkLength('resource', 'resourcepart', out);
  return out;
}

// ---------------------------------------------------------------------------
// domainpart (RFC 7622 §3.2)

// IPv4address of RFC 3986 §3.2.2 (no leading zeros).
const DEC_OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const RE_IPV4 = new RegExp(`^${DEC_OCTET}(?:\\.${DEC_OCTET}){3}$`);
// Lowercase LDH labels: the common case, handled without tr46.
const RE_ASCII_DOMAIN = /^[a-z0-9.-]+$/;
const RE_FAST_DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

// UTS #46 options matching IDNA2008 as closely as UTS #46 allows:
// non-transitional (ß, ς, ZWJ/ZWNJ kept, as IDNA2008 does), STD3 rules (only
// LDH in ASCII: RFC 7622 §3.2.1 allows NR-LDH labels and U-labels),
// CheckHyphens (RFC 5891 §4.2.3.1), CheckBidi (RFC 5893), CheckJoiners
// (RFC 5892 A.1/A.2).
const UTS46 = {
  checkHyphens: true,
  checkBidi: true,
  checkJoiners: true,
  useSTD3ASCIIRules: true,
  transitionalProcessing: false,
} as const;

function prepIpv6Literal(d: string): string {
  // RFC 7622 §3.2 / RFC 3986 §3.2.2 IP-literal.  IPvFuture and zone IDs are
  // not accepted: no XMPP deployment can route to them.
  const inner = d.slice(1, -1);
  if (!d.endsWith(']') || inner.includes('%') || !isIPv6(inner)) {
    throw new JidError('domain', 'domainpart is not a valid IPv6 literal (RFC 7622 §3.2)');
  }
  // Hex digits are case-insensitive; lowercase so that equal addresses
  // written in different case compare equal.  No further canonicalisation.
  return '[' + inner.toLowerCase() + ']';
}

/** LDH label checks shared by the fast and slow paths. */
function checkLdhLabel(label: string): void {
  if (label.length === 0) throw new JidError('domain', 'domainpart has an empty label');
  if (label.length > MAX_LABEL_OCTETS) {
    throw new JidError('domain', `domainpart label longer than ${MAX_LABEL_OCTETS} octets (RFC 7622 §3.2)`);
  }
}

/** Returns true if the lowercase ASCII domain is all NR-LDH labels (no A-labels). */
function isPlainLdhDomain(d: string): boolean {
  for (const label of d.split('.')) {
    checkLdhLabel(label);
    if (label.startsWith('-') || label.endsWith('-')) {
      throw new JidError('domain', 'domainpart label starts or ends with a hyphen (RFC 5891 §4.2.3.1)');
    }
    // "--" in positions 3-4 marks a reserved LDH label (RFC 5890 §2.3.1);
    // only xn-- (A-labels) are meaningful and those need decoding.
    if (label.length >= 4 && label[2] === '-' && label[3] === '-') {
      if (label.startsWith('xn--')) return false;
      throw new JidError('domain', 'domainpart has a reserved LDH label (RFC 5890 §2.3.1)');
    }
  }
  return true;
}

// Label separators under UTS #46: '.', U+3002, U+FF0E, U+FF61.
const RE_UTS46_DOTS = /[.\u3002\uff0e\uff61]/;

/** Small bounded memo for the slow (tr46) path; domains repeat a lot. */
const idnCache = new Memo<string>(512);

function prepIdn(d: string): string {
  const hit = idnCache.get(d);
  if (hit !== undefined) return hit;
  for (const rawLabel of d.split(RE_UTS46_DOTS)) {
    if (rawLabel.length > MAX_RAW_LABEL) {
      throw new JidError('domain', `domainpart label longer than ${MAX_LABEL_OCTETS} octets (RFC 7622 §3.2)`);
    }
  }
  const u = prepIdnUncached(d);
  idnCache.set(d, u);
  return u;
}

function prepIdnUncached(d: string): string {
  const r = toUnicode(d, UTS46);
  if (r.error) throw new JidError('domain', 'domainpart is not a valid internationalized domain name (UTS #46)');
  const u = r.domain;
  for (const label of u.split('.')) {
    if (label.length === 0) throw new JidError('domain', 'domainpart has an empty label');
    if (/^[\x00-\x7f]*$/.test(label)) {
      checkLdhLabel(label);
      continue;
    }
    try {
      checkIdna2008Label(label);
    } catch (e) {
      wrap('domain', 'domainpart', e);
    }
    const a = toASCII(label, UTS46);
    if (a === null || a.length > MAX_LABEL_OCTETS) {
      throw new JidError('domain', `domainpart label longer than ${MAX_LABEL_OCTETS} octets as an A-label (RFC 7622 §3.2)`);
    }
  }
  return u;
}

/**
 * Prepares a domainpart: strips one trailing dot, accepts IP literals, and
 * otherwise returns the UTS #46-mapped U-label form (lowercase, NFC, A-labels
 * decoded).  Throws JidError with part 'domain'.
 */
export function prepDomain(s: string): string {
  checkRaw('domain', 'domainpart', s);
  // RFC 7622 §3.2: a final label separator (dot) MUST be stripped before
  // any other canonicalisation step.
  const d = s.endsWith('.') ? s.slice(0, -1) : s;
  if (d.length === 0) throw new JidError('domain', 'domainpart is empty (RFC 7622 §3.2)');
  let out: string;
  if (RE_FAST_DOMAIN.test(d) && !d.includes('--')) {
    // Hot path: LDH labels of 1-63 octets, no hyphen at either end, no "--"
    // anywhere (so no A-labels or reserved labels).  IPv4 addresses take this
    // path too and come out unchanged.  Only ASCII case mapping applies.
    out = d.toLowerCase();
  } else if (d.startsWith('[')) {
    out = prepIpv6Literal(d);
  } else if (RE_IPV4.test(d)) {
    out = d;
  } else {
    const lower = d.toLowerCase();
    out = RE_ASCII_DOMAIN.test(lower) && isPlainLdhDomain(lower) ? lower : prepIdn(d);
  }
  checkLength('domain', 'domainpart', out);
  return out;
}

// ---------------------------------------------------------------------------
// The JID class

/**
 * An immutable, prepared JID.  `local` and `resource` are '' when absent.
 *
 * The constructor does NOT prepare or validate: it is for parts that are
 * already prepared (e.g. read back from our own store).  Use parseJid or
 * makeJid for anything that came from the network or a user.
 */
export class JID {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  #full: string | undefined;
  #bareString: string | undefined;
  #bare: JID | undefined;

  constructor(local: string, domain: string, resource = '') {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
  }

  /** True if there is no resourcepart. */
  isBare(): boolean {
    return this.resource === '';
  }

  /** This JID without its resourcepart (itself if already bare); cached. */
  bare(): JID {
    if (this.resource === '') return this;
    return (this.#bare ??= new JID(this.local, this.domain));
  }

  /** A copy with another resourcepart (prepared here; '' removes it). */
  withResource(resource: string): JID {
    if (resource === '') return this.bare();
    return new JID(this.local, this.domain, prepResource(resource));
  }

  /** local@domain or domain; cached. */
  toBareString(): string {
    return (this.#bareString ??= this.local === '' ? this.domain : this.local + '@' + this.domain);
  }

  /** The full form local@domain/resource (parts omitted when absent); cached. */
  toString(): string {
    return (this.#full ??= this.resource === '' ? this.toBareString() : this.toBareString() + '/' + this.resource);
  }

  /** JSON.stringify gives the string form. */
  toJSON(): string {
    return this.toString();
  }

  /**
   * Same address: all three prepared parts are equal code unit for code
   * unit.  Because parts are stored prepared, this is RFC 7622 comparison
   * (case-insensitive localpart and domainpart, case-sensitive resourcepart).
   */
  equals(other: JID): boolean {
    return this === other ||
      (this.domain === other.domain && this.local === other.local && this.resource === other.resource);
  }
}

/**
 * Builds a JID from unprepared parts, preparing each.  '' (or undefined) for
 * local or resource means the part is absent.
 */
export function makeJid(local: string, domain: string, resource?: string): JID {
  return new JID(
    local === '' ? '' : prepLocal(local),
    prepDomain(domain),
    resource === undefined || resource === '' ? '' : prepResource(resource),
  );
}

/** Upper bound on a whole JID string before splitting (three parts + separators). */
const MAX_RAW_JID = 3 * MAX_RAW_PART + 2;

/**
 * Parses and prepares a JID string.  Throws JidError.
 *
 * Splitting follows RFC 7622 §3.1-§3.4 and happens before any Unicode
 * processing (§3.1 implementation note: mapping could otherwise create new
 * separators): the resourcepart is everything after the first '/', and in
 * what precedes it the localpart is everything before the first '@'.  So
 * `a/b@c` has domain 'a' and resource 'b@c', and `a@b@c` is invalid (its
 * domainpart 'b@c' contains '@').
 */
export function parseJid(s: string): JID {
  if (typeof s !== 'string') throw new JidError('jid', 'JID must be a string');
  if (s.length === 0) throw new JidError('jid', 'JID is empty');
  if (s.length > MAX_RAW_JID) throw new JidError('jid', 'JID is too long');
  const slash = s.indexOf('/');
  const head = slash === -1 ? s : s.slice(0, slash);
  const at = head.indexOf('@');
  const local = at === -1 ? '' : prepLocal(head.slice(0, at)); // '' here: "@x" -> error in prepLocal
  const domain = prepDomain(at === -1 ? head : head.slice(at + 1));
  const resource = slash === -1 ? '' : prepResource(s.slice(slash + 1));
  return new JID(local, domain, resource);
}

/** Like parseJid but returns null instead of throwing JidError. */
export function tryParseJid(s: string): JID | null {
  try {
    return parseJid(s);
  } catch (e) {
    if (e instanceof JidError) return null;
    throw e;
  }
}
