#!/usr/bin/env node
/**
 * Container health probe: `node /app/deploy/healthcheck.mjs [/healthz|/readyz]`
 * exits 0 when the endpoint answers 200, else 1 (Docker HEALTHCHECK and the
 * compose healthchecks; the image has no curl or wget).
 *
 * It reads the configuration exactly as the server does (HYPHAE_CONFIG, then
 * HYPHAE_* variables), so it probes the `http.port` the server really uses:
 * a wildcard `http.host` (0.0.0.0, ::) is probed on loopback.
 */
import { request } from 'node:http';
import { loadConfig } from '@hyphae/config';

const path = process.argv[2] ?? '/healthz';
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS ?? 3000);

let http;
try {
  http = loadConfig({ env: process.env }).http;
} catch (err) {
  console.error(`healthcheck: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
if (http.port === null) {
  console.log('healthcheck: http.port is null (endpoints disabled): nothing to probe');
  process.exit(0);
}
if (http.port === 0) {
  console.error('healthcheck: http.port is 0 (a random port): set a fixed http.port to probe it');
  process.exit(1);
}
const host = http.host === '0.0.0.0' || http.host === '' ? '127.0.0.1' : http.host === '::' ? '::1' : http.host;

const req = request({ host, port: http.port, path, method: 'GET', timeout: timeoutMs }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => (body += chunk));
  res.on('end', () => {
    const ok = res.statusCode === 200;
    (ok ? console.log : console.error)(`healthcheck: GET ${path} on ${host}:${http.port}: ${res.statusCode} ${body.trim()}`);
    process.exit(ok ? 0 : 1);
  });
});
req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
req.on('error', (err) => {
  console.error(`healthcheck: GET ${path} on ${host}:${http.port}: ${err.message}`);
  process.exit(1);
});
req.end();
