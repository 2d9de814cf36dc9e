/**
 * Property-based tests (fast-check):
 * (a) random element trees, serialized and parsed back in random chunks, round-trip exactly;
 * (b) random byte mutations of valid streams never throw out of write(), never hang,
 *     and yield stanzas and at most one onError (run in a worker, see fuzz-worker.ts);
 * (c) the limits hold for generated inputs: a stanza is delivered iff it fits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { serialize, streamFooter } from './serialize.js';
import { cuts, depthOf, element, maxAttrsOf } from './arbitraries.js';
import { HEADER, parse, parseChunks, splitAt, toPlain } from './testutil.js';
import type { Event } from './testutil.js';
import type { FuzzMessage, FuzzRequest } from './fuzz-worker.js';

/** FC_SEED=… reproduces a failure; by default every run explores new inputs. */
const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Date.now() % 2 ** 31;
const runs = (n: number): number => Math.max(1, Math.round(n * Number(process.env.FC_SCALE ?? 1)));

describe(`property tests (seed ${seed})`, () => {
  it('(a) serialize → parse in random chunks round-trips random trees exactly', () => {
    const roomy = { maxStanzaBytes: 10 * 1024 * 1024, maxDepth: 1000, maxAttributes: 1000 };
    fc.assert(
      fc.property(fc.array(element, { minLength: 1, maxLength: 4 }), cuts, (els, cutPoints) => {
        const doc = Buffer.from(HEADER + els.map(serialize).join('\n') + streamFooter);
        const chunks = splitAt(doc, cutPoints.map((c) => c % (doc.length + 1)));
        const events = parseChunks(chunks, roomy);
        const expected: Event[] = [
          ...els.map((el): Event => ({ type: 'stanza', el: toPlain(el) })),
          { type: 'end' },
        ];
        assert.deepEqual(events.slice(1), expected);
        // Serializing what we parsed gives back the same bytes.
        assert.equal(
          events
            .slice(1, -1)
            .map((_, i) => serialize(els[i]!))
            .join('\n'),
          els.map(serialize).join('\n'),
        );
      }),
      { seed, numRuns: runs(500) },
    );
  });

  it('(b) mutated streams never throw, never hang, and report at most one error', async () => {
    const numRuns = runs(1500);
    const result = await new Promise<FuzzMessage & { type: 'done' }>((resolve, reject) => {
      const worker = new Worker(new URL('./fuzz-worker.js', import.meta.url), {
        workerData: { seed, numRuns } satisfies FuzzRequest,
      });
      let last = '';
      let timer: NodeJS.Timeout;
      // A single input must never take seconds: if the heartbeat stops, the parser is looping.
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          void worker.terminate();
          reject(new Error(`parser hung on input (base64) ${last}`));
        }, 10_000);
      };
      arm();
      worker.on('message', (m: FuzzMessage) => {
        if (m.type === 'input') {
          last = m.base64;
          arm();
        } else {
          clearTimeout(timer);
          void worker.terminate();
          resolve(m);
        }
      });
      worker.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    if (!result.ok) assert.fail(result.message);
    assert.ok(result.runs >= numRuns, `ran ${result.runs} of ${numRuns}`);
    // The mutations must exercise both outcomes, or the test proves nothing.
    assert.ok((result.errors['none'] ?? 0) > 0, JSON.stringify(result.errors));
    assert.ok((result.errors['not-well-formed'] ?? 0) > 0, JSON.stringify(result.errors));
    assert.ok(result.stanzas > 0);
  });

  it('(c) a generated stanza is delivered iff it is within every limit, else policy-violation', () => {
    const headerBytes = Buffer.byteLength(HEADER);
    let delivered = 0;
    let rejected = 0;
    fc.assert(
      fc.property(
        fc.array(element, { minLength: 1, maxLength: 5 }),
        fc.record({
          maxStanzaBytes: fc.integer({ min: headerBytes, max: 600 }),
          maxDepth: fc.integer({ min: 1, max: 5 }),
          maxAttributes: fc.integer({ min: 4, max: 6 }), // HEADER has 4
        }),
        cuts,
        (els, limits, cutPoints) => {
          const doc = Buffer.from(HEADER + els.map(serialize).join(''));
          const events = parseChunks(
            splitAt(doc, cutPoints.map((c) => c % (doc.length + 1))),
            limits,
          );
          const expected: Event[] = [];
          for (const el of els) {
            const fits =
              Buffer.byteLength(serialize(el)) <= limits.maxStanzaBytes &&
              depthOf(el) <= limits.maxDepth &&
              maxAttrsOf(el) <= limits.maxAttributes;
            if (!fits) {
              expected.push({ type: 'error', condition: 'policy-violation' });
              rejected++;
              break;
            }
            expected.push({ type: 'stanza', el: toPlain(el) });
            delivered++;
          }
          assert.deepEqual(events.slice(1), expected);
        },
      ),
      { seed, numRuns: runs(500) },
    );
    assert.ok(delivered > 0 && rejected > 0, `delivered ${delivered}, rejected ${rejected}`);
  });

  it('(c) the size limit is exact at the boundary for generated stanzas', () => {
    fc.assert(
      fc.property(element, (el) => {
        const bytes = Buffer.byteLength(serialize(el));
        const roomy = { maxDepth: 1000, maxAttributes: 1000 };
        const doc = HEADER + serialize(el);
        if (bytes >= Buffer.byteLength(HEADER)) {
          assert.equal(parse(doc, { ...roomy, maxStanzaBytes: bytes }).length, 2);
          if (bytes - 1 >= Buffer.byteLength(HEADER)) {
            assert.deepEqual(parse(doc, { ...roomy, maxStanzaBytes: bytes - 1 })[1], {
              type: 'error',
              condition: 'policy-violation',
            });
          }
        }
      }),
      { seed, numRuns: runs(300) },
    );
  });
});
