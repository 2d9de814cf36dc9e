/**
 * Which modules a Hyphae process loads, and what the services declare of
 * themselves: the one list the registry, the config sections and the
 * compliance table (docs/compliance.md, docs/hyphae.doap) are built from.
 */
import type { Declaration, ModuleDefinition } from '@hyphae/module-api';
import { complianceDoap, complianceMarkdown } from '@hyphae/module-api';
import { ModuleRegistry } from '@hyphae/module-api';
import type { ConfigSection } from '@hyphae/config';
import { standardModules } from '@hyphae/modules';
import { adhoc } from '@hyphae/admin';

/** Every module, in hook order (a module's `priority` comes first). */
export const MODULES: readonly ModuleDefinition<unknown>[] = [...standardModules, adhoc];

/** The config sections of MODULES (`modules.<key>`), for loadConfig and the reference table. */
export function moduleSections(): ConfigSection[] {
  return ModuleRegistry.sections(MODULES);
}

/** What the services implement themselves (the protocol engines that are not modules). */
export const SERVICE_DECLARATIONS: readonly Declaration[] = [
  {
    kind: 'service', name: 'c2s', description: 'Client connections: streams, STARTTLS and direct TLS, SASL, resource binding, stanza stamping',
    specs: [
      { spec: 'RFC 6120', note: 'client-to-server: TCP, STARTTLS, SASL SCRAM-SHA-256/SCRAM-SHA-1/PLAIN, binding, stream and stanza errors' },
      { spec: 'RFC 7622', note: 'JIDs (PRECIS)' },
      { spec: 'XEP-0368', version: '1.1.0', note: 'direct TLS (ALPN xmpp-client)' },
    ],
  },
  {
    kind: 'service', name: 'roster', description: 'User actors: per-user mailboxes, sharded, in which the modules\' user operations run (roster, offline, …)',
    specs: [],
  },
  {
    kind: 'service', name: 'muc', description: 'Multi-user chat rooms as sharded actors',
    specs: [{ spec: 'XEP-0045', version: '1.34.5' }, { spec: 'XEP-0059', version: '1.0.0', note: 'public room list' }],
  },
  {
    kind: 'service', name: 'proxy65', description: 'SOCKS5 bytestream proxy; file transfer and Jingle are routed',
    specs: [
      { spec: 'XEP-0065', version: '1.8.2' },
      { spec: 'XEP-0096', version: '1.3.1', note: 'routed' },
      { spec: 'XEP-0047', version: '2.0.1', note: 'routed' },
      { spec: 'XEP-0166', version: '1.1.2', note: 'routed' },
      { spec: 'XEP-0234', version: '0.19.1', note: 'routed' },
      { spec: 'XEP-0260', version: '1.0.3', note: 'routed' },
      { spec: 'XEP-0261', version: '1.0', note: 'routed' },
    ],
  },
  {
    kind: 'service', name: 's2s', description: 'Federation gateway: server-to-server streams',
    specs: [
      { spec: 'RFC 6120', note: 'server-to-server: DNS SRV, TLS, SASL EXTERNAL' },
      { spec: 'RFC 6125', note: 'certificate identity checks' },
      { spec: 'XEP-0178', version: '1.2' },
      { spec: 'XEP-0220', version: '1.1.1' },
      { spec: 'XEP-0185', version: '1.0' },
      { spec: 'XEP-0288', status: 'planned', note: 'bidirectional streams' },
    ],
  },
];

/** Modules and services, for the compliance table. */
export function declarations(): Declaration[] {
  return [...MODULES.map((m) => ({ ...m, kind: 'module' as const })), ...SERVICE_DECLARATIONS];
}

/** The generated compliance files by repository path: the table and the DOAP description. */
export function complianceFiles(version: string): Record<string, string> {
  const all = declarations();
  return {
    'docs/compliance.md': complianceMarkdown(all),
    'docs/hyphae.doap': complianceDoap(all, {
      name: 'Hyphae',
      shortdesc: 'A clustered XMPP server on NATS and Redis that also runs as one process',
      version,
    }),
  };
}
