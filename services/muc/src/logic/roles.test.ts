import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError } from '@hyphae/stanza';
import {
  AFFILIATIONS,
  ROLES,
  affiliationChangeError,
  affiliationRank,
  defaultRole,
  isAffiliation,
  isRole,
  mayChangeSubject,
  mayInvite,
  mayListAffiliation,
  mayListRole,
  maySendGroupchat,
  maySendPrivate,
  roleChangeError,
  seesRealJids,
  type Affiliation,
  type AllowPm,
  type Role,
} from './roles.js';

/** null → "ok"; an error → its condition. */
const cond = (e: StanzaError | null): string => (e === null ? 'ok' : e.condition);

test('ROLES / AFFILIATIONS and their guards', () => {
  assert.deepEqual([...ROLES].sort(), ['moderator', 'none', 'participant', 'visitor']);
  assert.deepEqual([...AFFILIATIONS].sort(), ['admin', 'member', 'none', 'outcast', 'owner']);
  for (const r of ROLES) assert.ok(isRole(r));
  for (const a of AFFILIATIONS) assert.ok(isAffiliation(a));
  for (const s of ['', 'Moderator', 'owner', 'outcast', 'admin ', 'member']) assert.equal(isRole(s), false, s);
  for (const s of ['', 'Owner', 'moderator', 'visitor', 'participant', 'banned']) assert.equal(isAffiliation(s), false, s);
  assert.throws(() => (ROLES as Role[]).push('none'));
  assert.ok(
    affiliationRank('owner') > affiliationRank('admin') &&
      affiliationRank('admin') > affiliationRank('member') &&
      affiliationRank('member') > affiliationRank('none') &&
      affiliationRank('none') > affiliationRank('outcast'),
  );
});

test('§5.1.2 initial role based on affiliation (every cell of the table)', () => {
  // rows: room type; columns: None, Member, Admin, Owner
  const table: Array<[string, boolean, Array<Role | 'N/A'>]> = [
    ['Moderated', true, ['visitor', 'participant', 'moderator', 'moderator']],
    ['Unmoderated', false, ['participant', 'participant', 'moderator', 'moderator']],
    // Members-only / Open are not moderated by themselves; entry of 'none' into a
    // members-only room is refused by the caller (N/A), so only the other cells apply.
    ['Members-Only', false, ['N/A', 'participant', 'moderator', 'moderator']],
    ['Open', false, ['participant', 'participant', 'moderator', 'moderator']],
  ];
  const cols: Affiliation[] = ['none', 'member', 'admin', 'owner'];
  for (const [name, moderated, row] of table) {
    row.forEach((expected, i) => {
      if (expected === 'N/A') return;
      assert.equal(defaultRole(cols[i]!, { moderated }), expected, `${name} / ${cols[i]}`);
    });
  }
  // no role for outcasts (they cannot enter)
  assert.equal(defaultRole('outcast', { moderated: false }), 'none');
  assert.equal(defaultRole('outcast', { moderated: true }), 'none');
});

test('§5.1.1 privileges associated with roles (rows backed by a function; defaults of the table)', () => {
  const roles: Role[] = ['none', 'visitor', 'participant', 'moderator'];
  // Yes/No per column None, Visitor, Participant, Moderator
  const rows: Array<[string, (r: Role) => boolean, boolean[]]> = [
    ['Send Private Messages (allowpm anyone)', (r) => maySendPrivate(r, 'anyone'), [false, true, true, true]],
    [
      'Invite Other Users (open room)',
      (r) => mayInvite('none', r, { allowInvites: false, membersOnly: false }),
      [false, true, true, true],
    ],
    ['Send Messages to All', maySendGroupchat, [false, false, true, true]],
    // "No*" / "Yes*": configurable; the starred default applies with changesubject on
    ['Modify Subject (changesubject on)', (r) => mayChangeSubject(r, true), [false, false, true, true]],
    // §8.1: by default only moderators
    ['Modify Subject (changesubject off, §8.1)', (r) => mayChangeSubject(r, false), [false, false, false, true]],
    [
      'Kick Participants and Visitors',
      (r) =>
        roleChangeError({ affiliation: 'member', role: r }, { affiliation: 'none', role: 'participant' }, 'none') === null &&
        roleChangeError({ affiliation: 'member', role: r }, { affiliation: 'none', role: 'visitor' }, 'none') === null,
      [false, false, false, true],
    ],
    [
      'Grant Voice',
      (r) => roleChangeError({ affiliation: 'admin', role: r }, { affiliation: 'none', role: 'visitor' }, 'participant') === null,
      [false, false, false, true],
    ],
    [
      'Revoke Voice',
      (r) => roleChangeError({ affiliation: 'admin', role: r }, { affiliation: 'member', role: 'participant' }, 'visitor') === null,
      [false, false, false, true],
    ],
  ];
  for (const [name, f, expected] of rows) {
    assert.deepEqual(roles.map(f), expected, name);
  }
  // *** A moderator MUST NOT be able to revoke voice privileges from an admin or owner.
  for (const aff of ['admin', 'owner'] as const) {
    for (const actorAff of AFFILIATIONS) {
      assert.equal(
        cond(roleChangeError({ affiliation: actorAff, role: 'moderator' }, { affiliation: aff, role: 'participant' }, 'visitor')),
        'not-allowed',
        `${actorAff} revokes voice of ${aff}`,
      );
    }
  }
});

test('§5.1.3 role state chart: every transition and who may trigger it', () => {
  type Actor = { affiliation: Affiliation; role: Role };
  const owner: Actor = { affiliation: 'owner', role: 'moderator' };
  const admin: Actor = { affiliation: 'admin', role: 'moderator' };
  const memberMod: Actor = { affiliation: 'member', role: 'moderator' };
  const noneMod: Actor = { affiliation: 'none', role: 'moderator' };
  const participant: Actor = { affiliation: 'member', role: 'participant' };
  const visitor: Actor = { affiliation: 'none', role: 'visitor' };
  // [from role (target affiliation), to, actor, expected]
  const rows: Array<[string, { affiliation: Affiliation; role: Role }, Role, Actor, string]> = [
    // Visitor → None: "be kicked by a moderator"
    ['visitor → none by moderator', { affiliation: 'none', role: 'visitor' }, 'none', noneMod, 'ok'],
    ['visitor → none by participant', { affiliation: 'none', role: 'visitor' }, 'none', participant, 'forbidden'],
    // Visitor → Participant: "Moderator grants voice"
    ['visitor → participant by moderator', { affiliation: 'none', role: 'visitor' }, 'participant', noneMod, 'ok'],
    ['visitor → participant by visitor', { affiliation: 'none', role: 'visitor' }, 'participant', visitor, 'forbidden'],
    // Visitor → Moderator: "Admin or owner grants moderator status"
    ['visitor → moderator by admin', { affiliation: 'none', role: 'visitor' }, 'moderator', admin, 'ok'],
    ['visitor → moderator by owner', { affiliation: 'none', role: 'visitor' }, 'moderator', owner, 'ok'],
    ['visitor → moderator by member moderator', { affiliation: 'none', role: 'visitor' }, 'moderator', memberMod, 'forbidden'],
    // Participant → None: "be kicked by a moderator"
    ['participant → none by moderator', { affiliation: 'none', role: 'participant' }, 'none', noneMod, 'ok'],
    ['participant → none by participant', { affiliation: 'none', role: 'participant' }, 'none', participant, 'forbidden'],
    // Participant → Visitor: "Moderator revokes voice" (§8.4: target affiliation below the moderator's)
    ['participant → visitor by member moderator', { affiliation: 'none', role: 'participant' }, 'visitor', memberMod, 'ok'],
    ['participant → visitor by participant', { affiliation: 'none', role: 'participant' }, 'visitor', participant, 'forbidden'],
    // Participant → Moderator: "Admin or owner grants moderator status"
    ['participant → moderator by owner', { affiliation: 'member', role: 'participant' }, 'moderator', owner, 'ok'],
    ['participant → moderator by admin', { affiliation: 'member', role: 'participant' }, 'moderator', admin, 'ok'],
    ['participant → moderator by none moderator', { affiliation: 'member', role: 'participant' }, 'moderator', noneMod, 'forbidden'],
    // Moderator → None: "be kicked by an admin or owner"
    ['moderator → none by admin', { affiliation: 'none', role: 'moderator' }, 'none', admin, 'ok'],
    ['moderator → none by owner', { affiliation: 'member', role: 'moderator' }, 'none', owner, 'ok'],
    ['moderator → none by member moderator', { affiliation: 'none', role: 'moderator' }, 'none', memberMod, 'not-allowed'],
    ['moderator → none by participant', { affiliation: 'none', role: 'moderator' }, 'none', participant, 'forbidden'],
    // Moderator → Visitor: "Admin or owner changes role to visitor"
    ['moderator → visitor by admin', { affiliation: 'member', role: 'moderator' }, 'visitor', admin, 'ok'],
    ['moderator → visitor by owner', { affiliation: 'none', role: 'moderator' }, 'visitor', owner, 'ok'],
    ['moderator → visitor by member moderator', { affiliation: 'none', role: 'moderator' }, 'visitor', memberMod, 'forbidden'],
    // Moderator → Participant: "Admin or owner … revokes moderator status"
    ['moderator → participant by admin', { affiliation: 'none', role: 'moderator' }, 'participant', admin, 'ok'],
    ['moderator → participant by owner', { affiliation: 'member', role: 'moderator' }, 'participant', owner, 'ok'],
    ['moderator → participant by none moderator', { affiliation: 'none', role: 'moderator' }, 'participant', noneMod, 'forbidden'],
  ];
  for (const [name, target, newRole, actor, expected] of rows) {
    assert.equal(cond(roleChangeError(actor, target, newRole)), expected, name);
  }
});

test('§8.2 kick: not by a moderator with a lower affiliation (not-allowed); the actor must be a moderator (forbidden)', () => {
  const rows: Array<[Affiliation, Affiliation, Role, string]> = [
    // actor affiliation (as moderator), target affiliation, target role, expected
    ['member', 'admin', 'moderator', 'not-allowed'], // "a moderator who is a member attempts to kick an admin"
    ['member', 'owner', 'moderator', 'not-allowed'], // "… or a moderator who is a member or admin attempts to kick an owner"
    ['admin', 'owner', 'moderator', 'not-allowed'],
    ['none', 'member', 'participant', 'not-allowed'], // lower affiliation than the target
    ['none', 'member', 'visitor', 'not-allowed'],
    ['none', 'none', 'participant', 'ok'], // equal affiliation: not excluded by §8.2
    ['member', 'member', 'participant', 'ok'],
    ['member', 'none', 'visitor', 'ok'],
    ['admin', 'admin', 'moderator', 'ok'],
    ['owner', 'owner', 'moderator', 'ok'],
    ['owner', 'admin', 'moderator', 'ok'],
    ['admin', 'member', 'participant', 'ok'],
  ];
  for (const [actorAff, targetAff, targetRole, expected] of rows) {
    assert.equal(
      cond(roleChangeError({ affiliation: actorAff, role: 'moderator' }, { affiliation: targetAff, role: targetRole }, 'none')),
      expected,
      `${actorAff} moderator kicks ${targetAff} ${targetRole}`,
    );
  }
  // §8 intro: not a moderator → forbidden, whatever the affiliation (an admin outside the room has role none)
  for (const role of ['participant', 'visitor', 'none'] as const) {
    for (const aff of AFFILIATIONS) {
      assert.equal(
        cond(roleChangeError({ affiliation: aff, role }, { affiliation: 'none', role: 'participant' }, 'none')),
        'forbidden',
        `${aff}/${role} kicks`,
      );
    }
  }
  // §8.2: kicking oneself MAY be refused; we allow it (same inputs as any kick)
  assert.equal(cond(roleChangeError({ affiliation: 'none', role: 'moderator' }, { affiliation: 'none', role: 'moderator' }, 'none')), 'not-allowed');
  assert.equal(cond(roleChangeError({ affiliation: 'admin', role: 'moderator' }, { affiliation: 'admin', role: 'moderator' }, 'none')), 'ok');
});

test('§8.4 revoke voice: not from admins/owners, nor from affiliations at or above the moderator\'s', () => {
  const rows: Array<[Affiliation, Affiliation, string]> = [
    ['owner', 'member', 'ok'],
    ['owner', 'none', 'ok'],
    ['admin', 'member', 'ok'],
    ['admin', 'none', 'ok'],
    ['member', 'none', 'ok'],
    ['member', 'member', 'not-allowed'], // at the moderator's level
    ['none', 'none', 'not-allowed'],
    ['none', 'member', 'not-allowed'], // above
    ['owner', 'admin', 'not-allowed'], // "MUST NOT allow the voice privileges of an admin or owner to be removed by anyone"
    ['owner', 'owner', 'not-allowed'],
  ];
  for (const [actorAff, targetAff, expected] of rows) {
    assert.equal(
      cond(roleChangeError({ affiliation: actorAff, role: 'moderator' }, { affiliation: targetAff, role: 'participant' }, 'visitor')),
      expected,
      `${actorAff} revokes voice of ${targetAff}`,
    );
  }
});

test('§8.3 grant voice and §8.5 voice list changes need a moderator', () => {
  assert.equal(cond(roleChangeError({ affiliation: 'none', role: 'moderator' }, { affiliation: 'none', role: 'visitor' }, 'participant')), 'ok');
  assert.equal(cond(roleChangeError({ affiliation: 'owner', role: 'participant' }, { affiliation: 'none', role: 'visitor' }, 'participant')), 'forbidden');
  assert.equal(cond(roleChangeError({ affiliation: 'owner', role: 'none' }, { affiliation: 'none', role: 'visitor' }, 'participant')), 'forbidden');
});

test('§9.6–§9.8 moderator status: admins/owners only; never revoked from an admin or owner', () => {
  // granting: affiliation counts, not the actor's role (§9 intro)
  assert.equal(cond(roleChangeError({ affiliation: 'admin', role: 'none' }, { affiliation: 'none', role: 'participant' }, 'moderator')), 'ok');
  assert.equal(cond(roleChangeError({ affiliation: 'member', role: 'moderator' }, { affiliation: 'none', role: 'participant' }, 'moderator')), 'forbidden');
  assert.equal(cond(roleChangeError({ affiliation: 'none', role: 'moderator' }, { affiliation: 'none', role: 'visitor' }, 'moderator')), 'forbidden');
  // revoking (→ participant): §9.7 "MUST NOT be allowed to revoke moderator status from a user whose affiliation is owner or admin"
  const rows: Array<[Affiliation, Affiliation, Role, string]> = [
    ['admin', 'admin', 'participant', 'not-allowed'],
    ['admin', 'owner', 'participant', 'not-allowed'],
    ['owner', 'admin', 'participant', 'not-allowed'],
    ['owner', 'owner', 'participant', 'not-allowed'],
    ['admin', 'admin', 'visitor', 'not-allowed'],
    ['owner', 'owner', 'visitor', 'not-allowed'],
    ['admin', 'member', 'participant', 'ok'],
    ['admin', 'none', 'participant', 'ok'],
    ['owner', 'member', 'visitor', 'ok'],
    ['member', 'none', 'participant', 'forbidden'],
    ['none', 'none', 'participant', 'forbidden'],
  ];
  for (const [actorAff, targetAff, newRole, expected] of rows) {
    assert.equal(
      cond(roleChangeError({ affiliation: actorAff, role: 'moderator' }, { affiliation: targetAff, role: 'moderator' }, newRole)),
      expected,
      `${actorAff} sets ${targetAff} moderator to ${newRole}`,
    );
  }
});

test('role changes: no-op, non-occupant target, error types', () => {
  // same role: allowed once the privilege check passed
  assert.equal(cond(roleChangeError({ affiliation: 'none', role: 'moderator' }, { affiliation: 'none', role: 'participant' }, 'participant')), 'ok');
  assert.equal(cond(roleChangeError({ affiliation: 'owner', role: 'moderator' }, { affiliation: 'admin', role: 'moderator' }, 'moderator')), 'ok');
  // (a real visitor → visitor change would be refused by §8.4's rank rule; a no-op is not)
  assert.equal(cond(roleChangeError({ affiliation: 'none', role: 'moderator' }, { affiliation: 'none', role: 'visitor' }, 'visitor')), 'ok');
  // … but not for someone without the privilege
  assert.equal(cond(roleChangeError({ affiliation: 'none', role: 'participant' }, { affiliation: 'none', role: 'participant' }, 'participant')), 'forbidden');
  assert.equal(cond(roleChangeError({ affiliation: 'member', role: 'moderator' }, { affiliation: 'admin', role: 'moderator' }, 'moderator')), 'forbidden');
  // a target that is not in the room
  assert.equal(cond(roleChangeError({ affiliation: 'owner', role: 'moderator' }, { affiliation: 'member', role: 'none' }, 'participant')), 'item-not-found');
  assert.equal(cond(roleChangeError({ affiliation: 'owner', role: 'moderator' }, { affiliation: 'member', role: 'none' }, 'none')), 'item-not-found');
  // RFC 6120 types the XEP's examples use
  const f = roleChangeError({ affiliation: 'none', role: 'visitor' }, { affiliation: 'none', role: 'participant' }, 'none');
  assert.equal(f?.type, 'auth');
  const n = roleChangeError({ affiliation: 'member', role: 'moderator' }, { affiliation: 'owner', role: 'moderator' }, 'none');
  assert.equal(n?.type, 'cancel');
  assert.ok(n?.text);
});

/**
 * §5.2.2 affiliation state chart, transcribed: who may move a user from the
 * row's affiliation to the column's ('A' = admin or owner, 'O' = owner only).
 */
const AFF_CHART: Record<Affiliation, Partial<Record<Affiliation, 'A' | 'O'>>> = {
  outcast: { none: 'A', member: 'A', admin: 'O', owner: 'O' },
  none: { outcast: 'A', member: 'A', admin: 'O', owner: 'O' },
  member: { outcast: 'A', none: 'A', admin: 'O', owner: 'O' },
  admin: { outcast: 'O', none: 'O', member: 'O', owner: 'O' },
  owner: { outcast: 'O', none: 'O', member: 'O', admin: 'O' },
};

test('§5.2.2 affiliation state chart: every off-diagonal cell for every actor', () => {
  let cells = 0;
  for (const from of AFFILIATIONS) {
    for (const to of AFFILIATIONS) {
      const who = AFF_CHART[from][to];
      if (from === to) {
        assert.equal(who, undefined);
        continue;
      }
      assert.ok(who, `${from} → ${to}`);
      for (const actor of AFFILIATIONS) {
        let expected: string;
        if (actor === 'owner') expected = 'ok';
        else if (actor === 'admin' && who === 'A') expected = 'ok';
        else if (actor === 'admin') {
          // §9.1: banning a higher/equal affiliation → not-allowed; the rest of the
          // owner-only cells are §10.3–§10.8 "MUST return a forbidden error"
          expected = to === 'outcast' ? 'not-allowed' : 'forbidden';
        } else expected = 'forbidden'; // §9 intro
        assert.equal(cond(affiliationChangeError(actor, from, to, 2, false)), expected, `${actor}: ${from} → ${to}`);
        cells++;
      }
    }
  }
  assert.equal(cells, 20 * 5);
});

test('§5.2.1 affiliation privileges: ban, edit member/admin/owner lists', () => {
  const privileges: Array<[string, (a: Affiliation) => boolean, boolean[]]> = [
    // columns: Outcast, None, Member, Admin, Owner
    ['Ban Members and Unaffiliated Users', (a) => affiliationChangeError(a, 'member', 'outcast', 1, false) === null && affiliationChangeError(a, 'none', 'outcast', 1, false) === null, [false, false, false, true, true]],
    ['Edit Member List', (a) => affiliationChangeError(a, 'none', 'member', 1, false) === null && affiliationChangeError(a, 'member', 'none', 1, false) === null, [false, false, false, true, true]],
    ['Assign and Remove Moderator Role', (a) => roleChangeError({ affiliation: a, role: 'moderator' }, { affiliation: 'none', role: 'participant' }, 'moderator') === null && roleChangeError({ affiliation: a, role: 'moderator' }, { affiliation: 'none', role: 'moderator' }, 'participant') === null, [false, false, false, true, true]],
    ['Edit Admin List', (a) => affiliationChangeError(a, 'none', 'admin', 1, false) === null && affiliationChangeError(a, 'admin', 'none', 1, false) === null, [false, false, false, false, true]],
    ['Edit Owner List', (a) => affiliationChangeError(a, 'none', 'owner', 2, false) === null && affiliationChangeError(a, 'owner', 'none', 2, false) === null, [false, false, false, false, true]],
    ['Retrieve Member List (non-anonymous room)', (a) => mayListAffiliation(a, 'member', { whois: 'anyone' }), [false, false, true, true, true]],
    // ***: in semi-anonymous rooms members SHOULD NOT
    ['Retrieve Member List (semi-anonymous room)', (a) => mayListAffiliation(a, 'member', { whois: 'moderators' }), [false, false, false, true, true]],
  ];
  const cols: Affiliation[] = ['outcast', 'none', 'member', 'admin', 'owner'];
  for (const [name, f, expected] of privileges) assert.deepEqual(cols.map(f), expected, name);
});

test('§9.1 self-ban → conflict; §10.4/§10.5 last owner → conflict; other owners may be demoted', () => {
  assert.equal(cond(affiliationChangeError('admin', 'admin', 'outcast', 1, true)), 'conflict');
  assert.equal(cond(affiliationChangeError('owner', 'owner', 'outcast', 3, true)), 'conflict');
  // the last owner cannot leave ownership, whatever the new affiliation
  for (const to of ['admin', 'member', 'none', 'outcast'] as const) {
    assert.equal(cond(affiliationChangeError('owner', 'owner', to, 1, to !== 'outcast')), 'conflict', `last owner → ${to}`);
  }
  // with another owner: self-demotion SHOULD be allowed
  assert.equal(cond(affiliationChangeError('owner', 'owner', 'admin', 2, true)), 'ok');
  assert.equal(cond(affiliationChangeError('owner', 'owner', 'none', 2, true)), 'ok');
  // revoking another owner (§10.4 OPTIONAL, supported)
  assert.equal(cond(affiliationChangeError('owner', 'owner', 'member', 2, false)), 'ok');
  // an owner re-affirming ownership is fine even as the last owner
  assert.equal(cond(affiliationChangeError('owner', 'owner', 'owner', 1, true)), 'ok');
  // conflict text and type
  const e = affiliationChangeError('owner', 'owner', 'admin', 1, true);
  assert.equal(e?.type, 'cancel');
});

test('affiliation changes: no-op cells and non-privileged actors', () => {
  const diagonal: Array<[Affiliation, Affiliation, string]> = [
    ['admin', 'none', 'ok'],
    ['admin', 'member', 'ok'],
    ['admin', 'outcast', 'ok'],
    ['admin', 'admin', 'forbidden'], // re-granting admin is an owner use case (§10.6)
    ['admin', 'owner', 'forbidden'],
    ['owner', 'admin', 'ok'],
    ['member', 'member', 'forbidden'],
  ];
  for (const [actor, aff, expected] of diagonal) {
    assert.equal(cond(affiliationChangeError(actor, aff, aff, 1, false)), expected, `${actor}: ${aff} → ${aff}`);
  }
  // a member banning itself gets forbidden (not conflict): it has no ban privilege at all
  assert.equal(cond(affiliationChangeError('member', 'member', 'outcast', 1, true)), 'forbidden');
});

test('mayListAffiliation: §9.2 ban list, §9.5 member list, §10.5/§10.8 owner and admin lists', () => {
  const cols: Affiliation[] = ['outcast', 'none', 'member', 'admin', 'owner'];
  const rows: Array<[Affiliation, boolean[]]> = [
    ['outcast', [false, false, false, true, true]],
    ['member', [false, false, false, true, true]], // without room info: admins and owners only
    ['admin', [false, false, false, false, true]],
    ['owner', [false, false, false, false, true]],
    ['none', [false, false, false, false, false]],
  ];
  for (const [list, expected] of rows) {
    assert.deepEqual(cols.map((a) => mayListAffiliation(a, list)), expected, `${list} list`);
    // whois only ever widens the member list
    if (list !== 'member') {
      assert.deepEqual(cols.map((a) => mayListAffiliation(a, list, { whois: 'anyone' })), expected, `${list} list, non-anonymous`);
    }
  }
});

test('mayListRole: §8.5 voice list for moderators, §9.8 moderator list for admins/owners', () => {
  const actors: Array<{ affiliation: Affiliation; role: Role }> = [
    { affiliation: 'none', role: 'moderator' },
    { affiliation: 'owner', role: 'moderator' },
    { affiliation: 'admin', role: 'none' },
    { affiliation: 'member', role: 'participant' },
    { affiliation: 'none', role: 'visitor' },
  ];
  const rows: Array<[Role, boolean[]]> = [
    ['participant', [true, true, false, false, false]],
    ['visitor', [true, true, false, false, false]],
    ['moderator', [false, true, true, false, false]],
    ['none', [false, false, false, false, false]],
  ];
  for (const [list, expected] of rows) assert.deepEqual(actors.map((a) => mayListRole(a, list)), expected, `${list} list`);
});

test('seesRealJids: non-anonymous → everyone; semi-anonymous → moderators only', () => {
  for (const r of ROLES) {
    assert.equal(seesRealJids(r, 'anyone'), true, r);
    assert.equal(seesRealJids(r, 'moderators'), r === 'moderator', r);
  }
});

test('maySendPrivate: muc#roomconfig_allowpm', () => {
  const roles: Role[] = ['none', 'visitor', 'participant', 'moderator'];
  const rows: Array<[AllowPm, boolean[]]> = [
    ['anyone', [false, true, true, true]],
    ['participants', [false, false, true, true]],
    ['moderators', [false, false, false, true]],
    ['none', [false, false, false, false]],
  ];
  for (const [pm, expected] of rows) assert.deepEqual(roles.map((r) => maySendPrivate(r, pm)), expected, pm);
});

test('mayInvite: members-only rooms restrict invitations (§7.8.2, §9.5)', () => {
  const rows: Array<[Affiliation, Role, boolean, boolean, boolean]> = [
    // aff, role, allowInvites, membersOnly, expected
    ['owner', 'moderator', false, true, true],
    ['admin', 'moderator', false, true, true],
    ['member', 'participant', false, true, false], // §9.5: forbidden
    ['member', 'participant', true, true, true], // the configuration option
    ['member', 'visitor', true, true, true],
    ['none', 'participant', true, true, false],
    ['none', 'participant', false, false, true], // open room
    ['none', 'visitor', false, false, true],
    ['owner', 'none', true, false, false], // not an occupant
    ['member', 'none', true, true, false],
  ];
  for (const [aff, role, allowInvites, membersOnly, expected] of rows) {
    assert.equal(mayInvite(aff, role, { allowInvites, membersOnly }), expected, `${aff}/${role} allow=${allowInvites} mo=${membersOnly}`);
  }
});
