/**
 * @hyphae/xml — the XML stream parser every edge (c2s, s2s) reads with, and
 * the serializer. Public surface only; implementation lives beside it.
 */
export { Element } from 'ltx';
export type { StreamParserHandlers, StreamParserLimits, XmlViolation } from './types.js';
export { defaultLimits, XmlStreamError } from './types.js';
export { StreamParser } from './parser.js';
export { BatchedWriter } from './writer.js';
export { serialize, streamHeader, streamFooter, escapeText, escapeAttr } from './serialize.js';
