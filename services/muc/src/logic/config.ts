/**
 * Room configuration: the muc#roomconfig form (XEP-0045 §10.1.3, §10.2,
 * registry §16.5.3), its submission, the disco#info features (§6.4,
 * registry §16.3) and the muc#roominfo extended info (§6.4, XEP-0128,
 * registry §16.5.4). Section numbers are those of XEP-0045 1.35.5.
 */
import type { Element } from 'ltx';
import { StanzaError, NS } from '@hyphae/stanza';
import type { AllowPm } from './roles.js';
import { NS_ROOMCONFIG, NS_ROOMINFO } from './user-x.js';
import { dataForm, parseBoolean, singleValue, submittedFields, type FieldSpec } from './forms.js';

export type Whois = 'anyone' | 'moderators';

export interface RoomConfig {
  /** muc#roomconfig_roomname */
  name: string;
  /** muc#roomconfig_roomdesc */
  description: string;
  /** muc#roomconfig_lang ('' = unspecified) */
  language: string;
  /** muc#roomconfig_publicroom: listed in disco#items (muc_public / muc_hidden) */
  public: boolean;
  /** muc#roomconfig_persistentroom (muc_persistent / muc_temporary) */
  persistent: boolean;
  /** muc#roomconfig_roomsecret; '' = no password (muc#roomconfig_passwordprotectedroom false) */
  password: string;
  /** muc#roomconfig_membersonly (muc_membersonly / muc_open) */
  membersOnly: boolean;
  /** muc#roomconfig_moderatedroom (muc_moderated / muc_unmoderated) */
  moderated: boolean;
  /** muc#roomconfig_maxusers, 1..limits.maxOccupants */
  maxUsers: number;
  /** muc#roomconfig_whois: 'anyone' = non-anonymous, 'moderators' = semi-anonymous */
  whois: Whois;
  /** muc#maxhistoryfetch (alias muc#roomconfig_historylength), 0..limits.maxHistory */
  historyLength: number;
  /** muc#roomconfig_changesubject: participants may change the subject */
  changeSubject: boolean;
  /** muc#roomconfig_allowinvites: members may invite in a members-only room */
  allowInvites: boolean;
  /** muc#roomconfig_allowpm */
  allowPm: AllowPm;
  /** (voice requests of members-only rooms: not supported) */
  membersOnlyVoiceRequests?: never;
  /** muc#roomconfig_enablelogging: there are no public logs, so status 170 never applies. */
  enableLogging: false;
}

export interface ConfigLimits {
  maxOccupants: number;
  defaultMaxUsers: number;
  maxHistory: number;
  defaultHistory: number;
}

const WHOIS: readonly Whois[] = ['moderators', 'anyone'];
const ALLOW_PM: readonly AllowPm[] = ['anyone', 'participants', 'moderators', 'none'];

const clamp = (n: number, lo: number, hi: number) => Math.min(Math.max(n, lo), hi);

/**
 * A new room's configuration. Choices (XEP-0045 leaves them to the service):
 * public, temporary, no password, open, unmoderated, semi-anonymous (whois
 * 'moderators'), subject changes by moderators only (§8.1 "By default, only
 * users with a role of moderator SHOULD be allowed to change the subject";
 * Prosody's default too), members may not invite (Prosody's default),
 * private messages from anyone (Prosody's default), maxUsers and
 * historyLength from the limits (clamped to their hard caps).
 */
export function defaultConfig(limits: ConfigLimits): RoomConfig {
  return {
    name: '',
    description: '',
    language: '',
    public: true,
    persistent: false,
    password: '',
    membersOnly: false,
    moderated: false,
    maxUsers: clamp(limits.defaultMaxUsers, 1, Math.max(1, limits.maxOccupants)),
    whois: 'moderators',
    historyLength: clamp(limits.defaultHistory, 0, Math.max(0, limits.maxHistory)),
    changeSubject: false,
    allowInvites: false,
    allowPm: 'anyone',
    enableLogging: false,
  };
}

/** Field vars (registry §16.5.3). */
export const F = {
  roomname: 'muc#roomconfig_roomname',
  roomdesc: 'muc#roomconfig_roomdesc',
  lang: 'muc#roomconfig_lang',
  publicroom: 'muc#roomconfig_publicroom',
  persistentroom: 'muc#roomconfig_persistentroom',
  passwordprotectedroom: 'muc#roomconfig_passwordprotectedroom',
  roomsecret: 'muc#roomconfig_roomsecret',
  membersonly: 'muc#roomconfig_membersonly',
  moderatedroom: 'muc#roomconfig_moderatedroom',
  maxusers: 'muc#roomconfig_maxusers',
  whois: 'muc#roomconfig_whois',
  /** The registered name (§16.5.3, §10.1.3 example). */
  maxhistoryfetch: 'muc#maxhistoryfetch',
  /** Prosody's name for the same setting; accepted on submit. */
  historylength: 'muc#roomconfig_historylength',
  changesubject: 'muc#roomconfig_changesubject',
  allowinvites: 'muc#roomconfig_allowinvites',
  allowpm: 'muc#roomconfig_allowpm',
  enablelogging: 'muc#roomconfig_enablelogging',
} as const;

const bool = (b: boolean) => (b ? '1' : '0');

/** Offered maxusers values: a ladder up to the hard cap, plus the cap and the current value. */
function maxUsersOptions(current: number, maxOccupants: number): number[] {
  const ladder = [10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 100000, 500000, 1000000];
  const set = new Set<number>(ladder.filter((n) => n <= maxOccupants));
  set.add(maxOccupants);
  set.add(current);
  return [...set].sort((a, b) => a - b);
}

/**
 * The configuration form sent to an owner (§10.1.3 / §10.2: type='form',
 * current values as defaults). FORM_TYPE (hidden) comes first. The history
 * length is offered under its registered var muc#maxhistoryfetch; the
 * room password is included (owners only ever get this form, as in the
 * §10.2 example). enablelogging is always '0': public logging is not
 * offered, and submitting '1' is refused.
 */
export function configForm(cfg: RoomConfig, limits: ConfigLimits): Element {
  const fields: FieldSpec[] = [
    { var: 'FORM_TYPE', type: 'hidden', values: [NS_ROOMCONFIG] },
    { var: F.roomname, type: 'text-single', label: 'Natural-Language Room Name', values: [cfg.name] },
    { var: F.roomdesc, type: 'text-single', label: 'Short Description of Room', values: [cfg.description] },
    { var: F.lang, type: 'text-single', label: 'Natural Language for Room Discussions', values: [cfg.language] },
    { var: F.publicroom, type: 'boolean', label: 'Make Room Publicly Searchable?', values: [bool(cfg.public)] },
    { var: F.persistentroom, type: 'boolean', label: 'Make Room Persistent?', values: [bool(cfg.persistent)] },
    {
      var: F.passwordprotectedroom,
      type: 'boolean',
      label: 'Password Required for Entry?',
      values: [bool(cfg.password !== '')],
    },
    { var: F.roomsecret, type: 'text-private', label: 'Password', values: [cfg.password] },
    { var: F.membersonly, type: 'boolean', label: 'Make Room Members-Only?', values: [bool(cfg.membersOnly)] },
    { var: F.moderatedroom, type: 'boolean', label: 'Make Room Moderated?', values: [bool(cfg.moderated)] },
    {
      var: F.maxusers,
      type: 'list-single',
      label: 'Maximum Number of Occupants',
      values: [String(cfg.maxUsers)],
      options: maxUsersOptions(cfg.maxUsers, limits.maxOccupants).map((n) => ({ label: String(n), value: String(n) })),
    },
    {
      var: F.whois,
      type: 'list-single',
      label: 'Who May Discover Real JIDs?',
      values: [cfg.whois],
      options: [
        { label: 'Moderators Only', value: 'moderators' },
        { label: 'Anyone', value: 'anyone' },
      ],
    },
    {
      var: F.maxhistoryfetch,
      type: 'text-single',
      label: `Maximum Number of History Messages Returned by Room (0 to ${limits.maxHistory})`,
      values: [String(cfg.historyLength)],
    },
    {
      var: F.changesubject,
      type: 'boolean',
      label: 'Allow Occupants to Change Subject?',
      values: [bool(cfg.changeSubject)],
    },
    { var: F.allowinvites, type: 'boolean', label: 'Allow Members to Invite Others?', values: [bool(cfg.allowInvites)] },
    {
      var: F.allowpm,
      type: 'list-single',
      label: 'Who Can Send Private Messages?',
      values: [cfg.allowPm],
      options: [
        { label: 'Anyone', value: 'anyone' },
        { label: 'Anyone with Voice', value: 'participants' },
        { label: 'Moderators Only', value: 'moderators' },
        { label: 'Nobody', value: 'none' },
      ],
    },
    { var: F.enablelogging, type: 'boolean', label: 'Enable Public Logging? (not available)', values: ['0'] },
  ];
  return dataForm('form', fields, 'Room configuration');
}

const bad = (text: string) => new StanzaError('bad-request', text);
/** §10.1.3: options that violate service policy → not-acceptable (MUST). */
const unacceptable = (text: string) => new StanzaError('not-acceptable', text);

function parseNonNegativeInt(name: string, s: string): number {
  const t = s.trim();
  if (!/^\+?\d+$/.test(t)) throw unacceptable(`${name} must be a non-negative integer`);
  return Number(t);
}

/** A loose RFC 5646 language tag shape ('' allowed: unspecified). */
const LANG = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/;

/**
 * Applies a submitted configuration form (§10.1.3 / §10.2) to `cfg`.
 *
 * - `x` must be `<x xmlns='jabber:x:data' type='submit'/>`; any other type
 *   (notably 'cancel', which the caller handles itself: destroy a locked new
 *   room, keep the old configuration otherwise) is a bad-request.
 * - FORM_TYPE, when present, must be exactly muc#roomconfig (bad-request).
 * - Absent fields keep their current value (XEP-0004 §3.3: a submission MAY
 *   omit fields); an empty `<x type='submit'/>` (instant room, §10.1.2)
 *   changes nothing. Unknown vars are ignored (XEP-0004 MUST), including
 *   muc#roomconfig_roomadmins/_roomowners, which this form does not offer.
 * - Several values in a single-valued field → bad-request (the form itself
 *   is malformed).
 * - Values the service cannot accept → not-acceptable (§10.1.3, XEP-0004
 *   §3.3): a boolean that is not 0/1/true/false (an empty boolean is false,
 *   XEP-0004's default), a non-integer maxusers or history length, a
 *   whois/allowpm value that is not one of the options, a malformed
 *   language tag, maxusers
 *   outside 1..maxOccupants ('none', the XEP's "no limit" option, means
 *   maxOccupants), history length outside 0..maxHistory, public logging
 *   enabled, password protection without a password (§10.1.3's example).
 * - Password: with _passwordprotectedroom the room has a password iff it is
 *   true (then _roomsecret, or else the current password, must be
 *   non-empty); without it, a submitted _roomsecret alone sets the password
 *   ('' clears it).
 * - History length: muc#maxhistoryfetch (registered) or
 *   muc#roomconfig_historylength (Prosody); if both are sent the registered
 *   one wins.
 *
 * Status codes (§10.2.1, §16.6.2), ascending: 172 when the room became
 * non-anonymous, 173 when it became semi-anonymous, 104 when anything else
 * changed (a password change included). Nothing changed → [].
 */
export function applyConfigSubmit(
  x: Element,
  cfg: RoomConfig,
  limits: ConfigLimits,
): { config: RoomConfig; statusCodes: number[] } {
  if (x.name !== 'x' || x.getNS() !== NS.data) throw bad('expected a jabber:x:data form');
  if (x.attrs.type !== 'submit') throw bad(`expected a form of type 'submit', got '${String(x.attrs.type)}'`);
  const fields = submittedFields(x);
  const one = (name: string): string | undefined => {
    const v = fields.get(name);
    return v === undefined ? undefined : singleValue(name, v);
  };
  const flag = (name: string, current: boolean): boolean => {
    const v = one(name);
    if (v === undefined) return current;
    if (v.trim() === '') return false; // XEP-0004 §3.3: the default value of a boolean is false
    const b = parseBoolean(v);
    if (b === undefined) throw unacceptable(`${name} must be a boolean (0, 1, false or true)`);
    return b;
  };
  const choice = <T extends string>(name: string, allowed: readonly T[], current: T): T => {
    const v = one(name);
    if (v === undefined) return current;
    const t = v.trim();
    if (!(allowed as readonly string[]).includes(t)) throw unacceptable(`${name} must be one of ${allowed.join(', ')}`);
    return t as T;
  };

  const formType = fields.get('FORM_TYPE');
  if (formType !== undefined && (formType.length !== 1 || formType[0]?.trim() !== NS_ROOMCONFIG)) {
    throw bad(`FORM_TYPE must be ${NS_ROOMCONFIG}`);
  }

  const next: RoomConfig = { ...cfg, enableLogging: false };
  next.name = one(F.roomname) ?? cfg.name;
  next.description = one(F.roomdesc) ?? cfg.description;
  const lang = one(F.lang);
  if (lang !== undefined) {
    const t = lang.trim();
    if (t !== '' && !LANG.test(t)) throw unacceptable(`${F.lang} must be a language tag such as 'en'`);
    next.language = t;
  }
  next.public = flag(F.publicroom, cfg.public);
  next.persistent = flag(F.persistentroom, cfg.persistent);
  next.membersOnly = flag(F.membersonly, cfg.membersOnly);
  next.moderated = flag(F.moderatedroom, cfg.moderated);
  next.changeSubject = flag(F.changesubject, cfg.changeSubject);
  next.allowInvites = flag(F.allowinvites, cfg.allowInvites);
  next.whois = choice(F.whois, WHOIS, cfg.whois);
  next.allowPm = choice(F.allowpm, ALLOW_PM, cfg.allowPm);

  const maxUsers = one(F.maxusers);
  if (maxUsers !== undefined) {
    const n = maxUsers.trim() === 'none' ? limits.maxOccupants : parseNonNegativeInt(F.maxusers, maxUsers);
    if (n < 1 || n > limits.maxOccupants) {
      throw unacceptable(`${F.maxusers} must be between 1 and ${limits.maxOccupants}`);
    }
    next.maxUsers = n;
  }

  const historyVar = fields.has(F.maxhistoryfetch) ? F.maxhistoryfetch : F.historylength;
  const history = one(historyVar);
  if (history !== undefined) {
    const n = parseNonNegativeInt(historyVar, history);
    if (n > limits.maxHistory) throw unacceptable(`${historyVar} must be between 0 and ${limits.maxHistory}`);
    next.historyLength = n;
  }

  if (flag(F.enablelogging, false)) throw unacceptable('public logging of rooms is not available');

  const secret = one(F.roomsecret);
  const protectedFlag = fields.has(F.passwordprotectedroom) ? flag(F.passwordprotectedroom, false) : undefined;
  if (protectedFlag === true) {
    const pw = secret ?? cfg.password;
    if (pw === '') throw unacceptable('a password-protected room needs a password');
    next.password = pw;
  } else if (protectedFlag === false) {
    next.password = '';
  } else if (secret !== undefined) {
    next.password = secret;
  }

  const statusCodes: number[] = [];
  const otherChange =
    next.name !== cfg.name ||
    next.description !== cfg.description ||
    next.language !== cfg.language ||
    next.public !== cfg.public ||
    next.persistent !== cfg.persistent ||
    next.password !== cfg.password ||
    next.membersOnly !== cfg.membersOnly ||
    next.moderated !== cfg.moderated ||
    next.maxUsers !== cfg.maxUsers ||
    next.historyLength !== cfg.historyLength ||
    next.changeSubject !== cfg.changeSubject ||
    next.allowInvites !== cfg.allowInvites ||
    next.allowPm !== cfg.allowPm;
  if (otherChange) statusCodes.push(104);
  if (next.whois !== cfg.whois) statusCodes.push(next.whois === 'anyone' ? 172 : 173);
  return { config: next, statusCodes };
}

/**
 * The room's disco#info features (§6.4; names from the §16.3 registry):
 * disco#info itself, the MUC namespace, and one of each pair
 * muc_public|muc_hidden, muc_persistent|muc_temporary,
 * muc_passwordprotected|muc_unsecured, muc_membersonly|muc_open,
 * muc_moderated|muc_unmoderated, muc_nonanonymous|muc_semianonymous.
 * Sorted (code unit order), no duplicates. Not included: muc#stable_id
 * (depends on the room actor reflecting ids, §7.4) and muc#request (voice
 * requests are not supported); the caller may add them.
 */
export function roomFeatures(cfg: RoomConfig): string[] {
  const features = new Set<string>([
    NS.discoInfo,
    'http://jabber.org/protocol/muc',
    cfg.public ? 'muc_public' : 'muc_hidden',
    cfg.persistent ? 'muc_persistent' : 'muc_temporary',
    cfg.password !== '' ? 'muc_passwordprotected' : 'muc_unsecured',
    cfg.membersOnly ? 'muc_membersonly' : 'muc_open',
    cfg.moderated ? 'muc_moderated' : 'muc_unmoderated',
    cfg.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
  ]);
  return [...features].sort();
}

/**
 * The muc#roominfo extended disco#info form (§6.4, XEP-0128; fields from the
 * §16.5.4 registry), type='result': FORM_TYPE, muc#roominfo_description,
 * muc#roominfo_occupants, muc#roominfo_subject, muc#roominfo_lang,
 * muc#roominfo_subjectmod (registered: participants may change the
 * subject), and, as §6.4 allows any muc#roomconfig field, the room name,
 * muc#roomconfig_changesubject (as in the §6.4 example) and
 * muc#maxhistoryfetch. Every field carries exactly one value ('' when unset)
 * so that XEP-0115 hashes are stable.
 */
export function roomInfoForm(cfg: RoomConfig, occupants: number, subject: string): Element {
  const fields: FieldSpec[] = [
    { var: 'FORM_TYPE', type: 'hidden', values: [NS_ROOMINFO] },
    { var: F.roomname, type: 'text-single', label: 'Natural-Language Room Name', values: [cfg.name] },
    { var: 'muc#roominfo_description', type: 'text-single', label: 'Description', values: [cfg.description] },
    { var: 'muc#roominfo_lang', type: 'text-single', label: 'Language of discussion', values: [cfg.language] },
    { var: 'muc#roominfo_occupants', type: 'text-single', label: 'Number of occupants', values: [String(occupants)] },
    { var: 'muc#roominfo_subject', type: 'text-single', label: 'Current Discussion Topic', values: [subject] },
    {
      var: 'muc#roominfo_subjectmod',
      type: 'boolean',
      label: 'The room subject can be modified by participants',
      values: [cfg.changeSubject ? '1' : '0'],
    },
    {
      var: F.changesubject,
      type: 'boolean',
      label: 'Subject can be modified',
      values: [cfg.changeSubject ? '1' : '0'],
    },
    {
      var: F.maxhistoryfetch,
      type: 'text-single',
      label: 'Maximum Number of History Messages Returned by Room',
      values: [String(cfg.historyLength)],
    },
  ];
  return dataForm('result', fields);
}

/** JSON for the store. */
export function serializeConfig(cfg: RoomConfig): string {
  const { membersOnlyVoiceRequests: _unused, ...rest } = cfg;
  return JSON.stringify({ ...rest, enableLogging: false });
}

/**
 * Reads a stored configuration. Keys that are missing or of the wrong type
 * take the value of defaultConfig(limits) (so that adding a setting needs no
 * migration); numbers are clamped to the current limits (the operator may
 * have lowered them); unknown whois/allowPm values fall back to the
 * defaults. Text that is not a JSON object throws (a corrupt record must not
 * silently become an open room).
 */
export function parseConfig(json: string, limits: ConfigLimits): RoomConfig {
  const raw: unknown = JSON.parse(json);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TypeError('stored room configuration is not a JSON object');
  }
  const o = raw as Record<string, unknown>;
  const d = defaultConfig(limits);
  const str = (k: keyof RoomConfig, dflt: string): string => (typeof o[k] === 'string' ? (o[k] as string) : dflt);
  const boo = (k: keyof RoomConfig, dflt: boolean): boolean => (typeof o[k] === 'boolean' ? (o[k] as boolean) : dflt);
  const int = (k: keyof RoomConfig, dflt: number, lo: number, hi: number): number => {
    const v = o[k];
    return typeof v === 'number' && Number.isInteger(v) ? clamp(v, lo, hi) : dflt;
  };
  const whois = o.whois === 'anyone' || o.whois === 'moderators' ? o.whois : d.whois;
  const allowPm = (ALLOW_PM as readonly unknown[]).includes(o.allowPm) ? (o.allowPm as AllowPm) : d.allowPm;
  return {
    name: str('name', d.name),
    description: str('description', d.description),
    language: str('language', d.language),
    public: boo('public', d.public),
    persistent: boo('persistent', d.persistent),
    password: str('password', d.password),
    membersOnly: boo('membersOnly', d.membersOnly),
    moderated: boo('moderated', d.moderated),
    maxUsers: int('maxUsers', d.maxUsers, 1, Math.max(1, limits.maxOccupants)),
    whois,
    historyLength: int('historyLength', d.historyLength, 0, Math.max(0, limits.maxHistory)),
    changeSubject: boo('changeSubject', d.changeSubject),
    allowInvites: boo('allowInvites', d.allowInvites),
    allowPm,
    enableLogging: false,
  };
}
