/**
 * The process guards in a real child process: an unhandled rejection and an
 * uncaught exception are logged and counted, and the process lives on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { UNHANDLED_ERROR_MSG } from './process-guards.js';

const INDEX = new URL('./index.js', import.meta.url).href;

/** Runs a child that (maybe) installs the guards, then fails a promise and throws from a timer. */
function runChild(guarded: boolean): { status: number | null; lines: Array<Record<string, unknown>>; metrics: string } {
  const script = `
    import { createLogger, createMetrics, guardProcess } from ${JSON.stringify(INDEX)};
    const logger = createLogger({ service: 'guard-test' });
    const metrics = createMetrics({ service: 'guard-test', node: 'n1', defaultMetrics: false });
    if (${guarded}) guardProcess(process, { logger, counter: metrics.unhandledErrors });
    Promise.reject(new Error('nobody handles this'));
    setTimeout(() => { throw new Error('nobody catches this'); }, 10);
    setTimeout(async () => {
      process.stdout.write(JSON.stringify({ metrics: await metrics.registry.metrics() }) + '\\n');
      process.exit(0);
    }, 100);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const metrics = String(lines.find((l) => 'metrics' in l)?.metrics ?? '');
  return { status: r.status, lines, metrics };
}

test('an unhandled rejection and an uncaught exception are logged and counted; the process goes on', () => {
  const { status, lines, metrics } = runChild(true);
  assert.equal(status, 0, 'the process lived to exit on its own');
  const reported = lines.filter((l) => l.msg === UNHANDLED_ERROR_MSG);
  assert.deepEqual(reported.map((l) => [l.level, l.unhandled]), [['error', 'rejection'], ['error', 'exception']]);
  assert.match(String((reported[0]?.err as { message?: string } | undefined)?.message), /nobody handles this/);
  assert.match(metrics, /hyphae_unhandled_errors_total\{kind="rejection",service="guard-test",node="n1"\} 1/);
  assert.match(metrics, /hyphae_unhandled_errors_total\{kind="exception",service="guard-test",node="n1"\} 1/);
});

test('without the guards the same child dies (what they prevent)', () => {
  const { status, metrics } = runChild(false);
  assert.notEqual(status, 0);
  assert.equal(metrics, '');
});
