/**
 * Roster offers of RFC 6121 in `<stream:features/>` after authentication:
 * roster versioning (§2.6.1) and subscription pre-approval (§3.4). The
 * roster service does the work; the stream only says that it is there.
 */
import { Element } from 'ltx';
import type { CoreFeature } from './types.js';

export const rosterVersioning: CoreFeature = {
  name: 'rosterver',
  stage: 'post-auth',
  offer: () => new Element('ver', { xmlns: 'urn:xmpp:features:rosterver' }),
};

export const preApproval: CoreFeature = {
  name: 'pre-approval',
  stage: 'post-auth',
  offer: () => new Element('sub', { xmlns: 'urn:xmpp:features:pre-approval' }),
};
