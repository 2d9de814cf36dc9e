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

export { disco, discoInstance, discoInfo, serviceItems, DISCO_FEATURES, type DiscoItem, type DiscoOptions } from './disco/index.js';
export { ping, pingInstance } from './ping/index.js';
export { roster, rosterInstance } from './roster/index.js';
export { version, versionInstance } from './version/index.js';
export { register, registerInstance, type RegisterInstance, type RegisterOptions } from './register/index.js';
export { extdisco, extdiscoInstance, parseExternalService, turnCredentials, NS_EXTDISCO, type ExtDiscoOptions, type ExtDiscoConfig, type ExternalService } from './extdisco/index.js';

/** Every module of this package, in hook order. */
export const standardModules: readonly ModuleDefinition<unknown>[] = [disco, ping, version, register, extdisco, roster];
