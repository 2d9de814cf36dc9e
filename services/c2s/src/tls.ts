/**
 * TLS credentials for the edges: operator-provided PEM files (Kubernetes
 * secrets), or, when none are configured, a self-signed pair generated once
 * into the data directory so a newcomer's `npm start` just works.
 */
import { mkdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import type { HyphaeConfig } from '@hyphae/config';
import type { Logger } from '@hyphae/observability';

export interface TlsCredentials {
  key: string;
  cert: string;
  selfSigned: boolean;
}

export class TlsSetupError extends Error {
  constructor(readonly key: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TlsSetupError';
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export async function loadTlsCredentials(config: HyphaeConfig, logger: Logger): Promise<TlsCredentials> {
  const { cert, key } = config.tls;
  if (cert || key) {
    if (!cert || !key) throw new TlsSetupError(cert ? 'tls.key' : 'tls.cert', 'tls.cert and tls.key must be set together');
    const read = async (path: string, name: string) => {
      try {
        return await readFile(path, 'utf8');
      } catch (cause) {
        throw new TlsSetupError(name, `cannot read ${name} (${path})`, { cause });
      }
    };
    return { cert: await read(cert, 'tls.cert'), key: await read(key, 'tls.key'), selfSigned: false };
  }
  const dir = join(config.dataDir, 'tls');
  const certPath = join(dir, 'selfsigned.crt');
  const keyPath = join(dir, 'selfsigned.key');
  if (await exists(certPath) && await exists(keyPath)) {
    logger.warn({ cert: certPath }, 'using the self-signed certificate generated earlier; configure tls.cert/tls.key for production');
    return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8'), selfSigned: true };
  }
  const [first] = config.domains;
  const altNames = config.domains.flatMap((d) => [{ type: 2 as const, value: d }, { type: 2 as const, value: `*.${d}` }]);
  const pems = await generate([{ name: 'commonName', value: first ?? 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyPath, pems.private, { mode: 0o600 });
  await writeFile(certPath, pems.cert, { mode: 0o644 });
  logger.warn({ cert: certPath, domains: config.domains }, 'generated a self-signed TLS certificate; clients will ask to trust it. Configure tls.cert/tls.key for production');
  return { cert: pems.cert, key: pems.private, selfSigned: true };
}
