/** Helpers shared by this package's tests (not exported from the package). */
import type { Element } from 'ltx';
import { StreamParser } from './parser.js';
import type { StreamParserLimits, XmlViolation } from './types.js';

/** An element as plain data, for deepStrictEqual. */
export interface Plain {
  name: string;
  attrs: Record<string, string>;
  children: (Plain | string)[];
}

export type Event =
  | { type: 'start'; name: string; attrs: Record<string, string> }
  | { type: 'stanza'; el: Plain }
  | { type: 'end' }
  | { type: 'error'; condition: XmlViolation };

export function toPlain(el: Element): Plain {
  // fromEntries defines properties, so an attribute named __proto__ survives.
  const attrs: Record<string, string> = Object.fromEntries(
    Object.keys(el.attrs).map((k) => [k, String(el.attrs[k])]),
  );
  return {
    name: el.name,
    attrs,
    children: el.children.map((c) => (typeof c === 'string' ? c : toPlain(c))),
  };
}

export interface Recorder {
  parser: StreamParser;
  events: Event[];
  /** Error messages, for diagnostics. */
  messages: string[];
  elements: Element[];
}

export function recorder(limits?: Partial<StreamParserLimits>): Recorder {
  const events: Event[] = [];
  const messages: string[] = [];
  const elements: Element[] = [];
  const parser = new StreamParser(
    {
      onStreamStart(name, attrs) {
        events.push({ type: 'start', name, attrs: { ...attrs } });
      },
      onStanza(el) {
        elements.push(el);
        events.push({ type: 'stanza', el: toPlain(el) });
      },
      onStreamEnd() {
        events.push({ type: 'end' });
      },
      onError(err) {
        messages.push(err.message);
        events.push({ type: 'error', condition: err.condition });
      },
    },
    limits,
  );
  return { parser, events, messages, elements };
}

/** Parses the chunks in order and returns the events. */
export function parseChunks(chunks: (Buffer | string)[], limits?: Partial<StreamParserLimits>): Event[] {
  const r = recorder(limits);
  for (const c of chunks) r.parser.write(c);
  return r.events;
}

export function parse(input: Buffer | string, limits?: Partial<StreamParserLimits>): Event[] {
  return parseChunks([input], limits);
}

/** The condition of the (single) error event, or undefined. */
export function errorOf(events: Event[]): XmlViolation | undefined {
  const errors = events.filter((e) => e.type === 'error');
  if (errors.length > 1) throw new Error(`more than one error: ${JSON.stringify(errors)}`);
  const e = errors[0];
  return e?.type === 'error' ? e.condition : undefined;
}

export function stanzas(events: Event[]): Plain[] {
  const out: Plain[] = [];
  for (const e of events) if (e.type === 'stanza') out.push(e.el);
  return out;
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits bytes at the given cut points (sorted, deduplicated, inside the buffer). */
export function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < buf.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

export function randomSplit(buf: Buffer, random: () => number, maxChunk = 16): Buffer[] {
  const cuts: number[] = [];
  let p = 0;
  while (p < buf.length) {
    p += 1 + Math.floor(random() * maxChunk);
    cuts.push(p);
  }
  return splitAt(buf, cuts);
}

export function bytewise(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) out.push(buf.subarray(i, i + 1));
  return out;
}

export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const HEADER =
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
export const DECL = "<?xml version='1.0'?>";
