#!/usr/bin/env node
/**
 * The `hyphae` command: `hyphae all` (every service in one process),
 * `hyphae c2s`, `hyphae sm` (cluster mode), `--config <file.yaml>`; and the
 * administration commands `hyphae user …`, `hyphae status` (admin-cli.ts).
 */
import { loadConfig, ConfigError } from '@hyphae/config';
import { guardProcess } from '@hyphae/observability';
import { startProcess, StartupError, SERVICES, VERSION, moduleSections, type ServiceName } from './index.js';
import { runAdminCli, ADMIN_USAGE, ADMIN_HELP } from './admin-cli.js';

const USAGE = `usage: hyphae <all|${SERVICES.join('|')}> [--config <file.yaml>]
       hyphae version
${ADMIN_USAGE}

  all     every service in one process (default bus: in-process, store: on disk)
  c2s     client connection manager (cluster mode: needs NATS_URL and REDIS_URL)
  sm      session registry keeper (cluster mode)
  roster  roster, subscriptions, presence, offline messages (cluster mode)
  muc     multi-user chat rooms, XEP-0045 (cluster mode)
  proxy65 file transfer proxy, XEP-0065 SOCKS5 bytestreams (cluster mode)
  s2s     federation gateway, server-to-server streams (cluster mode)

${ADMIN_HELP}

Configuration: a YAML file (--config or HYPHAE_CONFIG) and HYPHAE_* environment
variables; see the README's configuration reference.`;

function parseArgs(argv: string[]): { command: string | undefined; config: string | undefined; rest: string[] } {
  let config: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--config' || a === '-c') config = argv[++i];
    else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else rest.push(a);
  }
  return { command: rest[0], config, rest };
}

async function main(): Promise<number> {
  const { command, config: file, rest } = parseArgs(process.argv.slice(2));
  if (command === 'version' || command === '--version') {
    console.log(VERSION);
    return 0;
  }
  if (command === 'user' || command === 'status') {
    return runAdminCli(rest, {
      env: process.env,
      configFile: file,
      stdout: (l) => console.log(l),
      stderr: (l) => console.error(l),
      stdin: process.stdin,
    });
  }
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const services: ServiceName[] = command === 'all' ? [...SERVICES] : (SERVICES as readonly string[]).includes(command) ? [command as ServiceName] : [];
  if (services.length === 0) {
    console.error(`hyphae: unknown command '${command}'\n${USAGE}`);
    return 2;
  }
  let config;
  try {
    config = loadConfig({ file, env: process.env, sections: moduleSections() });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`hyphae: configuration error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  let proc;
  try {
    proc = await startProcess(config, services);
  } catch (e) {
    if (e instanceof StartupError) {
      console.error(`hyphae: ${e.message}`);
      return 2;
    }
    throw e;
  }
  // Once serving, a stray rejection or exception is logged and counted,
  // never the end of every stream on the node (DESIGN.md invariant 7).
  guardProcess(process, { logger: proc.logger, counter: proc.metrics.unhandledErrors });
  const shutdown = (signal: string) => {
    proc.logger.info({ signal }, 'draining');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    proc.stop().then(() => process.exit(0), (err: unknown) => {
      proc.logger.error({ err }, 'unclean stop');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return -1; // keep running
}

main().then((code) => {
  if (code >= 0) process.exitCode = code;
}, (err: unknown) => {
  console.error('hyphae: failed to start:', err);
  process.exit(1);
});
