/**
 * The zod schema of HyphaeConfig. Every leaf carries its documentation and a
 * human description of what it expects (`leaf(...)` metadata): errors,
 * environment coercion and `describeConfig()` are all generated from this one
 * table, so a new key needs exactly one entry here (plus its type in types.ts).
 * A feature module's keys live in the module instead, as a ConfigSection
 * (modules.<key>) built with the same leaf(); the walkers below take the
 * sections in use as a parameter.
 */
import { BlockList, isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import type { HyphaeConfig } from './types.js';

export interface LeafMeta {
  /** What the key does (from the comments in types.ts). */
  doc: string;
  /** What a valid value looks like; used in error messages. */
  expect: string;
  /** Extra environment variables that set this key, applied before HYPHAE_<PATH>. */
  envAliases?: readonly string[];
}

/** Attaches a key's documentation; every leaf of the schema, and of a module's section, needs it. */
export function leaf<T extends z.ZodType>(schema: T, meta: LeafMeta): T {
  return schema.meta({ ...meta });
}

/**
 * Marks issues raised by cross-field checks: their message says it all, and
 * the error also shows the value and source of the other key involved.
 */
export interface CrossFieldParams {
  crossField: true;
  /** Dotted key of the other key involved. */
  related: string;
}
const crossField = (related: string): CrossFieldParams => ({ crossField: true, related });

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const portExpect = 'an integer from 0 to 65535 (0 picks a free port)';

/** "10.0.0.0/8", "::1/128" or a single address; checked with node:net so the runtime accepts exactly what BlockList will. */
export function isIpOrCidr(value: string): boolean {
  const slash = value.indexOf('/');
  const addr = slash < 0 ? value : value.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return false;
  if (slash < 0) return true;
  const prefixText = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return false;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return false;
  try {
    new BlockList().addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return true;
  } catch {
    return false;
  }
}

/**
 * A domain we serve: a DNS name (RFC 7622 §3.2 domainpart, internationalized
 * labels allowed) or an IP literal; lowercased, no trailing dot, no characters
 * that can never appear in a domainpart.
 */
export function isDomain(value: string): boolean {
  if (value.length === 0 || Buffer.byteLength(value) > 1023) return false; // RFC 7622 §3.2
  if (isIP(value) === 4) return true;
  if (value.startsWith('[') && value.endsWith(']') && isIP(value.slice(1, -1)) === 6) return true;
  if (/[\s@/\\"&'<>:]/u.test(value)) return false;
  const labels = value.split('.');
  return labels.every((l) => l.length > 0 && l.length <= 63 && !l.startsWith('-') && !l.endsWith('-'));
}

/**
 * Node ids are used as one NATS subject token (`xmpp.c2s.<node>`) and inside
 * Redis keys: keep them to characters that need no escaping anywhere.
 */
const NODE_ID = /^[A-Za-z0-9_-]{1,128}$/;

function isNatsUrl(value: string): boolean {
  // nats.js accepts a comma-separated list of servers, each "host:port" or a URL.
  const parts = value.split(',').map((s) => s.trim());
  return parts.every((p) => {
    if (p === '') return false;
    if (!p.includes('://')) return /^[^\s/]+$/.test(p);
    try {
      return ['nats:', 'tls:', 'ws:', 'wss:'].includes(new URL(p).protocol);
    } catch {
      return false;
    }
  });
}

function isRedisUrl(value: string): boolean {
  try {
    return ['redis:', 'rediss:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/**
 * Whether a listen address only accepts connections from this host:
 * 127.0.0.0/8, ::1 (IPv4-mapped too) or the name localhost. The wildcards
 * (0.0.0.0, ::) and every other address are not.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  const family = isIP(h);
  return family !== 0 && loopback.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

const host = (doc: string) =>
  leaf(z.string().trim().min(1), { doc, expect: 'a non-empty host name or IP address to listen on' });

/**
 * The default of tls.ciphers: forward-secret AEAD suites only, as Prosody's
 * default and RFC 9325 §4.2 recommend — the TLS 1.3 suites, and for TLS 1.2
 * ECDHE with AES-GCM or ChaCha20-Poly1305; no static-RSA key exchange (no
 * forward secrecy), no CBC with SHA-1, no finite-field DHE.
 */
export const FORWARD_SECRET_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Whether OpenSSL takes this cipher list (the same check the listeners' SecureContext makes at start). */
function isCipherList(value: string): boolean {
  try {
    createSecureContext({ ciphers: value });
    return true;
  } catch {
    return false;
  }
}

const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

const tlsSchema = z
  .strictObject({
    cert: leaf(z.string().min(1).nullable(), {
      doc: 'PEM certificate chain file; with `key`. When both are null a self-signed pair is generated into dataDir.',
      expect: 'a file path or null',
    }),
    key: leaf(z.string().min(1).nullable(), {
      doc: 'PEM private key file for `cert`.',
      expect: 'a file path or null',
    }),
    minVersion: leaf(z.enum(TLS_VERSIONS), {
      doc: 'Oldest TLS version accepted (c2s, s2s) and offered (s2s outbound).',
      expect: `one of ${TLS_VERSIONS.join(', ')}`,
    }),
    ciphers: leaf(z.string().trim().min(1).refine(isCipherList, { message: 'OpenSSL matches no cipher in this list' }), {
      doc: 'OpenSSL cipher list for every TLS listener and outbound connection, TLS 1.3 suites by their TLS_ names. The default allows forward-secret AEAD suites only (ECDHE with AES-GCM or ChaCha20-Poly1305, and the TLS 1.3 suites).',
      expect: "an OpenSSL cipher list such as 'ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256'",
    }),
    handshakeTimeoutMs: leaf(int(100, 600_000), {
      doc: 'A connection whose TLS handshake (direct TLS or STARTTLS, c2s and s2s) has not finished this long after it began is closed.',
      expect: 'milliseconds, an integer from 100 to 600000',
    }),
  })
  .superRefine((v, ctx) => {
    if ((v.cert === null) !== (v.key === null)) {
      ctx.addIssue({
        code: 'custom',
        params: crossField(v.cert === null ? 'tls.key' : 'tls.cert'),
        path: [v.cert === null ? 'cert' : 'key'],
        input: null,
        message: 'tls.cert and tls.key must be set together (or both null for a generated self-signed pair)',
      });
    }
  });

const SASL = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const;

const c2sSchema = z
  .strictObject({
    host: host('Address the listeners bind to.'),
    port: leaf(int(0, 65535), { doc: 'STARTTLS port (RFC 6120); 0 picks a free port (tests).', expect: portExpect }),
    directTlsPort: leaf(int(0, 65535).nullable(), {
      doc: 'Direct TLS port (XEP-0368); 0 picks a free port; null disables it.',
      expect: `${portExpect}, or null to disable`,
    }),
    requireTls: leaf(z.boolean(), {
      doc: 'Refuse to authenticate before STARTTLS (RFC 6120 §5.3.1 "mandatory-to-negotiate").',
      expect: 'true or false',
    }),
    maxStanzaBytes: leaf(int(10000, 64 * 1024 * 1024), {
      doc: 'Largest stanza accepted, in bytes; larger ones close the stream with <policy-violation/>. RFC 6120 §13.12 requires at least 10000.',
      expect: 'an integer from 10000 (RFC 6120 §13.12 minimum) to 67108864',
    }),
    maxDepth: leaf(int(4, 1024), {
      doc: 'Deepest element nesting inside a stanza (the stanza itself is depth 1).',
      expect: 'an integer from 4 to 1024',
    }),
    maxAttributes: leaf(int(4, 10000), {
      doc: 'Most attributes on one element, namespace declarations included.',
      expect: 'an integer from 4 to 10000',
    }),
    idleTimeoutSeconds: leaf(int(1, 7 * 24 * 3600), {
      doc: 'Close streams that have sent nothing (not even a whitespace keepalive) for this long.',
      expect: 'a whole number of seconds from 1 to 604800',
    }),
    authTimeoutSeconds: leaf(int(1, 3600), {
      doc: 'Close streams not authenticated this long after connecting.',
      expect: 'a whole number of seconds from 1 to 3600',
    }),
    maxConnectionsPerIp: leaf(int(1, 1_000_000), {
      doc: 'Concurrent connections from one IP address, counted from accept (before TLS); more are refused.',
      expect: 'an integer from 1 to 1000000',
    }),
    drainGraceMs: leaf(int(0, 3_600_000), {
      doc: 'On SIGTERM, readiness turns false and the listeners close at once; client streams are closed this long after (time for load balancers to notice).',
      expect: 'milliseconds, an integer from 0 to 3600000',
    }),
    seeOtherHost: leaf(z.string().trim().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/).nullable(), {
      doc: 'When draining, close client streams with <see-other-host/> naming this host[:port] (RFC 6120 §4.9.3.19) instead of <system-shutdown/>.',
      expect: 'host or host:port (IPv6 in brackets), or null',
    }),
    maxBytesPerSecond: leaf(int(0, 1_000_000_000), {
      doc: 'Inbound bytes per second one connection may send, with a burst of twice that; reading pauses when it is exceeded (0: unlimited).',
      expect: 'an integer from 0 to 1000000000 (0 means unlimited)',
    }),
    maxWriteBufferBytes: leaf(int(65_536, 1_073_741_824), {
      doc: 'Bytes queued for one client and not yet sent (it reads too slowly, or not at all); a delivery past it ends the stream with <resource-constraint/> and is not acknowledged, so the router stores it offline or answers its sender. Depth: hyphae_queue_depth{queue="c2s-write-bytes"}.',
      expect: 'bytes, an integer from 65536 to 1073741824',
    }),
    saslMechanisms: leaf(
      z
        .array(z.enum(SASL))
        .min(1)
        .refine((a) => new Set(a).size === a.length, { message: 'duplicate mechanism' }),
      {
        doc: 'SASL mechanisms offered, in order of preference. PLAIN is offered only over TLS.',
        expect: `a non-empty list without duplicates of ${SASL.join(', ')}`,
      },
    ),
    scramIterations: leaf(int(4096, 10_000_000), {
      doc: 'PBKDF2 iterations for new credentials (RFC 7677 recommends at least 4096).',
      expect: 'an integer from 4096 (RFC 5802/7677 minimum) to 10000000',
    }),
  })
  .superRefine((v, ctx) => {
    // Both listeners bind c2s.host; the same non-zero port twice cannot work.
    if (v.directTlsPort !== null && v.directTlsPort !== 0 && v.directTlsPort === v.port) {
      ctx.addIssue({
        code: 'custom',
        params: crossField('c2s.port'),
        path: ['directTlsPort'],
        input: v.directTlsPort,
        message: 'c2s.directTlsPort must differ from c2s.port',
      });
    }
  });

const registrationSchema = z.strictObject({
  open: leaf(z.boolean(), { doc: 'XEP-0077 in-band registration of new accounts.', expect: 'true or false' }),
  maxPerIp: leaf(int(0, 1_000_000), {
    doc: 'New accounts per source IP per window, outside the allowlist (0: only allowlisted addresses may register).',
    expect: 'an integer from 0 to 1000000',
  }),
  windowSeconds: leaf(int(1, 365 * 24 * 3600), {
    doc: 'Length of the registration rate-limit window.',
    expect: 'a whole number of seconds from 1 to 31536000',
  }),
  allowlist: leaf(z.array(z.string().trim().refine(isIpOrCidr, { message: 'not an IP address or CIDR range' })), {
    doc: 'IPs or CIDR ranges exempt from the rate limit.',
    expect: "a list of IP addresses or CIDR ranges such as '10.0.0.0/8' or '::1/128'",
  }),
  maxAttemptsPerStream: leaf(int(1, 1000), {
    doc: 'Registration submissions one stream may make (checked before any password hashing); past it, <policy-violation/> and the stream is closed.',
    expect: 'an integer from 1 to 1000',
  }),
});

const smSchema = z
  .strictObject({
    heartbeatIntervalMs: leaf(int(50, 600_000), {
      doc: 'How often each c2s node renews its heartbeat.',
      expect: 'milliseconds, an integer from 50 to 600000',
    }),
    nodeTtlMs: leaf(int(100, 3_600_000), {
      doc: 'A node that has not heartbeated for this long is dead; its sessions are removed.',
      expect: 'milliseconds, an integer from 100 to 3600000, at least twice sm.heartbeatIntervalMs',
    }),
  })
  .superRefine((v, ctx) => {
    // One late heartbeat (GC pause, Redis blip) must not declare a live node dead.
    if (v.nodeTtlMs < 2 * v.heartbeatIntervalMs) {
      ctx.addIssue({
        code: 'custom',
        params: crossField('sm.heartbeatIntervalMs'),
        path: ['nodeTtlMs'],
        input: v.nodeTtlMs,
        message: 'sm.nodeTtlMs must be at least twice sm.heartbeatIntervalMs',
      });
    }
  });

const rosterSchema = z.strictObject({
  shards: leaf(int(1, 4096), {
    doc: 'Shards of the user actors (roster, presence, offline). Every service of a cluster must use the same value; changing it needs a full restart.',
    expect: 'an integer from 1 to 4096',
  }),
  maxItems: leaf(int(1, 100_000), {
    doc: 'Most items in one roster; adding more is refused with <not-acceptable/>.',
    expect: 'an integer from 1 to 100000',
  }),
  maxNameLength: leaf(int(1, 10_000), {
    doc: 'Longest roster item name or group name, in characters (<not-acceptable/> past it).',
    expect: 'an integer from 1 to 10000',
  }),
  offlineCap: leaf(int(0, 1_000_000), {
    doc: 'Offline messages kept per user (XEP-0160); past it senders get <service-unavailable/>. 0 disables offline storage.',
    expect: 'an integer from 0 to 1000000',
  }),
  leaseTtlMs: leaf(int(500, 600_000), {
    doc: 'How long a roster instance owns a shard without renewing; bounds the failover time.',
    expect: 'milliseconds, an integer from 500 to 600000',
  }),
  maxQueued: leaf(int(1, 10_000_000), {
    doc: "Operations queued or running in one roster instance's user mailboxes; past it, new ones are refused at once and their senders retry for up to 20 s, then answer <resource-constraint/> (wait). Depth: hyphae_queue_depth{queue=\"roster-mailbox\"}.",
    expect: 'an integer from 1 to 10000000',
  }),
});

const mucSchema = z.strictObject({
  enabled: leaf(z.boolean(), { doc: 'Serve XEP-0045 multi-user chat at <subdomain>.<domain> for every served domain.', expect: 'true or false' }),
  subdomain: leaf(z.string().trim().toLowerCase().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/), {
    doc: 'Subdomain of the MUC service: rooms are room@<subdomain>.<domain>.',
    expect: 'one DNS label (letters, digits, inner hyphens)',
  }),
  shards: leaf(int(1, 4096), {
    doc: 'Shards of the room actors. Every service of a cluster must use the same value; changing it needs a full restart.',
    expect: 'an integer from 1 to 4096',
  }),
  leaseTtlMs: leaf(int(500, 600_000), {
    doc: 'How long a muc instance owns a shard without renewing; bounds the room failover time.',
    expect: 'milliseconds, an integer from 500 to 600000',
  }),
  maxRoomsPerUser: leaf(int(0, 1_000_000), {
    doc: 'Rooms one user may own; creating another is refused with <not-allowed/>. 0 forbids creating rooms.',
    expect: 'an integer from 0 to 1000000',
  }),
  maxOccupants: leaf(int(1, 1_000_000), {
    doc: 'Hard cap on the occupants of one room; muc#roomconfig_maxusers cannot exceed it.',
    expect: 'an integer from 1 to 1000000',
  }),
  defaultMaxUsers: leaf(int(1, 1_000_000), {
    doc: 'muc#roomconfig_maxusers of a new room (at most maxOccupants).',
    expect: 'an integer from 1 to 1000000',
  }),
  maxHistory: leaf(int(0, 100_000), {
    doc: 'Hard cap on the discussion history one room keeps; muc#roomconfig_historylength cannot exceed it.',
    expect: 'an integer from 0 to 100000',
  }),
  defaultHistory: leaf(int(0, 100_000), {
    doc: 'Discussion history length of a new room (at most maxHistory).',
    expect: 'an integer from 0 to 100000',
  }),
  maxMessageBytes: leaf(int(256, 16_777_216), {
    doc: 'Largest message an occupant may send through a room, in bytes; past it <policy-violation/>.',
    expect: 'an integer from 256 to 16777216',
  }),
  messagesPerSecond: leaf(int(1, 1_000_000), {
    doc: 'Messages per second one occupant may send through a room (bursts of twice that); past it <resource-constraint/>.',
    expect: 'an integer from 1 to 1000000',
  }),
})
  .superRefine((v, ctx) => {
    // A new room's defaults must be ones its owner could have configured.
    if (v.defaultMaxUsers > v.maxOccupants) {
      ctx.addIssue({
        code: 'custom', params: crossField('muc.maxOccupants'), path: ['defaultMaxUsers'], input: v.defaultMaxUsers,
        message: 'muc.defaultMaxUsers must be at most muc.maxOccupants',
      });
    }
    if (v.defaultHistory > v.maxHistory) {
      ctx.addIssue({
        code: 'custom', params: crossField('muc.maxHistory'), path: ['defaultHistory'], input: v.defaultHistory,
        message: 'muc.defaultHistory must be at most muc.maxHistory',
      });
    }
  });

const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const proxy65Schema = z.strictObject({
  enabled: leaf(z.boolean(), { doc: 'Serve the XEP-0065 SOCKS5 bytestream proxy at <subdomain>.<domain> (in processes running proxy65).', expect: 'true or false' }),
  subdomain: leaf(z.string().trim().toLowerCase().regex(label), {
    doc: 'Subdomain of the proxy: proxy.<domain> by default.',
    expect: 'one DNS label (letters, digits, inner hyphens)',
  }),
  host: host('Address the SOCKS5 listener binds.'),
  port: leaf(int(0, 65535), { doc: 'SOCKS5 port of the proxy (XEP-0065).', expect: portExpect }),
  advertisedHost: leaf(z.string().trim().min(1).nullable(), {
    doc: 'Host announced to clients in streamhost answers (behind Kubernetes the Service address, not the pod); null: proxy65.host.',
    expect: 'a host name or IP address, or null',
  }),
  advertisedPort: leaf(int(1, 65535).nullable(), {
    doc: 'Port announced to clients in streamhost answers; null: the port listened on.',
    expect: 'an integer from 1 to 65535, or null',
  }),
  maxStreams: leaf(int(1, 1_000_000), { doc: 'Streams one proxy instance relays at once; more get refused.', expect: 'an integer from 1 to 1000000' }),
  maxStreamsPerUser: leaf(int(1, 100_000), { doc: 'Streams one user may have open through the proxy at once.', expect: 'an integer from 1 to 100000' }),
  pairingTimeoutMs: leaf(int(100, 3_600_000), {
    doc: 'How long a SOCKS5 connection may wait for its peer and the activation.',
    expect: 'milliseconds, an integer from 100 to 3600000',
  }),
  idleTimeoutMs: leaf(int(100, 86_400_000), {
    doc: 'An activated stream with no traffic either way for this long is closed.',
    expect: 'milliseconds, an integer from 100 to 86400000',
  }),
  maxBytesPerSecond: leaf(int(0, 10_000_000_000), {
    doc: 'Bandwidth cap per stream and direction, in bytes per second (0: none).',
    expect: 'an integer from 0 to 10000000000 (0 means none)',
  }),
  maxBytes: leaf(int(0, Number.MAX_SAFE_INTEGER), {
    doc: 'Bytes one stream may relay in total; the stream is closed past it (0: unlimited).',
    expect: 'a non-negative integer (0 means unlimited)',
  }),
});

const EXTDISCO_SERVICE = /^(stun|stuns|turn|turns):([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})(\/(udp|tcp))?$/;
const extdiscoSchema = z.strictObject({
  services: leaf(z.array(z.string().trim().regex(EXTDISCO_SERVICE)), {
    doc: 'STUN/TURN services announced through XEP-0215: entries like stun:stun.example.org:3478, turn:turn.example.org:3478/udp, turns:turn.example.org:5349.',
    expect: 'a list of type:host:port[/udp|/tcp] with type stun, stuns, turn or turns',
  }),
  turnSecret: leaf(z.string().min(8).nullable(), {
    doc: "The TURN server's shared secret (coturn static-auth-secret): each client gets time-limited credentials derived from it. Null: TURN services are announced without credentials.",
    expect: 'a string of at least 8 characters, or null',
  }),
  ttlSeconds: leaf(int(60, 31_536_000), {
    doc: 'Lifetime of the derived TURN credentials.',
    expect: 'seconds, an integer from 60 to 31536000',
  }),
});

const STATIC_ROUTE = /^[^\s=]+=([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\]):\d{1,5}$/;
const DNS_SERVER = /^([0-9.]+|\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:]+)(:\d{1,5})?$/;
const s2sSchema = z.strictObject({
  enabled: leaf(z.boolean(), {
    doc: 'Federate with other XMPP domains (in processes running s2s). Off: stanzas to remote domains get <remote-server-not-found/>.',
    expect: 'true or false',
  }),
  host: host('Address the server-to-server listeners bind to.'),
  port: leaf(int(0, 65535), { doc: 'Server-to-server port with STARTTLS (RFC 6120 §3.2).', expect: portExpect }),
  directTlsPort: leaf(int(0, 65535).nullable(), {
    doc: 'Server-to-server port with direct TLS (XEP-0368); null disables it.',
    expect: `${portExpect}, or null to disable`,
  }),
  shards: leaf(int(1, 4096), {
    doc: 'Shards of the outbound streams, keyed by remote domain. Every service of a cluster must use the same value.',
    expect: 'an integer from 1 to 4096',
  }),
  leaseTtlMs: leaf(int(500, 600_000), {
    doc: 'How long an s2s instance owns a shard of outbound streams without renewing; bounds the failover time.',
    expect: 'milliseconds, an integer from 500 to 600000',
  }),
  requireTls: leaf(z.boolean(), {
    doc: 'Require TLS on every server-to-server stream, both ways (RFC 7590). Off, a peer without STARTTLS is served in the clear.',
    expect: 'true or false',
  }),
  dialback: leaf(z.boolean(), {
    doc: 'Use and accept Server Dialback (XEP-0220) when a certificate cannot authenticate the peer.',
    expect: 'true or false',
  }),
  caFile: leaf(z.string().min(1).nullable(), {
    doc: "PEM file of extra trust anchors for peers' certificates; null: the system's roots only.",
    expect: 'a file path or null',
  }),
  caOnly: leaf(z.boolean(), {
    doc: "Trust only caFile's anchors, not the system's (a private federation).",
    expect: 'true or false',
  }),
  dialbackSecret: leaf(z.string().min(16).nullable(), {
    doc: 'Secret behind dialback keys (XEP-0185), the same on every s2s instance; null: derived from the TLS key.',
    expect: 'a string of at least 16 characters, or null',
  }),
  dnsServers: leaf(z.array(z.string().trim().regex(DNS_SERVER)), {
    doc: "DNS servers for finding peers (SRV, then A/AAAA), as ip or ip:port; empty: the system's resolver.",
    expect: 'a list of ip or ip:port',
  }),
  staticRoutes: leaf(z.array(z.string().trim().toLowerCase().regex(STATIC_ROUTE)), {
    doc: 'Fixed addresses of peers, domain=host:port, used instead of DNS.',
    expect: 'a list of domain=host:port',
  }),
  blocklist: leaf(z.array(z.string().trim().toLowerCase().refine(isDomain, { message: 'not a valid domain name' })), {
    doc: 'Remote domains refused both ways: their streams are closed, stanzas to them bounced with <not-allowed/>.',
    expect: 'a list of domain names',
  }),
  connectTimeoutMs: leaf(int(100, 600_000), {
    doc: 'Time to connect to one peer address and negotiate the stream before the next address is tried.',
    expect: 'milliseconds, an integer from 100 to 600000',
  }),
  queueTimeoutMs: leaf(int(100, 3_600_000), {
    doc: 'Stanzas waiting for a stream to a remote domain are bounced with <remote-server-timeout/> after this long.',
    expect: 'milliseconds, an integer from 100 to 3600000',
  }),
  maxQueue: leaf(int(1, 1_000_000), {
    doc: 'Stanzas held per remote domain while its stream is set up; more are bounced with <resource-constraint/>.',
    expect: 'an integer from 1 to 1000000',
  }),
  idleTimeoutMs: leaf(int(1000, 86_400_000), {
    doc: 'Outbound streams idle this long are closed (reopened on demand).',
    expect: 'milliseconds, an integer from 1000 to 86400000',
  }),
  maxInboundPerDomain: leaf(int(1, 10_000), {
    doc: 'Inbound streams one remote domain may have open on one instance; more are refused with <policy-violation/>.',
    expect: 'an integer from 1 to 10000',
  }),
  maxStanzasPerSecond: leaf(int(0, 1_000_000), {
    doc: 'Stanzas per second one inbound stream may send (bursts of twice that; reading pauses past it); 0: unlimited.',
    expect: 'an integer from 0 to 1000000 (0 means unlimited)',
  }),
  maxConnectionsPerIp: leaf(int(1, 1_000_000), {
    doc: 'Concurrent inbound server-to-server connections from one IP address, counted from accept (before TLS); more are refused.',
    expect: 'an integer from 1 to 1000000',
  }),
  refusePrivateAddresses: leaf(z.boolean(), {
    doc: 'Refuse outbound connections to private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) as well as to loopback, link-local, multicast and reserved ones, which are always refused.',
    expect: 'true or false',
  }),
  allowedAddresses: leaf(z.array(z.string().trim().refine(isIpOrCidr, { message: 'not an IP address or CIDR range' })), {
    doc: 'IPs or CIDR ranges outbound connections may reach although they would be refused (a private federation; tests on 127.0.0.0/8). Static routes are never filtered.',
    expect: "a list of IP addresses or CIDR ranges such as '10.1.0.0/16'",
  }),
  allowIpLiteralDomains: leaf(z.boolean(), {
    doc: 'Federate with IP-literal domains (user@192.0.2.1, user@[2001:db8::1]); off, stanzas to them get <remote-server-not-found/>.',
    expect: 'true or false',
  }),
});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const configSchema = z.strictObject({
  domains: leaf(
    z
      .array(z.string().trim().toLowerCase().refine(isDomain, { message: 'not a valid domain name' }))
      .min(1)
      .refine((a) => new Set(a).size === a.length, { message: 'duplicate domain' }),
    {
      doc: 'Domains served (virtual hosts), prepared. The first is the default.',
      expect: 'a non-empty list of distinct domain names',
    },
  ),
  nodeId: leaf(z.string().regex(NODE_ID), {
    doc: "This process's node id (unique in the cluster). Default: hostname-pid-random.",
    expect: '1 to 128 characters from A-Z a-z 0-9 _ - (it becomes a NATS subject token)',
  }),
  dataDir: leaf(z.string().min(1), {
    doc: 'Where the embedded store and generated certificate live (relative paths are relative to the working directory).',
    expect: 'a non-empty directory path',
  }),
  natsUrl: leaf(z.string().trim().refine(isNatsUrl, { message: 'not a NATS server list' }).nullable(), {
    doc: 'NATS servers; null → in-process bus (only valid with `hyphae all`).',
    expect: "null or NATS server URLs, comma-separated (e.g. 'nats://nats:4222')",
    envAliases: ['NATS_URL'],
  }),
  redisUrl: leaf(z.string().trim().refine(isRedisUrl, { message: 'not a redis:// or rediss:// URL' }).nullable(), {
    doc: 'Redis URL; null → embedded store (only valid with `hyphae all`).',
    expect: "null or a redis:// or rediss:// URL (e.g. 'redis://redis:6379')",
    envAliases: ['REDIS_URL'],
  }),
  log: z.strictObject({
    level: leaf(z.enum(LOG_LEVELS), {
      doc: 'Least severe level written to the JSON log.',
      expect: `one of ${LOG_LEVELS.join(', ')}`,
      envAliases: ['HYPHAE_LOG_LEVEL'],
    }),
  }),
  http: z
    .strictObject({
      host: host('Address of the metrics and health endpoints.'),
      port: leaf(int(0, 65535).nullable(), {
        doc: 'Metrics and health endpoints; port 0 picks a free port, null disables.',
        expect: `${portExpect}, or null to disable`,
      }),
      adminToken: leaf(z.string().min(16).nullable(), {
        doc: 'Bearer token for the admin HTTP API (hyphae user …, hyphae status); required when the API listens on a non-loopback address. Null: loopback clients only.',
        expect: 'a string of at least 16 characters, or null',
      }),
      adminHost: host('Address of the admin API when it has its own port (http.adminPort).'),
      adminPort: leaf(int(0, 65535).nullable(), {
        doc: 'The admin API on a listener of its own at http.adminHost (metrics and health stay on http.port); null: served on http.port.',
        expect: `${portExpect}, or null to serve it on http.port`,
      }),
      adminServerNames: leaf(z.array(z.string().trim().toLowerCase().refine(isDomain, { message: 'not a valid host name' })), {
        doc: 'Host names the admin API may be called by (Host header), besides localhost and IP addresses; any other is refused (DNS rebinding).',
        expect: "a list of host names, e.g. 'hyphae-sm.xmpp.svc'",
      }),
    })
    .superRefine((v, ctx) => {
      // Without a token the API trusts whoever can connect to it: only loopback may listen so.
      const adminHost = v.adminPort !== null ? v.adminHost : v.port !== null ? v.host : null;
      if (adminHost !== null && v.adminToken === null && !isLoopbackHost(adminHost)) {
        const related = v.adminPort !== null ? 'http.adminHost' : 'http.host';
        ctx.addIssue({
          code: 'custom',
          params: crossField(related),
          path: ['adminToken'],
          input: null,
          message: `http.adminToken is required: the admin API would listen on ${adminHost} (${related}), which is not loopback; set a token of at least 16 characters, or give the admin API a loopback listener (http.adminHost 127.0.0.1 with http.adminPort)`,
        });
      }
    }),
  admins: leaf(z.array(z.string().trim().toLowerCase().regex(/^[^@/\s]+@[^@/\s]+$/)), {
    doc: 'Bare JIDs allowed to run the XEP-0133 service administration commands (XEP-0050 ad-hoc).',
    expect: 'a list of bare JIDs (user@domain)',
  }),
  tls: tlsSchema,
  c2s: c2sSchema,
  registration: registrationSchema,
  sm: smSchema,
  roster: rosterSchema,
  muc: mucSchema,
  proxy65: proxy65Schema,
  extdisco: extdiscoSchema,
  s2s: s2sSchema,
});

// Compile-time proof that the schema produces exactly the documented type
// (`modules` is added per load, from the sections of the modules in use).
type Parsed = z.output<typeof configSchema>;
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const schemaMatchesTypes: Equal<Parsed, Omit<HyphaeConfig, 'modules'>> = true;
void schemaMatchesTypes;

// ---------------------------------------------------------------------------
// Walking the schema

export type LeafKind = 'integer' | 'boolean' | 'string' | 'enum' | 'list';

export interface LeafInfo {
  /** Dotted path, e.g. 'c2s.port'. */
  key: string;
  path: string[];
  kind: LeafKind;
  nullable: boolean;
  /** Allowed values, for enums and lists of enums. */
  options?: readonly string[];
  meta: LeafMeta;
  /** Primary environment variable, e.g. HYPHAE_C2S__PORT. */
  env: string;
}

/** camelCase → UPPER_SNAKE: requireTls → REQUIRE_TLS. */
export function envSegment(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** UPPER_SNAKE → camelCase: REQUIRE_TLS → requireTls. */
export function camelSegment(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function envName(path: readonly string[]): string {
  return `HYPHAE_${path.map(envSegment).join('__')}`;
}

type AnySchema = z.core.$ZodType;

function defType(s: AnySchema): string {
  return s._zod.def.type;
}

/** The schema inside default/prefault/nullable wrappers (module leaves all have a default), and whether null is allowed. */
function unwrap(schema: AnySchema): { inner: AnySchema; nullable: boolean; meta: LeafMeta | undefined } {
  let inner = schema;
  let nullable = false;
  // leaf() may sit outside or inside the wrappers: leaf(x, m).default(v) and leaf(x.default(v), m) both work.
  let meta = z.globalRegistry.get(inner) as LeafMeta | undefined;
  for (;;) {
    const type = defType(inner);
    if (type === 'nullable') nullable = true;
    else if (type !== 'default' && type !== 'prefault') return { inner, nullable, meta };
    inner = (inner._zod.def as unknown as { innerType: AnySchema }).innerType;
    meta ??= z.globalRegistry.get(inner) as LeafMeta | undefined;
  }
}

function collect(schema: AnySchema, path: string[], out: LeafInfo[]): void {
  const { inner, nullable, meta } = unwrap(schema);
  if (defType(inner) === 'object' && !nullable) {
    const shape = (inner as z.ZodObject).shape as Record<string, AnySchema>;
    for (const [name, child] of Object.entries(shape)) collect(child, [...path, name], out);
    return;
  }
  if (!meta?.doc) throw new Error(`config schema: leaf ${path.join('.')} has no documentation`);
  let kind: LeafKind;
  let options: readonly string[] | undefined;
  switch (defType(inner)) {
    case 'number':
      kind = 'integer';
      break;
    case 'boolean':
      kind = 'boolean';
      break;
    case 'string':
      kind = 'string';
      break;
    case 'enum':
      kind = 'enum';
      options = (inner as z.ZodEnum).options as string[];
      break;
    case 'array': {
      kind = 'list';
      const el = (inner as z.ZodArray<AnySchema>).element;
      if (defType(el) === 'enum') options = (el as z.ZodEnum).options as string[];
      break;
    }
    default:
      throw new Error(`config schema: unsupported leaf type ${defType(inner)} at ${path.join('.')}`);
  }
  const info: LeafInfo = { key: path.join('.'), path, kind, nullable, meta, env: envName(path) };
  if (options) info.options = options;
  out.push(info);
}

let leavesCache: LeafInfo[] | undefined;

/**
 * Every configurable key, in schema order: the static ones, then those of the
 * given module sections (modules.<key>.<leaf>). Throws if a section is unusable.
 */
export function configLeaves(sections: readonly ConfigSection[] = []): readonly LeafInfo[] {
  if (!leavesCache) {
    const out: LeafInfo[] = [];
    collect(configSchema, [], out);
    leavesCache = out;
  }
  return sections.length === 0 ? leavesCache : [...leavesCache, ...checkSections(sections)];
}

// ---------------------------------------------------------------------------
// Module sections

/** A module's config section: the value at `modules.<key>` in the YAML, HYPHAE_MODULES__<KEY>__<LEAF> in the environment. */
export interface ConfigSection<T = unknown> {
  /** camelCase key under `modules:` (the module's name, e.g. 'carbons', 'idlePing'). */
  key: string;
  /** A z.strictObject whose every leaf has a default (.default(...)) and leaf() metadata, so an absent section is valid. */
  schema: z.ZodType<T>;
}

// Round-trips through envSegment/camelSegment, so the environment names it unambiguously.
const SECTION_KEY = /^[a-z][a-z0-9]*([A-Z][a-z0-9]*)*$/;

/**
 * The sections' leaves, after checking what the loader relies on. These are
 * programming errors in a module, not configuration errors: plain Errors.
 */
export function checkSections(sections: readonly ConfigSection[]): LeafInfo[] {
  const out: LeafInfo[] = [];
  const seen = new Set<string>();
  for (const { key, schema } of sections) {
    const what = `config section '${key}'`;
    if (!SECTION_KEY.test(key)) throw new Error(`${what}: the key must be camelCase letters and digits`);
    if (seen.has(key)) throw new Error(`${what}: two sections have this key`);
    seen.add(key);
    // Unknown keys must be errors (a typo would otherwise be silently ignored).
    const catchall = (schema._zod.def as { catchall?: AnySchema }).catchall;
    if (defType(schema) !== 'object' || !catchall || defType(catchall) !== 'never') {
      throw new Error(`${what}: the schema must be a z.strictObject`);
    }
    // A deployment that never mentions the module must still load.
    if (!schema.safeParse({}).success) throw new Error(`${what}: every leaf needs a .default(...), so that an absent section is valid`);
    collect(schema, ['modules', key], out);
  }
  return out;
}
