import { MemoryLeases } from './memory-coordination.js';
import type { BoundSession, NodeInfo, SessionEntry, SessionPatch, SessionStore } from './types.js';
import { checkEntry, checkPresencePatch, checkPriority, copyEntry as copy, normalizeFlags } from './validate.js';

interface IndexRef {
  bare: string;
  resource: string;
  sessionId: string;
}

/**
 * The session registry of the embedded (one-process) mode. It lives in
 * memory on purpose: every stream dies with the process, so a registry that
 * survived a restart would only hold ghosts. Every method runs synchronously
 * to completion inside one event-loop turn, which makes each one atomic
 * without locks; results are copies so callers cannot change the registry.
 */
export class MemorySessionStore implements SessionStore {
  private readonly byBare = new Map<string, Map<string, SessionEntry>>();
  /** node → (bare NUL resource) → which session of that slot the node holds. */
  private readonly byNode = new Map<string, Map<string, IndexRef>>();
  private readonly nodeExpiry = new Map<string, number>();
  private total = 0;

  /**
   * `now` is the store clock, injectable so callers can test expiry without
   * sleeping; `leases` is shared with the CoordinationStore, so there is one
   * lease namespace, as in Redis (`P:lease:{name}`).
   */
  constructor(
    private readonly now: () => number = Date.now,
    private readonly leases: MemoryLeases = new MemoryLeases(now),
  ) {}

  async bind(bare: string, entry: SessionEntry): Promise<SessionEntry | null> {
    checkEntry(entry);
    let resources = this.byBare.get(bare);
    if (!resources) this.byBare.set(bare, (resources = new Map()));
    const prev = resources.get(entry.resource) ?? null;
    resources.set(entry.resource, copy(entry));
    if (prev) this.unindex(prev.node, bare, prev.resource, prev.sessionId);
    else this.total++;
    let index = this.byNode.get(entry.node);
    if (!index) this.byNode.set(entry.node, (index = new Map()));
    index.set(slot(bare, entry.resource), { bare, resource: entry.resource, sessionId: entry.sessionId });
    // Session ids are never reused: finding our own id means a retried bind, which replaced nothing.
    return prev && prev.sessionId !== entry.sessionId ? copy(prev) : null;
  }

  async unbind(bare: string, resource: string, sessionId: string): Promise<boolean> {
    return this.removeIf(bare, resource, sessionId) !== null;
  }

  async update(
    bare: string,
    resource: string,
    sessionId: string,
    patch: SessionPatch,
  ): Promise<boolean> {
    if (patch.priority !== undefined) checkPriority(patch.priority);
    checkPresencePatch(patch.presence);
    const cur = this.byBare.get(bare)?.get(resource);
    if (!cur || cur.sessionId !== sessionId) return false;
    // Only the patchable fields, even if the caller's object carries more.
    if (patch.priority !== undefined) cur.priority = patch.priority;
    if (patch.available !== undefined) cur.available = patch.available;
    // '' clears the stored presence; undefined keeps it.
    if (patch.presence === '') delete cur.presence;
    else if (patch.presence !== undefined) cur.presence = patch.presence;
    if (patch.flags !== undefined) {
      const flags = normalizeFlags(patch.flags);
      if (flags.length === 0) delete cur.flags;
      else cur.flags = flags;
    }
    return true;
  }

  async get(bare: string, resource: string): Promise<SessionEntry | null> {
    const cur = this.byBare.get(bare)?.get(resource);
    return cur ? copy(cur) : null;
  }

  async list(bare: string): Promise<SessionEntry[]> {
    return [...(this.byBare.get(bare)?.values() ?? [])].map(copy);
  }

  async heartbeat(node: string, ttlMs: number): Promise<void> {
    this.nodeExpiry.set(node, this.now() + ttlMs);
  }

  async nodes(): Promise<NodeInfo[]> {
    return [...this.nodeExpiry].map(([node, expiresAt]) => ({ node, expiresAt }));
  }

  async sessionsOf(node: string): Promise<BoundSession[]> {
    const out: BoundSession[] = [];
    for (const ref of this.byNode.get(node)?.values() ?? []) {
      const cur = this.byBare.get(ref.bare)?.get(ref.resource);
      if (cur && cur.sessionId === ref.sessionId) out.push({ bare: ref.bare, ...copy(cur) });
    }
    return out;
  }

  async purgeNode(node: string): Promise<BoundSession[]> {
    const removed: BoundSession[] = [];
    for (const ref of [...(this.byNode.get(node)?.values() ?? [])]) {
      const gone = this.removeIf(ref.bare, ref.resource, ref.sessionId);
      if (gone) removed.push({ bare: ref.bare, ...gone });
    }
    this.byNode.delete(node);
    this.nodeExpiry.delete(node);
    return removed;
  }

  async lease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.leases.acquire(name, holder, ttlMs);
  }

  async count(): Promise<number> {
    return this.total;
  }

  /** Removes (bare, resource) if it still holds sessionId; returns what was removed. */
  private removeIf(bare: string, resource: string, sessionId: string): SessionEntry | null {
    const resources = this.byBare.get(bare);
    const cur = resources?.get(resource);
    if (!resources || !cur || cur.sessionId !== sessionId) return null;
    resources.delete(resource);
    if (resources.size === 0) this.byBare.delete(bare);
    this.unindex(cur.node, bare, resource, sessionId);
    this.total--;
    return copy(cur);
  }

  private unindex(node: string, bare: string, resource: string, sessionId: string): void {
    const index = this.byNode.get(node);
    const key = slot(bare, resource);
    if (index?.get(key)?.sessionId !== sessionId) return;
    index.delete(key);
    // Keep the node's (now empty) index until purge: sessionsOf must keep
    // working for it, and a live node's map is reused by its next bind.
  }
}

function slot(bare: string, resource: string): string {
  // NUL cannot occur in a prepared JID part (RFC 7622 forbids control characters).
  return `${bare}\u0000${resource}`;
}
