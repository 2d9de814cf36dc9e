/**
 * XEP-0050 Ad-Hoc Commands carrying XEP-0133 Service Administration, as a
 * server module of the c2s node (commands are iqs to a served domain).
 *
 * - disco#items node `http://jabber.org/protocol/commands` lists the
 *   commands the requester may run (none for a non-admin); disco#info of a
 *   command node describes it (`<forbidden/>` for a non-admin);
 * - add-user, delete-user, change-user-password take two stages: execute →
 *   a form (status executing, a sessionid), then complete/execute with the
 *   submitted form → completed with a note, or cancel → canceled;
 * - get-online-users-num and get-registered-users-num answer at once with a
 *   result form (counts for the domain the command was sent to).
 *
 * Only the bare JIDs of `config.admins` may run them. A multi-stage
 * command's session lives in this node's memory: its stages come over the
 * same client stream, hence to the same c2s node. Sessions are bound to the
 * requester's full JID and expire after `sessionTtlMs`.
 */
import { Element } from 'ltx';
import { randomBytes } from 'node:crypto';
import { NS, StanzaError, type StanzaErrorCondition } from '@hyphae/stanza';
import { tryParseJid } from '@hyphae/jid';
import { defineModule, type IqRequest, type ModuleInstance } from '@hyphae/module-api';
import type { Logger } from '@hyphae/observability';
import { AdminError, type AdminErrorCode } from './errors.js';
import { createAdmin, type Admin } from './ops.js';

/** XEP-0050 namespace (and the disco node listing the commands). */
export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
/** XEP-0133 FORM_TYPE and command node prefix. */
export const NS_ADMIN = 'http://jabber.org/protocol/admin';

export const ADMIN_COMMANDS = {
  addUser: `${NS_ADMIN}#add-user`,
  deleteUser: `${NS_ADMIN}#delete-user`,
  changeUserPassword: `${NS_ADMIN}#change-user-password`,
  getOnlineUsersNum: `${NS_ADMIN}#get-online-users-num`,
  getRegisteredUsersNum: `${NS_ADMIN}#get-registered-users-num`,
} as const;

export interface AdhocOptions {
  admin: Admin;
  /** `config.admins`: bare JIDs allowed to run the commands (prepared here; invalid entries are ignored). */
  admins: readonly string[];
  logger?: Logger;
  now?: () => number;
  /** How long a started multi-stage command waits for its next stage. Default 10 minutes. */
  sessionTtlMs?: number;
  /** Most command sessions kept at once on this node. Default 1000. */
  maxSessions?: number;
}

type Fields = Map<string, string[]>;

interface FieldSpec {
  var: string;
  type: 'jid-single' | 'jid-multi' | 'text-private' | 'text-single' | 'hidden';
  label: string;
  required: boolean;
}

interface Command {
  node: string;
  name: string;
  /** The stage-1 form's fields; absent: the command completes at once. */
  fields?: FieldSpec[];
  instructions?: string;
  /** Runs the command; returns the children of the completed `<command/>` (a note or a result form). */
  run(fields: Fields, req: IqRequest): Promise<Element[]>;
}

interface CommandSession {
  node: string;
  /** Full JID of the requester who started it. */
  owner: string;
  expiresAt: number;
}

const ACTIONS = new Set(['execute', 'cancel', 'prev', 'next', 'complete']);

/** A XEP-0050 §4.6 error: a stanza condition plus the commands application condition. */
function commandError(condition: StanzaErrorCondition, app: 'malformed-action' | 'bad-action' | 'bad-locale' | 'bad-payload' | 'bad-sessionid' | 'session-expired' | null, text: string): StanzaError {
  return new StanzaError(condition, text, app ? { appCondition: new Element(app, { xmlns: NS_COMMANDS }) } : {});
}

const ADMIN_ERROR_CONDITION: Record<AdminErrorCode, StanzaErrorCondition> = {
  'invalid-jid': 'jid-malformed',
  'unknown-domain': 'not-allowed',
  'invalid-password': 'not-acceptable',
  conflict: 'conflict',
  'not-found': 'item-not-found',
};

function toStanzaError(e: unknown): unknown {
  return e instanceof AdminError ? new StanzaError(ADMIN_ERROR_CONDITION[e.code], e.message) : e;
}

function formField(x: Element, spec: FieldSpec, value?: string): void {
  const f = x.c('field', { var: spec.var, type: spec.type, label: spec.label });
  if (spec.required) f.c('required');
  if (value !== undefined) f.c('value').t(value);
}

function formTypeField(x: Element): void {
  x.c('field', { var: 'FORM_TYPE', type: 'hidden' }).c('value').t(NS_ADMIN);
}

function note(type: 'info' | 'warn' | 'error', text: string): Element {
  const n = new Element('note', { type });
  n.t(text);
  return n;
}

/** The submitted values of a `<x xmlns='jabber:x:data' type='submit'/>`; bad-payload when there is none. */
function submittedFields(command: Element): Fields {
  const x = command.getChild('x', NS.data);
  if (!x || x.attrs.type !== 'submit') throw commandError('bad-request', 'bad-payload', 'Submit the command\'s form (a jabber:x:data form of type submit)');
  const out: Fields = new Map();
  for (const f of x.getChildren('field')) {
    const name = f.attrs.var as string | undefined;
    if (!name) continue;
    out.set(name, f.getChildren('value').map((v) => v.getText()));
  }
  const formType = out.get('FORM_TYPE');
  if (formType && formType[0] !== NS_ADMIN) throw commandError('bad-request', 'bad-payload', `FORM_TYPE must be ${NS_ADMIN}`);
  return out;
}

function requiredValue(fields: Fields, name: string): string {
  const v = fields.get(name)?.[0]?.trim();
  if (!v) throw commandError('bad-request', 'bad-payload', `The field '${name}' is required`);
  return v;
}

export function adhocInstance(opts: AdhocOptions): ModuleInstance {
  const { admin } = opts;
  const log = opts.logger?.child({ component: 'adhoc' });
  const now = opts.now ?? Date.now;
  const ttl = opts.sessionTtlMs ?? 10 * 60_000;
  const maxSessions = opts.maxSessions ?? 1000;
  const admins = new Set<string>();
  for (const a of opts.admins) {
    const j = tryParseJid(a);
    if (j && j.local !== '' && j.resource === '') admins.add(j.toBareString());
    else log?.warn({ admin: a }, 'ignoring an entry of admins that is not a bare JID');
  }
  const isAdmin = (req: IqRequest): boolean => admins.has(req.from.toBareString());
  const sessions = new Map<string, CommandSession>();

  const commands: Command[] = [
    {
      node: ADMIN_COMMANDS.addUser,
      name: 'Add User',
      instructions: 'Fill out this form to add a user.',
      fields: [
        { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for the account to be added', required: true },
        { var: 'password', type: 'text-private', label: 'The password for this account', required: true },
        { var: 'password-verify', type: 'text-private', label: 'Retype password', required: false },
      ],
      async run(fields) {
        const jid = requiredValue(fields, 'accountjid');
        const password = fields.get('password')?.[0] ?? '';
        if (password === '') throw commandError('bad-request', 'bad-payload', 'The field \'password\' is required');
        const verify = fields.get('password-verify')?.[0];
        if (verify !== undefined && verify !== password) throw new StanzaError('not-acceptable', 'The passwords do not match');
        const bare = await admin.addUser(jid, password);
        return [note('info', `Created ${bare}`)];
      },
    },
    {
      node: ADMIN_COMMANDS.deleteUser,
      name: 'Delete User',
      instructions: 'Fill out this form to delete one or more users.',
      fields: [{ var: 'accountjids', type: 'jid-multi', label: 'The Jabber ID(s) to delete', required: true }],
      async run(fields) {
        const jids = (fields.get('accountjids') ?? []).map((v) => v.trim()).filter((v) => v !== '');
        if (jids.length === 0) throw commandError('bad-request', 'bad-payload', 'The field \'accountjids\' is required');
        // Check every JID before deleting any.
        const bares = [...new Set(jids.map((j) => admin.accountJid(j).toBareString()))];
        const deleted: string[] = [];
        const missing: string[] = [];
        for (const b of bares) {
          try {
            await admin.deleteUser(b);
            deleted.push(b);
          } catch (e) {
            if (e instanceof AdminError && e.code === 'not-found') missing.push(b);
            else throw e;
          }
        }
        if (deleted.length === 0) throw new StanzaError('item-not-found', `No such account: ${missing.join(', ')}`);
        const text = `Deleted ${deleted.join(', ')}` + (missing.length ? `; no such account: ${missing.join(', ')}` : '');
        return [note(missing.length ? 'warn' : 'info', text)];
      },
    },
    {
      node: ADMIN_COMMANDS.changeUserPassword,
      name: 'Change User Password',
      instructions: 'Fill out this form to change a user\'s password.',
      fields: [
        { var: 'accountjid', type: 'jid-single', label: 'The Jabber ID for this account', required: true },
        { var: 'password', type: 'text-private', label: 'The new password for this account', required: true },
      ],
      async run(fields) {
        const jid = requiredValue(fields, 'accountjid');
        const password = fields.get('password')?.[0] ?? '';
        if (password === '') throw commandError('bad-request', 'bad-payload', 'The field \'password\' is required');
        const bare = await admin.setPassword(jid, password);
        return [note('info', `Changed the password of ${bare}`)];
      },
    },
    {
      node: ADMIN_COMMANDS.getOnlineUsersNum,
      name: 'Get Number of Online Users',
      async run(_fields, req) {
        return [countForm('onlineusersnum', 'The number of online users', await admin.onlineUsersCount(req.to.domain))];
      },
    },
    {
      node: ADMIN_COMMANDS.getRegisteredUsersNum,
      name: 'Get Number of Registered Users',
      async run(_fields, req) {
        return [countForm('registeredusersnum', 'The number of registered users', await admin.registeredUsersCount(req.to.domain))];
      },
    },
  ];
  const byNode = new Map(commands.map((c) => [c.node, c]));

  function countForm(name: string, label: string, n: number): Element {
    const x = new Element('x', { xmlns: NS.data, type: 'result' });
    formTypeField(x);
    x.c('field', { var: name, type: 'text-single', label }).c('value').t(String(n));
    return x;
  }

  const commandEl = (node: string, sessionid: string, status: 'executing' | 'completed' | 'canceled'): Element =>
    new Element('command', { xmlns: NS_COMMANDS, node, sessionid, status });

  const sweep = (): void => {
    // Expired sessions answer session-expired for one more TTL, then are forgotten.
    const t = now();
    for (const [id, s] of sessions) if (s.expiresAt + ttl < t) sessions.delete(id);
  };

  const run = async (cmd: Command, fields: Fields, req: IqRequest, sessionid: string): Promise<Element> => {
    let children: Element[];
    try {
      children = await cmd.run(fields, req);
    } catch (e) {
      throw toStanzaError(e);
    }
    log?.info({ admin: req.from.toBareString(), command: cmd.node }, 'admin command completed');
    const out = commandEl(cmd.node, sessionid, 'completed');
    for (const c of children) out.cnode(c);
    return out;
  };

  const handle = async (req: IqRequest): Promise<Element> => {
    const { payload } = req;
    const node = payload.attrs.node as string | undefined;
    const cmd = node === undefined ? undefined : byNode.get(node);
    if (!cmd) throw new StanzaError('item-not-found', 'No such command');
    if (!isAdmin(req)) throw new StanzaError('forbidden', 'Only the server\'s administrators may run this command');
    const action = (payload.attrs.action as string | undefined) ?? 'execute';
    if (!ACTIONS.has(action)) throw commandError('bad-request', 'malformed-action', `Unknown action '${action}'`);
    const sessionid = payload.attrs.sessionid as string | undefined;

    if (sessionid === undefined) {
      // A new execution: only 'execute' starts one.
      if (action !== 'execute') throw commandError('bad-request', 'bad-action', `'${action}' needs a command session; start with 'execute'`);
      if (!cmd.fields) return run(cmd, new Map(), req, randomBytes(8).toString('hex'));
      sweep();
      if (sessions.size >= maxSessions) throw new StanzaError('resource-constraint', 'Too many commands in progress; try later', { type: 'wait' });
      const id = randomBytes(12).toString('hex');
      sessions.set(id, { node: cmd.node, owner: req.from.toString(), expiresAt: now() + ttl });
      const out = commandEl(cmd.node, id, 'executing');
      out.c('actions', { execute: 'complete' }).c('complete');
      const x = out.c('x', { xmlns: NS.data, type: 'form' });
      x.c('title').t(cmd.name);
      if (cmd.instructions) x.c('instructions').t(cmd.instructions);
      formTypeField(x);
      for (const f of cmd.fields) formField(x, f);
      return out;
    }

    const s = sessions.get(sessionid);
    if (!s || s.owner !== req.from.toString() || s.node !== cmd.node) {
      throw commandError('bad-request', 'bad-sessionid', 'No such command session');
    }
    if (s.expiresAt < now()) {
      sessions.delete(sessionid);
      throw commandError('not-allowed', 'session-expired', 'The command session has expired; start again');
    }
    if (action === 'cancel') {
      sessions.delete(sessionid);
      return commandEl(cmd.node, sessionid, 'canceled');
    }
    // One stage after the form: 'execute' means its default action, complete.
    if (action === 'prev' || action === 'next') throw commandError('bad-request', 'bad-action', `'${action}' is not possible here: the only action is complete`);
    try {
      return await run(cmd, submittedFields(payload), req, sessionid);
    } finally {
      // Completed, or refused: either way the session is over (start again to retry).
      sessions.delete(sessionid);
    }
  };

  return {
    features: { server: [NS_COMMANDS] },
    iq: [{ target: 'host', type: 'set', xmlns: NS_COMMANDS, name: 'command', handle }],
    hostDiscoNode(kind, node, req) {
      if (node === NS_COMMANDS) {
        if (kind === 'info') {
          return [new Element('identity', { category: 'automation', type: 'command-list', name: 'Commands' })];
        }
        if (!isAdmin(req)) return [];
        return commands.map((c) => new Element('item', { jid: req.to.domain, node: c.node, name: c.name }));
      }
      const cmd = byNode.get(node);
      if (!cmd) return null;
      if (!isAdmin(req)) throw new StanzaError('forbidden', 'Only the server\'s administrators may run this command');
      if (kind === 'items') return [];
      return [
        new Element('identity', { category: 'automation', type: 'command-node', name: cmd.name }),
        new Element('feature', { var: NS_COMMANDS }),
        new Element('feature', { var: NS.data }),
      ];
    },
  };
}

/** XEP-0050 ad-hoc commands with XEP-0133 service administration for `admins`. */
export const adhoc = defineModule({
  name: 'adhoc',
  description: 'Ad-hoc commands: service administration (add, delete, password, counts) for the configured admins',
  specs: [
    { spec: 'XEP-0050', version: '1.3.0' },
    { spec: 'XEP-0133', version: '1.3.1', status: 'partial', note: 'add-user, delete-user, change-user-password, get-online-users-num, get-registered-users-num' },
  ],
  create: (deps) => adhocInstance({
    admin: createAdmin({ config: deps.config, bus: deps.bus, stores: deps.stores, logger: deps.logger }),
    admins: deps.config.admins,
    logger: deps.logger,
  }),
});
