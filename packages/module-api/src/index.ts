/**
 * @hyphae/module-api — the module contract (what a feature declares), the
 * registry every router and edge runs modules through, and the compliance
 * table generated from the declarations.
 */
export * from './types.js';
export { ModuleRegistry, ModuleConflictError, stanzaKind, parseDelivered } from './registry.js';
export type { LoadedModule, SharedDeps } from './registry.js';
export { complianceMarkdown, complianceDoap, specUrl } from './compliance.js';
export type { Declaration } from './compliance.js';
