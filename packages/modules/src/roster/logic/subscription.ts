/**
 * Presence subscription state machine of RFC 6121 §3 and Appendix A, as pure
 * functions: the stores, the bus and the stanzas stay with the caller.
 *
 * A state is the user's view of one contact (A.1 "Defined States"):
 *
 *   subscription  none | to | from | both              (roster 'subscription')
 *   ask           "Pending Out": the user asked        (roster ask='subscribe')
 *   pendingIn     "Pending In": the contact asked      (not in the roster item)
 *   approved      pre-approval, §3.4                   (roster approved='true')
 *   inRoster      whether a roster item exists at all  (A.1: "None + Pending In"
 *                 may exist without one)
 *
 * `outbound` is the user's server handling a subscription stanza the user
 * SENT (§3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4.2, A.2); `inbound` is the user's
 * server handling one the user RECEIVES from the contact (§3.1.3, §3.1.6,
 * §3.2.3, §3.3.3, A.3). Both are total: every input, including states A.1
 * does not define, gives an answer (see `normalize`).
 */
import type { SubscriptionState } from '@hyphae/store';

export type SubscriptionStanzaType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export type SubState = {
  subscription: SubscriptionState;
  /** Pending Out (ask='subscribe'). */
  ask: boolean;
  /** Pending In: an unanswered inbound subscribe from the contact is stored. */
  pendingIn: boolean;
  /** Pre-approved (§3.4). */
  approved: boolean;
  /** false: the user's roster has no item for the contact. */
  inRoster: boolean;
};

/**
 * What to send to the contact from each of the user's available resources,
 * after the subscription stanza itself:
 * - 'current': the user's current presence — the contact just gained a
 *   subscription to the user ('from' appeared; §3.1.5 last step);
 * - 'unavailable': presence of type unavailable — the contact lost its
 *   subscription to the user ('from' went away; §3.2.2 step 3, §3.3.3).
 *   For §3.2.2 the RFC wants these sent BEFORE the 'unsubscribed' itself.
 */
export type PresenceAction = 'current' | 'unavailable';

export interface OutboundResult {
  next: SubState;
  /** Route the (bare-JID-stamped, §3) stanza on to the contact. */
  forward: boolean;
  /** The visible roster item changed: roster push to the user's interested resources (§2.1.6). */
  push: boolean;
  presence?: PresenceAction;
}

export interface InboundResult {
  next: SubState;
  /** Present the stanza to the user's available resources (for 'subscribe': or keep it as the stored pending-in request, §3.1.3 step 4). */
  deliver: boolean;
  push: boolean;
  /** Answer the contact on the user's behalf (§3.1.3 step 2, §3.4). */
  autoReply?: 'subscribed';
  presence?: PresenceAction;
}

export interface OutboundOptions {
  /**
   * The server supports subscription pre-approval (§3.4; advertised with the
   * 'urn:xmpp:features:pre-approval' stream feature). Default true. When
   * false an outbound 'subscribed' without a pending request is simply
   * dropped, as in the A.2.1 table.
   */
  preApproval?: boolean;
}

/** The nine states of RFC 6121 A.1, named as the RFC names them. */
export type DefinedState =
  | 'None'
  | 'None + Pending Out'
  | 'None + Pending In'
  | 'None + Pending Out+In'
  | 'To'
  | 'To + Pending In'
  | 'From'
  | 'From + Pending Out'
  | 'Both';

const hasTo = (s: SubscriptionState): boolean => s === 'to' || s === 'both';
const hasFrom = (s: SubscriptionState): boolean => s === 'from' || s === 'both';

function compose(to: boolean, from: boolean): SubscriptionState {
  return to ? (from ? 'both' : 'to') : from ? 'from' : 'none';
}

/**
 * Folds any input onto the states A.1 defines, so stored inconsistencies
 * cannot leak through:
 * - no roster item: subscription 'none', no ask, no pre-approval (each of
 *   those lives on an item); only Pending In can exist without one (A.1);
 * - Pending Out only without 'to' (A.1 has no "To + Pending Out"/"Both + …");
 * - Pending In only without 'from' (A.1 has no "From + Pending In");
 * - a pre-approval only without 'from' (§3.4.2 rule 1: with 'from' there is
 *   nothing left to pre-approve).
 */
export function normalize(state: SubState): SubState {
  const inRoster = state.inRoster;
  const subscription: SubscriptionState = inRoster ? state.subscription : 'none';
  return {
    subscription,
    ask: inRoster && state.ask && !hasTo(subscription),
    pendingIn: state.pendingIn && !hasFrom(subscription),
    approved: inRoster && state.approved && !hasFrom(subscription),
    inRoster,
  };
}

/** The A.1 name of a state (after `normalize`); pre-approval and roster presence are not part of it. */
export function definedState(state: SubState): DefinedState {
  const s = normalize(state);
  switch (s.subscription) {
    case 'none':
      if (s.ask && s.pendingIn) return 'None + Pending Out+In';
      if (s.ask) return 'None + Pending Out';
      if (s.pendingIn) return 'None + Pending In';
      return 'None';
    case 'to':
      return s.pendingIn ? 'To + Pending In' : 'To';
    case 'from':
      return s.ask ? 'From + Pending Out' : 'From';
    default:
      return 'Both';
  }
}

/** Whether what a roster item shows (its existence, subscription, ask, approved) differs. */
function itemChanged(a: SubState, b: SubState): boolean {
  if (a.inRoster !== b.inRoster) return true;
  if (!a.inRoster) return false;
  return a.subscription !== b.subscription || a.ask !== b.ask || a.approved !== b.approved;
}

/**
 * The user's server processing a subscription stanza the user sent to the
 * contact.
 *
 * - subscribe (§3.1.2): always routed (A.2: "MUST without exception route
 *   all outbound presence stanzas of type subscribe or unsubscribe", so the
 *   user can resynchronise). Without 'to', Pending Out is set — creating the
 *   item "None + Pending Out" if there was none — and pushed.
 * - unsubscribe (§3.3.2): always routed; 'to' and Pending Out are cleared,
 *   and pushed when that changed the item.
 * - subscribed (§3.1.5, §3.4.2, A.2.1): with Pending In it approves the
 *   request (routed; 'from' added; Pending In and any pre-approval cleared;
 *   pushed; the contact gets the user's current presence). With 'from'
 *   already it is ignored (§3.4.2 rule 1). Otherwise it is a pre-approval
 *   (§3.4.2 rules 3–4): approved is set — creating an item with subscription
 *   'none' if there was none —, pushed, and NOT routed. Without pre-approval
 *   support it is dropped (A.2.1).
 * - unsubscribed (§3.2.2, A.2.2): with 'from' it cancels the contact's
 *   subscription (routed; 'from' removed; pushed; unavailable presence to
 *   the contact); with Pending In it denies the request (routed; Pending In
 *   cleared). A pre-approval is removed in every case, pushed, and when that
 *   is all the stanza did it is NOT routed (§3.2.2 rule 2). Otherwise it
 *   changes nothing and is not routed (A.2.2).
 */
export function outbound(state: SubState, type: SubscriptionStanzaType, opts: OutboundOptions = {}): OutboundResult {
  const s = normalize(state);
  const preApproval = opts.preApproval ?? true;
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  let next: SubState = s;
  let forward = false;
  let presence: PresenceAction | undefined;

  switch (type) {
    case 'subscribe':
      forward = true;
      if (!to) next = { ...s, inRoster: true, ask: true };
      break;
    case 'unsubscribe':
      forward = true;
      if (s.inRoster) next = { ...s, subscription: compose(false, from), ask: false };
      break;
    case 'subscribed':
      if (from) break; // §3.4.2 rule 1; A.2.1 "From", "From + Pending Out", "Both": no route, no change
      if (s.pendingIn) {
        // §3.1.5 / §3.4.2 rule 2: a normal approval.
        next = { ...s, inRoster: true, subscription: compose(to, true), pendingIn: false, approved: false };
        forward = true;
        presence = 'current';
      } else if (preApproval) {
        // §3.4.2 rules 3 and 4: note the pre-approval, push, do not route.
        next = { ...s, inRoster: true, approved: true };
      }
      break;
    case 'unsubscribed':
      if (from) {
        next = { ...s, subscription: compose(to, false), approved: false };
        forward = true;
        presence = 'unavailable';
      } else if (s.pendingIn) {
        next = { ...s, pendingIn: false, approved: false };
        forward = true;
      } else if (s.approved) {
        // §3.2.2 rule 2: cancel the pre-approval; the stanza goes nowhere.
        next = { ...s, approved: false };
      }
      break;
  }
  const result: OutboundResult = { next, forward, push: itemChanged(s, next) };
  if (presence) result.presence = presence;
  return result;
}

/**
 * The user's server processing a subscription stanza the contact sent to
 * the user (A.3; the user is "the contact" of §3's prose there).
 *
 * - subscribe (§3.1.3, A.3.1): with 'from' already, not delivered; the
 *   server auto-replies 'subscribed' (§3.1.3 step 2, A.3.1 rows marked *).
 *   Pre-approved (§3.4): not delivered, approved at once — 'from' added,
 *   the pre-approval consumed, pushed, auto-reply. Already Pending In: not
 *   delivered again (A.3.1). Otherwise delivered (or stored until the user
 *   is online, §3.1.3 step 4) and Pending In set; no roster item is created
 *   and nothing is pushed (A.1 "None + Pending In").
 * - unsubscribe (§3.3.3, A.3.2): with 'from' or Pending In, delivered;
 *   'from' and Pending In are cleared (pushed when the item changed);
 *   losing 'from' means unavailable presence to the contact (§3.3.3).
 * - subscribed (§3.1.6, A.3.3): only with Pending Out: delivered, 'to'
 *   added, Pending Out cleared, pushed. Otherwise ignored.
 * - unsubscribed (§3.2.3, A.3.4): with 'to' or Pending Out: delivered,
 *   both cleared, pushed. Otherwise ignored.
 */
export function inbound(state: SubState, type: SubscriptionStanzaType): InboundResult {
  const s = normalize(state);
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  let next: SubState = s;
  let deliver = false;
  let autoReply: 'subscribed' | undefined;
  let presence: PresenceAction | undefined;

  switch (type) {
    case 'subscribe':
      if (from) {
        autoReply = 'subscribed';
        presence = 'current';
      } else if (s.approved) {
        next = { ...s, subscription: compose(to, true), approved: false, pendingIn: false };
        autoReply = 'subscribed';
        presence = 'current';
      } else if (!s.pendingIn) {
        next = { ...s, pendingIn: true };
        deliver = true;
      }
      break;
    case 'unsubscribe':
      if (from || s.pendingIn) {
        next = { ...s, subscription: compose(to, false), pendingIn: false };
        deliver = true;
        if (from) presence = 'unavailable';
      }
      break;
    case 'subscribed':
      if (s.ask) {
        next = { ...s, subscription: compose(true, from), ask: false };
        deliver = true;
      }
      break;
    case 'unsubscribed':
      if (to || s.ask) {
        next = { ...s, subscription: compose(false, from), ask: false };
        deliver = true;
      }
      break;
  }
  const result: InboundResult = { next, deliver, push: itemChanged(s, next) };
  if (autoReply) result.autoReply = autoReply;
  if (presence) result.presence = presence;
  return result;
}
