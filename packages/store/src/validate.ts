import { StoreError, type SessionEntry } from './types.js';

/**
 * Checks both backends apply identically, so a bad value fails the same way
 * in embedded and cluster mode instead of being stored by one of them
 * (a NaN priority would otherwise vanish in Redis's Lua JSON round trip).
 */
export function checkPriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < -128 || priority > 127) {
    throw new StoreError(`priority must be an integer in -128..127, got ${priority}`);
  }
}

export function checkEntry(entry: SessionEntry): void {
  checkPriority(entry.priority);
  if (!entry.sessionId) throw new StoreError('session entry without sessionId');
  if (!entry.node) throw new StoreError('session entry without node');
}

/** A fresh object with exactly the SessionEntry fields (no caller extras, no aliasing). */
export function copyEntry(e: SessionEntry): SessionEntry {
  return {
    resource: e.resource,
    sessionId: e.sessionId,
    node: e.node,
    priority: e.priority,
    available: e.available,
    boundAt: e.boundAt,
  };
}
