/**
 * Mutation fuzzing, run in a worker thread by fuzz.test.ts so that an
 * infinite loop in the parser is detected (the main thread terminates the
 * worker when its heartbeat stops) instead of hanging the test run.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { serialize } from './serialize.js';
import { StreamParser } from './parser.js';
import { cuts, depthOf, element, maxAttrsOf, mutate, mutation } from './arbitraries.js';
import { DECL, HEADER, splitAt, toPlain } from './testutil.js';
import type { Plain } from './testutil.js';
import type { StreamParserLimits } from './types.js';

export interface FuzzRequest {
  seed: number;
  numRuns: number;
}

export type FuzzMessage =
  | { type: 'input'; run: number; base64: string }
  | { type: 'done'; ok: true; runs: number; errors: Record<string, number>; stanzas: number }
  | { type: 'done'; ok: false; message: string };

const LIMITS: StreamParserLimits = { maxStanzaBytes: 512, maxDepth: 4, maxAttributes: 6 };

const corpus = [
  `${DECL}${HEADER}<message to='a@b' type='chat'><body>hi &amp; bye</body></message><iq id='1'/></stream:stream>`,
  `${HEADER}<m a="x" b='&#x41;'>中文😀<![CDATA[<&>]]><n/></m> <p/>`,
  `${HEADER}<presence><show>away</show><status>x\r\ny</status></presence>`,
];

type Ev = ['start', string] | ['stanza', Plain] | ['end'] | ['error', string];

function run(chunks: Buffer[]): { events: Ev[]; depthOk: boolean; attrsOk: boolean } {
  const events: Ev[] = [];
  let depthOk = true;
  let attrsOk = true;
  const p = new StreamParser(
    {
      onStreamStart(name, attrs) {
        if (Object.keys(attrs).length > LIMITS.maxAttributes) attrsOk = false;
        events.push(['start', name]);
      },
      onStanza(el) {
        if (depthOf(el) > LIMITS.maxDepth) depthOk = false;
        if (maxAttrsOf(el) > LIMITS.maxAttributes) attrsOk = false;
        events.push(['stanza', toPlain(el)]);
      },
      onStreamEnd() {
        events.push(['end']);
      },
      onError(err) {
        events.push(['error', err.condition]);
      },
    },
    LIMITS,
  );
  for (const c of chunks) p.write(c);
  // Input after an error, and end(), must not produce anything more.
  p.write('<after/>');
  p.end();
  return { events, depthOk, attrsOk };
}

const port = parentPort!;
const { seed, numRuns } = workerData as FuzzRequest;
const errors: Record<string, number> = {};
let stanzaCount = 0;
let runNo = 0;

try {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.nat({ max: corpus.length - 1 }).map((i) => corpus[i]!),
        fc.array(element, { minLength: 1, maxLength: 3 }).map((els) => HEADER + els.map(serialize).join('')),
      ),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      cuts,
      (doc, ms, cutPoints) => {
        const input = mutate(Buffer.from(doc), ms);
        port.postMessage({ type: 'input', run: runNo++, base64: input.toString('base64') } satisfies FuzzMessage);
        const whole = run([input]);
        const chunked = run(splitAt(input, cutPoints.map((c) => c % (input.length + 1))));
        const errs = whole.events.filter((e) => e[0] === 'error');
        if (errs.length > 1) throw new Error(`more than one onError: ${JSON.stringify(errs)}`);
        if (errs.length === 1 && whole.events[whole.events.length - 1]![0] !== 'error') {
          throw new Error('events after onError');
        }
        if (!whole.depthOk || !whole.attrsOk) throw new Error('a stanza beyond the limits was emitted');
        if (!isDeepStrictEqual(whole.events, chunked.events)) {
          throw new Error(`chunked parse differs: ${JSON.stringify(whole.events)} vs ${JSON.stringify(chunked.events)}`);
        }
        const cond = errs[0]?.[1] ?? 'none';
        errors[cond] = (errors[cond] ?? 0) + 1;
        stanzaCount += whole.events.filter((e) => e[0] === 'stanza').length;
      },
    ),
    { seed, numRuns },
  );
  port.postMessage({ type: 'done', ok: true, runs: runNo, errors, stanzas: stanzaCount } satisfies FuzzMessage);
} catch (e) {
  port.postMessage({ type: 'done', ok: false, message: e instanceof Error ? e.message : String(e) } satisfies FuzzMessage);
}
