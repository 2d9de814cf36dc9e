export interface TlsConfig {
  /** PEM certificate chain file; with `key`. When both are null a self-signed pair is generated into dataDir. */
  cert: string | null;
  key: string | null;
  /** Oldest TLS version accepted or offered, on every listener and outbound connection. */
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list (TLS 1.3 suites by their TLS_ names); default: forward-secret AEAD suites only. */
  ciphers: string;
  /** A connection whose TLS handshake (direct TLS or STARTTLS) has not finished this long after it began is closed. */
  handshakeTimeoutMs: number;
}

export interface C2sConfig {
  /** Address the listeners bind to. */
  host: string;
  /** STARTTLS port (RFC 6120); 0 picks a free port (tests). */
  port: number;
  /** Direct TLS port (XEP-0368); 0 picks a free port; null disables it. */
  directTlsPort: number | null;
  /** Refuse to authenticate before STARTTLS (RFC 6120 §5.3.1 "mandatory-to-negotiate"). */
  requireTls: boolean;
  maxStanzaBytes: number;
  maxDepth: number;
  maxAttributes: number;
  /** Close streams that have sent nothing (not even a whitespace keepalive) for this long. */
  idleTimeoutSeconds: number;
  /** Close streams not authenticated this long after connecting. */
  authTimeoutSeconds: number;
  /** Concurrent connections from one IP address, counted from accept (before TLS). */
  maxConnectionsPerIp: number;
  /** Inbound bytes per second per connection (burst: two seconds' worth); 0 = unlimited. */
  maxBytesPerSecond: number;
  /** Bytes queued for a client that does not read, past which its stream ends with <resource-constraint/>. */
  maxWriteBufferBytes: number;
  /** SASL mechanisms offered, in order of preference. PLAIN is offered only over TLS. */
  saslMechanisms: Array<'SCRAM-SHA-256' | 'SCRAM-SHA-1' | 'PLAIN'>;
  /** PBKDF2 iterations for new credentials (RFC 7677 recommends at least 4096). */
  scramIterations: number;
  /** On SIGTERM: readiness turns false and listeners close at once; streams are closed this long after. */
  drainGraceMs: number;
  /** When draining, send `<see-other-host/>` with this host[:port] instead of `<system-shutdown/>`; null: system-shutdown. */
  seeOtherHost: string | null;
}

export interface RegistrationConfig {
  /** XEP-0077 in-band registration of new accounts. */
  open: boolean;
  /** New accounts per source IP per window, outside the allowlist. */
  maxPerIp: number;
  windowSeconds: number;
  /** IPs or CIDR ranges exempt from the rate limit. */
  allowlist: string[];
  /** Registration submissions one stream may make; past it, <policy-violation/> and the stream is closed. */
  maxAttemptsPerStream: number;
}

export interface SmConfig {
  /** How often each c2s node renews its heartbeat. */
  heartbeatIntervalMs: number;
  /** A node that has not heartbeated for this long is dead; its sessions are removed. */
  nodeTtlMs: number;
}

export interface RosterConfig {
  /** Shards of the user actors; the same in every service of a cluster. */
  shards: number;
  /** Most items in one roster. */
  maxItems: number;
  /** Longest roster item or group name, in characters. */
  maxNameLength: number;
  /** Offline messages kept per user (XEP-0160); 0 disables offline storage. */
  offlineCap: number;
  /** How long a roster instance owns a shard without renewing (bounds failover). */
  leaseTtlMs: number;
  /** Operations queued or running in one instance's mailboxes; past it new ones are refused (busy). */
  maxQueued: number;
}

export interface MucConfig {
  /** Serve XEP-0045 multi-user chat at `<subdomain>.<domain>` for every served domain. */
  enabled: boolean;
  /** The MUC service's subdomain: rooms live at room@<subdomain>.<domain>. */
  subdomain: string;
  /** Shards of the room actors; the same in every service of a cluster. */
  shards: number;
  /** How long a muc instance owns a shard without renewing (bounds failover). */
  leaseTtlMs: number;
  /** Rooms one user may own; creating more is refused with <not-allowed/>. 0: only server admins create rooms (none yet). */
  maxRoomsPerUser: number;
  /** Hard cap on occupants of one room (muc#roomconfig_maxusers cannot exceed it). */
  maxOccupants: number;
  /** muc#roomconfig_maxusers of a new room. */
  defaultMaxUsers: number;
  /** Hard cap on discussion history kept per room (muc#roomconfig_historylength cannot exceed it). */
  maxHistory: number;
  /** Discussion history length of a new room. */
  defaultHistory: number;
  /** Largest groupchat or private message an occupant may send through a room, in bytes. */
  maxMessageBytes: number;
  /** Messages per second one occupant may send through a room (burst of twice that); past it <resource-constraint/>. */
  messagesPerSecond: number;
}

export interface Proxy65Config {
  /** Serve the XEP-0065 SOCKS5 bytestream proxy at `<subdomain>.<domain>` in processes that run the proxy65 service. */
  enabled: boolean;
  subdomain: string;
  /** Address the SOCKS5 listener binds. */
  host: string;
  /** SOCKS5 port; 0 picks a free port (tests). */
  port: number;
  /** Host announced in streamhost answers (behind Kubernetes: the Service's address); null: `host`. */
  advertisedHost: string | null;
  /** Port announced in streamhost answers; null: the port listened on. */
  advertisedPort: number | null;
  /** Streams (pairs) at once on one instance. */
  maxStreams: number;
  /** Streams one bare JID may have open (as requester) at once. */
  maxStreamsPerUser: number;
  /** How long a connection may wait for its peer and activation. */
  pairingTimeoutMs: number;
  /** An activated stream with no bytes either way for this long is closed. */
  idleTimeoutMs: number;
  /** Per-stream bandwidth cap in bytes per second, each direction; 0 = none. */
  maxBytesPerSecond: number;
  /** Bytes one stream may relay in total; 0 = unlimited. */
  maxBytes: number;
}

/** Federation (RFC 6120 server-to-server; the s2s service). */
export interface S2sConfig {
  /** Serve federation in processes that run the s2s service; off, remote domains get <remote-server-not-found/>. */
  enabled: boolean;
  /** Address the listeners bind to. */
  host: string;
  /** Server-to-server port with STARTTLS (RFC 6120 §3.2); 0 picks a free port (tests). */
  port: number;
  /** Direct TLS port (XEP-0368); null disables it. */
  directTlsPort: number | null;
  /** Shards of outbound streams (keyed by remote domain). */
  shards: number;
  /** Shard lease lifetime: how quickly another instance takes over the streams of a dead one. */
  leaseTtlMs: number;
  /** Streams must be encrypted (both ways); off, a peer without STARTTLS is accepted in the clear. */
  requireTls: boolean;
  /** Accept and use Server Dialback (XEP-0220) when a certificate cannot authenticate the peer. */
  dialback: boolean;
  /** PEM file of extra trust anchors for peer certificates (besides the system's); null: system roots only. */
  caFile: string | null;
  /** Trust only `caFile`, not the system roots (private federations, tests). */
  caOnly: boolean;
  /** Dialback secret shared by every s2s instance (XEP-0185); null: derived from the TLS key. */
  dialbackSecret: string | null;
  /** DNS servers for SRV/A lookups, `ip` or `ip:port`; empty: the system resolver. */
  dnsServers: string[];
  /** Static routes `domain=host:port`, checked before DNS (private deployments, tests). */
  staticRoutes: string[];
  /** Remote domains refused both ways. */
  blocklist: string[];
  /** Connecting to one candidate (TCP, TLS, negotiation) may take this long before the next is tried. */
  connectTimeoutMs: number;
  /** Stanzas waiting for a stream are bounced with <remote-server-timeout/> after this long. */
  queueTimeoutMs: number;
  /** Stanzas queued per remote domain while its stream is set up; more are bounced. */
  maxQueue: number;
  /** An outbound stream idle this long is closed (it is reopened on demand). */
  idleTimeoutMs: number;
  /** Inbound streams per remote domain at once (per instance). */
  maxInboundPerDomain: number;
  /** Stanzas per second one inbound stream may send (bursts of twice that); 0: unlimited. */
  maxStanzasPerSecond: number;
  /** Concurrent inbound connections from one IP address, counted from accept (before TLS). */
  maxConnectionsPerIp: number;
  /** Outbound connections to private addresses (RFC 1918, CGNAT, IPv6 unique local) are refused. */
  refusePrivateAddresses: boolean;
  /** IPs or CIDR ranges outbound connections may reach although refused otherwise (loopback, private…). */
  allowedAddresses: string[];
  /** Federate with IP-literal domains (user@192.0.2.1); off, they get <remote-server-not-found/>. */
  allowIpLiteralDomains: boolean;
}

export interface ExtDiscoConfig {
  /** XEP-0215 services: `stun:host:port`, `turn:host:port[/udp|/tcp]`, `turns:host:port[/tcp]`, `stuns:host:port`. */
  services: string[];
  /** Shared secret of the TURN server (coturn `static-auth-secret`): time-limited credentials are derived from it. Null: TURN entries are listed without credentials. */
  turnSecret: string | null;
  /** Lifetime of derived TURN credentials, in seconds. */
  ttlSeconds: number;
}

export interface HyphaeConfig {
  /** Domains served (virtual hosts), prepared. The first is the default. */
  domains: string[];
  /** This process's node id (unique in the cluster). Default: hostname-pid-random. */
  nodeId: string;
  /** Where the embedded store and generated certificate live. */
  dataDir: string;
  /** NATS servers; null → in-process bus (only valid with `hyphae all`). */
  natsUrl: string | null;
  /** Redis URL; null → embedded store (only valid with `hyphae all`). */
  redisUrl: string | null;
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  /** Metrics and health endpoints; port 0 picks a free port, null disables. */
  http: {
    host: string;
    port: number | null;
    adminToken: string | null;
    /** Address of the admin API's own listener (with adminPort). */
    adminHost: string;
    /** The admin API's own port; null: it is served on the http port. */
    adminPort: number | null;
    /** Host names (Host header) the admin API answers to, besides loopback names and IP addresses. */
    adminServerNames: string[];
  };
  /** Bare JIDs allowed to run the XEP-0133 service administration commands. */
  admins: string[];
  tls: TlsConfig;
  c2s: C2sConfig;
  registration: RegistrationConfig;
  sm: SmConfig;
  roster: RosterConfig;
  muc: MucConfig;
  proxy65: Proxy65Config;
  extdisco: ExtDiscoConfig;
  s2s: S2sConfig;
  /**
   * Each module's parsed section, by its key (`modules.<key>` in YAML); only the
   * sections passed to loadConfig. A module reads its own back, typed, with moduleOptions().
   */
  modules: Record<string, unknown>;
}
