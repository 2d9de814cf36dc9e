import { BusError } from './errors.js';

/*
 * Subject rules shared by both implementations, so that a subject the
 * in-process bus accepts is one NATS accepts too (invariant 4: same behaviour
 * in both modes). Tokens are separated by '.', may not be empty and may not
 * contain whitespace. `*` matches exactly one token and `>` one or more
 * trailing tokens; both are wildcards only as whole tokens, as in NATS.
 */

// Non-empty tokens without whitespace, separated by single dots.
const WELL_FORMED = /^[^.\s]+(?:\.[^.\s]+)*$/;
const HAS_WILDCARD_TOKEN = /(?:^|\.)[*>](?:\.|$)/;
// '>' anywhere but as the last token.
const MISPLACED_TAIL = /(?:^|\.)>\./;

export function checkPublishSubject(subject: string): void {
  if (!WELL_FORMED.test(subject) || HAS_WILDCARD_TOKEN.test(subject)) {
    throw new BusError(`invalid subject for publish: '${subject}'`, subject);
  }
}

export function checkSubscribeSubject(subject: string): void {
  if (!WELL_FORMED.test(subject) || MISPLACED_TAIL.test(subject)) {
    throw new BusError(`invalid subject for subscribe: '${subject}'`, subject);
  }
}

export function checkQueueName(queue: string, subject: string): void {
  if (queue.length === 0 || /\s/.test(queue)) {
    throw new BusError(`invalid queue group name: '${queue}'`, subject);
  }
}

export function hasWildcard(subject: string): boolean {
  return HAS_WILDCARD_TOKEN.test(subject);
}

/** Whether a literal subject (already split into tokens) matches a pattern (split too). */
export function matchTokens(pattern: readonly string[], tokens: readonly string[]): boolean {
  const n = pattern.length;
  for (let i = 0; i < n; i++) {
    const p = pattern[i];
    if (p === '>') return tokens.length > i; // at least one token left
    if (i >= tokens.length) return false;
    if (p !== '*' && p !== tokens[i]) return false;
  }
  return n === tokens.length;
}
