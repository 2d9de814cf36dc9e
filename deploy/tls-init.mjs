#!/usr/bin/env node
/**
 * One-shot TLS setup for a multi-node deployment (the `tls-init` service of
 * docker-compose.yml): every c2s node must present the same certificate and
 * key (clients pin what they accepted; the unknown-user SCRAM salts are
 * derived from the key). Left to themselves, c2s nodes starting together on
 * an empty shared volume would each generate a different self-signed pair.
 *
 * This runs the server's own code (loadTlsCredentials of @hyphae/c2s) with
 * the server's configuration, before any c2s node starts:
 *  - tls.cert/tls.key set: checks they can be read (fails otherwise);
 *  - unset: generates the self-signed pair into <dataDir>/tls/ once (later
 *    runs reuse it), where the c2s nodes, sharing that volume, pick it up.
 */
import { loadConfig } from '@hyphae/config';
import { createLogger } from '@hyphae/observability';
import { loadTlsCredentials } from '@hyphae/c2s';

let config;
try {
  config = loadConfig({ env: process.env });
} catch (err) {
  console.error(`tls-init: configuration error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
const logger = createLogger({ service: 'tls-init', node: config.nodeId, level: config.log.level });
try {
  const creds = await loadTlsCredentials(config, logger);
  logger.info({ selfSigned: creds.selfSigned, cert: config.tls.cert ?? `${config.dataDir}/tls/selfsigned.crt` }, 'TLS credentials ready');
} catch (err) {
  logger.error({ err }, 'TLS setup failed');
  process.exit(1);
}
