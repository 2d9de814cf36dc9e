/**
 * @hyphae/modules — the server's feature modules, one folder per XEP or RFC
 * area (docs/architecture.md "How to add a feature"). `standardModules` is
 * what the composition root loads; the compliance table is generated from it.
 */
import type { ModuleDefinition } from '@hyphae/module-api';
import { disco } from './disco/index.js';
import { ping } from './ping/index.js';
import { version } from './version/index.js';
import { register } from './register/index.js';
import { extdisco } from './extdisco/index.js';
import { roster } from './roster/index.js';
import { offline } from './offline/index.js';
import { vcard } from './vcard/index.js';
import { privateStorage } from './private/index.js';
import { time } from './time/index.js';
import { last } from './last/index.js';
import { blocking } from './blocking/index.js';
import { carbons } from './carbons/index.js';
import { csi } from './csi/index.js';

export { disco, discoInstance, discoInfo, serviceItems, DISCO_FEATURES, type DiscoItem, type DiscoOptions } from './disco/index.js';
export { ping, pingInstance } from './ping/index.js';
export { roster, rosterInstance, type RosterContext } from './roster/index.js';
export { offline, offlineInstance, stampDelay, type OfflineDeps, type OfflineResult } from './offline/index.js';
export { version, versionInstance } from './version/index.js';
export { register, registerInstance, type RegisterInstance, type RegisterOptions } from './register/index.js';
export { extdisco, extdiscoInstance, parseExternalService, turnCredentials, NS_EXTDISCO, type ExtDiscoOptions, type ExtDiscoConfig, type ExternalService } from './extdisco/index.js';

export { vcard, vcardInstance, photoHash, NS_VCARD, NS_VCARD_UPDATE, VCARD_CHANGED, type VcardOptions, type VcardRecord } from './vcard/index.js';
export { privateStorage, privateInstance, NS_PRIVATE, NS_BOOKMARKS, type PrivateOptions } from './private/index.js';
export { time, timeInstance, NS_TIME } from './time/index.js';
export { last, lastInstance, NS_LAST, type LastRecord } from './last/index.js';
export { blocking, blockingInstance, NS_BLOCKING, NS_BLOCKING_ERRORS, type BlockingOptions } from './blocking/index.js';
export { carbons, carbonsInstance, notCopied, CARBONS_FLAG, NS_CARBONS, NS_CARBONS_RULES, NS_FORWARD, type CarbonsInstance } from './carbons/index.js';
export { csi, csiInstance, CsiState, holdKey, NS_CSI, NS_CHATSTATES, type CsiOptions } from './csi/index.js';

/** Every module of this package, in hook order. */
export const standardModules: readonly ModuleDefinition<unknown>[] = [disco, ping, version, register, extdisco, roster, offline, vcard, privateStorage, time, last, blocking, csi, carbons];
