/**
 * XEP-0202 Entity Time (2.0): the server answers for itself with its UTC
 * time and its numeric offset from UTC (XEP-0082 formats). A user's time is
 * their client's business: a query to a full JID is routed to it, and one
 * to a bare JID gets the router's <service-unavailable/> (§2: the answer of
 * an entity that does not support the namespace), since the server cannot
 * know the user's time zone.
 *
 * A set has no meaning here (§2 defines only the get/result pair): the
 * server's time cannot be changed by anyone, <not-allowed/> (RFC 6120
 * §8.3.3.10), as ejabberd answers.
 */
import { Element } from 'ltx';
import { StanzaError } from '@hyphae/stanza';
import { defineModule, type ModuleInstance } from '@hyphae/module-api';

export const NS_TIME = 'urn:xmpp:time';

/** XEP-0082 TZD of a Date#getTimezoneOffset() value (minutes west of UTC): '+00:00', '-06:00', '+05:30'. */
export function tzo(offsetMinutesWest: number): string {
  const east = -offsetMinutesWest;
  const abs = Math.abs(east);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${east < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** XEP-0082 DateTime in UTC, whole seconds ('2006-12-19T17:58:35Z', as §3's example). */
export function utc(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function timeInstance(opts: { now?: () => number; offset?: (ms: number) => number } = {}): ModuleInstance {
  const now = opts.now ?? Date.now;
  // The offset in force at that instant (daylight saving time changes it).
  const offset = opts.offset ?? ((ms: number) => new Date(ms).getTimezoneOffset());
  return {
    features: { server: [NS_TIME] },
    iq: [
      {
        target: 'host', type: 'get', xmlns: NS_TIME, name: 'time',
        handle: () => {
          const t = now();
          const el = new Element('time', { xmlns: NS_TIME });
          el.c('tzo').t(tzo(offset(t)));
          el.c('utc').t(utc(t));
          return el;
        },
      },
      {
        target: 'host', type: 'set', xmlns: NS_TIME, name: 'time',
        handle: () => {
          throw new StanzaError('not-allowed', 'The time can only be asked (get)');
        },
      },
    ],
  };
}

export const time = defineModule({
  name: 'time',
  description: "Tells the server's time (UTC and offset)",
  specs: [{ spec: 'XEP-0202', version: '2.0', note: 'the server answers for itself; clients answer for their users' }],
  create: () => timeInstance(),
});
