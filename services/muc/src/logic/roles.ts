/**
 * XEP-0045 (version 1.35.5) roles, affiliations and the privileges attached
 * to them: §5.1 / §5.2 tables, the moderator use cases of §8, the admin use
 * cases of §9 and the owner use cases of §10. Pure functions; the room actor
 * turns the returned StanzaErrors into error replies.
 *
 * Section numbers are those of XEP-0045 1.35.5 (§7.2.14 is "Managing
 * Discussion History", §16.5.3 the muc#roomconfig registry, §16.6.2 the
 * status codes).
 */
import { StanzaError } from '@hyphae/stanza';

export type Role = 'moderator' | 'participant' | 'visitor' | 'none';
export type Affiliation = 'owner' | 'admin' | 'member' | 'none' | 'outcast';
/** muc#roomconfig_allowpm (§16.5.3; values from the §10.1.3 form example). */
export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';

/** §5.1, highest first. */
export const ROLES: readonly Role[] = Object.freeze(['moderator', 'participant', 'visitor', 'none'] as const);
/** §5.2, in the order of the XEP's list (owner, admin, member, none; outcast last as the lowest). */
export const AFFILIATIONS: readonly Affiliation[] = Object.freeze(['owner', 'admin', 'member', 'none', 'outcast'] as const);

const ROLE_SET: ReadonlySet<string> = new Set(ROLES);
const AFF_SET: ReadonlySet<string> = new Set(AFFILIATIONS);

export function isRole(s: string): s is Role {
  return ROLE_SET.has(s);
}

export function isAffiliation(s: string): s is Affiliation {
  return AFF_SET.has(s);
}

const AFF_RANK: Readonly<Record<Affiliation, number>> = { outcast: 0, none: 1, member: 2, admin: 3, owner: 4 };

/** The §5.2.1 hierarchy as a number (outcast 0 … owner 4), for "higher affiliation" comparisons. */
export function affiliationRank(a: Affiliation): number {
  return AFF_RANK[a];
}

function isAdminOrOwner(a: Affiliation): boolean {
  return a === 'owner' || a === 'admin';
}

/**
 * §5.1.2 "Initial Role Based on Affiliation": owner/admin → moderator;
 * member → participant; none → visitor in a moderated room, participant
 * otherwise. An outcast gets no role ('none') since it may not enter (§5.1.2
 * note); entry of an unaffiliated user into a members-only room is refused by
 * the caller (§7.2.6), not here.
 */
export function defaultRole(aff: Affiliation, room: { moderated: boolean }): Role {
  switch (aff) {
    case 'owner':
    case 'admin':
      return 'moderator';
    case 'member':
      return 'participant';
    case 'none':
      return room.moderated ? 'visitor' : 'participant';
    case 'outcast':
      return 'none';
  }
}

const forbidden = (text: string) => new StanzaError('forbidden', text);
const notAllowed = (text: string) => new StanzaError('not-allowed', text);

/**
 * Whether `actor` may set the role of the occupant `target` to `newRole`
 * (null) or the error to return. The rules, in the order checked:
 *
 * 1. Privilege (forbidden). Granting moderator status, or taking it away
 *    (moderator → participant/visitor), is an admin use case (§9.6, §9.7):
 *    the actor must be an admin or owner (§9 intro: else forbidden); its own
 *    role does not matter. Everything else (kick §8.2, voice §8.3/§8.4) is a
 *    moderator use case: the actor's role must be moderator (§8 intro: else
 *    forbidden) — an admin who is not in the room has role 'none' and cannot
 *    kick.
 * 2. A target that is not an occupant (role 'none'): item-not-found (the XEP
 *    does not name a condition; the caller normally resolves nick → occupant
 *    first).
 * 3. No change (newRole = current role): null.
 * 4. Protected targets (not-allowed):
 *    - kick (→ none): a target with a higher affiliation than the actor
 *      (§8.2 MUST); a target that is a moderator unless the actor is an
 *      admin or owner (§5.1.3 role chart: a moderator is kicked "by an admin
 *      or owner").
 *    - moderator → participant/visitor of an admin or owner (§9.7 MUST, §9.8:
 *      "moderator status cannot be revoked from a room owner or room admin").
 *    - participant → visitor (revoke voice, §8.4): of an admin or owner
 *      ("MUST NOT allow the voice privileges of an admin or owner to be
 *      removed by anyone"), or of anyone whose affiliation is at or above the
 *      actor's ("MUST NOT be able to revoke voice from a user whose
 *      affiliation is at or above the moderator's level").
 *
 * Kicking oneself: §8.2 says the service MAY refuse with conflict; we do not
 * (it is a common IRC idiom), so there is no self parameter here.
 */
export function roleChangeError(
  actor: { affiliation: Affiliation; role: Role },
  target: { affiliation: Affiliation; role: Role },
  newRole: Role,
): StanzaError | null {
  const moderatorStatusChange =
    newRole === 'moderator' || (target.role === 'moderator' && newRole !== 'none');
  if (moderatorStatusChange) {
    if (!isAdminOrOwner(actor.affiliation)) {
      return forbidden('only admins and owners may grant or revoke moderator status');
    }
  } else if (actor.role !== 'moderator') {
    return forbidden('only moderators may kick occupants or change their voice');
  }
  if (target.role === 'none') return new StanzaError('item-not-found', 'not an occupant of this room');
  if (newRole === target.role) return null;

  const actorRank = AFF_RANK[actor.affiliation];
  const targetRank = AFF_RANK[target.affiliation];
  switch (newRole) {
    case 'moderator': // §9.6
      return null;
    case 'none': // §8.2 kick
      if (targetRank > actorRank) return notAllowed('cannot kick a user with a higher affiliation');
      if (target.role === 'moderator' && !isAdminOrOwner(actor.affiliation)) {
        return notAllowed('only admins and owners may kick a moderator');
      }
      return null;
    case 'participant':
      if (target.role === 'moderator' && isAdminOrOwner(target.affiliation)) {
        return notAllowed('cannot revoke moderator status from an admin or owner'); // §9.7
      }
      return null; // §8.3 grant voice, or §9.7 revoke moderator status
    case 'visitor':
      if (isAdminOrOwner(target.affiliation)) {
        return notAllowed('cannot revoke voice from an admin or owner'); // §8.4, §9.7
      }
      if (targetRank >= actorRank) {
        return notAllowed('cannot revoke voice from a user whose affiliation is at or above yours'); // §8.4
      }
      return null;
  }
}

/**
 * Whether an actor with affiliation `actorAff` may change a user's
 * affiliation from `targetAff` to `newAff` (null) or the error to return.
 * `ownerCount` is the number of owners the room has now; `targetIsSelf`
 * whether the target's bare JID is the actor's. In the order checked:
 *
 * 1. The actor must be an admin or owner (§9 intro, §10.3–§10.8: forbidden).
 * 2. Banning oneself: conflict (§9.1 MUST; also for owners).
 * 3. An admin may only move users among outcast/none/member (§5.2.2 chart):
 *    - banning an admin or owner → not-allowed (§9.1 "cannot be banned by an
 *      admin with a lower affiliation"; for an admin target the chart says
 *      only an owner may ban, and §9.2 allows conflict or not-allowed);
 *    - granting admin/owner, or changing an admin's or owner's affiliation
 *      otherwise → forbidden (§10.3, §10.4, §10.6, §10.7 "does not match the
 *      bare JID of a room owner … MUST return a forbidden error", §10.5/§10.8
 *      only owners modify the owner/admin lists).
 * 4. The last owner cannot stop being an owner: conflict (§10.2, §10.4, §10.5:
 *    "MUST NOT allow an owner to revoke his or her own owner status if there
 *    are no other owners"; §10 intro: every room MUST have an owner).
 *
 * Owners may revoke other owners' status (§10.4 leaves this OPTIONAL; we
 * support it, so not-authorized is never returned). Setting the affiliation
 * a user already has passes the same checks and is otherwise a no-op.
 */
export function affiliationChangeError(
  actorAff: Affiliation,
  targetAff: Affiliation,
  newAff: Affiliation,
  ownerCount: number,
  targetIsSelf: boolean,
): StanzaError | null {
  if (!isAdminOrOwner(actorAff)) return forbidden('only admins and owners may change affiliations');
  if (targetIsSelf && newAff === 'outcast') {
    return new StanzaError('conflict', 'you cannot ban yourself');
  }
  if (actorAff === 'admin') {
    if (newAff === 'admin' || newAff === 'owner') return forbidden('only owners may grant admin or owner status');
    if (isAdminOrOwner(targetAff)) {
      if (newAff === 'outcast') return notAllowed('cannot ban a user with an equal or higher affiliation');
      return forbidden('only owners may revoke admin or owner status');
    }
  }
  if (targetAff === 'owner' && newAff !== 'owner' && ownerCount <= 1) {
    return new StanzaError('conflict', 'a room must keep at least one owner');
  }
  return null;
}

/**
 * Whether an actor may retrieve the list of users with affiliation `list`:
 * - outcast (ban list, §9.2) and member (§9.5): admins and owners;
 * - member, additionally: members when the room is non-anonymous (§9.5 note
 *   "SHOULD also allow any member to retrieve the member list" in
 *   non-anonymous rooms; §5.2.1 "***": not in semi-anonymous rooms). Pass
 *   `room` to enable this; without it only admins and owners;
 * - admin (§10.8) and owner (§10.5): owners only (non-owners MUST get
 *   forbidden in semi-anonymous rooms; the "MAY process" for non-anonymous
 *   rooms is not taken);
 * - none: there is no "none list" (§5.2: it is not maintained) → false.
 */
export function mayListAffiliation(
  actorAff: Affiliation,
  list: Affiliation,
  room?: { whois: 'anyone' | 'moderators' },
): boolean {
  switch (list) {
    case 'outcast':
      return isAdminOrOwner(actorAff);
    case 'member':
      return isAdminOrOwner(actorAff) || (actorAff === 'member' && room?.whois === 'anyone');
    case 'admin':
    case 'owner':
      return actorAff === 'owner';
    case 'none':
      return false;
  }
}

/**
 * Whether an actor may retrieve the occupants with role `list`:
 * - participant (voice list, §8.5): moderators;
 * - moderator (moderator list, §9.8): admins and owners (an admin use case);
 * - visitor: not defined by the XEP; moderators (they manage voice, §8.3);
 * - none: not a list → false.
 */
export function mayListRole(actor: { affiliation: Affiliation; role: Role }, list: Role): boolean {
  switch (list) {
    case 'participant':
    case 'visitor':
      return actor.role === 'moderator';
    case 'moderator':
      return isAdminOrOwner(actor.affiliation);
    case 'none':
      return false;
  }
}

/**
 * Whether a viewer with role `viewerRole` sees occupants' real JIDs: in a
 * non-anonymous room (whois 'anyone') every occupant does; in a
 * semi-anonymous room (whois 'moderators') only moderators (§4.2, §7.2.3,
 * §7.2.4, §8 item 1).
 */
export function seesRealJids(viewerRole: Role, whois: 'anyone' | 'moderators'): boolean {
  return whois === 'anyone' || viewerRole === 'moderator';
}

/**
 * §5.1.1 "Send Messages to All": participants and moderators. A visitor gets
 * forbidden (§7.4 MUST); visitors exist only in moderated rooms, so this
 * needs no room flag. Role 'none' (not an occupant) → false (§7.4:
 * not-acceptable, the caller's choice of condition).
 */
export function maySendGroupchat(role: Role): boolean {
  return role === 'participant' || role === 'moderator';
}

/**
 * §8.1: by default only moderators may change the subject; with
 * muc#roomconfig_changesubject participants may too (§5.1.1 "Modify
 * Subject": participant "Yes*"). Visitors never may: the §5.1.1 default is
 * "No*", and a visitor has no voice, which a subject change (a groupchat
 * message) needs — the same choice as Prosody.
 */
export function mayChangeSubject(role: Role, changeSubject: boolean): boolean {
  if (role === 'moderator') return true;
  return changeSubject && role === 'participant';
}

/**
 * Mediated invitations (§7.8.2) by an occupant (role not 'none':
 * "a room in which one is an occupant"):
 * - members-only room: admins and owners; members too when
 *   muc#roomconfig_allowinvites ("Whether to Allow Members to Invite
 *   Others", §9.5: "SHOULD be restricted to room admins … MAY provide a
 *   configuration option"); others → forbidden (§9.5 MUST);
 * - open room: any occupant (§5.1.1 "Invite Other Users": visitor and
 *   participant "Yes*", moderator "Yes"); allowinvites only concerns
 *   members-only rooms, where an invitation may add a member.
 */
export function mayInvite(aff: Affiliation, role: Role, room: { allowInvites: boolean; membersOnly: boolean }): boolean {
  if (role === 'none') return false;
  if (!room.membersOnly) return true;
  if (isAdminOrOwner(aff)) return true;
  return aff === 'member' && room.allowInvites;
}

/**
 * §7.5 private messages, controlled by muc#roomconfig_allowpm: 'anyone' →
 * every occupant; 'participants' ("Anyone with Voice") → participants and
 * moderators; 'moderators' → moderators; 'none' → nobody. Role 'none' (not
 * an occupant) never (§7.5: not-acceptable).
 */
export function maySendPrivate(role: Role, allowPm: AllowPm): boolean {
  if (role === 'none') return false;
  switch (allowPm) {
    case 'anyone':
      return true;
    case 'participants':
      return role === 'participant' || role === 'moderator';
    case 'moderators':
      return role === 'moderator';
    case 'none':
      return false;
  }
}
