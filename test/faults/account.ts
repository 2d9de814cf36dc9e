/**
 * The account of every stanza a fault scenario sent, from what the clients
 * recorded: pure functions over a `Journal`, so the rules are tested on
 * fixed inputs (account.test.ts) apart from any cluster.
 *
 * A chat message (to the recipient's bare JID) is delivered live, delivered
 * from offline storage (it carries a XEP-0203 <delay/>), bounced (its sender
 * received a type='error' message with the same id), cut, or LOST. "Cut"
 * is what a killed connection had in flight and XEP-0198 would have resent
 * or reported: sent on a connection that then broke (or to a connection
 * that then broke), within `cutWindowMs` before the break, and after the
 * last message of that sender that got through on it. Anything else that
 * was neither delivered nor answered is lost: DESIGN.md invariant 2.
 *
 * A groupchat message is expected at every occupant that was in the room
 * (self-presence received, XEP-0045 §7.2.2) when it was sent and still in
 * it afterwards; each expected copy is received, bounced (the sender got
 * the error), cut (as above, for the occupant's or the sender's broken
 * connection), not expected after all (the room removed the occupant), or
 * lost.
 *
 * Order (RFC 6120 §10.1, XEP-0045 §7.4): per sender → recipient, a sequence
 * number received after a higher one counts as reordered; a second copy of
 * one as a duplicate.
 */

/** One connection of a load user, from the moment it was ready (bound, presence sent) to its end. */
export interface Conn {
  readonly user: number;
  /** Per user, in order. */
  readonly index: number;
  readonly node: number;
  readonly openedAt: number;
  closedAt: number | null;
  /** The harness logged it out (true) or it broke under a fault (false). */
  closedByHarness: boolean;
}

/** An occupant's stay in the room: from its self-presence to its end. */
export interface Stay {
  readonly user: number;
  readonly conn: number;
  readonly joinedAt: number;
  leftAt: number | null;
  /** 'harness': logged out or left; 'connection': the connection broke; 'room': the room sent an unavailable self-presence. */
  endedBy: 'harness' | 'connection' | 'room' | null;
}

export type Kind = 'chat' | 'groupchat' | 'presence';

export interface Sent {
  readonly id: string;
  readonly kind: Kind;
  readonly from: number;
  /** The recipient (chat, presence: the contact); -1 for groupchat. */
  readonly to: number;
  /** Per sender (and recipient), from 1. */
  readonly seq: number;
  readonly at: number;
  /** The sender's connection index. */
  readonly conn: number;
}

export interface Received {
  /** The stanza id (chat, groupchat) or the presence's status text. */
  readonly id: string;
  readonly kind: Kind;
  readonly from: number;
  readonly by: number;
  readonly seq: number;
  readonly at: number;
  /** The receiver's connection index. */
  readonly conn: number;
  /** Carries a XEP-0203 <delay/> (offline storage; groupchat: history). */
  readonly delayed: boolean;
}

export interface Bounce {
  readonly id: string;
  readonly kind: Kind;
  readonly at: number;
  /** The defined condition (RFC 6120 §8.3.3), null when none. */
  readonly condition: string | null;
  readonly type: string | null;
}

/** Everything one scenario recorded, in recording order. */
export interface Journal {
  readonly users: number;
  readonly conns: readonly Conn[];
  readonly stays: readonly Stay[];
  readonly sent: readonly Sent[];
  readonly received: readonly Received[];
  readonly bounces: readonly Bounce[];
}

export interface AccountOptions {
  /** When the fault was injected: recovery is measured from here. */
  injectedAt: number;
  /** When the load stopped. */
  stoppedAt: number;
  /** When the stragglers had arrived, just before every client logged out: presence views are judged here. */
  settledAt: number;
  /** A delivery slower than this counts as "not flowing" for the recovery time. */
  flowMs: number;
  /** How long before a connection broke a message still counts as in flight on it. */
  cutWindowMs: number;
}

export interface ChatFigures {
  sent: number;
  live: number;
  offline: number;
  bounced: number;
  cut: number;
  lost: number;
  reordered: number;
  duplicates: number;
  /** Delivered and also bounced: the sender was told it failed, and it did not. */
  deliveredAndBounced: number;
}

export interface GroupchatFigures {
  /** Groupchat messages sent. */
  sent: number;
  /** Copies expected (one per occupant present). */
  expected: number;
  received: number;
  bounced: number;
  cut: number;
  lost: number;
  reordered: number;
  duplicates: number;
}

export interface PresenceFigures {
  sent: number;
  received: number;
  /** Contacts whose last view of a user, once the stragglers had arrived, is not the user's last presence. */
  stale: number;
  reordered: number;
}

export interface Account {
  chat: ChatFigures;
  groupchat: GroupchatFigures;
  presence: PresenceFigures;
  /** From the injection to the last disruption (a message not flowing, a client not connected); null when nothing was disrupted. */
  recoveryMs: number | null;
  /** Messages flowed again before the load stopped (no disruption in the last `flowMs` of it). */
  recovered: boolean;
  /** Error conditions of the bounces, with counts. */
  bounceConditions: Record<string, number>;
  /** Ids of lost messages (chat, then groupchat copies as `id@occupant`), for the report. */
  lostIds: string[];
  /** A few reorderings, as `sender→recipient: seq after max`. */
  reorderSamples: string[];
}

/** Last-seq-received bookkeeping: per key, the receipts in arrival order. */
function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

/** Counts receipts whose seq is lower than one received before (first copies only) and second copies. */
function orderOf(receipts: readonly Received[], label: string, samples: string[]): { reordered: number; duplicates: number } {
  const sorted = [...receipts].sort((a, b) => a.at - b.at);
  const seen = new Set<number>();
  let max = 0;
  let reordered = 0;
  let duplicates = 0;
  for (const r of sorted) {
    if (seen.has(r.seq)) {
      duplicates++;
      continue;
    }
    seen.add(r.seq);
    if (r.seq < max) {
      reordered++;
      if (samples.length < 10) samples.push(`${label}: ${r.seq} after ${max}`);
    }
    max = Math.max(max, r.seq);
  }
  return { reordered, duplicates };
}

/** The connection of `user` open at `at`, if any. */
function connAt(j: Journal, user: number, at: number): Conn | undefined {
  return j.conns.find((c) => c.user === user && c.openedAt <= at && (c.closedAt === null || at < c.closedAt));
}

function connOf(j: Journal, user: number, index: number): Conn | undefined {
  return j.conns.find((c) => c.user === user && c.index === index);
}

/** Whether a connection broke (not closed by the harness) within `windowMs` after `at`. */
function brokeAfter(c: Conn | undefined, at: number, windowMs: number): c is Conn {
  return c !== undefined && c.closedAt !== null && !c.closedByHarness && c.closedAt >= at && c.closedAt - at <= windowMs;
}

export function account(j: Journal, o: AccountOptions): Account {
  const bounces = groupBy(j.bounces, (b) => b.id);
  const bounceConditions: Record<string, number> = {};
  for (const b of j.bounces) {
    const k = `${b.kind}:${b.condition ?? 'none'}`;
    bounceConditions[k] = (bounceConditions[k] ?? 0) + 1;
  }
  const lostIds: string[] = [];
  const reorderSamples: string[] = [];
  /** Send times of messages that did not flow after the injection; connection gaps. */
  const disruptions: number[] = [];
  const disrupted = (at: number): void => {
    if (at >= o.injectedAt) disruptions.push(at);
  };

  // Chat.
  const chat: ChatFigures = { sent: 0, live: 0, offline: 0, bounced: 0, cut: 0, lost: 0, reordered: 0, duplicates: 0, deliveredAndBounced: 0 };
  const chatRecv = groupBy(j.received.filter((r) => r.kind === 'chat'), (r) => r.id);
  const chatByDirection = groupBy(j.received.filter((r) => r.kind === 'chat'), (r) => `${r.from}>${r.by}`);
  const sentChat = j.sent.filter((s) => s.kind === 'chat');
  /** Highest seq from→to that arrived, among messages sent on the sender's connection `conn`. */
  const maxThroughSender = new Map<string, number>();
  /** Highest seq from→to that arrived on the recipient's connection `conn`. */
  const maxThroughRecipient = new Map<string, number>();
  const sentById = new Map(sentChat.map((s) => [s.id, s]));
  for (const r of j.received) {
    if (r.kind !== 'chat') continue;
    const s = sentById.get(r.id);
    if (s) {
      const k = `${s.from}>${s.to}#${s.conn}`;
      maxThroughSender.set(k, Math.max(maxThroughSender.get(k) ?? 0, s.seq));
    }
    const k2 = `${r.from}>${r.by}@${r.conn}`;
    maxThroughRecipient.set(k2, Math.max(maxThroughRecipient.get(k2) ?? 0, r.seq));
  }
  for (const s of sentChat) {
    chat.sent++;
    const got = chatRecv.get(s.id) ?? [];
    const bounced = bounces.has(s.id);
    if (got.length > 0) {
      const first = got.reduce((a, b) => (b.at < a.at ? b : a));
      if (first.delayed) chat.offline++;
      else chat.live++;
      if (bounced) chat.deliveredAndBounced++;
      if (first.delayed || first.at - s.at > o.flowMs) disrupted(s.at);
      continue;
    }
    disrupted(s.at);
    if (bounced) {
      chat.bounced++;
      continue;
    }
    const senderConn = connOf(j, s.from, s.conn);
    const recipientConn = connAt(j, s.to, s.at);
    const cutAtSender = brokeAfter(senderConn, s.at, o.cutWindowMs) && s.seq > (maxThroughSender.get(`${s.from}>${s.to}#${s.conn}`) ?? 0);
    const cutAtRecipient =
      brokeAfter(recipientConn, s.at, o.cutWindowMs) && s.seq > (maxThroughRecipient.get(`${s.from}>${s.to}@${recipientConn.index}`) ?? 0);
    if (cutAtSender || cutAtRecipient) {
      chat.cut++;
      continue;
    }
    chat.lost++;
    lostIds.push(s.id);
  }
  for (const [dir, receipts] of chatByDirection) {
    const r = orderOf(receipts, `chat ${dir.replace('>', '→')}`, reorderSamples);
    chat.reordered += r.reordered;
    chat.duplicates += r.duplicates;
  }

  // Groupchat, per occupant.
  const gc: GroupchatFigures = { sent: 0, expected: 0, received: 0, bounced: 0, cut: 0, lost: 0, reordered: 0, duplicates: 0 };
  const gcReceipts = j.received.filter((r) => r.kind === 'groupchat' && !r.delayed);
  const gcRecv = groupBy(gcReceipts, (r) => `${r.id}@${r.by}`);
  const sentGc = j.sent.filter((s) => s.kind === 'groupchat');
  const gcSentById = new Map(sentGc.map((s) => [s.id, s]));
  /** Highest seq of `from` received by `by` during a stay (key from>by@conn). */
  const maxInStay = new Map<string, number>();
  /** Highest seq of `from` (sent on its connection) received by `by`. */
  const maxFromSenderConn = new Map<string, number>();
  for (const r of gcReceipts) {
    const k = `${r.from}>${r.by}@${r.conn}`;
    maxInStay.set(k, Math.max(maxInStay.get(k) ?? 0, r.seq));
    const s = gcSentById.get(r.id);
    if (s) {
      const k2 = `${s.from}#${s.conn}>${r.by}`;
      maxFromSenderConn.set(k2, Math.max(maxFromSenderConn.get(k2) ?? 0, s.seq));
    }
  }
  for (const s of sentGc) {
    gc.sent++;
    for (const stay of j.stays) {
      if (stay.joinedAt > s.at || (stay.leftAt !== null && stay.leftAt <= s.at)) continue;
      const got = gcRecv.get(`${s.id}@${stay.user}`) ?? [];
      const mine = got.filter((r) => r.conn === stay.conn);
      const afterLast = s.seq > (maxInStay.get(`${s.from}>${stay.user}@${stay.conn}`) ?? 0);
      if (mine.length === 0 && stay.endedBy === 'room' && afterLast) continue; // removed by the room before this one
      gc.expected++;
      if (mine.length > 0) {
        gc.received++;
        if (Math.min(...mine.map((r) => r.at)) - s.at > o.flowMs) disrupted(s.at);
        continue;
      }
      disrupted(s.at);
      if (bounces.has(s.id)) {
        gc.bounced++;
        continue;
      }
      const occupantConn = connOf(j, stay.user, stay.conn);
      const senderConn = connOf(j, s.from, s.conn);
      const cutAtOccupant = stay.endedBy === 'connection' && brokeAfter(occupantConn, s.at, o.cutWindowMs) && afterLast;
      const cutAtSender = brokeAfter(senderConn, s.at, o.cutWindowMs) && s.seq > (maxFromSenderConn.get(`${s.from}#${s.conn}>${stay.user}`) ?? 0);
      if (cutAtOccupant || cutAtSender) {
        gc.cut++;
        continue;
      }
      gc.lost++;
      lostIds.push(`${s.id}@${stay.user}`);
    }
  }
  for (const [dir, receipts] of groupBy(gcReceipts, (r) => `${r.from}>${r.by}`)) {
    const r = orderOf(receipts, `groupchat ${dir.replace('>', '→')}`, reorderSamples);
    gc.reordered += r.reordered;
    gc.duplicates += r.duplicates;
  }

  // Presence: counted, ordered, and the contact's final view checked.
  const pres: PresenceFigures = { sent: 0, received: 0, stale: 0, reordered: 0 };
  const sentPres = j.sent.filter((s) => s.kind === 'presence');
  const recvPres = j.received.filter((r) => r.kind === 'presence');
  pres.sent = sentPres.length;
  pres.received = recvPres.length;
  for (const [dir, receipts] of groupBy(recvPres, (r) => `${r.from}>${r.by}`)) {
    // A contact that reconnects is sent the current presence again (RFC 6121 §4.4.2 probe): a repeat, not an order fault.
    pres.reordered += orderOf(receipts, `presence ${dir.replace('>', '→')}`, reorderSamples).reordered;
  }
  const lastSent = new Map<string, Sent>();
  for (const s of sentPres) {
    // The presence sent on logging in again (after settledAt) is not judged: the view before the logouts is.
    if (s.at > o.settledAt - o.flowMs) continue;
    const k = `${s.from}>${s.to}`;
    const prev = lastSent.get(k);
    if (!prev || s.seq > prev.seq) lastSent.set(k, s);
  }
  for (const [k, s] of lastSent) {
    const senderConn = connOf(j, s.from, s.conn);
    const contactConn = connAt(j, s.to, o.settledAt);
    // Judged only when both were still connected once the stragglers had arrived.
    if (!senderConn || (senderConn.closedAt !== null && senderConn.closedAt <= o.settledAt)) continue;
    if (!contactConn) continue;
    const seen = recvPres.filter((r) => `${r.from}>${r.by}` === k && r.at <= o.settledAt).sort((a, b) => a.at - b.at);
    const last = seen[seen.length - 1];
    if (!last || last.seq !== s.seq) pres.stale++;
  }

  // Connection gaps: a client that lost its connection to the fault is disrupted until it is back.
  for (const c of j.conns) {
    if (c.closedByHarness || c.closedAt === null) continue;
    const next = j.conns.find((n) => n.user === c.user && n.index === c.index + 1);
    disrupted(next ? next.openedAt : o.stoppedAt);
  }
  for (const st of j.stays) {
    if (st.endedBy !== 'room' && st.endedBy !== 'connection') continue;
    if (st.leftAt === null || st.leftAt > o.stoppedAt) continue;
    const next = j.stays.find((n) => n.user === st.user && n.joinedAt >= (st.leftAt ?? 0));
    disrupted(next ? next.joinedAt : o.stoppedAt);
  }

  const last = disruptions.length ? Math.max(...disruptions) : null;
  return {
    chat,
    groupchat: gc,
    presence: pres,
    recoveryMs: last === null ? null : last - o.injectedAt,
    recovered: last === null || last < o.stoppedAt - o.flowMs,
    bounceConditions,
    lostIds,
    reorderSamples,
  };
}
