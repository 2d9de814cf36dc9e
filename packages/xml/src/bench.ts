/**
 * Rough throughput check: `node packages/xml/dist/bench.js [count]`.
 * Parses `count` small chat messages fed in 64 KiB chunks (what a busy socket
 * delivers) and one write per stanza (what an idle client delivers).
 */
import { StreamParser } from './parser.js';
import type { Element } from 'ltx';

const count = Number(process.argv[2] ?? 100_000);
const header =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
const stanza = "<message to='a@b' type='chat'><body>hi</body></message>";

function run(chunks: Buffer[]): { seconds: number; stanzas: number } {
  let stanzas = 0;
  let last: Element | undefined;
  const p = new StreamParser({
    onStreamStart() {},
    onStanza(el) {
      stanzas++;
      last = el;
    },
    onStreamEnd() {},
    onError(err) {
      throw err;
    },
  });
  const t0 = process.hrtime.bigint();
  for (const c of chunks) p.write(c);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (last === undefined || last.name !== 'message') throw new Error('parse failed');
  return { seconds, stanzas };
}

const whole = Buffer.from(header + stanza.repeat(count));
const big: Buffer[] = [];
for (let i = 0; i < whole.length; i += 65536) big.push(whole.subarray(i, i + 65536));
const small: Buffer[] = [Buffer.from(header)];
const one = Buffer.from(stanza);
for (let i = 0; i < count; i++) small.push(one);

for (const [label, chunks] of [
  ['64 KiB chunks', big],
  ['one write per stanza', small],
] as const) {
  run(chunks); // warm-up
  const times: number[] = [];
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const r = run(chunks);
    times.push(r.seconds);
    n = r.stanzas;
  }
  times.sort((a, b) => a - b);
  const median = times[2]!;
  const rate = Math.round(n / median);
  const mb = (whole.length / median / 1e6).toFixed(1);
  console.log(`${label}: ${n} stanzas, median of 5 runs ${median.toFixed(3)} s = ${rate} stanzas/s (${mb} MB/s)`);
}
