import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from './index.js';

function sink(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('JSON lines with service, node, level label, ISO time and message', () => {
  const out = sink();
  const log = createLogger({ service: 'c2s', node: 'n1', destination: out.stream });
  log.info({ jid: 'a@b' }, 'hello');
  const [line] = out.lines();
  assert.ok(line);
  assert.equal(line.service, 'c2s');
  assert.equal(line.node, 'n1');
  assert.equal(line.level, 'info');
  assert.equal(line.msg, 'hello');
  assert.equal(line.jid, 'a@b');
  assert.equal(typeof line.time, 'string');
  assert.ok(!Number.isNaN(Date.parse(line.time as string)));
  assert.equal(line.pid, undefined);
  assert.equal(line.hostname, undefined);
});

test('level filters; default level is info', () => {
  const out = sink();
  const log = createLogger({ service: 'sm', destination: out.stream });
  log.debug('hidden');
  log.warn('shown');
  assert.deepEqual(out.lines().map((l) => l.msg), ['shown']);
  assert.equal(out.lines()[0]!.node, undefined);

  const out2 = sink();
  const debug = createLogger({ service: 'sm', level: 'debug', destination: out2.stream });
  debug.debug('visible');
  assert.deepEqual(out2.lines().map((l) => l.level), ['debug']);

  const out3 = sink();
  createLogger({ service: 'sm', level: 'silent', destination: out3.stream }).fatal('nothing');
  assert.equal(out3.lines().length, 0);
});

test('child loggers keep the base fields; errors are serialized', () => {
  const out = sink();
  const log = createLogger({ service: 'roster', node: 'n2', destination: out.stream }).child({ shard: 3 });
  log.error({ err: new Error('boom') }, 'failed');
  const [line] = out.lines();
  assert.equal(line!.service, 'roster');
  assert.equal(line!.node, 'n2');
  assert.equal(line!.shard, 3);
  assert.equal((line!.err as { message: string }).message, 'boom');
  assert.match((line!.err as { stack: string }).stack, /boom/);
});
