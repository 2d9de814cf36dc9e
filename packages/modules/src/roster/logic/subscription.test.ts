/**
 * RFC 6121 Appendix A, row by row. Each row: existing state (A.1 name),
 * whether the stanza is routed/delivered, the new state, and what else the
 * server does (roster push, auto-reply, presence). The RFC's own row is in
 * the comment; rows the RFC gives in prose (§3.1.2, §3.3.2, §3.4) are
 * tabulated the same way with their section.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SubscriptionState } from '@hyphae/store';
import {
  definedState,
  inbound,
  normalize,
  outbound,
  type DefinedState,
  type PresenceAction,
  type SubState,
  type SubscriptionStanzaType,
} from './subscription.js';

const STATES: Record<DefinedState, Pick<SubState, 'subscription' | 'ask' | 'pendingIn'>> = {
  'None': { subscription: 'none', ask: false, pendingIn: false },
  'None + Pending Out': { subscription: 'none', ask: true, pendingIn: false },
  'None + Pending In': { subscription: 'none', ask: false, pendingIn: true },
  'None + Pending Out+In': { subscription: 'none', ask: true, pendingIn: true },
  'To': { subscription: 'to', ask: false, pendingIn: false },
  'To + Pending In': { subscription: 'to', ask: false, pendingIn: true },
  'From': { subscription: 'from', ask: false, pendingIn: false },
  'From + Pending Out': { subscription: 'from', ask: true, pendingIn: false },
  'Both': { subscription: 'both', ask: false, pendingIn: false },
};
const ALL = Object.keys(STATES) as DefinedState[];

function st(name: DefinedState, extra: Partial<SubState> = {}): SubState {
  return { ...STATES[name], approved: false, inRoster: true, ...extra };
}

/** [existing, routed/delivered, new state ('=' for "no state change"), push, extras] */
type Row = [DefinedState, boolean, DefinedState | '=', boolean, { autoReply?: 'subscribed'; presence?: PresenceAction }?];

function checkOutbound(title: string, type: SubscriptionStanzaType, rows: Row[], opts: { preApproval?: boolean } = {}) {
  describe(title, () => {
    assert.deepEqual(rows.map((r) => r[0]), ALL, 'every A.1 state has a row');
    for (const [from, routed, to, push, extra = {}] of rows) {
      test(`${from} → ${routed ? 'route' : 'no route'}, ${to === '=' ? 'no state change' : to}`, () => {
        const before = st(from);
        const r = outbound(before, type, opts);
        assert.equal(r.forward, routed, 'route?');
        assert.equal(definedState(r.next), to === '=' ? from : to, 'new state');
        assert.equal(r.push, push, 'roster push');
        assert.equal(r.presence, extra.presence);
        assert.equal(r.next.inRoster, true);
        assert.equal(r.next.approved, false);
        if (to === '=') assert.deepEqual(r.next, before);
      });
    }
  });
}

function checkInbound(title: string, type: SubscriptionStanzaType, rows: Row[]) {
  describe(title, () => {
    assert.deepEqual(rows.map((r) => r[0]), ALL, 'every A.1 state has a row');
    for (const [from, delivered, to, push, extra = {}] of rows) {
      test(`${from} → ${delivered ? 'deliver' : 'no delivery'}${extra.autoReply ? ' (auto-reply)' : ''}, ${to === '=' ? 'no state change' : to}`, () => {
        const before = st(from);
        const r = inbound(before, type);
        assert.equal(r.deliver, delivered, 'deliver?');
        assert.equal(definedState(r.next), to === '=' ? from : to, 'new state');
        assert.equal(r.push, push, 'roster push');
        assert.equal(r.autoReply, extra.autoReply);
        assert.equal(r.presence, extra.presence);
        assert.equal(r.next.inRoster, true);
        if (to === '=') assert.deepEqual(r.next, before);
      });
    }
  });
}

// ---------------------------------------------------------------- outbound

// §3.1.2 and A.2 prose: "the user's server MUST without exception route all
// outbound presence stanzas of type subscribe or unsubscribe to the contact".
// State per §3.1.2 (ask='subscribe' set; item created if absent) — A.2 has no table for it.
checkOutbound('§3.1.2 outbound subscribe', 'subscribe', [
  ['None', true, 'None + Pending Out', true],
  ['None + Pending Out', true, '=', false],
  ['None + Pending In', true, 'None + Pending Out+In', true],
  ['None + Pending Out+In', true, '=', false],
  ['To', true, '=', false],
  ['To + Pending In', true, '=', false],
  ['From', true, 'From + Pending Out', true],
  ['From + Pending Out', true, '=', false],
  ['Both', true, '=', false],
]);

// §3.3.2 and A.2 prose: always routed; the user's subscription to the
// contact ('to') and any Pending Out end.
checkOutbound('§3.3.2 outbound unsubscribe', 'unsubscribe', [
  ['None', true, '=', false],
  ['None + Pending Out', true, 'None', true],
  ['None + Pending In', true, '=', false],
  ['None + Pending Out+In', true, 'None + Pending In', true],
  ['To', true, 'None', true],
  ['To + Pending In', true, 'None + Pending In', true],
  ['From', true, '=', false],
  ['From + Pending Out', true, 'From', true],
  ['Both', true, 'From', true],
]);

// A.2.1 Subscribed (server without pre-approval support): EXISTING STATE | ROUTE? | NEW STATE
checkOutbound('A.2.1 outbound subscribed (no pre-approval support)', 'subscribed', [
  ['None', false, '=', false], //                  | "None"                  | no  | no state change      |
  ['None + Pending Out', false, '=', false], //    | "None + Pending Out"    | no  | no state change      |
  ['None + Pending In', true, 'From', true, { presence: 'current' }], // | "None + Pending In" | yes | "From" |
  ['None + Pending Out+In', true, 'From + Pending Out', true, { presence: 'current' }], // | yes | "From + Pending Out" |
  ['To', false, '=', false], //                    | "To"                    | no  | no state change      |
  ['To + Pending In', true, 'Both', true, { presence: 'current' }], // | "To + Pending In" | yes | "Both" |
  ['From', false, '=', false], //                  | "From"                  | no  | no state change      |
  ['From + Pending Out', false, '=', false], //    | "From + Pending Out"    | no  | no state change      |
  ['Both', false, '=', false], //                  | "Both"                  | no  | no state change      |
], { preApproval: false });

// A.2.2 Unsubscribed: EXISTING STATE | ROUTE? | NEW STATE
checkOutbound('A.2.2 outbound unsubscribed', 'unsubscribed', [
  ['None', false, '=', false], //                  | "None"                  | no  | no state change      |
  ['None + Pending Out', false, '=', false], //    | "None + Pending Out"    | no  | no state change      |
  ['None + Pending In', true, 'None', false], //   | "None + Pending In"     | yes | "None"               | (Pending In is not shown in the item: no push)
  ['None + Pending Out+In', true, 'None + Pending Out', false], // | yes | "None + Pending Out" |
  ['To', false, '=', false], //                    | "To"                    | no  | no state change      |
  ['To + Pending In', true, 'To', false], //       | "To + Pending In"       | yes | "To"                 |
  ['From', true, 'None', true, { presence: 'unavailable' }], // | "From" | yes | "None" |
  ['From + Pending Out', true, 'None + Pending Out', true, { presence: 'unavailable' }], // | yes | "None + Pending Out" |
  ['Both', true, 'To', true, { presence: 'unavailable' }], // | "Both" | yes | "To" |
]);

// ----------------------------------------------------------------- inbound

// A.3.1 Subscribe: EXISTING STATE | DELIVER? | NEW STATE; "no *": the server auto-replies "subscribed" (§3.1.3 step 2)
checkInbound('A.3.1 inbound subscribe', 'subscribe', [
  ['None', true, 'None + Pending In', false], //              | "None"                  | yes  | "None + Pending In"     |
  ['None + Pending Out', true, 'None + Pending Out+In', false], // | "None + Pending Out" | yes  | "None + Pending Out+In" |
  ['None + Pending In', false, '=', false], //                | "None + Pending In"     | no   | no state change         |
  ['None + Pending Out+In', false, '=', false], //            | "None + Pending Out+In" | no   | no state change         |
  ['To', true, 'To + Pending In', false], //                  | "To"                    | yes  | "To + Pending In"       |
  ['To + Pending In', false, '=', false], //                  | "To + Pending In"       | no   | no state change         |
  ['From', false, '=', false, { autoReply: 'subscribed', presence: 'current' }], // | "From" | no * | no state change |
  ['From + Pending Out', false, '=', false, { autoReply: 'subscribed', presence: 'current' }], // | no * | no state change |
  ['Both', false, '=', false, { autoReply: 'subscribed', presence: 'current' }], // | "Both" | no * | no state change |
]);

// A.3.2 Unsubscribe: EXISTING STATE | DELIVER? | NEW STATE
checkInbound('A.3.2 inbound unsubscribe', 'unsubscribe', [
  ['None', false, '=', false], //                             | "None"                  | no    | no state change      |
  ['None + Pending Out', false, '=', false], //               | "None + Pending Out"    | no    | no state change      |
  ['None + Pending In', true, 'None', false], //              | "None + Pending In"     | yes * | "None"               |
  ['None + Pending Out+In', true, 'None + Pending Out', false], // | "None + Pending Out+In" | yes * | "None + Pending Out" |
  ['To', false, '=', false], //                               | "To"                    | no    | no state change      |
  ['To + Pending In', true, 'To', false], //                  | "To + Pending In"       | yes * | "To"                 |
  ['From', true, 'None', true, { presence: 'unavailable' }], // | "From"                | yes * | "None"               |
  ['From + Pending Out', true, 'None + Pending Out', true, { presence: 'unavailable' }], // | yes * | "None + Pending Out" |
  ['Both', true, 'To', true, { presence: 'unavailable' }], //  | "Both"                  | yes * | "To"                 |
]);

// A.3.3 Subscribed: EXISTING STATE | DELIVER? | NEW STATE
checkInbound('A.3.3 inbound subscribed', 'subscribed', [
  ['None', false, '=', false], //                             | "None"                  | no  | no state change   |
  ['None + Pending Out', true, 'To', true], //                 | "None + Pending Out"    | yes | "To"              |
  ['None + Pending In', false, '=', false], //                | "None + Pending In"     | no  | no state change   |
  ['None + Pending Out+In', true, 'To + Pending In', true], // | "None + Pending Out+In" | yes | "To + Pending In" |
  ['To', false, '=', false], //                               | "To"                    | no  | no state change   |
  ['To + Pending In', false, '=', false], //                  | "To + Pending In"       | no  | no state change   |
  ['From', false, '=', false], //                             | "From"                  | no  | no state change   |
  ['From + Pending Out', true, 'Both', true], //              | "From + Pending Out"    | yes | "Both"            |
  ['Both', false, '=', false], //                             | "Both"                  | no  | no state change   |
]);

// A.3.4 Unsubscribed: EXISTING STATE | DELIVER? | NEW STATE
checkInbound('A.3.4 inbound unsubscribed', 'unsubscribed', [
  ['None', false, '=', false], //                               | "None"                  | no  | no state change     |
  ['None + Pending Out', true, 'None', true], //                | "None + Pending Out"    | yes | "None"              |
  ['None + Pending In', false, '=', false], //                  | "None + Pending In"     | no  | no state change     |
  ['None + Pending Out+In', true, 'None + Pending In', true], // | "None + Pending Out+In" | yes | "None + Pending In" |
  ['To', true, 'None', true], //                                | "To"                    | yes | "None"              |
  ['To + Pending In', true, 'None + Pending In', true], //      | "To + Pending In"       | yes | "None + Pending In" |
  ['From', false, '=', false], //                               | "From"                  | no  | no state change     |
  ['From + Pending Out', true, 'From', true], //                | "From + Pending Out"    | yes | "From"              |
  ['Both', true, 'From', true], //                              | "Both"                  | yes | "From"              |
]);

// ------------------------------------------------------------ pre-approval

describe('§3.4.2 outbound subscribed with pre-approval support (the default)', () => {
  // Rule 1: "Both", "From", "From + Pending Out": silently ignored.
  for (const name of ['Both', 'From', 'From + Pending Out'] as const) {
    test(`rule 1: ${name} → ignored`, () => {
      const r = outbound(st(name), 'subscribed');
      assert.deepEqual(r, { next: st(name), forward: false, push: false });
    });
  }
  // Rule 2: "To + Pending In", "None + Pending In", "None + Pending Out+In": a normal approval.
  for (const [name, to] of [['To + Pending In', 'Both'], ['None + Pending In', 'From'], ['None + Pending Out+In', 'From + Pending Out']] as const) {
    test(`rule 2: ${name} → approval, ${to}`, () => {
      const r = outbound(st(name), 'subscribed');
      assert.equal(r.forward, true);
      assert.equal(r.push, true);
      assert.equal(r.presence, 'current');
      assert.equal(definedState(r.next), to);
      assert.equal(r.next.approved, false);
    });
  }
  // Rule 3: "To", "None", "None + Pending Out": approved='true', push, NOT routed.
  for (const name of ['To', 'None', 'None + Pending Out'] as const) {
    test(`rule 3: ${name} → pre-approved, push, not routed`, () => {
      const r = outbound(st(name), 'subscribed');
      assert.deepEqual(r, { next: st(name, { approved: true }), forward: false, push: true });
    });
    test(`rule 3: ${name} already pre-approved → nothing changes, no push`, () => {
      const r = outbound(st(name, { approved: true }), 'subscribed');
      assert.deepEqual(r, { next: st(name, { approved: true }), forward: false, push: false });
    });
  }
  // Rule 4: not in the roster: item "None" with approved='true', push, NOT routed.
  test('rule 4: no roster item → item None + approved, push, not routed', () => {
    const r = outbound(st('None', { inRoster: false }), 'subscribed');
    assert.deepEqual(r, { next: st('None', { approved: true }), forward: false, push: true });
  });
  test('without support, no roster item → nothing (A.2.1 "None")', () => {
    const r = outbound(st('None', { inRoster: false }), 'subscribed', { preApproval: false });
    assert.deepEqual(r, { next: st('None', { inRoster: false }), forward: false, push: false });
  });
});

describe('§3.4 pre-approval consumed by an inbound subscribe', () => {
  for (const [name, to] of [['None', 'From'], ['None + Pending Out', 'From + Pending Out'], ['To', 'Both']] as const) {
    test(`${name} + approved → ${to}, auto-reply, not delivered, push`, () => {
      const r = inbound(st(name, { approved: true }), 'subscribe');
      assert.equal(r.deliver, false);
      assert.equal(r.autoReply, 'subscribed');
      assert.equal(r.presence, 'current');
      assert.equal(r.push, true);
      assert.equal(definedState(r.next), to);
      assert.equal(r.next.approved, false);
      assert.equal(r.next.pendingIn, false);
    });
  }
});

describe('§3.2.2 rule 2: outbound unsubscribed cancels a pre-approval', () => {
  for (const name of ['None', 'None + Pending Out', 'To'] as const) {
    test(`${name} + approved → approval removed, push, not routed`, () => {
      const r = outbound(st(name, { approved: true }), 'unsubscribed');
      assert.deepEqual(r, { next: st(name), forward: false, push: true });
    });
  }
});

describe('pre-approval survives what does not concern it', () => {
  test('outbound subscribe keeps approved', () => {
    const r = outbound(st('None', { approved: true }), 'subscribe');
    assert.deepEqual(r.next, st('None + Pending Out', { approved: true }));
  });
  test('outbound unsubscribe keeps approved', () => {
    const r = outbound(st('To', { approved: true }), 'unsubscribe');
    assert.deepEqual(r.next, st('None', { approved: true }));
    assert.equal(r.push, true);
  });
  for (const type of ['subscribed', 'unsubscribed', 'unsubscribe'] as const) {
    test(`inbound ${type} keeps approved`, () => {
      const r = inbound(st('None + Pending Out', { approved: true }), type);
      assert.equal(r.next.approved, true);
    });
  }
});

// ------------------------------------------------- contacts not in the roster

describe('contact not in the roster (A.1: "None", or "None + Pending In" without an item)', () => {
  const none = st('None', { inRoster: false });
  const pendingIn = st('None + Pending In', { inRoster: false });

  test('§3.1.2 outbound subscribe creates "None + Pending Out", push, routed', () => {
    assert.deepEqual(outbound(none, 'subscribe'), { next: st('None + Pending Out'), forward: true, push: true });
  });
  test('§3.1.2 outbound subscribe with Pending In creates "None + Pending Out+In"', () => {
    assert.deepEqual(outbound(pendingIn, 'subscribe'), { next: st('None + Pending Out+In'), forward: true, push: true });
  });
  test('§3.3.2 outbound unsubscribe is routed, no item is created', () => {
    assert.deepEqual(outbound(none, 'unsubscribe'), { next: none, forward: true, push: false });
  });
  test('§3.1.5 outbound subscribed approving a Pending In creates the item "From"', () => {
    assert.deepEqual(outbound(pendingIn, 'subscribed'), { next: st('From'), forward: true, push: true, presence: 'current' });
  });
  test('A.2.2 outbound unsubscribed denying a Pending In: routed, record dropped, no item', () => {
    assert.deepEqual(outbound(pendingIn, 'unsubscribed'), { next: none, forward: true, push: false });
  });
  test('A.2.2 outbound unsubscribed with nothing pending: dropped', () => {
    assert.deepEqual(outbound(none, 'unsubscribed'), { next: none, forward: false, push: false });
  });
  test('A.3.1 inbound subscribe: delivered, Pending In noted, no roster item (A.1)', () => {
    assert.deepEqual(inbound(none, 'subscribe'), { next: pendingIn, deliver: true, push: false });
  });
  test('A.3.1 inbound subscribe again: not delivered again', () => {
    assert.deepEqual(inbound(pendingIn, 'subscribe'), { next: pendingIn, deliver: false, push: false });
  });
  test('A.3.2 inbound unsubscribe withdraws the Pending In: delivered, no item', () => {
    assert.deepEqual(inbound(pendingIn, 'unsubscribe'), { next: none, deliver: true, push: false });
  });
  for (const type of ['subscribed', 'unsubscribed', 'unsubscribe'] as const) {
    test(`inbound ${type} with no item and nothing pending: ignored`, () => {
      assert.deepEqual(inbound(none, type), { next: none, deliver: false, push: false });
    });
  }
});

// ------------------------------------------------------ every input at all

describe('total over every input', () => {
  const subs: SubscriptionState[] = ['none', 'to', 'from', 'both'];
  const bools = [false, true];
  const inputs: SubState[] = [];
  for (const subscription of subs) for (const ask of bools) for (const pendingIn of bools) for (const approved of bools) for (const inRoster of bools) {
    inputs.push({ subscription, ask, pendingIn, approved, inRoster });
  }
  const types: SubscriptionStanzaType[] = ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'];

  test('results are A.1 states; push exactly when the visible item changed; nothing mutated', () => {
    assert.equal(inputs.length, 64);
    for (const s of inputs) {
      const frozen = Object.freeze({ ...s });
      for (const type of types) {
        for (const r of [outbound(frozen, type), outbound(frozen, type, { preApproval: false }), inbound(frozen, type)]) {
          assert.deepEqual(normalize(r.next), r.next, `${JSON.stringify(s)} ${type}`);
          const n = normalize(s);
          const visible = (x: SubState) => (x.inRoster ? [x.subscription, x.ask, x.approved] : null);
          assert.equal(r.push, JSON.stringify(visible(n)) !== JSON.stringify(visible(r.next)));
        }
      }
    }
  });

  test('subscribe and unsubscribe from the user are always routed (A.2)', () => {
    for (const s of inputs) {
      assert.equal(outbound(s, 'subscribe').forward, true);
      assert.equal(outbound(s, 'unsubscribe').forward, true);
    }
  });

  test('the contact cannot give itself a subscription: inbound never adds "from" without subscribe+approval, never sets ask', () => {
    for (const s of inputs) {
      const n = normalize(s);
      for (const type of types) {
        const r = inbound(s, type);
        if (r.next.ask) assert.equal(n.ask, true);
        const gainedFrom = (r.next.subscription === 'from' || r.next.subscription === 'both') && !(n.subscription === 'from' || n.subscription === 'both');
        if (gainedFrom) {
          assert.equal(type, 'subscribe');
          assert.equal(n.approved, true);
        }
      }
    }
  });

  test('the user cannot give itself a subscription: outbound never adds "to"', () => {
    for (const s of inputs) {
      const n = normalize(s);
      for (const type of types) {
        const r = outbound(s, type);
        if (r.next.subscription === 'to' || r.next.subscription === 'both') {
          assert.ok(n.subscription === 'to' || n.subscription === 'both');
        }
      }
    }
  });
});

describe('normalize / definedState', () => {
  test('states A.1 does not define fold onto defined ones', () => {
    assert.deepEqual(normalize({ subscription: 'to', ask: true, pendingIn: false, approved: false, inRoster: true }), st('To'));
    assert.deepEqual(normalize({ subscription: 'both', ask: true, pendingIn: true, approved: true, inRoster: true }), st('Both'));
    assert.deepEqual(normalize({ subscription: 'from', ask: false, pendingIn: true, approved: true, inRoster: true }), st('From'));
    assert.deepEqual(
      normalize({ subscription: 'both', ask: true, pendingIn: true, approved: true, inRoster: false }),
      st('None + Pending In', { inRoster: false }),
    );
  });
  test('names', () => {
    for (const name of ALL) assert.equal(definedState(st(name)), name);
  });
});
