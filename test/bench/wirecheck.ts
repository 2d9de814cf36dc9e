/**
 * The wire check: one login with this tool's client and one with
 * @xmpp/client (the library the e2e suite uses), recording every write each
 * makes; after normalising what must differ (random ids, SCRAM nonces and
 * proofs, the resource-bind id), the two transcripts should be the same.
 *
 * Both log in to the same server with the same account, SCRAM-SHA-1,
 * resource `bench`, and send initial presence. What is compared is the
 * element sequence: name, attributes and content after normalisation.
 */
import { client as xmppClient, xml } from '@xmpp/client';
import { parse, type Element } from 'ltx';
import { loginClient, type Endpoint } from './client.js';
import { Framer } from './framing.js';

export interface WireTranscripts {
  bench: string[];
  xmppjs: string[];
  identical: boolean;
  differences: Array<{ step: number; bench: string | null; xmppjs: string | null }>;
}

/** Splits raw writes into top-level items (stream header, elements, stream end). */
function items(writes: readonly string[]): string[] {
  const out: string[] = [];
  const f = new Framer({
    header: (tag) => out.push(tag),
    element: (x) => out.push(x),
    end: () => out.push('</stream:stream>'),
  });
  for (const w of writes) {
    if (w.startsWith('<?xml') || /^<stream:stream[\s>]/.test(w)) f.reset();
    f.write(w);
  }
  return out;
}

function b64(s: string): string {
  return Buffer.from(s, 'base64').toString('utf8');
}

/** One item, normalised: attributes sorted, random parts replaced by placeholders. */
export function normalise(item: string): string {
  if (/^<stream:stream[\s>]/.test(item)) {
    const el = parse(`${item}</stream:stream>`);
    return `${render(el, true)}`;
  }
  const el = parse(item);
  if (el.attrs.id !== undefined) el.attrs.id = '{id}';
  if (el.name === 'auth' && el.attrs.mechanism?.toString().startsWith('SCRAM')) {
    const msg = b64(el.getText()).replace(/,r=[^,]*/, ',r={client-nonce}');
    el.children = [`base64(${msg})`];
  } else if (el.name === 'response') {
    // @xmpp/client puts mechanism='…' on <response/> too; RFC 6120 §6.4.3 defines no attribute there.
    delete el.attrs.mechanism;
    const msg = b64(el.getText()).replace(/,r=[^,]*/, ',r={nonce}').replace(/,p=[^,]*/, ',p={proof}');
    el.children = [`base64(${msg})`];
  }
  return render(el, false);
}

function render(el: Element, open: boolean): string {
  const attrs = Object.keys(el.attrs)
    .filter((k) => el.attrs[k] !== undefined && el.attrs[k] !== null)
    .sort()
    .map((k) => ` ${k}='${String(el.attrs[k])}'`)
    .join('');
  if (open) return `<${el.name}${attrs}>`;
  const kids = el.children.map((c) => (typeof c === 'string' ? c : render(c, false))).join('');
  return kids === '' ? `<${el.name}${attrs}/>` : `<${el.name}${attrs}>${kids}</${el.name}>`;
}

export async function wireCheck(endpoint: Endpoint, domain: string, username: string, password: string): Promise<WireTranscripts> {
  // Ours.
  const benchWrites: string[] = [];
  const { client } = await loginClient({ endpoint, domain, wireLog: (dir, data) => dir === 'out' && benchWrites.push(data) }, { username, password, resource: 'bench', roster: false });
  await new Promise((r) => setTimeout(r, 100)); // let the presence flush
  await client.close();
  benchWrites.pop(); // </stream:stream>: logging out is not part of the comparison

  // @xmpp/client's: it honours NODE_TLS_REJECT_UNAUTHORIZED for its STARTTLS upgrade.
  const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const xmppWrites: string[] = [];
  const x = xmppClient({
    service: `xmpp://${endpoint.host}:${endpoint.port}`,
    domain,
    resource: 'bench',
    credentials: (authenticate) => authenticate({ username, password }, 'SCRAM-SHA-1'),
  });
  x.reconnect.stop();
  x.on('error', () => undefined);
  const write = x.write.bind(x);
  x.write = (s: string) => {
    xmppWrites.push(s);
    return write(s);
  };
  try {
    await x.start();
    await x.send(xml('presence'));
    await new Promise((r) => setTimeout(r, 100));
    await x.stop().catch(() => undefined);
  } finally {
    if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
  }
  const xi = items(xmppWrites);
  if (xi[xi.length - 1] === '</stream:stream>') xi.pop();

  const bench = items(benchWrites).map(normalise);
  const xmppjs = xi.map(normalise);
  const differences: WireTranscripts['differences'] = [];
  for (let i = 0; i < Math.max(bench.length, xmppjs.length); i++) {
    if (bench[i] !== xmppjs[i]) differences.push({ step: i + 1, bench: bench[i] ?? null, xmppjs: xmppjs[i] ?? null });
  }
  return { bench, xmppjs, identical: differences.length === 0, differences };
}
